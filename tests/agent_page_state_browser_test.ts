/**
 * The agent page shows state that is right (issue 14, "State that is right"), in a real headless Chromium, one test
 * per bug the issue lists:
 *
 * 1. WeChat events (code 102, contact system01) are acknowledged: they do not come back, nor inflate unread counts;
 * 2. a user who only follows is listed at once, and events sit in the user's conversation, live as after a reload;
 * 3. after a reload, replies that went out are not drawn as errors (only failed ones are);
 * 4. each contact keeps its own unsent draft;
 * 5. a new message does not pull the agent down from what they read: a "新消息 ↓" marker shows instead;
 * 6. `/?userid=` connects by itself, on first open and after a reload;
 * 7. after a clean restart contact times, order and previews are right, and unread counts agree between the page's
 *    badges, the contacts endpoint and the store (after a reload and after a restart);
 * 8. no raw media URL, a location as a readable line, a calm heartbeat line, dates and day separators.
 *
 * Ignored (not passed) when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { type Service, start } from "../main.ts";
import { parseConfig } from "../src/config/config.ts";
import { cdata } from "../src/core/xml.ts";
import { SqliteStore, storePath } from "../src/store/sqlite_store.ts";
import { Browser, CHROMIUM_PATH, delay, hasChromium, type Page, waitFor } from "./browser/cdp.ts";
import { clickContact, openAgent, reload } from "./browser/page_helpers.ts";
import { freePort, signedQuery } from "./helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const TOKEN = "statepagetok";
const CONTACTS_PATH = "/im_component/wx_official_account/contacts";
const UPLOAD_PATH = "/im_component/wx_official_account/media";
const SHOT = (name: string) => `/tmp/kefu-state-${name}.png`;
// A 48×48 green PNG.
const SQUARE_PNG = Uint8Array.from(
  atob(
    "iVBORw0KGgoAAAANSUhEUgAAADAAAAAwCAIAAADYYG7QAAAAOklEQVR42u3OMQ0AAAgDsH3YxCrOcEE4mlRAU9OvREhISEhISEhISEhISEhI" +
      "SEhISEhISEhISEjozgIEZWiXIRrMlQAAAABJRU5ErkJggg==",
  ),
  (c) => c.charCodeAt(0),
);

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Where replies to pushed users go (PUSH_REPLY_URL): 200, or 500 for a reply whose text has "FAIL". */
function startReceiver() {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const body = await req.json();
    return body?.data?.msg?.content?.includes("FAIL") ? new Response("no", { status: 500 }) : new Response("ok");
  });
  return { url: `http://127.0.0.1:${server.addr.port}/replies`, shutdown: () => server.shutdown() };
}

interface Kefu {
  svc: Service;
  http: string;
}

/** kefu on `port` with a plaintext Official Account (webhook /wechat) and the push's way back; memory or DATA_DIR. */
async function startKefu(port: number, replyUrl: string, dataDir?: string): Promise<Kefu> {
  const svc = await start(parseConfig({
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "silent",
    STORE: dataDir ? "sqlite" : "memory",
    ...(dataDir ? { DATA_DIR: dataDir } : {}),
    WECHAT_TOKEN: TOKEN,
    PUSH_REPLY_URL: replyUrl,
  }));
  return { svc, http: `http://127.0.0.1:${port}` };
}

/** A user's text through the seed's XML push, for agent `to`, written at `time` (epoch seconds). */
async function pushText(
  http: string,
  m: { to: string; from: string; content: string; id: string; time?: number },
): Promise<string> {
  const xml = `<xml><ToUserName>${cdata(m.to)}</ToUserName><FromUserName>${cdata(m.from)}</FromUserName>` +
    `<CreateTime>${m.time ?? nowSeconds()}</CreateTime><MsgType>text</MsgType>` +
    `<Content>${cdata(m.content)}</Content><MsgId>${m.id}</MsgId></xml>`;
  const res = await fetch(`${http}/send`, { method: "POST", body: xml });
  const body = await res.json();
  assert.ok(res.ok, JSON.stringify(body));
  return body.data.status;
}

