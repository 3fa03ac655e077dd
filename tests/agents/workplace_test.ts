/**
 * The workplace API through the real service: transfer (with a note, the unread messages going along), resolve and
 * reopen (also by the user's next message), the queue and take, names and notes, search, the contact list's
 * previews and reply windows. Each action is the owner's only, a system line in the history, and a code-106 event
 * on the sockets of the agents concerned.
 */

import assert from "node:assert/strict";
import { onPostgres } from "../support/on_postgres.ts";
import { SqliteStore, storePath } from "../../src/store/sqlite_store.ts";
import {
  AgentClient,
  agentUrl,
  eventually,
  getJson,
  post,
  signedQuery,
  startService,
  startWechat,
  userXml,
} from "../helpers.ts";

const BASE = "/im_component/wx_official_account";

// deno-lint-ignore no-explicit-any
type Json = any;

async function call(url: string, method: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

function contactUrl(http: string, id: string, agent: string, action = ""): string {
  return `${http}${BASE}/contacts/${encodeURIComponent(id)}${action}?userid=${encodeURIComponent(agent)}`;
}

async function push(http: string, user: string, text: string, agent?: string): Promise<void> {
  const r = await post(`${http}/send`, userXml(user, text, { to: agent }));
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

async function contactsOf(http: string, agent: string): Promise<Json[]> {
  return (await getJson(`${http}${BASE}/contacts?userid=${agent}`)).body.data.contacts;
}

async function historyOf(http: string, agent: string, contact: string): Promise<{ status: number; body: Json }> {
  return await getJson(`${http}${BASE}/history?userid=${agent}&contact_id=${encodeURIComponent(contact)}`);
}

Deno.test("workplace: a transfer moves the contact with a note; its unread messages and history go along", async () => {
  await using t = await startService();
  // Page-like sockets: they send read receipts, so what is not read stays unread.
  await using a = await AgentClient.open(`${agentUrl(t, "A")}&ack=1`);
  await using b = await AgentClient.open(`${agentUrl(t, "B")}&ack=1`);
  await push(t.http, "u1", "我想退款", "A");
  await push(t.http, "u1", "订单号 12345", "A");
  assert.equal((await a.next(1001)).data.msg.content, "我想退款");
  await a.next(1001);

  const moved = await call(contactUrl(t.http, "u1", "A", "/transfer"), "POST", { to_agent_id: "B", note: "VIP 客户" });
  assert.equal(moved.status, 200, JSON.stringify(moved.body));
  assert.equal(moved.body.data.contact.agent_id, "B");
  assert.equal(moved.body.data.contact.unread, 2);

  // Both agents hear of it; the new owner gets the two unread messages again.
  const toA = await a.next(106);
  const toB = await b.next(106);
  for (const e of [toA, toB]) {
    assert.deepEqual(
      [e.data.action, e.data.by, e.data.from_agent_id, e.data.to_agent_id, e.data.note, e.data.contact.agent_id],
      ["transferred", "A", "A", "B", "VIP 客户", "B"],
    );
  }
  assert.deepEqual([(await b.next(1001)).data.msg.content, (await b.next(1001)).data.msg.content], [
    "我想退款",
    "订单号 12345",
  ]);
  assert.deepEqual((await contactsOf(t.http, "A")).map((c) => c.contact_id), []);
  assert.deepEqual((await contactsOf(t.http, "B")).map((c) => [c.contact_id, c.unread]), [["u1", 2]]);

  // The history went along, with the transfer as a system line the page words from `event`.
  assert.equal((await historyOf(t.http, "A", "u1")).status, 403);
  const history = (await historyOf(t.http, "B", "u1")).body.data.messages;
  assert.deepEqual(history.map((m: Json) => m.direction), ["system", "in", "in"]);
  assert.deepEqual(history[0].event, {
    action: "transferred",
    by: "A",
    from_agent_id: "A",
    to_agent_id: "B",
    note: "VIP 客户",
  });
  assert.equal(history[0].msg.content, "A transferred the conversation to B: VIP 客户");
  // The contact list previews the user's last message; the transfer is its last workflow line, with its event.
  const [listed] = await contactsOf(t.http, "B");
  assert.deepEqual([listed.last_message.content, listed.last_message.direction], ["订单号 12345", "in"]);
  assert.deepEqual([listed.last_event.event.action, listed.last_event.event.note], ["transferred", "VIP 客户"]);
  assert.equal(listed.awaiting_reply, true);

  // The user's next message goes to the new owner.
  await push(t.http, "u1", "还在吗");
  assert.equal((await b.next(1001)).data.msg.content, "还在吗");
  assert.deepEqual(a.drain().filter((e) => e.result.code === 1001), []);
});

Deno.test("workplace: transfers refused say why — not yours, to yourself, to nobody known, bad bodies", async () => {
  await using t = await startService();
  await using a = await AgentClient.open(agentUrl(t, "A"));
  await using b = await AgentClient.open(agentUrl(t, "B"));
  await push(t.http, "u1", "hi", "A");
  await a.next(1001);
  const transfer = (agent: string, body: unknown) => call(contactUrl(t.http, "u1", agent, "/transfer"), "POST", body);

  const cases: [string, unknown, number, string, RegExp][] = [
    ["B", { to_agent_id: "A" }, 403, "not_your_contact", /cannot transfer contact "u1": the contact belongs/],
    ["A", { to_agent_id: "A" }, 400, "invalid_transfer", /it is yours/],
    ["A", { to_agent_id: "nobody" }, 404, "unknown_agent", /no such agent/],
    ["A", {}, 400, "missing_field", /to_agent_id is required/],
    ["A", { to_agent_id: 7 }, 400, "wrong_type", /to_agent_id must be a string/],
    ["A", "{not json", 400, "invalid_json", /cannot read the request body as JSON/],
    ["A", "[1]", 400, "invalid_json", /must be a JSON object/],
    ["A", { to_agent_id: "B", note: "x".repeat(501) }, 400, "wrong_type", /at most 500/],
  ];
  for (const [agent, body, status, error, detail] of cases) {
    const r = await transfer(agent, body);
    assert.equal(r.status, status, JSON.stringify([body, r.body]));
    assert.equal(r.body.data.error, error);
    assert.match(r.body.data.detail, detail);
  }
  const missing = await call(contactUrl(t.http, "nope", "A", "/transfer"), "POST", { to_agent_id: "B" });
  assert.equal(missing.status, 404);
  // Nothing moved.
  assert.deepEqual((await contactsOf(t.http, "A")).map((c) => c.contact_id), ["u1"]);
  assert.deepEqual(b.drain().filter((e) => e.result.code === 106), []);
});

Deno.test("workplace: resolve and reopen by the owner; the user's next message reopens by itself", async () => {
  await using t = await startService();
  await using a = await AgentClient.open(agentUrl(t, "A"));
  await push(t.http, "u1", "hi", "A");
  await a.next(1001);

  assert.equal((await call(contactUrl(t.http, "u1", "B", "/resolve"), "POST", {})).status, 403);
  const resolved = await call(contactUrl(t.http, "u1", "A", "/resolve"), "POST");
  assert.equal(resolved.status, 200, JSON.stringify(resolved.body));
  assert.equal(resolved.body.data.contact.status, "resolved");
  assert.deepEqual([(await a.next(106)).data.action], ["resolved"]);
  assert.equal((await contactsOf(t.http, "A"))[0].status, "resolved");

  // The user writes again: open, and the agent is told (by "", the user).
  await push(t.http, "u1", "one more question");
  await a.next(1001);
  const reopened = await a.next(106);
  assert.deepEqual([reopened.data.action, reopened.data.by, reopened.data.contact.status], ["reopened", "", "open"]);

  // And by hand.
  await call(contactUrl(t.http, "u1", "A", "/resolve"), "POST", {});
  await a.next(106);
  const again = await call(contactUrl(t.http, "u1", "A", "/reopen"), "POST", {});
  assert.equal(again.body.data.contact.status, "open");
  const lines = (await historyOf(t.http, "A", "u1")).body.data.messages
    .filter((m: Json) => m.direction === "system").map((m: Json) => m.event.action);
  assert.deepEqual(lines, ["reopened", "resolved", "resolved"]);
});

Deno.test("workplace: a user put back in the queue is listed for every agent and taken by one (409 for the next)", async () => {
  await using t = await startService();
  await using a = await AgentClient.open(agentUrl(t, "A"));
  await using b = await AgentClient.open(agentUrl(t, "B"));
  await push(t.http, "u1", "hi", "A");
  await a.next(1001);

  const released = await call(contactUrl(t.http, "u1", "A", "/release"), "POST", { note: "夜班接" });
  assert.equal(released.status, 200, JSON.stringify(released.body));
  assert.equal(released.body.data.contact.agent_id, "");
  for (const c of [a, b]) assert.equal((await c.next(106)).data.action, "queued");
  const queue = (await getJson(`${t.http}${BASE}/queue?userid=B`)).body.data.contacts;
  assert.deepEqual(queue.map((c: Json) => c.contact_id), ["u1"]);
  // Anyone may look at a waiting user before taking them.
  assert.equal((await getJson(contactUrl(t.http, "u1", "B"))).status, 200);

  const taken = await call(contactUrl(t.http, "u1", "B", "/take"), "POST", {});
  assert.equal(taken.status, 200, JSON.stringify(taken.body));
  assert.equal(taken.body.data.contact.agent_id, "B");
  for (const c of [a, b]) assert.equal((await c.next(106)).data.action, "taken");
  const late = await call(contactUrl(t.http, "u1", "A", "/take"), "POST", {});
  assert.deepEqual([late.status, late.body.data.error], [409, "already_taken"]);
  assert.deepEqual((await getJson(`${t.http}${BASE}/queue?userid=A`)).body.data.contacts, []);
  const agents = (await getJson(`${t.http}${BASE}/agents?userid=A`)).body.data.agents;
  assert.deepEqual(agents, [
    // Issue 22: availability, open conversations (resolved ones left out) and capacity (null: no limit) beside them.
    {
      agent_id: "A",
      online: true,
      contacts: 0,
      availability: "online",
      availability_since: 0,
      open: 0,
      capacity: null,
    },
    {
      agent_id: "B",
      online: true,
      contacts: 1,
      availability: "online",
      availability_since: 0,
      open: 1,
      capacity: null,
    },
  ]);
});

Deno.test("workplace: names and notes are the owner's, checked, and kept across a restart with previews", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kefu-workplace-" });
  try {
    {
      await using t = await startService({ DATA_DIR: dir });
      await using a = await AgentClient.open(agentUrl(t, "A"));
      await push(t.http, "oUser", "第一条", "A");
      await push(t.http, "oUser", "发票怎么开？", "A");
      await a.next(1001);
      const set = await call(contactUrl(t.http, "oUser", "A"), "PATCH", { display_name: " 王先生 ", note: "老客户" });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      assert.deepEqual([set.body.data.contact.display_name, set.body.data.contact.note], ["王先生", "老客户"]);
      assert.equal((await call(contactUrl(t.http, "oUser", "B"), "PATCH", { note: "x" })).status, 403);
      const bad = await call(contactUrl(t.http, "oUser", "A"), "PATCH", { display_name: 5 });
      assert.deepEqual([bad.status, bad.body.data.error], [400, "wrong_type"]);
      const empty = await call(contactUrl(t.http, "oUser", "A"), "PATCH", {});
      assert.deepEqual([empty.status, empty.body.data.error], [400, "missing_field"]);
      const long = await call(contactUrl(t.http, "oUser", "A"), "PATCH", { display_name: "名".repeat(65) });
      assert.deepEqual([long.status, long.body.data.error], [400, "wrong_type"]);
    }
    await using t = await startService({ DATA_DIR: dir });
    const [c] = await contactsOf(t.http, "A");
    assert.deepEqual(
      [c.display_name, c.note, c.status, c.last_message.content, c.last_message.direction, c.reply_window],
      ["王先生", "老客户", "open", "发票怎么开？", "in", null],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workplace: search finds an agent's contacts and message text, Chinese and short words too, never others'", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kefu-search-" });
  try {
    await using t = await startService({ DATA_DIR: dir });
    await using a = await AgentClient.open(agentUrl(t, "A"));
    await using b = await AgentClient.open(agentUrl(t, "B"));
    await push(t.http, "u1", "我想申请退款，订单号 A-1024", "A");
    await push(t.http, "u2", "Where is my REFUND?", "A");
    await push(t.http, "u3", "退款 for B's user", "B");
    await push(t.http, "u4", "100%_off", "A");
    await call(contactUrl(t.http, "u2", "A"), "PATCH", { display_name: "李女士" });
    const search = async (q: string) =>
      (await getJson(`${t.http}${BASE}/search?userid=A&q=${encodeURIComponent(q)}`)).body.data;

    // Any part of a text: Chinese without word breaks, English in any case, an order number.
    assert.deepEqual((await search("申请退")).messages.map((m: Json) => m.contact_id), ["u1"]);
    assert.deepEqual((await search("退款")).messages.map((m: Json) => m.contact_id), ["u1"]);
    assert.deepEqual((await search("refund")).messages.map((m: Json) => m.contact_id), ["u2"]);
    assert.deepEqual((await search("A-1024")).messages.map((m: Json) => m.content), ["我想申请退款，订单号 A-1024"]);
    // LIKE's wildcards are text here.
    assert.deepEqual((await search("%_")).messages.map((m: Json) => m.contact_id), ["u4"]);
    assert.deepEqual((await search('"quoted"')).messages, []);
    const byName = await search("李女");
    assert.deepEqual([byName.contacts.map((c: Json) => c.contact_id), byName.messages], [["u2"], []]);

    for (const q of ["", " "]) {
      const r = await getJson(`${t.http}${BASE}/search?userid=A&q=${encodeURIComponent(q)}`);
      assert.deepEqual([r.status, r.body.data.error], [400, "missing_field"]);
    }
    const big = await getJson(`${t.http}${BASE}/search?userid=A&q=x&limit=1000`);
    assert.deepEqual([big.status, big.body.data.error], [400, "wrong_type"]);
    assert.equal((await getJson(`${t.http}${BASE}/search?q=x`)).status, 400);
    a.drain();
    b.drain();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workplace: an Official Account user's contact shows WeChat's reply windows as the sender spends them", async () => {
  const APPID = "wx00000000000000w1";
  await using wechat = startWechat({ appId: APPID, appSecret: "s" });
  await using t = await startService({
    WECHAT_TOKEN: "tok",
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: "s",
    WECHAT_API_BASE: wechat.url,
  });
  await using a = await AgentClient.open(agentUrl(t, "A"));
  const follow = `<xml><ToUserName><![CDATA[gh_a]]></ToUserName><FromUserName><![CDATA[oFan]]></FromUserName>` +
    `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType><![CDATA[event]]></MsgType>` +
    `<Event><![CDATA[subscribe]]></Event></xml>`;
  const r = await fetch(`${t.http}/wechat${await signedQuery("tok")}`, { method: "POST", body: follow });
  assert.equal(await r.text(), "success");
  await a.next(102);
  const now = Math.floor(Date.now() / 1000);
  let [c] = await contactsOf(t.http, "A");
  assert.equal(c.reply_window.message_until, 0);
  assert.equal(c.reply_window.message_left, 0);
  assert.equal(c.reply_window.event_left, 3);
  assert.ok(Math.abs(c.reply_window.event_until - (now + 60)) <= 2, JSON.stringify(c.reply_window));

  wechat.sim.recordInteraction("oFan", "follow");
  a.send({
    data: { id: "r1", contact_id: "oFan", send_time: now, msg: { content: "欢迎关注" } },
    result: { code: 1001, message: "common" },
  });
  assert.equal((await a.next(103)).data.status, "sent");
  [c] = await contactsOf(t.http, "A");
  assert.equal(c.reply_window.event_left, 2);
});

Deno.test({
  name: "workplace: a user who wrote over 48 hours ago shows an expired window, not one never opened",
  // The old message is written into a SQLite file before kefu starts on it.
  ignore: onPostgres(),
}, async () => {
  const APPID = "wx00000000000000w2";
  const dir = await Deno.makeTempDir({ prefix: "kefu-window-" });
  try {
    const wrote = Math.floor(Date.now() / 1000) - 49 * 3600;
    const store = new SqliteStore({ path: storePath(dir) });
    await store.acceptInbound({
      message: {
        id: "m-old",
        direction: "in",
        channel: "wx_official_account",
        account: APPID,
        contact: "oOld",
        agent: "",
        company: "",
        type: "text",
        content: "hello",
        media: "",
        sendTime: wrote,
        name: "oOld",
        avatar: "",
      },
      requested: "A",
      online: [],
      away: new Set(),
    });
    await store.close();
    await using wechat = startWechat({ appId: APPID, appSecret: "s" });
    await using t = await startService({
      DATA_DIR: dir,
      WECHAT_TOKEN: "tok",
      WECHAT_APPID: APPID,
      WECHAT_APPSECRET: "s",
      WECHAT_API_BASE: wechat.url,
    });
    const [c] = await contactsOf(t.http, "A");
    assert.deepEqual(c.reply_window, {
      message_until: wrote + 48 * 3600,
      message_left: 0,
      event_until: 0,
      event_left: 0,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("workplace: a user put back in the queue stays there — agents connecting or their next message do not take them", async () => {
  await using t = await startService();
  await using a = await AgentClient.open(`${agentUrl(t, "A")}&ack=1`);
  await push(t.http, "u1", "first question", "A");
  await a.next(1001);
  await call(contactUrl(t.http, "u1", "A", "/release"), "POST", {});
  await a.next(106);

  // An agent connecting takes the users who wrote while nobody was online, never the queue.
  await using c = await AgentClient.open(`${agentUrl(t, "C")}&ack=1`);
  const waiting = await post(`${t.http}/send`, userXml("u1", "hello?"));
  assert.deepEqual([waiting.status, waiting.body.data.agent_id], [202, ""]);
  const update = await a.next(106);
  assert.deepEqual([update.data.action, update.data.contact.agent_id, update.data.contact.unread], ["queued", "", 2]);
  assert.deepEqual(a.drain().filter((e) => e.result.code === 1001), []);
  assert.deepEqual(c.drain().filter((e) => e.result.code === 1001), []);
  assert.deepEqual((await getJson(`${t.http}${BASE}/queue?userid=C`)).body.data.contacts.map((x: Json) => x.unread), [
    2,
  ]);
  // Any agent may read a waiting user's conversation before taking them.
  assert.equal((await historyOf(t.http, "C", "u1")).status, 200);

  // Whoever takes the user gets both unread messages.
  assert.equal((await call(contactUrl(t.http, "u1", "C", "/take"), "POST", {})).status, 200);
  await c.next(106);
  assert.deepEqual([(await c.next(1001)).data.msg.content, (await c.next(1001)).data.msg.content], [
    "first question",
    "hello?",
  ]);
});

Deno.test("workplace: a transfer to an offline agent holds the user for them; held counts follow the contact", async () => {
  // 3 s of grace: from the transfer to C until the transfer on to B the test does several round trips (on PostgreSQL
  // too), which a slow machine must finish before kefu's away job gives the user to A, who is online.
  await using t = await startService({ REASSIGN_AFTER_SECONDS: "3" });
  // C has a contact and goes offline, longer ago than the grace period.
  {
    await using c = await AgentClient.open(agentUrl(t, "C"));
    await push(t.http, "u9", "hi C", "C");
    await c.next(1001);
    // Read once it left kefu: nothing of C's waits (so the away job has no user of C's to move).
    await eventually("nothing held", async () => (await getJson(`${t.http}/healthz`)).body.held === 0);
  }
  await new Promise((r) => setTimeout(r, 3200));
  await using a = await AgentClient.open(agentUrl(t, "A"));
  await push(t.http, "u1", "hi A", "A");
  await a.next(1001);
  // What C's and A's sockets got is read once it left kefu (a read that comes after the transfer would be C's to do).
  await eventually("nothing held", async () => (await getJson(`${t.http}/healthz`)).body.held === 0);
  const moved = await call(contactUrl(t.http, "u1", "A", "/transfer"), "POST", { to_agent_id: "C" });
  assert.equal(moved.status, 200, JSON.stringify(moved.body));
  // The user's next message waits for C (the grace period starts at the transfer), not for whoever is online.
  const r = await post(`${t.http}/send`, userXml("u1", "still there?"));
  assert.deepEqual([r.status, r.body.data.status, r.body.data.agent_id], [202, "queued", "C"]);
  // Only that message waits (what A's and C's sockets got is read once it left kefu).
  await eventually("one message held", async () => (await getJson(`${t.http}/healthz`)).body.held === 1);

  // Handed on to an online agent: the held message goes along, and is no longer counted as held.
  await using b = await AgentClient.open(agentUrl(t, "B"));
  const on = await call(contactUrl(t.http, "u1", "C", "/transfer"), "POST", { to_agent_id: "B" });
  assert.equal(on.status, 200, JSON.stringify(on.body));
  await b.next(106);
  assert.equal((await b.next(1001)).data.msg.content, "still there?");
  await eventually("nothing held", async () => (await getJson(`${t.http}/healthz`)).body.held === 0);
  a.drain();
});

Deno.test("workplace: awaiting_reply says the user wrote last — events do not count, a reply or a resolve clears it, a restart keeps it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kefu-awaiting-" });
  try {
    {
      await using t = await startService({ DATA_DIR: dir });
      await using a = await AgentClient.open(agentUrl(t, "A"));
      const awaiting = async () =>
        Object.fromEntries((await contactsOf(t.http, "A")).map((c) => [c.contact_id, c.awaiting_reply]));
      await push(t.http, "u1", "在吗", "A");
      await push(t.http, "u2", "", "A");
      await a.next(1001);
      // u2 only followed: a WeChat event, nothing to answer.
      await post(`${t.http}/send`, userXml("u3", "", { to: "A", type: "event" }));
      await push(t.http, "u4", "退货", "A");
      a.send({ data: { id: "r1", contact_id: "u4", msg: { content: "好的" } }, result: { code: 1001, message: "c" } });
      await a.next(-1); // the pushed user has no way back: the reply is kept as failed, and it was an answer
      assert.deepEqual((await awaiting()).u1, true);
      assert.deepEqual((await awaiting()).u3, false);
      assert.deepEqual((await awaiting()).u4, false);
      await call(contactUrl(t.http, "u1", "A", "/resolve"), "POST", {});
      assert.equal((await awaiting()).u1, false);
      await call(contactUrl(t.http, "u1", "A", "/reopen"), "POST", {});
      assert.equal((await awaiting()).u1, true);
    }
    await using t = await startService({ DATA_DIR: dir });
    const after = Object.fromEntries((await contactsOf(t.http, "A")).map((c) => [c.contact_id, c]));
    assert.deepEqual([after.u1.awaiting_reply, after.u3.awaiting_reply, after.u4.awaiting_reply], [true, false, false]);
    // The reopen is u1's last workflow line; its last message is still the user's.
    assert.deepEqual([after.u1.last_event.event.action, after.u1.last_message.content], ["reopened", "在吗"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
