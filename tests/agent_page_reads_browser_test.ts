/**
 * Reads are the agent's (issue 20, finding 4), in a real headless Chromium: a conversation is marked read only when
 * the agent opens it and the page is visible. Opening the page opens no conversation (the first message that
 * arrives, or is sent again, used to open its own and clear its unread count), and a message that comes into the
 * open conversation while the tab is hidden stays unread until the agent looks again. Ignored (not passed) when
 * /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { Browser, CHROMIUM_PATH, hasChromium, waitFor } from "./browser/cdp.ts";
import { clickContact, openAgent, pushText, startKefu, uncaught } from "./browser/page_helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const CONTACTS_PATH = "/im_component/wx_official_account/contacts";

/** Each contact's unread count as the contacts endpoint says it. */
async function unreadByApi(http: string, agent: string): Promise<Record<string, number>> {
  const res = await fetch(`${http}${CONTACTS_PATH}?userid=${agent}`);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return Object.fromEntries(
    (body.data.contacts as { contact_id: string; unread: number }[]).map((c) => [c.contact_id, c.unread]),
  );
}

// A tab whose visibility the test sets (document.hidden / visibilityState, with the visibilitychange event).
const VISIBILITY_STUB = `(() => {
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

/** The unread badges of the contact list, by contact. */
const BADGES = `Object.fromEntries([...document.querySelectorAll("#contacts [data-contact-id]")].map((li) =>
  [li.dataset.contactId, Number(li.querySelector('[data-testid="unread"]')?.textContent ?? 0)]))`;

Deno.test({
  name: `browser: opening the page, closing it and opening it again reads nothing${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu();
    const browser = await Browser.launch();
    try {
      // Pushed while the page is closed: held for agent R.
      await pushText(kefu.http, { to: "R", from: "u_first", content: "第一个用户的第一条", id: "8101" });
      await pushText(kefu.http, { to: "R", from: "u_first", content: "第一个用户的第二条", id: "8102" });
      await pushText(kefu.http, { to: "R", from: "u_second", content: "第二个用户", id: "8103" });
      assert.deepEqual(await unreadByApi(kefu.http, "R"), { u_first: 2, u_second: 1 });

      for (let round = 1; round <= 2; round++) {
        const page = await openAgent(browser, `${kefu.http}/?userid=R`);
        const badges = await page.waitForExpression<Record<string, number>>(
          `both users listed with their unread counts (round ${round})`,
          `(() => { const b = ${BADGES}; return Object.keys(b).length === 2 && b.u_first > 0 && b.u_second > 0 && b; })()`,
        );
        assert.deepEqual(badges, { u_first: 2, u_second: 1 }, `round ${round}`);
        // Every message came on the socket, and no conversation opened by itself.
        await page.waitForExpression(
          "the three messages received",
          `["u_first", "u_second"].every((id) => kefu.state.contacts.get(id)?.messages.length > 0) &&
            kefu.state.contacts.get("u_first").messages.length === 2`,
        );
        assert.equal(await page.evaluate(`kefu.state.selected`), "", `round ${round}: nothing open`);
        assert.equal(await page.evaluate(`document.querySelector("#conversation").dataset.contactId`), "");
        assert.deepEqual(uncaught(page), []);
        await page.close();
        // Nothing was read on the way: the API agrees after the page has gone.
        assert.deepEqual(await unreadByApi(kefu.http, "R"), { u_first: 2, u_second: 1 }, `round ${round}`);
      }

      // The agent opens one: that one is read, the other is not.
      const page = await openAgent(browser, `${kefu.http}/?userid=R`);
      await clickContact(page, "u_first");
      await waitFor("u_first read by the API", async () => (await unreadByApi(kefu.http, "R")).u_first === 0);
      assert.equal((await unreadByApi(kefu.http, "R")).u_second, 1);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});

Deno.test({
  name: `browser: a message into the open conversation of a hidden tab stays unread until the agent looks${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const kefu = await startKefu();
    const browser = await Browser.launch();
    try {
      await pushText(kefu.http, { to: "H", from: "u_open", content: "在吗", id: "8201" });
      const page = await openAgent(browser, `${kefu.http}/?userid=H`, { beforeLoad: VISIBILITY_STUB });
      await clickContact(page, "u_open");
      await waitFor("u_open read", async () => (await unreadByApi(kefu.http, "H")).u_open === 0);

      // The agent switches to another tab; the user writes into the conversation left open.
      await page.evaluate(`setHidden(true)`);
      await pushText(kefu.http, { to: "H", from: "u_open", content: "人呢？", id: "8202" });
      await page.waitForExpression("the message on the page", `kefu.state.contacts.get("u_open").seen.has("8202")`);
      const hidden = await page.evaluate<{ unread: string; toAck: string[]; title: string }>(`(() => {
        kefu.flushContacts();
        const c = kefu.state.contacts.get("u_open");
        return {
          unread: document.querySelector('#contacts [data-contact-id="u_open"] [data-testid="unread"]')?.textContent,
          toAck: [...c.toAck],
          title: document.title,
        };
      })()`);
      // Unread on the page (badge and title), no read receipt sent: the API says 1.
      assert.deepEqual(hidden, { unread: "1", toAck: ["8202"], title: "(1) kefu 客服" });
      assert.equal((await unreadByApi(kefu.http, "H")).u_open, 1);

      // Back on the tab: read now, receipt and all.
      await page.evaluate(`setHidden(false)`);
      await waitFor("u_open read after the agent looked", async () => (await unreadByApi(kefu.http, "H")).u_open === 0);
      await page.waitForExpression(
        "the badge gone",
        `!document.querySelector('#contacts [data-contact-id="u_open"] [data-testid="unread"]') &&
          document.title === "kefu 客服"`,
      );
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
    }
  },
});
