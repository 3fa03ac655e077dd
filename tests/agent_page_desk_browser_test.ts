/**
 * The agent's desk, in a real headless Chromium against a real kefu: unsent replies that survive a reload, each in
 * its own conversation; the tone, the desktop notification and the title count when the tab is hidden (and not when
 * it is seen); the searched text marked in the results (built from nodes, a user's markup stays text); the four
 * filter buttons on one line in both languages at 1200 and 1280 px. Ignored (not passed) when /usr/bin/chromium is
 * missing.
 */

import assert from "node:assert/strict";
import { CONTACTS_PATH } from "../src/envelope/protocol.ts";
import { Browser, CHROMIUM_PATH, hasChromium, waitFor } from "./browser/cdp.ts";
import {
  click,
  clickContact,
  connected,
  inConversation,
  openAgent,
  openConversation,
  pushText,
  startKefu,
  textOf,
  typeInto,
  uncaught,
} from "./browser/page_helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;

Deno.test({
  name: `browser: each unsent reply comes back after a reload, in its own conversation; sending forgets it${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu();
    const browser = await Browser.launch();
    try {
      const url = `${kefu.http}/?userid=D`;
      const page = await openAgent(browser, url);
      await pushText(kefu.http, { to: "D", from: "u_a", content: "我要开发票", id: "9601" });
      await pushText(kefu.http, { to: "D", from: "u_b", content: "怎么退货", id: "9602" });
      await openConversation(page, "u_a", "9601");
      await typeInto(page, "#reply-text", "请提供公司抬头和税号");
      await clickContact(page, "u_b");
      await typeInto(page, "#reply-text", "退货请在订单页申请");
      // The other conversation's draft shows in the list, as WeChat does.
      assert.equal(
        await textOf(page, '#contacts [data-contact-id="u_a"] [data-testid="draft"]'),
        "[草稿]请提供公司抬头和税号",
      );

      await page.goto(url);
      await connected(page);
      // u_b was open: it opens again with its draft; u_a has its own.
      await inConversation(page, "u_b", "9602");
      assert.equal(await page.evaluate(`document.querySelector("#reply-text").value`), "退货请在订单页申请");
      await page.waitForExpression(
        "u_a's draft in the list",
        `document.querySelector('#contacts [data-contact-id="u_a"] [data-testid="draft"]')?.textContent ===
          "[草稿]请提供公司抬头和税号"`,
      );
      await clickContact(page, "u_a");
      await inConversation(page, "u_a", "9601");
      assert.equal(await page.evaluate(`document.querySelector("#reply-text").value`), "请提供公司抬头和税号");

      // Sent: gone, after a reload too; the other draft stays.
      await click(page, "#reply-send");
      await page.waitForExpression("the reply sent", `document.querySelector("#reply-text").value === ""`);
      // (A pushed user has no way back: kefu keeps the reply and says so; the draft is gone all the same.)
      await page.waitForExpression(
        "the reply answered",
        `!!document.querySelector('#conversation .msg.out[data-status]:not([data-status="pending"])')`,
      );
      await page.goto(url);
      await connected(page);
      await inConversation(page, "u_a", "9601");
      assert.equal(await page.evaluate(`document.querySelector("#reply-text").value`), "");
      await clickContact(page, "u_b");
      await inConversation(page, "u_b", "9602");
      assert.equal(await page.evaluate(`document.querySelector("#reply-text").value`), "退货请在订单页申请");
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});

// Before the page's own scripts: Notification granted and recorded, an AudioContext that records its tones, and a
// tab whose visibility the test sets (document.hidden / visibilityState, with the visibilitychange event).
const ATTENTION_STUBS = `(() => {
  globalThis.shown = [];
  globalThis.tones = 0;
  class FakeNotification {
    static permission = "granted";
    static requestPermission() { return Promise.resolve("granted"); }
    constructor(title, options = {}) {
      shown.push({ title, body: options.body ?? "", tag: options.tag ?? "" });
    }
    close() {}
  }
  globalThis.Notification = FakeNotification;
  const param = () => ({ setValueAtTime() {}, exponentialRampToValueAtTime() {} });
  class FakeAudioContext {
    state = "running";
    currentTime = 0;
    destination = {};
    resume() { return Promise.resolve(); }
    createOscillator() {
      return { type: "", frequency: param(), connect: (n) => n, start() { tones++; }, stop() {} };
    }
    createGain() {
      return { gain: param(), connect: (n) => n };
    }
  }
  globalThis.AudioContext = FakeAudioContext;
  let hidden = false;
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true,
    get: () => (hidden ? "hidden" : "visible"),
  });
  globalThis.setHidden = (h) => {
    hidden = h;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})()`;

Deno.test({
  name: `browser: a tone and a notification for a new conversation, and for a message while the tab is hidden${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu();
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=N`, { beforeLoad: ATTENTION_STUBS });
      // A click anywhere is the gesture that lets the page play a tone.
      await page.evaluate(`document.dispatchEvent(new PointerEvent("pointerdown"))`);
      const seen = () =>
        page.evaluate<{ shown: { title: string; body: string; tag: string }[]; tones: number }>(
          `({ shown, tones })`,
        );

      // A new conversation, tab in view: one tone, one notification naming the user and the text.
      await pushText(kefu.http, { to: "N", from: "u_new", content: "你好，在吗", id: "9701" });
      await openConversation(page, "u_new", "9701");
      assert.deepEqual(await seen(), { shown: [{ title: "u_new", body: "你好，在吗", tag: "kefu-u_new" }], tones: 1 });
      // The same conversation again, in view: nothing.
      await pushText(kefu.http, { to: "N", from: "u_new", content: "我的订单", id: "9702" });
      await inConversation(page, "u_new", "9702");
      assert.deepEqual((await seen()).shown.length, 1);
      assert.equal((await seen()).tones, 1);
      assert.equal(await page.evaluate(`document.title`), "kefu 客服");

      // The agent goes to another tab: the open conversation's message alerts, and counts in the title.
      await page.evaluate(`setHidden(true)`);
      await pushText(kefu.http, { to: "N", from: "u_new", content: "订单号 20240611883", id: "9703" });
      await inConversation(page, "u_new", "9703");
      assert.deepEqual((await seen()).shown.at(-1), { title: "u_new", body: "订单号 20240611883", tag: "kefu-u_new" });
      assert.equal((await seen()).tones, 2);
      assert.equal(await page.evaluate(`document.title`), "(1) kefu 客服");
      // Another user, still hidden: a second notification, two in the title.
      await pushText(kefu.http, { to: "N", from: "u_other", content: "发票怎么开", id: "9704" });
      await page.waitForExpression(
        "u_other listed",
        `!!document.querySelector('#contacts [data-contact-id="u_other"]')`,
      );
      assert.deepEqual((await seen()).shown.at(-1), { title: "u_other", body: "发票怎么开", tag: "kefu-u_other" });
      assert.equal((await seen()).tones, 3);
      assert.equal(await page.evaluate(`document.title`), "(2) kefu 客服");

      // Back on the tab: what was on screen is seen; u_other is still unread.
      await page.evaluate(`setHidden(false)`);
      assert.equal(await page.evaluate(`document.title`), "(1) kefu 客服");
      await pushText(kefu.http, { to: "N", from: "u_other", content: "在线等", id: "9705" });
      await page.waitForExpression("two unread", `document.title === "(2) kefu 客服"`);
      assert.equal((await seen()).shown.length, 3);
      assert.equal((await seen()).tones, 3);

      // Alerts off with the bell: nothing, hidden or not.
      await click(page, "#bell");
      await page.evaluate(`setHidden(true)`);
      await pushText(kefu.http, { to: "N", from: "u_other", content: "还在吗", id: "9706" });
      await page.waitForExpression("three unread", `document.title === "(3) kefu 客服"`);
      assert.equal((await seen()).shown.length, 3);
      assert.equal((await seen()).tones, 3);
      await click(page, "#bell");
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});

Deno.test({
  name: `browser: the searched text is marked in the results, any case, and a user's markup stays text${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu();
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=S`);
      const long = "您好，我上周五在官方旗舰店下单买了一台空气炸锅，到现在物流还没有更新，单号是 sf1234567，麻烦查一下";
      await pushText(kefu.http, { to: "S", from: "u_sf", content: "快递单号 SF1234567 查不到", id: "9801" });
      await pushText(kefu.http, { to: "S", from: "u_long", content: long, id: "9802" });
      await pushText(kefu.http, { to: "S", from: "u_html", content: "<b>Sf1234567</b><img src=x>", id: "9803" });
      await page.waitForExpression("three contacts", `document.querySelectorAll("#contacts .contact").length === 3`);
      await typeInto(page, "#search", "sf1234567");
      await page.waitForExpression(
        "three message hits",
        `document.querySelectorAll('#search-results [data-testid="search-message"]').length === 3`,
      );
      const hits = await page.evaluate<Record<string, { text: string; marks: string[]; tags: string[] }>>(
        `Object.fromEntries([...document.querySelectorAll('#search-results [data-testid="search-message"]')].map((b) => {
          const line = b.querySelector(".hit-text");
          return [b.dataset.id, {
            text: line.textContent,
            marks: [...line.querySelectorAll("mark")].map((m) => m.textContent),
            tags: [...line.querySelectorAll("*")].map((n) => n.tagName),
          }];
        }))`,
      );
      assert.deepEqual(hits["9801"], { text: "快递单号 SF1234567 查不到", marks: ["SF1234567"], tags: ["MARK"] });
      // A match deep in a long line: the line starts shortly before it, so the mark is not under the ellipsis.
      assert.equal(hits["9802"].marks.join(), "sf1234567");
      assert.ok(hits["9802"].text.startsWith("…"), hits["9802"].text);
      assert.ok(long.endsWith(hits["9802"].text.slice(1)), hits["9802"].text);
      const visible = await page.evaluate<boolean>(`(() => {
        const line = document.querySelector('#search-results [data-id="9802"] .hit-text');
        const mark = line.querySelector("mark").getBoundingClientRect();
        return mark.right <= line.getBoundingClientRect().right;
      })()`);
      assert.equal(visible, true);
      // The user's markup is text: one <mark>, no <b>, no <img>.
      assert.deepEqual(hits["9803"], {
        text: "<b>Sf1234567</b><img src=x>",
        marks: ["Sf1234567"],
        tags: ["MARK"],
      });
      await Deno.writeFile("/tmp/kefu-search-marks.png", await page.screenshot());
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});

Deno.test({
  name: `browser: the four filter buttons fit on one line, in Chinese and English, at 1200 and 1280 px${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu();
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=F`, { width: 1200 });
      // Two-digit counts everywhere: 22 users, all unread (none opens by itself), 11 of them resolved, the others waiting.
      for (let i = 0; i < 22; i++) {
        await pushText(kefu.http, { to: "F", from: `u_${i}`, content: `第 ${i} 位`, id: String(9900 + i) });
      }
      await page.waitForExpression("22 contacts", `document.querySelectorAll("#contacts .contact").length === 22`);
      for (let i = 11; i < 22; i++) {
        const res = await fetch(`${kefu.http}${CONTACTS_PATH}/u_${i}/resolve?userid=F`, { method: "POST" });
        assert.ok(res.ok, await res.text());
      }
      const counts = `[...document.querySelectorAll("#filters .count")].map((c) => c.textContent).join()`;
      let last = "";
      await waitFor(() => `11 resolved (counts ${last})`, async () => {
        last = await page.evaluate<string>(counts);
        return last === "22,11,11";
      });
      const layout = () =>
        page.evaluate<{ labels: string[]; tops: number[]; heights: number[]; overflow: boolean[]; right: boolean }>(
          `(() => {
            const buttons = [...document.querySelectorAll("#filters [data-filter]")];
            const box = document.querySelector("#filters").getBoundingClientRect();
            return {
              labels: buttons.map((b) => b.textContent.replace(/\\s+/g, " ").trim()),
              tops: buttons.map((b) => Math.round(b.getBoundingClientRect().top)),
              heights: buttons.map((b) => Math.round(b.getBoundingClientRect().height)),
              overflow: buttons.map((b) => b.scrollWidth > b.clientWidth),
              right: buttons.every((b) => b.getBoundingClientRect().right <= box.right + 0.5),
            };
          })()`,
        );
      for (const width of [1200, 1280]) {
        await page.send("Emulation.setDeviceMetricsOverride", {
          width,
          height: 800,
          deviceScaleFactor: 1,
          mobile: false,
        });
        for (const lang of ["zh", "en"]) {
          await page.evaluate(`kefu.setLang(${JSON.stringify(lang)})`);
          // The page writes the DOM in a batch at the end of the task: measure after the next frame.
          await page.evaluate(`new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))`);
          const l = await layout();
          const what = `${lang} at ${width} px: ${JSON.stringify(l)}`;
          assert.equal(new Set(l.tops).size, 1, what);
          // One line of 12 px text with its padding, not two.
          assert.ok(Math.max(...l.heights) < 28, what);
          assert.deepEqual(l.overflow, [false, false, false, false], what);
          assert.ok(l.right, what);
          if (lang === "en") assert.deepEqual(l.labels, ["All", "Unread 22", "Waiting 11", "Resolved 11"], what);
          else assert.deepEqual(l.labels, ["全部", "未读 22", "待回复 11", "已解决 11"], what);
          await Deno.writeFile(`/tmp/kefu-filters-${lang}-${width}.png`, await page.screenshot());
        }
      }
      // The widest the counts get ("99+" past 99), in English at 1200 px, a scrollbar beside the list.
      await page.send("Emulation.setDeviceMetricsOverride", {
        width: 1200,
        height: 800,
        deviceScaleFactor: 1,
        mobile: false,
      });
      await page.evaluate(`kefu.setLang("en")`);
      await page.evaluate(`for (const c of document.querySelectorAll("#filters .count")) c.textContent = "99+"`);
      await page.evaluate(`new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))`);
      const widest = await layout();
      assert.deepEqual(widest.overflow, [false, false, false, false], JSON.stringify(widest));
      assert.equal(new Set(widest.tops).size, 1, JSON.stringify(widest));
      await page.evaluate(`kefu.setLang("zh")`);
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});
