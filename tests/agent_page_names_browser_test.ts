/**
 * What contacts are called (issue 20, finding 6), in a real headless Chromium: a group shows its name when the
 * channel says it (the PC hook's push names the room in `talkerInfo.nickName`), a group it does not name and a
 * nameless Official Account user show a short stable label (群聊·a1b2 / 用户·a1b2, Group·… / User·… in English),
 * the same after a reload, with the id in the details. Ignored (not passed) when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { startPcHookSimulator } from "../src/simulator/pc_hook.ts";
import { Browser, CHROMIUM_PATH, hasChromium, type Page } from "./browser/cdp.ts";
import { click, clickContact, openAgent, reload, startKefu, uncaught, wechat } from "./browser/page_helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;

/** The names of the listed contacts, once every one of `ids` is labelled (its channel known). */
function names(page: Page, ids: string[]): Promise<Record<string, string>> {
  return page.waitForExpression<Record<string, string>>(
    "every contact named",
    `(() => {
      const names = Object.fromEntries([...document.querySelectorAll("#contacts [data-contact-id]")]
        .map((li) => [li.dataset.contactId, li.querySelector(".contact-name").textContent]));
      const ids = ${JSON.stringify(ids)};
      return ids.every((id) => names[id] && names[id] !== id) && names;
    })()`,
  );
}

Deno.test({
  name: `browser: a group by the name its channel says, nameless ones by a short stable label${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const hook = startPcHookSimulator({ reconnectMs: 50, wxid: "wxid_shop" });
    const kefu = await startKefu({ HOOK_API_URL: hook.apiUrl });
    const browser = await Browser.launch();
    try {
      const url = `${kefu.http}/?userid=G`;
      const page = await openAgent(browser, url);
      await hook.waitConnected(1);
      await hook.text("wxid_member", "群里问一下", { room: "1001@chatroom", roomName: "售后交流群", nickName: "小王" });
      await hook.text("wxid_member", "没有名字的群", { room: "2002@chatroom", nickName: "小王" });
      await wechat(kefu.http, "oNamelessUser", "text", "<Content><![CDATA[在吗]]></Content><MsgId>6601</MsgId>");
      const ids = ["1001@chatroom", "2002@chatroom", "oNamelessUser"];
      const zh = await names(page, ids);
      assert.equal(zh["1001@chatroom"], "售后交流群");
      assert.match(zh["2002@chatroom"], /^群聊·[0-9a-f]{4}$/);
      assert.match(zh.oNamelessUser, /^用户·[0-9a-f]{4}$/);

      // The label is the conversation's title; the id is in the details.
      await clickContact(page, "oNamelessUser");
      await page.waitForExpression(
        "the title",
        `document.querySelector("#conv-title").textContent === ${JSON.stringify(zh.oNamelessUser)}`,
      );
      await click(page, "#open-details");
      assert.equal(await page.evaluate(`document.querySelector("#details-id").textContent`), "oNamelessUser");

      // In English, the same tags; after a reload, the same labels.
      await page.evaluate(`kefu.setLang("en")`);
      const en = await names(page, ids);
      assert.equal(en["1001@chatroom"], "售后交流群", "a group's own name is the group's, in any language");
      assert.equal(en["2002@chatroom"], zh["2002@chatroom"].replace("群聊", "Group"));
      assert.equal(en.oNamelessUser, zh.oNamelessUser.replace("用户", "User"));
      await page.evaluate(`kefu.setLang("zh")`);
      await reload(page, url);
      assert.deepEqual(await names(page, ids), zh);
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await hook.shutdown();
    }
  },
});
