/**
 * The agent page as a workplace (issue 14), in a real headless Chromium against a real kefu: Chinese first with an
 * English switch; the unread total in the tab title; day separators in both languages; a transfer between two
 * agents seen live in both pages; resolve and reopen (by the agent, and by the user's next message); search that
 * opens a message; WeChat's reply window shown and enforced (47 h 59 min after the user's last message, and the
 * 1-minute window after a follow). Ignored (not passed) when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { SqliteStore, storePath } from "../src/store/sqlite_store.ts";
import { seedInbound } from "./store/seed.ts";
import { Browser, CHROMIUM_PATH, delay, hasChromium, type Page, waitFor } from "./browser/cdp.ts";
import {
  click,
  clickContact,
  inConversation,
  nowSeconds,
  openAgent,
  openConversation,
  pushText,
  startKefu,
  textOf,
  uncaught,
  wechat,
} from "./browser/page_helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const APPID = "wxworkplace0001";

function listed(page: Page, contact: string): Promise<boolean> {
  return page.evaluate<boolean>(`!!document.querySelector('#contacts [data-contact-id=${JSON.stringify(contact)}]')`);
}

Deno.test({
  name: `browser: Chinese first, English with one switch (kept), the unread total in the title, day separators${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu();
    const browser = await Browser.launch();
    try {
      const url = `${kefu.http}/?userid=L1`;
      // An agent's desktop in Chinese; another in English.
      const page = await openAgent(browser, url, { lang: "zh-CN" });
      const view = () =>
        page.evaluate<{ lang: string; connect: string; resolve: string; filters: string[]; placeholder: string }>(
          `({ lang: document.documentElement.lang, connect: document.querySelector("#connect").textContent,
            resolve: document.querySelector("#resolve").textContent,
            filters: [...document.querySelectorAll("#filters [data-filter] > span:first-child")].map((s) => s.textContent),
            placeholder: document.querySelector("#search").placeholder })`,
        );
      assert.deepEqual(await view(), {
        lang: "zh-CN",
        connect: "断开",
        resolve: "标记已解决",
        filters: ["全部", "未读", "待回复", "已解决"],
        placeholder: "搜索联系人、备注或消息",
      });

      // Three messages from two users while another conversation is open: "(3) …" in the title.
      const now = nowSeconds();
      await pushText(kefu.http, { to: "L1", from: "u_first", content: "第一位", id: "9001" });
      await openConversation(page, "u_first", "9001");
      assert.equal(await page.evaluate(`document.title`), "kefu 客服");
      await pushText(kefu.http, { to: "L1", from: "u_days", content: "三天前", id: "9002", time: now - 3 * 86400 });
      await pushText(kefu.http, { to: "L1", from: "u_days", content: "昨天的", id: "9003", time: now - 86400 });
      await pushText(kefu.http, { to: "L1", from: "u_days", content: "今天的", id: "9004", time: now });
      const title = await page.waitForExpression<string>(
        "three unread in the title",
        `document.title.startsWith("(3) ") && document.title`,
      );
      assert.equal(title, "(3) kefu 客服");
      // Relative times in the list.
      assert.equal(await textOf(page, '#contacts [data-contact-id="u_days"] time'), "刚刚");

      await clickContact(page, "u_days");
      await page.waitForExpression("the title without unread", `document.title === "kefu 客服"`);
      const days = `[...document.querySelectorAll('#conversation[data-contact-id="u_days"] [data-testid="day"]')]
        .map((d) => d.textContent)`;
      const zhDays = await page.waitForExpression<string[]>(
        "three day separators",
        `(${days}).length === 3 && ${days}`,
      );
      assert.deepEqual(zhDays.slice(1), ["昨天", "今天"]);
      assert.match(zhDays[0], /^\d{4}-\d\d-\d\d 周[日一二三四五六]$/);

      // One switch: English everywhere, kept after a reload.
      await click(page, "#lang");
      assert.deepEqual(await view(), {
        lang: "en",
        connect: "Disconnect",
        resolve: "Resolve",
        filters: ["All", "Unread", "Waiting", "Resolved"],
        placeholder: "Search contacts, notes or messages",
      });
      assert.deepEqual((await page.evaluate<string[]>(days)).slice(1), ["Yesterday", "Today"]);
      assert.match((await page.evaluate<string[]>(days))[0], /^\d{4}-\d\d-\d\d (Sun|Mon|Tue|Wed|Thu|Fri|Sat)$/);
      assert.equal(await textOf(page, "#lang"), "中文");
      await page.goto(url);
      await page.waitForExpression("English after a reload", `document.documentElement.lang === "en"`);
      assert.equal(await textOf(page, "#resolve"), "Resolve");
      // And back.
      await click(page, "#lang");
      assert.equal(await page.evaluate(`document.documentElement.lang`), "zh-CN");

      // Chinese first even where the browser asks for English: only the agent's own choice changes it.
      await page.evaluate(`localStorage.removeItem("kefu.lang")`);
      const en = await openAgent(browser, `${kefu.http}/?userid=L2`, { lang: "en-US" });
      assert.equal(await en.evaluate(`document.documentElement.lang`), "zh-CN");
      assert.deepEqual(uncaught(page), []);
      assert.deepEqual(uncaught(en), []);
      await en.close();
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});

Deno.test({
  name: `browser: a transfer between two agents is seen live in both pages, with its note and the history${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu();
    const browser = await Browser.launch();
    try {
      const a = await openAgent(browser, `${kefu.http}/?userid=A`);
      const b = await openAgent(browser, `${kefu.http}/?userid=B`);
      await pushText(kefu.http, { to: "A", from: "u_move", content: "我要退货", id: "9101" });
      await pushText(kefu.http, { to: "A", from: "u_move", content: "订单 8812", id: "9102" });
      await openConversation(a, "u_move", "9102");
      // A second tab of A sees the contact go too.
      const a2 = await openAgent(browser, `${kefu.http}/?userid=A`);
      await a2.waitForExpression(
        "u_move in A's second tab",
        `!!document.querySelector('#contacts [data-contact-id="u_move"]')`,
      );

      await click(a, "#open-transfer");
      await a.waitForExpression(
        "B in the transfer list",
        `[...document.querySelectorAll("#transfer-agents option")].some((o) => o.value === "B")`,
      );
      await a.evaluate(`(() => {
        document.querySelector("#transfer-agents").value = "B";
        document.querySelector("#transfer-note").value = "老客户，请优先处理退货";
      })()`);
      await Deno.writeFile("/tmp/kefu-transfer-dialog.png", await a.screenshot());
      await click(a, "#transfer-ok");

      await a.waitForExpression(
        "u_move gone from A",
        `!document.querySelector('#contacts [data-contact-id="u_move"]')`,
      );
      await a2.waitForExpression(
        "u_move gone from A's second tab",
        `!document.querySelector('#contacts [data-contact-id="u_move"]')`,
      );
      assert.equal(await a.evaluate(`document.querySelector("#conversation").dataset.contactId`), "");
      await b.waitForExpression(
        "u_move in B's list",
        `!!document.querySelector('#contacts [data-contact-id="u_move"]')`,
      );
      await clickContact(b, "u_move");
      // The history went along, and the transfer is a line with its note, in B's language.
      await inConversation(b, "u_move", "9101");
      const line = await b.waitForExpression<string>(
        "the transfer line",
        `document.querySelector('#conversation [data-testid="system-line"][data-action="transferred"] .msg-text')
          ?.textContent`,
      );
      assert.equal(line, "客服 A 将会话转接给了你：老客户，请优先处理退货");
      // B can answer; A's page has nothing of it left.
      assert.equal(await b.evaluate(`document.querySelector("#reply-text").disabled`), false);
      assert.equal(await listed(a, "u_move"), false);
      for (const p of [a, a2, b]) assert.deepEqual(uncaught(p), []);
      await a2.close();
      await b.close();
      await a.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});

Deno.test({
  name: `browser: resolve and reopen; the user's next message reopens; filters and search that opens a message${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu();
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=R`);
      await pushText(kefu.http, { to: "R", from: "u_done", content: "谢谢，问题解决了", id: "9201" });
      await openConversation(page, "u_done", "9201");
      await pushText(kefu.http, { to: "R", from: "u_other", content: "快递单号 SF1234567 查不到", id: "9202" });
      await page.waitForExpression(
        "u_other listed",
        `!!document.querySelector('#contacts [data-contact-id="u_other"]')`,
      );

      // Filters, from the contacts' own fields: both wait for a reply, one is unread.
      const visible = () =>
        page.evaluate<string[]>(
          `[...document.querySelectorAll("#contacts [data-contact-id]")].filter((li) => !li.hidden)
            .map((li) => li.dataset.contactId).sort()`,
        );
      await click(page, '#filters [data-filter="unread"]');
      assert.deepEqual(await visible(), ["u_other"]);
      await click(page, '#filters [data-filter="waiting"]');
      assert.deepEqual(await visible(), ["u_done", "u_other"]);

      // Resolve: the line, the button turns to reopen, the filter moves it.
      await click(page, "#resolve");
      await page.waitForExpression(
        "resolved",
        `document.querySelector('#contacts [data-contact-id="u_done"]')?.dataset.status === "resolved"`,
      );
      assert.equal(await textOf(page, '#conversation [data-action="resolved"] .msg-text'), "你将会话标记为已解决");
      assert.equal(await page.evaluate(`document.querySelector("#reopen").hidden`), false);
      assert.deepEqual(await visible(), ["u_other"]);
      await click(page, '#filters [data-filter="resolved"]');
      assert.deepEqual(await visible(), ["u_done"]);
      // Reopen by hand.
      await click(page, "#reopen");
      await page.waitForExpression(
        "reopened",
        `document.querySelector('#contacts [data-contact-id="u_done"]')?.dataset.status === "open"`,
      );
      assert.equal(await textOf(page, '#conversation [data-action="reopened"] .msg-text'), "你重新打开了会话");
      // Resolved again, then the user writes: open again by itself.
      await click(page, "#resolve");
      await page.waitForExpression(
        "resolved again",
        `document.querySelector('#contacts [data-contact-id="u_done"]')?.dataset.status === "resolved"`,
      );
      await pushText(kefu.http, { to: "R", from: "u_done", content: "还有一个问题", id: "9203" });
      await inConversation(page, "u_done", "9203");
      await page.waitForExpression(
        "open after the user's message",
        `document.querySelector('#contacts [data-contact-id="u_done"]')?.dataset.status === "open" &&
          !document.querySelector("#resolve").hidden`,
      );
      await click(page, '#filters [data-filter="all"]');

      // Search: a message of the other contact, clicked, opens its conversation there.
      await page.evaluate(`(() => {
        const box = document.querySelector("#search");
        box.value = "SF1234567";
        box.dispatchEvent(new Event("input"));
      })()`);
      await page.waitForExpression(
        "the message in the results",
        `!!document.querySelector('#search-results [data-testid="search-message"][data-id="9202"]')`,
      );
      await Deno.writeFile("/tmp/kefu-search.png", await page.screenshot());
      await click(page, '#search-results [data-testid="search-message"][data-id="9202"]');
      await inConversation(page, "u_other", "9202");
      assert.equal(await page.evaluate(`document.querySelector("#search-results").hidden`), true);
      await page.waitForExpression(
        "the hit marked",
        `!!document.querySelector('#conversation [data-id="9202"].found')`,
      );

      // The details: a display name and a note, shown in the list and the header.
      await click(page, "#open-details");
      await page.evaluate(`(() => {
        document.querySelector("#details-display-name").value = "顺丰用户王先生";
        document.querySelector("#details-note").value = "VIP，周末不打电话";
        document.querySelector("#details-save").click();
      })()`);
      await page.waitForExpression(
        "the display name in the list",
        `document.querySelector('#contacts [data-contact-id="u_other"] .contact-name')?.textContent === "顺丰用户王先生"`,
      );
      assert.equal(await textOf(page, "#conv-title"), "顺丰用户王先生");
      assert.equal(await textOf(page, '[data-testid="conv-note"]'), "VIP，周末不打电话");
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});

Deno.test({
  name: `browser: WeChat's reply window: 47 h 59 min after the user wrote, after a follow, and closed${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kefu-window-page-" });
    // The store as kefu would have left it: the user wrote 47 h 59 min ago; another 49 h ago.
    const store = new SqliteStore({ path: storePath(dir) });
    const now = Date.now();
    const wrote = Math.floor(now / 1000) - (47 * 3600 + 59 * 60);
    const old = Math.floor(now / 1000) - 49 * 3600;
    for (const [openid, time] of [["oAlmost", wrote], ["oLate", old]] as const) {
      await seedInbound(
        store,
        {
          id: `m-${openid}`,
          direction: "in",
          channel: "wx_official_account",
          contact: openid,
          agent: "W",
          company: "",
          account: APPID,
          type: "text",
          content: "在吗",
          media: "",
          sendTime: time,
          name: openid,
          avatar: "",
        },
        { agent: "W", state: "acked" },
      );
      await store.saveWindow({
        account: APPID,
        openid,
        lastMessageAt: time * 1000,
        messageUsed: 0,
        lastEventAt: -Infinity,
        eventUsed: 0,
      });
    }
    await store.close();
    const kefu = await startKefu({
      STORE: "sqlite",
      DATA_DIR: dir,
      WECHAT_APPID: APPID,
      WECHAT_APPSECRET: "not-used",
      WECHAT_API_BASE: "http://127.0.0.1:9",
    });
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=W`);
      await clickContact(page, "oAlmost");
      const line = await page.waitForExpression<string>(
        "the window line",
        `document.querySelector('[data-testid="reply-window"]:not([hidden])')?.textContent`,
      );
      // 47 h 59 min ago: about a minute left (rounded down), 5 replies.
      assert.match(line, /^还可回复 5 条 · 剩余 (0|1)分$|^还可回复 5 条 · 剩余 \d+秒$/);
      assert.equal(await page.evaluate(`document.querySelector("#reply-text").disabled`), false);

      // 49 h ago: closed, the reply box says why before WeChat would refuse.
      await clickContact(page, "oLate");
      await page.waitForExpression(
        "the closed window",
        `document.querySelector('[data-testid="reply-window"]').dataset.state === "closed"`,
      );
      // Why, once: above the reply box; the header says only that the window is closed, the box that it cannot
      // be used.
      assert.equal(await textOf(page, '[data-testid="reply-window"]'), "回复窗口已关闭");
      assert.equal(await page.evaluate(`document.querySelector("#reply-text").disabled`), true);
      assert.equal(await textOf(page, '[data-testid="reply-refusal"]'), "用户超过48小时未发消息，微信不允许回复");
      assert.equal(await page.evaluate(`document.querySelector("#reply-text").placeholder`), "暂时无法回复");
      await Deno.writeFile("/tmp/kefu-window-closed.png", await page.screenshot());

      // A follow opens the 1-minute window: 3 replies.
      await wechat(kefu.http, "oFollow", "event", "<Event><![CDATA[subscribe]]></Event>");
      await clickContact(page, "oFollow");
      const follow = await page.waitForExpression<string>(
        "the 1-minute window",
        `(() => { const l = document.querySelector('[data-testid="reply-window"]');
          return !l.hidden && l.dataset.state === "open" && l.textContent; })()`,
      );
      assert.match(follow, /^关注\/菜单\/扫码后：还可回复 3 条 · 剩余 (59|60|5\d)秒$/);
      assert.equal(await page.evaluate(`document.querySelector("#reply-text").disabled`), false);

      // A user who writes: 48 hours, live.
      await wechat(kefu.http, "oLate", "text", "<Content><![CDATA[我又来了]]></Content><MsgId>9301</MsgId>");
      await clickContact(page, "oLate");
      const reopened = await page.waitForExpression<string>(
        "oLate's window open again",
        `(() => { const l = document.querySelector('[data-testid="reply-window"]');
          return l.dataset.state === "open" && l.textContent; })()`,
      );
      assert.match(reopened, /^还可回复 5 条 · 剩余 4[78]小时\d+分$/);
      assert.equal(await page.evaluate(`document.querySelector("#reply-text").disabled`), false);
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// Keep `delay` and `waitFor` available to the tests above as they grow.
void delay;
void waitFor;
