/**
 * The agent page's contact list as a new user walks it, in a real headless Chromium against a real kefu with a
 * simulated WeChat API: 待回复 counts the users who wrote last (a follow does not; a reply sent, a resolve clear it;
 * a user who writes again is back, live and after a reload); previews are what the user or the agent wrote, not
 * workflow lines; the queue says why a user waits; search words workflow lines in the agent's language and gives
 * times as the list does; the reply window a user's new message opens is not undone by an older view of it; success
 * toasts are calm and clear of the header; the transfer dialog chooses an online colleague; message badges and a
 * file's failure follow the language; the details panel does not call an id a nickname. Ignored (not passed) when
 * /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { Browser, CHROMIUM_PATH, delay, hasChromium, type Page } from "./browser/cdp.ts";
import {
  click,
  clickContact,
  nowSeconds,
  openAgent,
  pushText,
  reload,
  startKefu,
  textOf,
  typeInto,
  uncaught,
  wechat,
} from "./browser/page_helpers.ts";
import { startWechat } from "./helpers.ts";
import { CONTACTS_PATH } from "../static/js/protocol.js";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const APPID = "wxcontactspage01";

/** The number beside 待回复 ("" for none). */
function waitingCount(page: Page): Promise<string> {
  return textOf(page, '#filters [data-filter="waiting"] .count');
}

function untilWaiting(page: Page, n: string, what: string) {
  return page.waitForExpression(
    `待回复 ${JSON.stringify(n)}: ${what}`,
    `document.querySelector('#filters [data-filter="waiting"] .count').textContent === ${JSON.stringify(n)}`,
  );
}

function previewOf(page: Page, id: string): Promise<string> {
  return textOf(page, `#contacts [data-contact-id="${id}"] .contact-preview`);
}

function windowLine(page: Page): Promise<string> {
  return textOf(page, '[data-testid="reply-window"]');
}