/** A signed webhook POST from WeChat user `openid` (plaintext mode): an event, a location, … */
async function wechat(http: string, openid: string, type: string, fields: string, time = nowSeconds()) {
  const xml = `<xml><ToUserName><![CDATA[gh_state]]></ToUserName><FromUserName><![CDATA[${openid}]]></FromUserName>` +
    `<CreateTime>${time}</CreateTime><MsgType><![CDATA[${type}]]></MsgType>${fields}</xml>`;
  const res = await fetch(`${http}/wechat${await signedQuery(TOKEN)}`, { method: "POST", body: xml });
  assert.equal(await res.text(), "success");
}

interface EndpointContact {
  contact_id: string;
  unread: number;
  last_message_time: number;
}

async function endpointContacts(http: string, agent: string): Promise<EndpointContact[]> {
  const res = await fetch(`${http}${CONTACTS_PATH}?userid=${encodeURIComponent(agent)}`);
  return (await res.json()).data.contacts;
}

interface ContactRow {
  id: string;
  unread: number;
  preview: string;
  time: number;
  shown: string;
}

/** The contact list as shown, top to bottom. */
function contactRows(page: Page): Promise<ContactRow[]> {
  return page.evaluate<ContactRow[]>(`[...document.querySelectorAll("#contacts [data-contact-id]")].map((li) => ({
    id: li.dataset.contactId,
    unread: Number(li.querySelector('[data-testid="unread"]')?.textContent ?? 0),
    preview: li.querySelector(".contact-preview")?.textContent ?? "",
    time: Number(li.dataset.time ?? 0),
    shown: li.querySelector("time")?.textContent ?? "",
  }))`);
}

/** Badges and the contacts endpoint agree, contact by contact; answers the page's rows. */
async function badgesAgree(page: Page, http: string, agent: string, what: string): Promise<ContactRow[]> {
  let rows: ContactRow[] = [];
  let listed: EndpointContact[] = [];
  await waitFor(() => `${what}: badges ${JSON.stringify(rows)} vs endpoint ${JSON.stringify(listed)}`, async () => {
    rows = await contactRows(page);
    listed = await endpointContacts(http, agent);
    const fromEndpoint = Object.fromEntries(listed.map((c) => [c.contact_id, c.unread]));
    const fromPage = Object.fromEntries(rows.map((r) => [r.id, r.unread]));
    return rows.length === listed.length && JSON.stringify(Object.entries(fromPage).sort()) ===
        JSON.stringify(Object.entries(fromEndpoint).sort()) &&
      rows;
  });
  return rows;
}

/**
 * Unacknowledged inbound messages per contact, and each contact's derived unread count and last message time, as the
 * store has them (kefu stopped): `agent`'s contacts and the users waiting in the queue.
 */
async function storeView(dir: string, agent: string) {
  const store = new SqliteStore({ path: storePath(dir) });
  try {
    const unacked: Record<string, number> = {};
    const rows: Record<string, { unread: number; lastMessageTime: number }> = {};
    for (const owner of [agent, ""]) {
      for (const m of await store.unacked(owner)) unacked[m.contact] = (unacked[m.contact] ?? 0) + 1;
      for (const c of await store.contactsOf(owner)) {
        rows[c.id] = { unread: c.unread, lastMessageTime: c.lastMessageTime };
      }
    }
    return { unacked, rows };
  } finally {
    await store.close();
  }
}

