/**
 * The seed 003 dialect through the real service: the seed's own URL with a
 * token, its events field by field, the unread list on connect, read reports
 * (event 3, and event 2 as the seed's example writes it), its error codes, and
 * a reply by kefu's event 4.
 */

import assert from "node:assert/strict";
import { seedSign } from "../../../src/agents/auth/auth.ts";
import { createTime } from "../../../src/agents/dialects/seed003.ts";
import { AgentClient, getJson, post, startService, type TestService, userXml } from "../../helpers.ts";

const SECRET = "kefu-demo-secret-0123";

async function tokenFor(t: TestService, uid: string): Promise<string> {
  const ts = String(Math.floor(Date.now() / 1000));
  const r = await getJson(`${t.http}/auth/websocket?uid=${uid}&timestamp=${ts}&sign=${seedSign(uid, ts, SECRET)}`);
  return r.body.content.token;
}

/** A seed 003 client: frames as parsed JSON, in order. */
class Seed003Client extends AgentClient {
  // deno-lint-ignore no-explicit-any
  async event(n: number, timeoutMs = 5000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frames = await this.settle(50);
      const hit = frames.find((f) => f.event === n);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no event ${n} within ${timeoutMs} ms`);
    }
  }
}

async function open(url: string): Promise<Seed003Client> {
  const c = new Seed003Client(url);
  await c.opened;
  return c;
}

Deno.test("seed003: create_time is YYYY-MM-DD HH:MM:SS in Beijing time", () => {
  assert.equal(createTime(1630238441), "2021-08-29 20:00:41");
  assert.equal(createTime(0), "1970-01-01 08:00:00");
});

Deno.test("seed003: the unread list on connect, new messages as event 1, read reports, errors 2001 and 2002", async () => {
  // PUSH_OPEN: the test pushes without a token (with sign-in on, pushes are closed otherwise).
  await using t = await startService({ AGENT_SECRET: SECRET, PUSH_OPEN: "1" });
  // Two messages arrive while the agent is offline.
  for (const [id, text] of [["m1", "你好"], ["m2", "在吗？"]]) {
    const r = await post(`${t.http}/send`, userXml("oUser", text, { to: "a1", id }));
    assert.equal(r.status, 202);
  }
  const token = await tokenFor(t, "a1");
  // The seed's own URL: the root path with only a token.
  const c = await open(`${t.ws}?token=${token}`);
  const unread = await c.event(2);
  assert.deepEqual(Object.keys(unread), ["event", "data"]);
  assert.deepEqual(unread.data.msg_list.map((m: { _id: string; content: string }) => [m._id, m.content]), [
    ["m1", "你好"],
    ["m2", "在吗？"],
  ]);
  const first = unread.data.msg_list[0];
  // The seed's four fields, first and with the seed's types; kefu's beside them.
  assert.deepEqual(Object.keys(first).slice(0, 4), ["_id", "title", "content", "create_time"]);
  assert.equal(first.title, "oUser");
  assert.match(first.create_time, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
  assert.deepEqual([first.contact_id, first.msg_type], ["oUser", "text"]);

  // Live: event 1, {"msg":{…}}.
  await post(`${t.http}/send`, userXml("oUser", "still there", { to: "a1", id: "m3" }));
  const live = await c.event(1);
  assert.deepEqual(Object.keys(live.data), ["msg"]);
  assert.deepEqual([live.data.msg._id, live.data.msg.content, live.data.msg.title], ["m3", "still there", "oUser"]);

  // Read reports: event 3 as the seed's table has it, event 2 as the seed's example writes it.
  c.send({ event: 3, data: { msg_id: "m1" } });
  c.send({ event: 2, data: { msg_id: "m3" } });
  // Errors: 2001 data cannot be parsed, 2002 no such event; the socket stays open.
  c.send("{not json");
  const e1 = await c.event(0);
  assert.deepEqual([e1.data.code, typeof e1.data.error], [2001, "string"]);
  c.send({ event: 9, data: {} });
  const e2 = await c.event(0);
  assert.equal(e2.data.code, 2002);
  assert.match(e2.data.error, /no such event 9/);
  await c.close();
  const contacts = await getJson(`${t.http}/im_component/wx_official_account/contacts?token=${token}`);
  assert.equal(contacts.body.data.contacts[0].unread, 1, "m2 is left unread");

  // Reconnect: only what was not reported read.
  const again = await open(`${t.ws}/notify?token=${token}`);
  const list = await again.event(2);
  assert.deepEqual(list.data.msg_list.map((m: { _id: string }) => m._id), ["m2"]);
  await again.close();
});

Deno.test("seed003: an empty unread list on connect; a reply by event 4 is answered by event 5 or event 0", async () => {
  const replies: unknown[] = [];
  const receiver = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    replies.push(await req.json());
    return new Response("ok");
  });
  try {
    await using t = await startService({
      AGENT_SECRET: SECRET,
      PUSH_OPEN: "1",
      PUSH_REPLY_URL: `http://127.0.0.1:${receiver.addr.port}/`,
    });
    const token = await tokenFor(t, "a1");
    const c = await open(`${t.ws}?token=${token}`);
    assert.deepEqual((await c.event(2)).data, { msg_list: [] });
    await post(`${t.http}/send`, userXml("oUser", "help", { to: "a1", id: "q1" }));
    await c.event(1);
    c.send({ event: 4, data: { id: "r1", contact_id: "oUser", content: "您好" } });
    const ok = await c.event(5);
    assert.deepEqual([ok.data.id, ok.data.contact_id, ok.data.status], ["r1", "oUser", "sent"]);
    assert.equal(replies.length, 1);
    c.send({ event: 4, data: { id: "r2", contact_id: "nobody", content: "x" } });
    const err = await c.event(0);
    assert.deepEqual([err.data.code, err.data.kind, err.data.id], [2000, "not_found", "r2"]);
    c.send({ event: 4, data: { id: "r3", content: "x" } });
    assert.equal((await c.event(0)).data.code, 2001);
    await c.close();
  } finally {
    await receiver.shutdown();
  }
});

Deno.test("seed003: with sign-in off, ?dialect=seed003&userid= speaks it too", async () => {
  await using t = await startService();
  const c = await open(`${t.ws}/notify?userid=a1`);
  assert.deepEqual((await c.event(2)).data, { msg_list: [] });
  await c.close();
});
