/**
 * One language at a time (issue 20, finding 6), in a real headless Chromium: each main view of the agent page —
 * the contact list with a conversation (a user's follow, a failed reply), the transfer dialog, the queue, search,
 * the details and a closed reply window — rendered in Chinese and in English shows no text of the other language.
 * English mode: no CJK character anywhere (the users write English there). Chinese mode: no English word outside
 * what users wrote, ids, and a few names kept as they are (kefu, EN, ID/OpenID, key names, an env variable). Also:
 * a nameless Official Account user is a short stable label (用户·a1b2 / User·a1b2) with the openid in the details,
 * and the last bubble is not hidden under the closed-window bar. Ignored (not passed) when /usr/bin/chromium is
 * missing.
 */

import assert from "node:assert/strict";
import { seedInbound } from "./store/seed.ts";
import { SqliteStore, storePath } from "../src/store/sqlite_store.ts";
import { Browser, CHROMIUM_PATH, hasChromium, type Page } from "./browser/cdp.ts";
import {
  click,
  clickContact,
  inConversation,
  nowSeconds,
  openAgent,
  startKefu,
  typeInto,
  uncaught,
  wechat,
} from "./browser/page_helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const CONTACTS_PATH = "/im_component/wx_official_account/contacts";
// An Official Account whose API (for replies) does not answer: replies fail, and the reply window is counted.
const APPID = "wxlanguage00001";

/** Where the last message of the conversation ends, and where the conversation's box does. */
const FIT = `(() => {
  const box = document.querySelector("#conversation").getBoundingClientRect();
  const last = [...document.querySelectorAll("#conversation .msg")].at(-1).getBoundingClientRect();
  return { last: Math.round(last.bottom), box: Math.round(box.bottom) };
})()`;

// Names the Chinese page keeps as they are: the product, the language switch, ids and the keys of the keyboard.
const ALLOWED_IN_ZH = new Set(["kefu", "EN", "ID", "OpenID", "Enter", "Shift", "AGENT_SECRET"]);

/** What users write in each pass: Chinese in the Chinese pass, English (no CJK) in the English one. */
const WORDS = {
  zh: {
    hello: "你好，我想查订单",
    reply: "请稍等，我查一下",
    old: "三天前的问题",
    note: "请同事跟进退款",
    query: "订单",
  },
  en: {
    hello: "Hello, where is my order",
    reply: "One moment please",
    old: "An old question",
    note: "Refund please",
    query: "order",
  },
};

/**
 * Every piece of text the agent can see: visible text nodes (tooltips aside: the server's detail may be there) and
 * the placeholders of visible fields, with the element each is in.
 */
const VISIBLE_TEXT = `(() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const s = n.textContent.trim();
    const el = n.parentElement;
    if (s === "" || !el || el.closest("script, style")) continue;
    if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue;
    out.push({ text: s, where: (el.id ? "#" + el.id : el.className || el.tagName) });
  }
  for (const f of document.querySelectorAll("input[placeholder], textarea[placeholder]")) {
    if (f.placeholder && f.checkVisibility()) out.push({ text: f.placeholder, where: "placeholder of #" + f.id });
  }
  return out;
})()`;

/** The text of the other language on the page, with where it is ([] when there is none). */
async function otherLanguage(page: Page, lang: "zh" | "en", ids: string[]): Promise<string[]> {
  const seen = await page.evaluate<{ text: string; where: string }[]>(VISIBLE_TEXT);
  const found: string[] = [];
  for (const { text, where } of seen) {
    if (lang === "en") {
      // The language switch names the other language in that language ("中文"): the one allowed exception.
      if (where === "#lang") continue;
      if (/\p{Script=Han}/u.test(text)) found.push(`${where}: ${text}`);
      continue;
    }
    let rest = text;
    for (const id of ids) rest = rest.replaceAll(id, " ");
    // A nameless user's label: its tag is hex digits of the openid's hash, an id too.
    rest = rest.replace(/·[0-9a-f]{4}/g, " ");
    const words = (rest.match(/[A-Za-z_]{2,}/g) ?? []).filter((w) => !ALLOWED_IN_ZH.has(w));
    if (words.length > 0) found.push(`${where}: ${text} (${words.join(", ")})`);
  }
  return found;
}