Deno.test({
  name: `browser: a WeChat event in the open conversation is acknowledged and does not come back${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const receiver = startReceiver();
    const kefu = await startKefu(freePort(), receiver.url);
    const browser = await Browser.launch();
    try {
      const url = `${kefu.http}/?userid=k1`;
      const page = await openAgent(browser, url);
      await wechat(kefu.http, "oMenu", "text", "<Content><![CDATA[菜单在哪]]></Content><MsgId>6301</MsgId>");
      await clickContact(page, "oMenu");
      await page.waitForExpression(
        "oMenu's conversation",
        `!!document.querySelector('#conversation[data-contact-id="oMenu"] [data-id="6301"]')`,
      );
      await wechat(
        kefu.http,
        "oMenu",
        "event",
        "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[V1001_TODAY_MUSIC]]></EventKey>",
      );
      await waitFor(
        "the menu click acknowledged: the contacts endpoint and the store say 0 unread",
        async () => (await endpointContacts(kefu.http, "k1")).find((c) => c.contact_id === "oMenu")?.unread === 0,
      );
      // A reload: nothing comes again, no badge.
      await reload(page, url);
      await page.waitForExpression("oMenu listed", `!!document.querySelector('#contacts [data-contact-id="oMenu"]')`);
      await delay(500);
      assert.deepEqual((await contactRows(page)).map((r) => [r.id, r.unread]), [["oMenu", 0]]);
      assert.equal(await page.evaluate(`document.querySelector("#system").textContent`), "");
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await receiver.shutdown();
    }
  },
});

Deno.test({
  name:
    `browser: a user who only follows is listed at once; events sit in the conversation, live and after a reload${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const receiver = startReceiver();
    const kefu = await startKefu(freePort(), receiver.url);
    const browser = await Browser.launch();
    try {
      const url = `${kefu.http}/?userid=a1`;
      const page = await openAgent(browser, url);
      assert.equal(await pushText(kefu.http, { to: "a1", from: "u_first", content: "你好", id: "6001" }), "delivered");
      await clickContact(page, "u_first");
      await page.waitForExpression(
        "u_first's conversation",
        `!!document.querySelector('#conversation [data-id="6001"]')`,
      );

      // The page has looked up u_first's channel: nothing else will fetch the contact list for a while.
      await page.waitForExpression(
        "u_first's channel",
        `!!document.querySelector('#contacts [data-contact-id="u_first"] [data-testid="channel"]')`,
      );
      await delay(200);
      // A user who only follows: listed at once (WeChat's 1-minute window after a follow is running).
      await wechat(kefu.http, "oFan", "event", "<Event><![CDATA[subscribe]]></Event>");
      await page.waitForExpression(
        "oFan under Contacts right after the follow",
        `!!document.querySelector('#contacts [data-contact-id="oFan"]')`,
        3000,
      );
      await wechat(
        kefu.http,
        "oFan",
        "event",
        "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[V1001_TODAY_MUSIC]]></EventKey>",
        nowSeconds() + 1,
      );
      await page.waitForExpression(
        "two unread on oFan",
        `document.querySelector('#contacts [data-contact-id="oFan"] [data-testid="unread"]')?.textContent === "2"`,
      );
      assert.equal((await endpointContacts(kefu.http, "a1")).find((c) => c.contact_id === "oFan")?.unread, 2);
      assert.equal(await page.evaluate(`document.querySelector("#system").textContent`), "", "not in the System list");

      // Inside oFan's conversation, as lines of the conversation; shown, they are acknowledged.
      await clickContact(page, "oFan");
      const eventLines = `[...document.querySelectorAll('#conversation[data-contact-id="oFan"] [data-testid="event"]')]
        .map((e) => e.querySelector(".msg-text").textContent)`;
      // Worded by the page, naming the user as the list does: a nameless Official Account user is 用户·xxxx once the
      // contact list has said the channel (issue 20).
      const live = await page.waitForExpression<string[]>(
        "oFan's two events, naming oFan by its label",
        `(${eventLines}).length === 2 && (${eventLines}).every((l) => l.startsWith("用户·")) && ${eventLines}`,
      );
      const fan = await page.evaluate<string>(
        `document.querySelector('#contacts [data-contact-id="oFan"] .contact-name').textContent`,
      );
      assert.match(fan, /^用户·[0-9a-f]{4}$/);
      assert.deepEqual(live, [`${fan} 关注了公众号`, `${fan} 点击了菜单（V1001_TODAY_MUSIC）`]);
      await waitFor(
        "the events acknowledged (the contacts endpoint says 0 unread)",
        async () => (await endpointContacts(kefu.http, "a1")).every((c) => c.unread === 0),
      );
      await Deno.writeFile(SHOT("events"), await page.screenshot());

      // A reload: nothing comes again; the events are in oFan's conversation as before, from the history.
      await reload(page, url);
      await page.waitForExpression(
        "the contacts",
        `document.querySelectorAll("#contacts [data-contact-id]").length === 2`,
      );
      await clickContact(page, "oFan");
      const after = await page.waitForExpression<string[]>(
        "oFan's events after the reload",
        `(${eventLines}).length === 2 && ${eventLines}`,
      );
      assert.deepEqual(after, live);
      await delay(300);
      assert.deepEqual((await contactRows(page)).map((r) => [r.id, r.unread]).sort(), [["oFan", 0], ["u_first", 0]]);
      assert.equal(await page.evaluate(`document.querySelector("#system").textContent`), "");

      // A system message that names no user is listed under System and acknowledged by its id (seed 003's receipt).
      await page.evaluate(`(() => {
        window.sentFrames = [];
        const ws = kefu.state.socket;
        const send = ws.send.bind(ws);
        ws.send = (d) => { sentFrames.push(d); send(d); };
        handleFrame(JSON.stringify({ data: { id: "n-1", name: "系统消息", avatar: "", msg_type: "system",
          contact_id: "system01", company_id: "", send_time: ${nowSeconds()}, msg: { content: "系统维护通知" } },
          result: { code: 102, message: "common" } }));
      })()`);
      assert.match(await page.evaluate<string>(`document.querySelector("#system").textContent`), /系统维护通知/);
      assert.deepEqual(
        (await page.evaluate<string[]>(`sentFrames`)).map((f) => JSON.parse(f)),
        [{ event: 3, data: { msg_id: "n-1" } }],
      );
      assert.deepEqual(page.console.filter((l) => l.startsWith("uncaught")), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await receiver.shutdown();
    }
  },
});

Deno.test({
  name: `browser: after a reload, replies that went out are not drawn as errors, failed ones are${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const receiver = startReceiver();
    const kefu = await startKefu(freePort(), receiver.url);
    const browser = await Browser.launch();
    try {
      const url = `${kefu.http}/?userid=b1`;
      const page = await openAgent(browser, url);
      await pushText(kefu.http, { to: "b1", from: "u_reply", content: "在吗", id: "6101" });
      await clickContact(page, "u_reply");
      await page.waitForExpression("u_reply's message", `!!document.querySelector('#conversation [data-id="6101"]')`);
      const send = async (text: string, status: string) => {
        const id = await page.evaluate<string>(`(() => {
          document.querySelector("#reply-text").value = ${JSON.stringify(text)};
          document.querySelector("#reply-send").click();
          return [...document.querySelectorAll('#conversation [data-direction="out"]')].at(-1).dataset.id;
        })()`);
        await page.waitForExpression(
          `reply "${text}" ${status}`,
          `document.querySelector('#conversation [data-id="${id}"]')?.dataset.status === "${status}"`,
        );
        return id;
      };
      const ok = await send("好的，马上处理", "sent");
      const bad = await send("FAIL 这条会失败", "failed");

      await reload(page, url);
      await clickContact(page, "u_reply");
      const view = (id: string) =>
        page.evaluate<{ status: string; error: string | null; why: string; label: string }>(`(() => {
          const m = document.querySelector('#conversation [data-id="${id}"]');
          return m && { status: m.dataset.status, error: m.querySelector(".msg-error")?.textContent ?? null,
            why: m.querySelector(".msg-error .failure-text")?.title ?? "",
            label: m.querySelector(".msg-status")?.textContent ?? "" };
        })()`);
      await page.waitForExpression(
        "both replies from the history",
        `document.querySelectorAll(
        '#conversation [data-direction="out"]').length === 2`,
      );
      const sent = await view(ok);
      assert.equal(sent.status, "sent");
      assert.equal(sent.label, "已发送");
      assert.equal(sent.error, null, `a reply that went out is drawn as an error: ${sent.error}`);
      const failed = await view(bad);
      assert.equal(failed.status, "failed");
      assert.ok(failed.error, "a failed reply says why");
      // In the agent's words on the bubble; the server's detail in its tooltip.
      assert.match(failed.error!, /^回复没有发出/);
      assert.match(failed.why, /500|push_reply|PUSH_REPLY_URL/);
      await Deno.writeFile(SHOT("replies-after-reload"), await page.screenshot());
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await receiver.shutdown();
    }
  },
});

Deno.test({
  name: `browser: each contact keeps its own unsent draft${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const receiver = startReceiver();
    const kefu = await startKefu(freePort(), receiver.url);
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=c1`);
      await pushText(kefu.http, { to: "c1", from: "dA", content: "A 的问题", id: "6201" });
      await pushText(kefu.http, { to: "c1", from: "dB", content: "B 的问题", id: "6202" });
      await page.waitForExpression(
        "both contacts",
        `document.querySelectorAll("#contacts [data-contact-id]").length === 2`,
      );
      const box = () => page.evaluate<string>(`document.querySelector("#reply-text").value`);
      const type = async (text: string) => {
        await page.evaluate(`document.querySelector("#reply-text").focus()`);
        await page.send("Input.insertText", { text });
      };
      await clickContact(page, "dA");
      await type("给 A 的草稿");
      await clickContact(page, "dB");
      assert.equal(await box(), "", "A's draft is not in B's reply box");
      await type("B 的回复");
      await clickContact(page, "dA");
      assert.equal(await box(), "给 A 的草稿");
      await clickContact(page, "dB");
      assert.equal(await box(), "B 的回复");
      // Sending B's reply empties B's box only.
      await page.evaluate(`document.querySelector("#reply-send").click()`);
      assert.equal(await box(), "");
      await clickContact(page, "dA");
      assert.equal(await box(), "给 A 的草稿");
      await clickContact(page, "dB");
      assert.equal(await box(), "");
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await receiver.shutdown();
    }
  },
});

Deno.test({
  name: `browser: a new message does not scroll away from what the agent reads; a marker says it came${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const receiver = startReceiver();
    const kefu = await startKefu(freePort(), receiver.url);
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=s1`);
      for (let i = 1; i <= 40; i++) {
        await pushText(kefu.http, { to: "s1", from: "u_long", content: `第 ${i} 条消息`, id: String(7000 + i) });
      }
      await clickContact(page, "u_long");
      await page.waitForExpression(
        "40 messages",
        `document.querySelectorAll('#conversation[data-contact-id="u_long"] [data-direction="in"]').length === 40`,
      );
      const scroll = () =>
        page.evaluate<{ top: number; fromBottom: number; marker: boolean; label: string }>(`(() => {
          const box = document.querySelector("#conversation");
          const marker = document.querySelector('[data-testid="new-below"]');
          return { top: box.scrollTop, fromBottom: box.scrollHeight - box.scrollTop - box.clientHeight,
            marker: !!marker && !marker.hidden, label: marker?.textContent ?? "" };
        })()`);
      assert.ok((await scroll()).fromBottom < 2, "a conversation opens at its end");

      // The agent scrolls up to read; a message comes.
      await page.evaluate(`document.querySelector("#conversation").scrollTop = 0`);
      await page.waitForExpression("the page to see the agent scrolled up", `kefu.state.atBottom === false`);
      await pushText(kefu.http, { to: "s1", from: "u_long", content: "第 41 条消息", id: "7041" });
      await page.waitForExpression("message 41", `!!document.querySelector('#conversation [data-id="7041"]')`);
      await page.waitForExpression("the marker", `!document.querySelector('[data-testid="new-below"]').hidden`);
      await delay(100);
      const reading = await scroll();
      assert.equal(reading.top, 0, "the conversation stays where the agent reads");
      assert.equal(reading.marker, true, "a marker says a new message came");
      assert.match(reading.label, /新消息/);
      await Deno.writeFile(SHOT("new-below"), await page.screenshot());

      // The marker takes the agent down and goes away.
      await page.evaluate(`document.querySelector('[data-testid="new-below"]').click()`);
      await page.waitForExpression(
        "the end of the conversation, marker gone",
        `(() => { const b = document.querySelector("#conversation");
          return b.scrollHeight - b.scrollTop - b.clientHeight < 2 &&
            document.querySelector('[data-testid="new-below"]').hidden; })()`,
      );
      // At the end, a new message keeps the agent at the end, with no marker.
      await pushText(kefu.http, { to: "s1", from: "u_long", content: "第 42 条消息", id: "7042" });
      await page.waitForExpression("message 42", `!!document.querySelector('#conversation [data-id="7042"]')`);
      await page.waitForExpression(
        "still at the end",
        `(() => { const b = document.querySelector("#conversation"); return b.scrollHeight - b.scrollTop - b.clientHeight < 2; })()`,
      );
      await delay(100);
      const end = await scroll();
      assert.ok(end.fromBottom < 2, `at the end: ${JSON.stringify(end)}`);
      assert.equal(end.marker, false);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await receiver.shutdown();
    }
  },
});

Deno.test({
  name: `browser: /?userid= connects by itself, on first open and after a reload; Disconnect is kept${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const receiver = startReceiver();
    const kefu = await startKefu(freePort(), receiver.url);
    const browser = await Browser.launch();
    try {
      const url = `${kefu.http}/?userid=e1`;
      const page = await openAgent(browser, url, { connect: false });
      const open = `document.querySelector("#status").dataset.state === "open"`;
      await page.waitForExpression("the page to connect by itself", open, 5000);
      await waitFor("agent e1 online", () => kefu.svc.hub.isOnline("e1"));
      await page.goto(url);
      await page.waitForExpression("the page to connect by itself after a reload", open, 5000);
      assert.equal(await page.evaluate(`document.querySelector("#connect").textContent.includes("断开")`), true);

      // The agent disconnects: a reload does not connect behind their back.
      await page.evaluate(`document.querySelector("#connect").click()`);
      await waitFor("agent e1 offline", () => !kefu.svc.hub.isOnline("e1"));
      await page.goto(url);
      await page.waitForExpression("the page to start", `kefu.state.auth !== ""`);
      await delay(500);
      assert.equal(await page.evaluate(`document.querySelector("#status").dataset.state`), "closed");
      assert.equal(kefu.svc.hub.isOnline("e1"), false);

      // Connected by hand as another agent on `/`: a reload keeps that agent.
      await page.goto(`${kefu.http}/`);
      await page.waitForExpression("the page to start", `kefu.state.auth !== ""`);
      await page.evaluate(`(() => {
        document.querySelector("#agent-id").value = "e2";
        document.querySelector("#connect").click();
      })()`);
      await page.waitForExpression("connected as e2", open);
      await page.goto(`${kefu.http}/`);
      await page.waitForExpression("connected as e2 after a reload", open, 5000);
      await waitFor("agent e2 online", () => kefu.svc.hub.isOnline("e2"));
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await receiver.shutdown();
    }
  },
});

Deno.test({
  name: `browser: after a clean restart contact times, order and previews are right; unread agrees everywhere${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const receiver = startReceiver();
    const dir = await Deno.makeTempDir({ prefix: "kefu-state-page-" });
    const port = freePort();
    let kefu = await startKefu(port, receiver.url, dir);
    const browser = await Browser.launch();
    try {
      const url = `${kefu.http}/?userid=r1`;
      const page = await openAgent(browser, url);
      const now = nowSeconds();
      const t = {
        read: now - 7200,
        done: now - 5000,
        old: now - 3600,
        mid: now - 1800,
        oldAgain: now - 600,
        fan: now - 60,
      };
      // The first contact is opened by the agent: what it says is read.
      await pushText(kefu.http, { to: "r1", from: "u_read", content: "先来的", id: "8001", time: t.read });
      await clickContact(page, "u_read");
      await page.waitForExpression(
        "u_read's conversation",
        `!!document.querySelector('#conversation [data-id="8001"]')`,
      );
      // Read, then left: after a reload neither selected nor sent again, so its preview comes from the history.
      await pushText(kefu.http, { to: "r1", from: "u_done", content: "完成了", id: "8000", time: t.done });
      await page.waitForExpression("u_done", `!!document.querySelector('#contacts [data-contact-id="u_done"]')`);
      await clickContact(page, "u_done");
      await page.waitForExpression(
        "u_done's conversation",
        `!!document.querySelector('#conversation [data-id="8000"]')`,
      );
      await clickContact(page, "u_read");
      await pushText(kefu.http, { to: "r1", from: "u_old", content: "早的", id: "8002", time: t.old });
      await pushText(kefu.http, { to: "r1", from: "u_mid", content: "中间", id: "8003", time: t.mid });
      // Within the minute: the message is kept, its contact's row is not rewritten (until a clean stop).
      await pushText(kefu.http, { to: "r1", from: "u_old", content: "后来的", id: "8004", time: t.oldAgain });
      await wechat(kefu.http, "oFan", "event", "<Event><![CDATA[subscribe]]></Event>", t.fan);
      await page.evaluate(`(() => {
        document.querySelector("#reply-text").value = "我来了";
        document.querySelector("#reply-send").click();
      })()`);
      await page.waitForExpression(
        "the reply sent",
        `[...document.querySelectorAll('#conversation [data-direction="out"]')].at(-1)?.dataset.status === "sent"`,
      );
      const replyTime = await page.evaluate<number>(
        `kefu.state.contacts.get("u_read").messages.findLast((m) => m.direction === "out").time`,
      );

      const expected = {
        order: ["u_read", "oFan", "u_old", "u_mid", "u_done"],
        unread: { u_read: 0, oFan: 1, u_old: 2, u_mid: 1, u_done: 0 },
        previews: {
          u_read: "我：我来了",
          // (Replaced below by what the row says once labelled.)
          oFan: "",
          u_old: "后来的",
          u_mid: "中间",
          u_done: "完成了",
        },
      };
      const check = async (what: string) => {
        const rows = await badgesAgree(page, kefu.http, "r1", what);
        await page.waitForExpression(
          `${what}: every preview`,
          `[...document.querySelectorAll("#contacts .contact-preview")].every((p) => p.textContent !== "")`,
        );
        // oFan's follow, named by its label once the channel is known.
        const fanLine = await page.waitForExpression<string>(
          `${what}: oFan's preview with its label`,
          `(() => {
            const p = document.querySelector('#contacts [data-contact-id="oFan"] .contact-preview').textContent;
            return /^用户·[0-9a-f]{4} 关注了公众号$/.test(p) && p;
          })()`,
        );
        expected.previews.oFan = fanLine;
        const final = await contactRows(page);
        assert.deepEqual(final.map((r) => r.id), expected.order, `${what}: order`);
        assert.deepEqual(Object.fromEntries(rows.map((r) => [r.id, r.unread])), expected.unread, `${what}: unread`);
        assert.deepEqual(
          Object.fromEntries(final.map((r) => [r.id, r.preview])),
          expected.previews,
          `${what}: previews`,
        );
        const listed = await endpointContacts(kefu.http, "r1");
        assert.deepEqual(listed.map((c) => c.contact_id), expected.order, `${what}: the endpoint's order`);
        const times = Object.fromEntries(listed.map((c) => [c.contact_id, c.last_message_time]));
        assert.deepEqual(
          times,
          { u_read: replyTime, oFan: t.fan, u_old: t.oldAgain, u_mid: t.mid, u_done: t.done },
          `${what}: times`,
        );
        assert.deepEqual(Object.fromEntries(final.map((r) => [r.id, r.time])), times, `${what}: times on the page`);
        for (const r of final) assert.notEqual(r.shown, "", `${what}: ${r.id} shows a time`);
      };
      const stored = async (what: string) => {
        const s = await storeView(dir, "r1");
        const { u_read: _, u_done: __, ...unread } = expected.unread;
        assert.deepEqual(s.unacked, unread, `${what}: the store's unacknowledged messages`);
        assert.deepEqual(
          Object.fromEntries(Object.entries(s.rows).map(([id, r]) => [id, r.unread])),
          expected.unread,
          `${what}: the store's contact rows`,
        );
        assert.equal(s.rows.u_old.lastMessageTime, t.oldAgain, `${what}: u_old's row has its last message time`);
      };

      await check("live");
      await reload(page, url);
      await check("after a reload");
      await Deno.writeFile(SHOT("contacts-reload"), await page.screenshot());

      // A clean stop: the rows are saved; the page waits and reconnects by itself when kefu is back.
      await kefu.svc.shutdown();
      await page.waitForExpression("the page to notice", `document.querySelector("#status").dataset.state !== "open"`);
      await stored("after a clean stop");
      kefu = await startKefu(port, receiver.url, dir);
      await page.waitForExpression(
        "the page to reconnect",
        `document.querySelector("#status").dataset.state === "open"`,
        15_000,
      );
      await check("after a restart");
      await reload(page, url);
      await check("after a restart and a reload");
      await Deno.writeFile(SHOT("contacts-restart"), await page.screenshot());
      await kefu.svc.shutdown();
      await stored("after the second stop");
      assert.deepEqual(page.console.filter((l) => l.startsWith("uncaught")), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await receiver.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** YYYY-MM-DD and HH:MM of epoch seconds in Beijing time. */
function beijing(seconds: number): { day: string; clock: string } {
  const d = new Date((seconds + 8 * 3600) * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return {
    day: `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}`,
    clock: `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`,
  };
}

Deno.test({
  name: `browser: no raw media URL, a readable location, a calm heartbeat line, dates and day separators${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const receiver = startReceiver();
    const kefu = await startKefu(freePort(), receiver.url);
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=g1`);

      // Before the first heartbeat (30 s): nothing that reads as a fault.
      const beat = await page.evaluate<string>(`document.querySelector("#heartbeat").textContent.trim()`);
      assert.doesNotMatch(beat, /no heartbeat/i);
      assert.match(beat, /30/);
      await page.evaluate(`handleFrame('{"data":{},"result":{"code":101,"message":"heartbeat"}}')`);
      assert.match(
        await page.evaluate<string>(`document.querySelector("#heartbeat").textContent`),
        /^最近心跳 \d\d:\d\d:\d\d$/,
      );

      // A user's image: the picture, never its URL as text.
      const up = await fetch(`${kefu.http}${UPLOAD_PATH}?userid=g1&filename=dot.png`, {
        method: "POST",
        body: SQUARE_PNG,
        headers: { "content-type": "image/png" },
      });
      const mediaPath = (await up.json()).data.media_path;
      const pushed = await fetch(`${kefu.http}/send`, {
        method: "POST",
        body: JSON.stringify({
          data: {
            id: "img-1",
            msg_type: "image",
            contact_id: "g1",
            from_id: "u_media",
            msg: { media_path: mediaPath },
          },
          result: { code: 1002, message: "common" },
        }),
      });
      assert.equal((await pushed.json()).data.status, "delivered");
      await clickContact(page, "u_media");
      const image = await page.waitForExpression<{ text: string }>(
        "the image",
        `(() => {
          const m = document.querySelector('#conversation [data-id="img-1"]');
          const img = m?.querySelector("img");
          return img && img.complete && img.naturalWidth === 48 && { text: m.textContent };
        })()`,
      );
      assert.ok(!image.text.includes(mediaPath) && !image.text.includes("/im_component"), image.text);

      // A location: one readable line (label and coordinates), not a table of numbers.
      await wechat(
        kefu.http,
        "oLoc",
        "location",
        "<Location_X>23.1066</Location_X><Location_Y>113.3245</Location_Y><Scale>16</Scale>" +
          "<Label><![CDATA[广州市海珠区广州塔]]></Label><MsgId>9101</MsgId>",
      );
      await page.waitForExpression("oLoc", `!!document.querySelector('#contacts [data-contact-id="oLoc"]')`);
      await clickContact(page, "oLoc");
      const loc = await page.waitForExpression<{ line: string; table: number; text: string }>(
        "the location",
        `(() => {
          const m = document.querySelector('#conversation [data-id="9101"]');
          const line = m?.querySelector('[data-testid="location"]');
          return line && { line: line.textContent, table: m.querySelectorAll(".msg-extra, dl").length, text: m.textContent };
        })()`,
      );
      assert.match(loc.line, /广州市海珠区广州塔/);
      assert.match(loc.line, /23\.1066/);
      assert.match(loc.line, /113\.3245/);
      assert.equal(loc.table, 0);
      assert.doesNotMatch(loc.text, /latitude|longitude|scale/);
      assert.equal(loc.text.split("广州市海珠区广州塔").length, 2, "the label once");
      await Deno.writeFile(SHOT("location"), await page.screenshot());

      // Dates: a day separator before each day's first message; times as hours and minutes.
      const now = nowSeconds();
      const times = [now - 3 * 86400, now - 86400, now];
      for (const [i, time] of times.entries()) {
        await pushText(kefu.http, { to: "g1", from: "u_days", content: `消息 ${i}`, id: String(9200 + i), time });
      }
      await page.waitForExpression("u_days", `!!document.querySelector('#contacts [data-contact-id="u_days"]')`);
      await clickContact(page, "u_days");
      const view = await page.waitForExpression<{ days: string[]; clocks: string[]; titles: string[] }>(
        "three messages with separators",
        `(() => {
          const c = document.querySelector('#conversation[data-contact-id="u_days"]');
          const msgs = c ? [...c.querySelectorAll('[data-testid="message"]')] : [];
          return msgs.length === 3 && {
            days: [...c.querySelectorAll('[data-testid="day"]')].map((d) => d.textContent),
            clocks: msgs.map((m) => m.querySelector(".msg-head time").textContent),
            titles: msgs.map((m) => m.querySelector(".msg-head time").title),
          };
        })()`,
      );
      assert.equal(view.days.length, 3, JSON.stringify(view.days));
      assert.ok(view.days[0].startsWith(beijing(times[0]).day), view.days[0]);
      assert.equal(view.days[1], "昨天");
      assert.equal(view.days[2], "今天");
      assert.deepEqual(view.clocks, times.map((s) => beijing(s).clock));
      for (const [i, title] of view.titles.entries()) assert.ok(title.startsWith(beijing(times[i]).day), title);
      await Deno.writeFile(SHOT("dates"), await page.screenshot());
      assert.deepEqual(page.console.filter((l) => l.startsWith("uncaught")), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await receiver.shutdown();
    }
  },
});
