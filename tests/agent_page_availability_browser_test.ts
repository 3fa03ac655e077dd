/**
 * Availability, capacity and the queue on the agent page (issue 22), in a real headless Chromium against a real
 * kefu with AGENT_CAPACITY=1: two agents each take one user, the next two wait in 等待接入 with their places and
 * waiting times; an agent sets 忙碌 (colleagues see it) and gets nobody when its slot frees; a resolve frees a slot
 * and the longest-waiting user goes to the agent who is 在线; back to 在线, the last one comes. Ignored (not passed)
 * when /usr/bin/chromium is missing.
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

function waitQueue(page: Page, what: string, ids: string[]) {
  return page.waitForExpression(
    what,
    `JSON.stringify([...document.querySelectorAll("#queue [data-contact-id]")].map((li) => li.dataset.contactId))
      === ${JSON.stringify(JSON.stringify(ids))}`,
  );
}

function places(page: Page): Promise<string[][]> {
  return page.evaluate(`[...document.querySelectorAll("#queue [data-contact-id]")].map((li) => [
    li.dataset.contactId,
    li.querySelector('[data-testid="queue-position"]')?.textContent ?? "",
    li.querySelector('[data-testid="queue-wait"]')?.textContent ?? "",
  ])`);
}

function waitText(page: Page, selector: string, value: string) {
  return page.waitForExpression(
    `${selector} says ${value}`,
    `document.querySelector(${JSON.stringify(selector)})?.textContent === ${JSON.stringify(value)}`,
  );
}

function waitContacts(page: Page, what: string, ids: string[]) {
  return page.waitForExpression(
    what,
    `JSON.stringify([...document.querySelectorAll("#contacts [data-contact-id]")].map((li) => li.dataset.contactId)
      .sort()) === ${JSON.stringify(JSON.stringify([...ids].sort()))}`,
  );
}

function choose(page: Page, availability: string) {
  return page.evaluate(`(() => {
    const s = document.querySelector("#availability");
    s.value = ${JSON.stringify(availability)};
    s.dispatchEvent(new Event("change"));
  })()`);
}

Deno.test({
  name: `browser: capacity 1, two agents, four users: the queue moves as slots free; busy gets nobody${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu({ AGENT_CAPACITY: "1" });
    const browser = await Browser.launch();
    try {
      const a = await openAgent(browser, `${kefu.http}/?userid=A`);
      const b = await openAgent(browser, `${kefu.http}/?userid=B`);
      // The switch shows 在线 and the load against the capacity.
      for (const p of [a, b]) {
        await waitText(p, "#my-load", "接待 0/1");
        assert.equal(await p.evaluate(`document.querySelector("#availability").value`), "online");
        assert.deepEqual(
          await p.evaluate(`[...document.querySelectorAll("#availability option")].map((o) => o.textContent)`),
          ["在线", "忙碌", "离开"],
        );
      }
      // One user each; the next two wait, in arrival order.
      await pushText(kefu.http, { to: "", from: "u1", content: "第一位", id: "9701" });
      await pushText(kefu.http, { to: "", from: "u2", content: "第二位", id: "9702" });
      await a.waitForExpression("one user in A's list", `document.querySelectorAll("#contacts .contact").length === 1`);
      const mineA = await idsIn(a, "#contacts");
      await b.waitForExpression("one user in B's list", `document.querySelectorAll("#contacts .contact").length === 1`);
      const mineB = await idsIn(b, "#contacts");
      assert.deepEqual([...mineA, ...mineB].sort(), ["u1", "u2"]);
      await pushText(kefu.http, { to: "", from: "u3", content: "第三位", id: "9703" });
      await pushText(kefu.http, { to: "", from: "u4", content: "第四位", id: "9704" });
      for (const [p, who] of [[a, "A"], [b, "B"]] as const) {
        await waitQueue(p, `u3 and u4 waiting in ${who}'s queue`, ["u3", "u4"]);
        await waitText(p, "#my-load", "接待 1/1");
        const shown = await places(p);
        assert.deepEqual(shown.map((x) => x.slice(0, 2)), [["u3", "第 1 位"], ["u4", "第 2 位"]]);
        for (const [, , wait] of shown) assert.match(wait, /^已等待 \d+ 秒$/);
        assert.equal(await textOf(p, "#queue-count"), "2");
      }

      // B is busy: A sees it; B keeps its user.
      await choose(b, "busy");
      await a.waitForExpression(
        "B busy on A's page",
        `document.querySelector('#team [data-agent="B"]')?.textContent === "B · 忙碌"`,
      );
      // B's own page learns it from its PATCH's answer or its own 107, which may come after A's.
      await b.waitForExpression(
        "B busy on B's page",
        `document.querySelector("#availability").dataset.state === "busy"`,
      );
      assert.deepEqual(await idsIn(b, "#contacts"), mineB);

      // A resolves: its slot takes the longest-waiting user, u3; u4 is first now, on both pages.
      await clickContact(a, mineA[0]);
      await click(a, "#resolve");
      await waitContacts(a, "u3 in A's list", [...mineA, "u3"]);
      for (const [p, who] of [[a, "A"], [b, "B"]] as const) {
        await waitQueue(p, `only u4 in ${who}'s queue`, ["u4"]);
        await p.waitForExpression(
          `u4 first in ${who}'s queue`,
          `document.querySelector('#queue [data-contact-id="u4"] [data-testid="queue-position"]')?.textContent
            === "第 1 位"`,
        );
      }
      await waitText(a, "#my-load", "接待 1/1");
      // u3's message came with it, and the history says the queue gave u3 to A.
      await clickContact(a, "u3");
      await a.waitForExpression(
        "u3's message shown",
        `document.querySelector("#conversation").textContent.includes("第三位")`,
      );
      await a.waitForExpression(
        "the assignment's line in u3's conversation",
        `[...document.querySelectorAll('#conversation [data-action="assigned"]')]
          .some((l) => l.textContent.includes("等待队列将会话分配给了你"))`,
      );

      // B resolves while busy: nobody comes to B; u4 still waits.
      await clickContact(b, mineB[0]);
      await click(b, "#resolve");
      await waitText(b, "#my-load", "接待 0/1");
      assert.deepEqual((await places(b)).map((x) => x[0]), ["u4"]);
      // Back to 在线: u4 comes to B at once and the queue is empty everywhere.
      await choose(b, "online");
      await waitContacts(b, "u4 in B's list", [...mineB, "u4"]);
      for (const [p, who] of [[a, "A"], [b, "B"]] as const) {
        await waitQueue(p, `${who}'s queue empty`, []);
        assert.equal(await p.evaluate(`document.querySelector("#queue-section").hidden`), true);
      }
      await a.waitForExpression(
        "B online on A's page",
        `document.querySelector('#team [data-agent="B"]')?.textContent === "B · 在线"`,
      );

      // In English.
      await click(a, "#lang");
      assert.deepEqual(
        await a.evaluate(`[...document.querySelectorAll("#availability option")].map((o) => o.textContent)`),
        ["Online", "Busy", "Away"],
      );
      assert.equal(await textOf(a, "#my-load"), "Open 1/1");
      await click(a, "#lang");
      for (const p of [a, b]) assert.deepEqual(uncaught(p), []);
      await b.close();
      await a.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});