Deno.test({
  name: `browser: 待回复, previews, the queue's why, search and the reply window as a new user walks them${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    await using sim = startWechat({ appId: APPID, appSecret: "s" });
    const kefu = await startKefu({ WECHAT_APPID: APPID, WECHAT_APPSECRET: "s", WECHAT_API_BASE: sim.url });
    const browser = await Browser.launch();
    try {
      const url = `${kefu.http}/?userid=W`;
      const page = await openAgent(browser, url);

      // A follow alone: listed, not 待回复 (there is nothing to reply to).
      await wechat(kefu.http, "oFollow", "event", "<Event><![CDATA[subscribe]]></Event>");
      await page.waitForExpression(
        "oFollow listed",
        `!!document.querySelector('#contacts [data-contact-id="oFollow"]')`,
      );
      await page.evaluate("kefu.flushContacts()");
      assert.equal(await waitingCount(page), "");

      // A user writes: 待回复.
      sim.sim.recordInteraction("oA", "message");
      await wechat(kefu.http, "oA", "text", "<Content><![CDATA[我想开发票]]></Content><MsgId>7001</MsgId>");
      await untilWaiting(page, "1", "oA wrote");
      assert.equal(await previewOf(page, "oA"), "我想开发票");

      // The agent's reply goes out: no longer 待回复; the window spent one reply.
      await clickContact(page, "oA");
      await page.waitForExpression(
        "oA's window",
        `/还可回复 5 条/.test(document.querySelector("#reply-window").textContent)`,
      );
      await page.waitForExpression("the reply box enabled", `!document.querySelector("#reply-text").disabled`);
      await typeInto(page, "#reply-text", "好的，请提供抬头");
      await click(page, "#reply-send");
      await page.waitForExpression(
        "the reply sent",
        `!!document.querySelector('#conversation [data-direction="out"][data-status="sent"]')`,
      );
      await untilWaiting(page, "", "the reply went out");
      assert.match(await windowLine(page), /^还可回复 4 条 · 剩余 4[78]小时\d+分$/);
      assert.equal(await previewOf(page, "oA"), "我：好的，请提供抬头");

      // Resolved: the preview stays what was said, not the workflow line.
      await click(page, "#resolve");
      await page.waitForExpression("oA resolved", `kefu.state.contacts.get("oA").status === "resolved"`);
      await page.evaluate("kefu.flushContacts()");
      assert.equal(await previewOf(page, "oA"), "我：好的，请提供抬头");
      assert.equal(await waitingCount(page), "");

      // The user writes again: reopened, 待回复 again, and a fresh 48-hour window of 5 replies (the 106 "reopened"
      // carries a window computed before the message was kept: it must not undo this one).
      sim.sim.recordInteraction("oA", "message");
      await wechat(kefu.http, "oA", "text", "<Content><![CDATA[还有一个问题]]></Content><MsgId>7002</MsgId>");
      await untilWaiting(page, "1", "oA wrote again");
      await page.waitForExpression("oA open again", `kefu.state.contacts.get("oA").status === "open"`);
      await delay(300);
      assert.match(await windowLine(page), /^还可回复 5 条 · 剩余 4[78]小时\d+分$/);
      assert.equal(await previewOf(page, "oA"), "还有一个问题");

      // A view of the window older than the page's (an earlier until) is not taken; one with the same until and
      // fewer replies left is (a reply spent elsewhere).
      const until = await page.evaluate<number>(`kefu.state.contacts.get("oA").replyWindow.message_until`);
      assert.ok(Math.abs(until - (nowSeconds() + 48 * 3600)) <= 3, `until ${until}`);
      const view = (w: Record<string, number>) =>
        page.evaluate(`handleFrame(${
          JSON.stringify(JSON.stringify({
            data: { action: "updated", contact: { contact_id: "oA", reply_window: w } },
            result: { code: 106, message: "contact" },
          }))
        })`);
      await view({ message_until: until - 120, message_left: 2, event_until: 0, event_left: 0 });
      assert.match(await windowLine(page), /^还可回复 5 条 · /);
      await view({ message_until: until, message_left: 3, event_until: 0, event_left: 0 });
      assert.match(await windowLine(page), /^还可回复 3 条 · /);
      await view({ message_until: until + 60, message_left: 5, event_until: 0, event_left: 0 });
      assert.match(await windowLine(page), /^还可回复 5 条 · /);

      // An older message: its time reads the same in the list and in search.
      await pushText(kefu.http, {
        to: "W",
        from: "oOld",
        content: "旧消息在这里",
        id: "7003",
        time: nowSeconds() - 1800,
      });
      await page.waitForExpression("oOld listed", `!!document.querySelector('#contacts [data-contact-id="oOld"]')`);

      // After a reload the server's awaiting_reply says the same: oA and oOld, not oFollow.
      await reload(page, url);
      await untilWaiting(page, "2", "after a reload");
      assert.equal(await previewOf(page, "oA"), "还有一个问题");
      await typeInto(page, "#search", "旧消息");
      await page.waitForExpression("the search hit", `!!document.querySelector('[data-testid="search-message"]')`);
      const rowTime = await textOf(page, '#contacts [data-contact-id="oOld"] time');
      const hitTime = await textOf(page, '[data-testid="search-message"] time');
      assert.match(rowTime, /^(29|30)分钟前$/);
      assert.equal(hitTime, rowTime);
      await page.evaluate(
        `document.querySelector("#search").dispatchEvent(new KeyboardEvent("keydown", { key: "Escape" }))`,
      );

      // Put back in the queue with a note: the queue says why, in the agent's words.
      const res = await fetch(`${kefu.http}${CONTACTS_PATH}/oA/release?userid=W`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ note: "要开发票" }),
      });
      assert.ok(res.ok, await res.text());
      await page.waitForExpression("oA queued", `!!document.querySelector('#queue [data-contact-id="oA"]')`);
      await page.evaluate("kefu.flushContacts()");
      assert.equal(await waitingCount(page), "1");
      // A reload lists the queue from GET …/queue: its last_event is the why.
      await reload(page, url);
      await page.waitForExpression("oA queued", `!!document.querySelector('#queue [data-contact-id="oA"] .queue-why')`);
      assert.equal(await textOf(page, '#queue [data-contact-id="oA"] .queue-why'), "你将会话退回了等待队列：要开发票");
      assert.match(await textOf(page, '#queue [data-contact-id="oA"] .queue-last'), /^还有一个问题/);

      // Taken back: the preview is what the user said, not "你接入了会话".
      await click(page, '#queue [data-contact-id="oA"] [data-testid="take"]');
      await page.waitForExpression("oA taken", `!!document.querySelector('#contacts [data-contact-id="oA"]')`);
      await page.evaluate("kefu.flushContacts()");
      assert.equal(await previewOf(page, "oA"), "还有一个问题");
      assert.equal(await waitingCount(page), "2");

      // Search finds the workflow line by its note: worded in Chinese, not the server's English.
      await typeInto(page, "#search", "要开发票");
      await page.waitForExpression("the search hits", `!!document.querySelector('[data-testid="search-message"]')`);
      const hits = await page.evaluate<string[]>(
        `[...document.querySelectorAll('[data-testid="search-message"] .hit-text')].map((n) => n.textContent)`,
      );
      assert.ok(hits.includes("你将会话退回了等待队列：要开发票"), JSON.stringify(hits));
      assert.ok(hits.every((h) => !/queue/i.test(h)), JSON.stringify(hits));
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});

Deno.test({
  name:
    `browser: calm success toasts clear of the header, the transfer dialog, badges and a file's failure in both languages, the details' id${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu();
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=W`);
      const other = await openAgent(browser, `${kefu.http}/?userid=X`);
      await pushText(kefu.http, { to: "W", from: "oUser", content: "你好", id: "8001" });
      await clickContact(page, "oUser");

      // The details: the id as the id, no nickname that is only the id again.
      await click(page, "#open-details");
      assert.equal(await textOf(page, '[data-testid="details-id"]'), "oUser");
      assert.equal(await page.evaluate(`document.querySelector('[data-testid="details-name"]').hidden`), true);
      assert.equal(await page.evaluate(`document.querySelector('#details-name-label').hidden`), true);
      await click(page, "#details-close");

      // A failed file and an image badge, then the same in English.
      await page.evaluate(`handleFrame(${
        JSON.stringify(JSON.stringify({
          data: {
            id: "img1",
            contact_id: "oUser",
            msg_type: "image",
            msg: { media_error: "fetch failed: 404" },
            send_time: nowSeconds(),
          },
          result: { code: 1002, message: "common" },
        }))
      })`);
      const media = () =>
        page.evaluate<{ badge: string; error: string; retry: string }>(`(() => {
          const m = document.querySelector('#conversation [data-id="img1"]');
          return { badge: m.querySelector(".badge").textContent,
            error: m.querySelector('[data-testid="media-error"]').textContent,
            retry: m.querySelector('[data-testid="media-retry"]').textContent };
        })()`);
      await page.waitForExpression("the image", `!!document.querySelector('#conversation [data-id="img1"]')`);
      assert.deepEqual(await media(), { badge: "图片", error: "文件未能转存：fetch failed: 404", retry: "重试" });
      await page.evaluate(`kefu.setLang("en")`);
      assert.deepEqual(await media(), {
        badge: "image",
        error: "The file could not be fetched: fetch failed: 404",
        retry: "Retry",
      });

      // The transfer dialog in English: no full-width colon; the online colleague is chosen.
      await click(page, "#open-transfer");
      await page.waitForExpression("the agents", `document.querySelector("#transfer-agents").value === "X"`);
      assert.equal(await textOf(page, '[data-testid="transfer-title"]'), "Transfer the conversation with oUser");
      await page.evaluate(`kefu.setLang("zh")`);
      await click(page, "#transfer-cancel");
      await click(page, "#open-transfer");
      await page.waitForExpression("the agents", `document.querySelector("#transfer-agents").value === "X"`);
      const dialog = await page.evaluate<
        { title: string; options: string[]; ok: boolean; hint: boolean; size: number }
      >(
        `(() => {
          const list = document.querySelector("#transfer-agents");
          return { title: document.querySelector('[data-testid="transfer-title"]').textContent,
            options: [...list.options].map((o) => o.textContent), ok: document.querySelector("#transfer-ok").disabled,
            hint: document.querySelector("#transfer-hint").hidden, size: list.size };
        })()`,
      );
      assert.deepEqual(dialog, {
        title: "转接会话：oUser",
        options: ["客服 X · 在线 · 0 个会话"],
        ok: false,
        hint: true,
        // One colleague, one line.
        size: 1,
      });
      // None chosen: 转接 is disabled and the dialog says why.
      await page.evaluate(`(() => { const l = document.querySelector("#transfer-agents"); l.selectedIndex = -1;
        l.dispatchEvent(new Event("change")); })()`);
      assert.equal(await page.evaluate(`document.querySelector("#transfer-ok").disabled`), true);
      assert.equal(await page.evaluate(`document.querySelector("#transfer-hint").hidden`), false);
      assert.equal(await textOf(page, "#transfer-hint"), "请选择要转接的客服");
      await page.evaluate(`(() => { const l = document.querySelector("#transfer-agents"); l.value = "X";
        l.dispatchEvent(new Event("change")); })()`);
      assert.equal(await page.evaluate(`document.querySelector("#transfer-ok").disabled`), false);
      const header = await page.evaluate<{ top: number; bottom: number; left: number; right: number }>(
        `(() => { const r = document.querySelector("#conv-actions").getBoundingClientRect();
          return { top: r.top, bottom: r.bottom, left: r.left, right: r.right }; })()`,
      );
      await click(page, "#transfer-ok");

      // A calm toast (not the error's red), clear of the header's buttons.
      const toast = await page.waitForExpression<
        {
          text: string;
          kind: string;
          role: string;
          top: number;
          bottom: number;
          left: number;
          right: number;
          bg: string;
        }
      >(
        "the success toast",
        `(() => { const t = document.querySelector('[data-testid="toast"]'); if (!t) return null;
          const r = t.getBoundingClientRect();
          return { text: t.textContent, kind: t.dataset.kind, role: t.getAttribute("role"), top: r.top,
            bottom: r.bottom, left: r.left, right: r.right, bg: getComputedStyle(t).backgroundColor }; })()`,
      );
      assert.equal(toast.text, "已转接给客服 X");
      assert.equal(toast.kind, "info");
      assert.equal(toast.role, "status");
      const overlaps = toast.left < header.right && toast.right > header.left && toast.top < header.bottom &&
        toast.bottom > header.top;
      assert.equal(overlaps, false, `toast ${JSON.stringify(toast)} over the header ${JSON.stringify(header)}`);
      const errorBg = await page.evaluate<string>(`(() => { const d = document.createElement("div");
        d.className = "toast error"; document.body.append(d); const bg = getComputedStyle(d).backgroundColor;
        d.remove(); return bg; })()`);
      assert.notEqual(toast.bg, errorBg);
      await other.waitForExpression("oUser with X", `!!document.querySelector('#contacts [data-contact-id="oUser"]')`);
      assert.deepEqual(uncaught(page), []);
      assert.deepEqual(uncaught(other), []);
      await page.close();
      await other.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});