for (const lang of ["zh", "en"] as const) {
  Deno.test({
    name: `browser: every main view in ${
      lang === "zh" ? "Chinese" : "English"
    } shows no text of the other language${NEEDS}`,
    ignore: !CHROMIUM,
    async fn() {
      const w = WORDS[lang];
      const now = nowSeconds();
      const dir = await Deno.makeTempDir({ prefix: "kefu-language-page-" });
      // Seeded: a user who wrote three days ago (the window closed), and one who wrote an hour ago.
      await seedConversation(dir, "oUserOld", w.old, now - 3 * 86400, 5200);
      await seedConversation(dir, "oUserClosing", w.old, now - 3600, 5300);
      const kefu = await startKefu({
        STORE: "sqlite",
        DATA_DIR: dir,
        WECHAT_APPID: APPID,
        WECHAT_APPSECRET: "not-used",
        WECHAT_API_BASE: "http://127.0.0.1:9",
      });
      const browser = await Browser.launch();
      try {
        const page = await openAgent(browser, `${kefu.http}/?userid=V`);
        await page.evaluate(`kefu.setLang(${JSON.stringify(lang)})`);
        // The window closes while the agent is at the end of a conversation (another tab of the agent spent its
        // last reply: kefu's 106 event says so): the bar appears below it, and the conversation stays at its end (it
        // used to keep its scroll, the last bubble half under the bar).
        await clickContact(page, "oUserClosing");
        await inConversation(page, "oUserClosing", "5324");
        await page.waitForExpression(
          "the window line",
          `document.querySelector('[data-testid="reply-window"]').dataset.state === "open"`,
        );
        const listed = await (await fetch(`${kefu.http}${CONTACTS_PATH}?userid=V`)).json();
        const view = listed.data.contacts.find((c: { contact_id: string }) => c.contact_id === "oUserClosing");
        view.reply_window.message_left = 0;
        await page.evaluate(`handleFrame(${
          JSON.stringify(JSON.stringify({
            data: { action: "updated", by: "V", contact: view },
            result: { code: 106, message: "contact" },
          }))
        })`);
        await page.waitForExpression("the window closed", `!document.querySelector("#reply-refusal").hidden`);
        await page.evaluate(`new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))`);
        const closing = await page.evaluate<{ last: number; box: number }>(FIT);
        assert.ok(closing.last <= closing.box, `the last bubble ends at ${closing.last}, the box at ${closing.box}`);
        // Users of the Official Account, none with a WeChat name: one writes now, one follows, one wrote three days
        // ago (seeded: its window closed, enough to scroll), one waits in the queue.
        await wechat(kefu.http, "oUserAlpha", "text", `<Content><![CDATA[${w.hello}]]></Content><MsgId>5101</MsgId>`);
        await wechat(kefu.http, "oUserFollow", "event", "<Event><![CDATA[subscribe]]></Event>");
        await wechat(kefu.http, "oUserQueue", "text", `<Content><![CDATA[${w.hello}]]></Content><MsgId>5301</MsgId>`);
        const ids = ["oUserAlpha", "oUserFollow", "oUserOld", "oUserClosing", "oUserQueue", "V", APPID];
        for (const id of ids.slice(0, 4)) {
          await page.waitForExpression(
            `${id} listed`,
            `!!document.querySelector('#contacts [data-contact-id="${id}"]')`,
          );
        }
        // One goes back to the queue with a note: the queue shows, with why.
        const released = await fetch(`${kefu.http}${CONTACTS_PATH}/oUserQueue/release?userid=V`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ note: w.note }),
        });
        assert.equal(released.status, 200, await released.text());
        await page.waitForExpression("the queue", `!document.querySelector('[data-testid="queue-section"]').hidden`);

        // A nameless Official Account user: a short stable label, the openid in the details.
        // (The envelope does not name the channel: the row is labelled once the contact list has said it.)
        const label = await page.waitForExpression<string>(
          "oUserAlpha's label",
          `(() => {
            const name = document.querySelector('#contacts [data-contact-id="oUserAlpha"] .contact-name').textContent;
            return name !== "oUserAlpha" && name;
          })()`,
        );
        assert.match(label, lang === "zh" ? /^用户·[0-9a-f]{4}$/ : /^User·[0-9a-f]{4}$/);

        // The conversation with a follow line and a failed reply (the account's API does not answer).
        await clickContact(page, "oUserFollow");
        const follow = await page.waitForExpression<string>(
          "the follow line",
          `document.querySelector('#conversation[data-contact-id="oUserFollow"] [data-testid="event"] .msg-text')
            ?.textContent`,
        );
        assert.match(
          follow,
          lang === "zh" ? /^用户·[0-9a-f]{4} 关注了公众号$/ : /^User·[0-9a-f]{4} followed the account$/,
        );
        await clickContact(page, "oUserAlpha");
        await inConversation(page, "oUserAlpha", "5101");
        await typeInto(page, "#reply-text", w.reply);
        await click(page, "#reply-send");
        await page.waitForExpression(
          "the failed reply",
          `!!document.querySelector('#conversation [data-status="failed"]')`,
        );
        assert.deepEqual(await otherLanguage(page, lang, ids), [], "the list and a conversation");

        // Details.
        await click(page, "#open-details");
        assert.equal(await page.evaluate(`document.querySelector("#details-id").textContent`), "oUserAlpha");
        assert.deepEqual(await otherLanguage(page, lang, ids), [], "the details");
        await click(page, "#details-close");

        // The transfer dialog, its agents loaded.
        await click(page, "#open-transfer");
        await page.waitForExpression(
          "the agents",
          `!document.querySelector("#transfer-agents").disabled ||
          document.querySelector("#transfer-agents").textContent !== ${
            JSON.stringify(lang === "zh" ? "正在加载客服列表…" : "Loading agents…")
          }`,
        );
        assert.deepEqual(await otherLanguage(page, lang, ids), [], "the transfer dialog");
        await click(page, "#transfer-cancel");

        // Search.
        await typeInto(page, "#search", w.query);
        await page.waitForExpression("the results", `!document.querySelector("#search-results").hidden`);
        assert.deepEqual(await otherLanguage(page, lang, ids), [], "search");
        await page.evaluate(`(() => {
          const box = document.querySelector("#search");
          box.value = "";
          box.dispatchEvent(new Event("input"));
        })()`);

        // A closed reply window: said once, above the box, and the last bubble is not under it.
        await clickContact(page, "oUserOld");
        await inConversation(page, "oUserOld", "5224");
        await page.waitForExpression("the closed window", `!document.querySelector("#reply-refusal").hidden`);
        await page.evaluate(`new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))`);
        assert.deepEqual(await otherLanguage(page, lang, ids), [], "a closed window");
        const fit = await page.evaluate<{ last: number; box: number }>(FIT);
        assert.ok(fit.last <= fit.box, `the last bubble ends at ${fit.last}, the conversation at ${fit.box}`);

        await Deno.writeFile(`/tmp/kefu-language-${lang}.png`, await page.screenshot());
        assert.deepEqual(uncaught(page), []);
        await page.close();
      } finally {
        await browser.close();
        await kefu.svc.shutdown();
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/**
 * The store as kefu would have left it: `openid` of the account wrote 25 messages, the last at `last` (epoch
 * seconds; ids from `firstId`), all read by agent V; WeChat's 48-hour window runs from that last one.
 */
async function seedConversation(dir: string, openid: string, text: string, last: number, firstId: number) {
  const store = new SqliteStore({ path: storePath(dir) });
  const base = { direction: "in", channel: "wx_official_account", contact: openid, agent: "V", company: "" } as const;
  for (let i = 0; i < 25; i++) {
    const at = last - 24 + i;
    const m = { ...base, id: String(firstId + i), account: APPID, type: "text", content: `${text} ${i + 1}` };
    await seedInbound(store, { ...m, media: "", sendTime: at, name: openid, avatar: "" }, {
      agent: "V",
      state: "acked",
    });
  }
  const window = { account: APPID, openid, lastMessageAt: last * 1000, messageUsed: 0, lastEventAt: -Infinity };
  await store.saveWindow({ ...window, eventUsed: 0 });
  await store.close();
}
