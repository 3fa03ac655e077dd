/**
 * The waiting queue on the agent page, in a real headless Chromium against a real kefu: an agent puts a user back
 * in the queue with a note (退回队列); the user leaves that agent's list and shows, live, in every agent's
 * 等待接入 list (and in a page opened later, from GET …/queue); another agent takes them (接入) and gets the
 * conversation with its history and the system lines; a take that comes too late says so plainly and the user leaves
 * the list. Ignored (not passed) when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { Browser, CHROMIUM_PATH, hasChromium, type Page } from "./browser/cdp.ts";
import {
  click,
  clickContact,
  idsIn,
  openAgent,
  pushText,
  startKefu,
  textOf,
  uncaught,
} from "./browser/page_helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;

function queueOf(page: Page): Promise<{ hidden: boolean; count: string; ids: string[] }> {
  return page.evaluate(`({
    hidden: document.querySelector("#queue-section").hidden,
    count: document.querySelector("#queue-count").textContent,
    ids: [...document.querySelectorAll("#queue [data-contact-id]")].map((li) => li.dataset.contactId),
  })`);
}

function waitQueue(page: Page, what: string, ids: string[]) {
  return page.waitForExpression(
    what,
    `JSON.stringify([...document.querySelectorAll("#queue [data-contact-id]")].map((li) => li.dataset.contactId))
      === ${JSON.stringify(JSON.stringify(ids))}`,
  );
}

Deno.test({
  name: `browser: back to the queue with a note, seen live by every agent, taken by one; a late take is told${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu();
    const browser = await Browser.launch();
    try {
      const a = await openAgent(browser, `${kefu.http}/?userid=A`);
      const b = await openAgent(browser, `${kefu.http}/?userid=B`);
      await pushText(kefu.http, { to: "A", from: "u_wait", content: "发票抬头开错了", id: "9501" });
      await pushText(kefu.http, { to: "A", from: "u_stay", content: "在吗", id: "9502" });
      await a.waitForExpression(
        "both users in A's list",
        `document.querySelectorAll("#contacts .contact").length === 2`,
      );
      await clickContact(a, "u_wait");
      // Nobody waits yet: the section is not shown.
      assert.deepEqual(await queueOf(a), { hidden: true, count: "0", ids: [] });
      assert.deepEqual(await queueOf(b), { hidden: true, count: "0", ids: [] });

      // A puts u_wait back with a note for whoever takes it.
      assert.equal(await textOf(a, "#open-release"), "退回队列");
      await click(a, "#open-release");
      assert.equal(await a.evaluate(`document.querySelector("#release-dialog").open`), true);
      assert.equal(await textOf(a, '#release-dialog label[for="release-note"]'), "备注（可选，接手的客服可见）");
      await a.evaluate(`document.querySelector("#release-note").value = "发票问题，需要财务同事处理"`);
      await click(a, "#release-ok");
      await a.waitForExpression(
        "u_wait gone from A's contacts",
        `!document.querySelector('#contacts [data-contact-id="u_wait"]')`,
      );
      // The live event may take the contact off the list before the HTTP answer closes the dialog.
      await a.waitForExpression("the release dialog closed", `!document.querySelector("#release-dialog").open`);
      assert.equal(await a.evaluate(`document.querySelector("#conversation").dataset.contactId`), "");
      assert.deepEqual(await idsIn(a, "#contacts"), ["u_stay"]);
      // Both pages list it as waiting, with the count and a take button.
      for (const [page, who] of [[a, "A"], [b, "B"]] as const) {
        await waitQueue(page, `u_wait in ${who}'s queue`, ["u_wait"]);
        assert.deepEqual(await queueOf(page), { hidden: false, count: "1", ids: ["u_wait"] });
        assert.equal(await textOf(page, '#queue [data-contact-id="u_wait"] [data-testid="take"]'), "接入");
        // Why it waits, in the page's words: who put it back, and the note.
        assert.equal(
          await textOf(page, '#queue [data-contact-id="u_wait"] .queue-why'),
          who === "A"
            ? "你将会话退回了等待队列：发票问题，需要财务同事处理"
            : "客服 A 将会话退回了等待队列：发票问题，需要财务同事处理",
        );
        // And what the user last wrote (not the workflow line), with its time.
        assert.equal(await textOf(page, '#queue [data-contact-id="u_wait"] .queue-last'), "发票抬头开错了 · 刚刚");
      }
      // The waiting user writes again: still waiting, the line says what they wrote, in every list.
      await pushText(kefu.http, { to: "", from: "u_wait", content: "还有人吗？", id: "9503" });
      for (const [page, who] of [[a, "A"], [b, "B"]] as const) {
        await page.waitForExpression(
          `the new message in ${who}'s queue`,
          `/^还有人吗？ · /.test(document.querySelector('#queue [data-contact-id="u_wait"] .queue-last')?.textContent)`,
        );
        assert.deepEqual((await queueOf(page)).ids, ["u_wait"]);
      }
      assert.deepEqual(await idsIn(a, "#contacts"), ["u_stay"]);
      assert.deepEqual(await idsIn(b, "#contacts"), []);
      // A page opened now finds it waiting (GET …/queue at connect).
      const c = await openAgent(browser, `${kefu.http}/?userid=C`);
      await waitQueue(c, "u_wait in C's queue from GET /queue", ["u_wait"]);
      assert.match(
        await textOf(c, '#queue [data-contact-id="u_wait"] .queue-last'),
        /^还有人吗？ · /,
      );
      // Why it waits comes with GET …/queue too (last_event).
      assert.equal(
        await textOf(c, '#queue [data-contact-id="u_wait"] .queue-why'),
        "客服 A 将会话退回了等待队列：发票问题，需要财务同事处理",
      );

      // A's page stops hearing its socket for a while, and its reads of the queue go unanswered (the page reads the queue
      // again after a burst of events): its take will come after B's, before anything tells it so.
      await a.evaluate(`(() => {
        const ws = kefu.state.socket;
        globalThis.held = { ws, frames: [], handler: ws.onmessage, fetch: globalThis.fetch };
        ws.onmessage = (e) => held.frames.push(e);
        globalThis.fetch = (url, init) =>
          String(url).includes("/queue") ? new Promise(() => {}) : held.fetch.call(globalThis, url, init);
      })()`);

      // B takes it: B's contact now, with the history, the release line and its note, and the take line.
      await click(b, '#queue [data-contact-id="u_wait"] [data-testid="take"]');
      await b.waitForExpression(
        "u_wait in B's contacts",
        `!!document.querySelector('#contacts [data-contact-id="u_wait"]')`,
      );
      await b.waitForExpression(
        "the conversation open with its history",
        `!!document.querySelector('#conversation[data-contact-id="u_wait"] [data-id="9501"]')`,
      );
      const lines = await b.waitForExpression<string[]>(
        "the release and take lines",
        `(() => {
          const l = [...document.querySelectorAll('#conversation [data-testid="system-line"] .msg-text')]
            .map((n) => n.textContent);
          return l.length >= 2 && l;
        })()`,
      );
      assert.deepEqual(lines, ["客服 A 将会话退回了等待队列：发票问题，需要财务同事处理", "你接入了会话"]);
      await b.waitForExpression(
        "what the user wrote while waiting",
        `!!document.querySelector('#conversation[data-contact-id="u_wait"] [data-id="9503"]')`,
      );
      assert.equal(await b.evaluate(`document.querySelector("#reply-text").disabled`), false);
      await waitQueue(b, "B's queue empty", []);
      assert.equal((await queueOf(b)).hidden, true);
      await waitQueue(c, "C's queue empty", []);

      // A clicks Take on what its page still shows: kefu says 409, the page says so plainly and drops the user.
      assert.deepEqual((await queueOf(a)).ids, ["u_wait"]);
      await click(a, '#queue [data-contact-id="u_wait"] [data-testid="take"]');
      const toast = await a.waitForExpression<string>(
        "the toast",
        `[...document.querySelectorAll('[data-testid="toast"]')].map((t) => t.textContent).find((t) => t.includes("接入"))`,
      );
      assert.equal(toast, "u_wait 已被其他客服接入");
      await waitQueue(a, "A's queue empty", []);
      assert.equal((await queueOf(a)).hidden, true);
      // The held frames arrive: nothing comes back, nothing breaks.
      await a.evaluate(`(() => {
        globalThis.fetch = held.fetch;
        held.ws.onmessage = held.handler;
        for (const e of held.frames) held.handler(e);
      })()`);
      assert.deepEqual(await queueOf(a), { hidden: true, count: "0", ids: [] });
      assert.deepEqual(await idsIn(a, "#contacts"), ["u_stay"]);

      // In English: the button and the list's title.
      await click(b, "#lang");
      assert.equal(await textOf(b, "#open-release"), "Back to queue");
      assert.equal(await textOf(b, '#queue-section [data-i18n="queue.title"]'), "Waiting for an agent");
      await click(b, "#lang");
      for (const p of [a, b, c]) assert.deepEqual(uncaught(p), []);
      await c.close();
      await b.close();
      await a.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});
