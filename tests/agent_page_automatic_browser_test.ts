/**
 * Automatic messages on the agent page (issue 22), in a real headless Chromium: kefu's welcome to a user who
 * followed is in the conversation's history as kefu's own line — labelled 自动回复 (Automatic reply in English) and
 * drawn apart from the agents' replies. The welcome goes to the simulator's WeChat API. Ignored (not passed) when
 * /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { Browser, CHROMIUM_PATH, hasChromium } from "./browser/cdp.ts";
import { click, clickContact, openAgent, startKefu, typeInto, uncaught, wechat } from "./browser/page_helpers.ts";
import { eventually, startWechat } from "./helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const APPID = "wx00000000000000ac";

Deno.test({
  name: `browser: kefu's welcome shows in the history labelled 自动回复, apart from agents' replies${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kefu-automatic-page-" });
    await Deno.writeTextFile(`${dir}/kefu.json`, JSON.stringify({ automatic: [{ welcome: "欢迎关注！" }] }));
    const sim = startWechat({ appId: APPID, appSecret: "s3cr3t-for-tests" });
    const kefu = await startKefu({
      WECHAT_APPID: APPID,
      WECHAT_APPSECRET: "s3cr3t-for-tests",
      WECHAT_API_BASE: sim.url,
      CONFIG_FILE: `${dir}/kefu.json`,
    });
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=W`);
      sim.sim.recordInteraction("oFan", "follow");
      await wechat(kefu.http, "oFan", "event", "<Event><![CDATA[subscribe]]></Event>");
      await eventually("the welcome reached the phone", () => sim.sim.inbox("oFan").length === 1, 15_000);
      await clickContact(page, "oFan");
      const shown = await page.waitForExpression<{ badge: string; text: string; direction: string }>(
        "the welcome in the conversation",
        `(() => {
          const m = document.querySelector('#conversation .msg.automatic');
          return m && { badge: m.querySelector('.badge.automatic').textContent, text: m.querySelector('.msg-text').textContent,
            direction: m.dataset.direction, kind: m.dataset.automatic };
        })()`,
      );
      assert.deepEqual(shown, { badge: "自动回复", text: "欢迎关注！", direction: "out", kind: "welcome" });
      // The agent's own reply (the follow's window allows two more) is not labelled.
      await page.waitForExpression("the reply box enabled", `!document.querySelector("#reply-text").disabled`);
      await typeInto(page, "#reply-text", "您好，我是客服小王");
      await click(page, "#reply-send");
      await page.waitForExpression(
        "the agent's reply sent",
        `!!document.querySelector('#conversation [data-direction="out"][data-status="sent"]:not(.automatic)')`,
      );
      assert.equal(
        await page.evaluate(
          `document.querySelectorAll('#conversation [data-direction="out"] .badge.automatic').length`,
        ),
        1,
        "only kefu's own line has the label",
      );
      await page.evaluate(`kefu.setLang("en")`);
      await page.waitForExpression(
        "the label in English",
        `document.querySelector('#conversation .msg.automatic .badge.automatic')?.textContent === "Automatic reply"`,
      );
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await sim[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
