/**
 * The supervisor's view through the real service (issue 22): the team's state and every conversation for supervisors
 * and admins only (403 for an agent); a session with `?watch=1` sees every agent's conversations live (code 109), an
 * agent's does not; assigning any contact to any agent, two supervisors at once → one wins, the other 409; internal
 * notes stored, shown in history and live to the contact's agent (108) and the watchers, and never sent to the user
 * (the push's reply receiver gets the reply only). tests/on_postgres_test.ts runs this file again on PostgreSQL.
 */

import assert from "node:assert/strict";
import { AgentClient, agentUrl, post, startTeam, type TestService, userXml } from "../helpers.ts";

const BASE = "/im_component/wx_official_account";

// deno-lint-ignore no-explicit-any
type Json = any;

/** What the push's reply URL received (the replies kefu sent to users). */
function startReceiver() {
  const received: Json[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    received.push(await req.json());
    return new Response("ok");
  });
  return {
    received,
    url: `http://127.0.0.1:${server.addr.port}/replies`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** kefu with sup (supervisor), adm (admin), a1 and a2 (agents) in CONFIG_FILE; replies to pushed users to `replyUrl`. */
function team(replyUrl: string): Promise<TestService> {
  return startTeam(
    [{ id: "sup", role: "supervisor" }, { id: "adm", role: "admin" }, { id: "a1" }, { id: "a2" }],
    { PUSH_REPLY_URL: replyUrl, METRICS_TOKEN: METRICS },
  );
}

async function call(t: TestService, agent: string, method: string, path: string, body?: unknown) {
  const sep = path.includes("?") ? "&" : "?";
  const res = await fetch(`${t.http}${BASE}${path}${sep}userid=${encodeURIComponent(agent)}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() as Json };
}

function expectError(r: { status: number; body: Json }, status: number, kind: string, says: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.data.error, kind);
  assert.match(r.body.data.detail, says);
}

async function push(t: TestService, user: string, text: string, agent: string): Promise<void> {
  const r = await post(`${t.http}/send`, userXml(user, text, { to: agent }));
  // 202: kept for an agent who is not connected.
  assert.ok(r.status === 200 || r.status === 202, JSON.stringify(r.body));
}

const watchUrl = (t: TestService, agent: string) => `${agentUrl(t, agent)}&ack=1&watch=1`;

const METRICS = "team-metrics-token-0123";

/** The replies channels took, as /metrics counts them (every channel, every account). */
async function repliesSent(t: TestService): Promise<number> {
  const res = await fetch(`${t.http}/metrics`, { headers: { authorization: `Bearer ${METRICS}` } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return text.split("\n").filter((l) => l.startsWith("kefu_replies_sent_total"))
    .reduce((n, l) => n + Number(l.split(" ").at(-1)), 0);
}

Deno.test("team: the state and every conversation are for supervisors and admins; an agent gets 403", async () => {
  await using receiver = startReceiver();
  await using t = await team(receiver.url);
  await push(t, "u1", "你好", "a1");
  await push(t, "u2", "在吗", "a1");
  await push(t, "u3", "hello", "a2");

  for (const path of ["/team", "/team/contacts", "/team/contacts?agent_id=a2"]) {
    expectError(await call(t, "a1", "GET", path), 403, "role_required", /agent "a1" is an agent; only supervisors/);
  }
  const state = await call(t, "sup", "GET", "/team");
  assert.equal(state.status, 200, JSON.stringify(state.body));
  assert.equal(state.body.data.role, "supervisor");
  const byId = Object.fromEntries(state.body.data.agents.map((a: Json) => [a.agent_id, a]));
  assert.deepEqual(Object.keys(byId).sort(), ["a1", "a2", "adm", "sup"]);
  assert.deepEqual(
    [byId.a1.role, byId.a1.online, byId.a1.availability, byId.a1.open, byId.a1.unread, byId.a1.awaiting],
    ["agent", false, "online", 2, 2, 2],
  );
  assert.equal(byId.adm.role, "admin");
  assert.ok(["u1", "u2"].includes(byId.a1.oldest_waiting.contact_id), JSON.stringify(byId.a1));
  assert.ok(byId.a1.oldest_waiting.waiting_seconds >= 0);
  assert.equal(byId.sup.oldest_waiting, undefined, "nobody waits for sup");
  assert.deepEqual(state.body.data.queue, []);

  const all = await call(t, "adm", "GET", "/team/contacts");
  assert.deepEqual(all.body.data.contacts.map((c: Json) => c.contact_id).sort(), ["u1", "u2", "u3"]);
  const a2 = await call(t, "sup", "GET", "/team/contacts?agent_id=a2");
  assert.deepEqual(a2.body.data.contacts.map((c: Json) => [c.contact_id, c.agent_id]), [["u3", "a2"]]);
  expectError(await call(t, "sup", "GET", "/team/contacts?agent_id="), 400, "missing_field", /agent_id= is empty/);
  expectError(await call(t, "sup", "GET", "/team/contacts?agent_id=a1&queue=1"), 400, "wrong_type", /not both/);

  // A supervisor reads any conversation; an agent only its own.
  const history = await call(t, "sup", "GET", "/history?contact_id=u3");
  assert.equal(history.status, 200, JSON.stringify(history.body));
  assert.equal(history.body.data.messages[0].msg.content, "hello");
  expectError(await call(t, "a1", "GET", "/history?contact_id=u3"), 403, "not_your_contact", /another agent/);
  assert.equal((await call(t, "sup", "GET", "/contacts/u3")).body.data.contact.agent_id, "a2");
});

Deno.test("team: a supervisor watching sees every agent's messages and replies live; an agent's socket does not", async () => {
  await using receiver = startReceiver();
  await using t = await team(receiver.url);
  await using sup = await AgentClient.open(watchUrl(t, "sup"));
  await using a1 = await AgentClient.open(watchUrl(t, "a1"));
  await using a2 = await AgentClient.open(`${agentUrl(t, "a2")}&ack=1`);
  await sup.settle();

  await push(t, "u1", "A 的用户", "a1");
  await push(t, "u2", "B 的用户", "a2");
  assert.equal((await a1.next(1001)).data.msg.content, "A 的用户");
  assert.equal((await a2.next(1001)).data.msg.content, "B 的用户");
  const seen = [await sup.next(109), await sup.next(109)];
  assert.deepEqual(
    seen.map((e) => [e.data.agent_id, e.data.type, e.data.item.direction, e.data.item.msg.content]).sort(),
    [["a1", "message", "in", "A 的用户"], ["a2", "message", "in", "B 的用户"]],
  );

  a2.send({
    data: { id: "r1", contact_id: "u2", msg: { content: "您好，我是 B" } },
    result: { code: 1001, message: "c" },
  });
  assert.equal((await a2.next(103)).data.id, "r1");
  const reply = await sup.next(109);
  assert.deepEqual(
    [reply.data.agent_id, reply.data.item.id, reply.data.item.direction, reply.data.item.state],
    ["a2", "r1", "out", "sent"],
  );
  assert.equal(reply.data.item.msg.content, "您好，我是 B");
  const a1Frames = await a1.settle();
  assert.ok(!a1Frames.some((e) => e.result.code === 109), "an agent asking to watch is not given the team");
  assert.equal(receiver.received.length, 1);

  // A user put back in the queue writes again: no agent's session gets it, the watchers do.
  assert.equal((await call(t, "a1", "POST", "/contacts/u1/release", {})).status, 200);
  await sup.settle();
  const r = await post(`${t.http}/send`, userXml("u1", "还有人吗？"));
  assert.equal(r.body.data.status, "queued", JSON.stringify(r.body));
  const queued = (await sup.settle()).filter((e) => e.result.code === 109 && e.data.type === "message");
  assert.deepEqual(queued.map((e) => [e.data.agent_id, e.data.item.msg.content]), [["", "还有人吗？"]]);
});

Deno.test("team: two supervisors assign one contact at once — one wins, the other gets 409; agents are told", async () => {
  await using receiver = startReceiver();
  await using t = await team(receiver.url);
  await using a2 = await AgentClient.open(`${agentUrl(t, "a2")}&ack=1`);
  await using watcher = await AgentClient.open(watchUrl(t, "adm"));
  await push(t, "u1", "我要退款", "a1");
  await watcher.next(109);

  expectError(
    await call(t, "a1", "POST", "/contacts/u1/assign", { to_agent_id: "a2" }),
    403,
    "role_required",
    /cannot assign contact "u1": agent "a1" is an agent/,
  );
  expectError(await call(t, "sup", "POST", "/contacts/u1/assign", {}), 400, "missing_field", /to_agent_id/);
  expectError(
    await call(t, "sup", "POST", "/contacts/u1/assign", { to_agent_id: "ghost" }),
    404,
    "unknown_agent",
    /no such agent/,
  );
  expectError(await call(t, "sup", "POST", "/contacts/u1/assign", "{"), 400, "invalid_json", /cannot read/);

  const [x, y] = await Promise.all([
    call(t, "sup", "POST", "/contacts/u1/assign", { to_agent_id: "a2", from_agent_id: "a1" }),
    call(t, "adm", "POST", "/contacts/u1/assign", { to_agent_id: "sup", from_agent_id: "a1" }),
  ]);
  const statuses = [x.status, y.status].sort();
  assert.deepEqual(statuses, [200, 409], JSON.stringify([x.body, y.body]));
  const lost = x.status === 409 ? x : y;
  assert.equal(lost.body.data.error, "conflict");
  assert.match(lost.body.data.detail, /it is no longer agent "a1"'s/);
  const won = x.status === 200 ? x : y;
  const to = won.body.data.contact.agent_id;
  assert.equal((await call(t, "sup", "GET", "/contacts/u1")).body.data.contact.agent_id, to, "the winner's stands");

  // The supervisor takes it over (assigns it to themselves) from whoever has it now.
  const take = await call(t, "sup", "POST", "/contacts/u1/assign", { to_agent_id: "sup", from_agent_id: to });
  if (to === "sup") expectError(take, 400, "invalid_transfer", /it is theirs/);
  else assert.equal(take.body.data.contact.agent_id, "sup");
  if (to === "a2") {
    const told = await a2.next(106);
    assert.deepEqual([told.data.action, told.data.to_agent_id, told.data.by], ["transferred", "a2", "sup"]);
  }
  const watched = await watcher.next(109);
  assert.deepEqual([watched.data.type, watched.data.action], ["contact", "transferred"]);
  // Each transfer once for the watchers, though both its agents (and the one acting) are told; no hand-over repeats.
  const more = (await watcher.settle()).filter((e) => e.result.code === 109);
  assert.deepEqual(
    more.map((e) => [e.data.type, e.data.action ?? e.data.item?.id]),
    to === "sup" ? [] : [["contact", "transferred"]],
  );
  const lines = (await call(t, "adm", "GET", "/history?contact_id=u1")).body.data.messages
    .filter((m: Json) => m.direction === "system");
  assert.ok(lines.length >= 1);
  assert.equal(lines.at(-1).event.from_agent_id, "a1");
});

Deno.test("team: an internal note is kept, shown live to the agent and the watchers, and never sent to the user", async () => {
  await using receiver = startReceiver();
  await using t = await team(receiver.url);
  await using a1 = await AgentClient.open(`${agentUrl(t, "a1")}&ack=1`);
  await using sup = await AgentClient.open(watchUrl(t, "sup"));
  await push(t, "u1", "什么时候发货？", "a1");
  await a1.next(1001);
  await sup.next(109);
  const sentBefore = await repliesSent(t);

  const noted = await call(t, "sup", "POST", "/contacts/u1/notes", { content: "  VIP 客户，优先处理  " });
  assert.equal(noted.status, 200, JSON.stringify(noted.body));
  const note = noted.body.data.note;
  assert.deepEqual([note.direction, note.agent_id, note.msg.content], ["note", "sup", "VIP 客户，优先处理"]);
  const live = await a1.next(108);
  assert.deepEqual([live.data.id, live.data.direction, live.data.agent_id], [note.id, "note", "sup"]);
  const watched = await sup.next(109);
  assert.deepEqual([watched.data.agent_id, watched.data.item.id], ["a1", note.id]);

  // The agent answers it with a note of its own; another agent may not write in it.
  assert.equal((await call(t, "a1", "POST", "/contacts/u1/notes", { content: "收到" })).status, 200);
  expectError(await call(t, "a2", "POST", "/contacts/u1/notes", { content: "x" }), 403, "not_your_contact", /u1/);
  expectError(await call(t, "sup", "POST", "/contacts/u1/notes", { content: " " }), 400, "missing_field", /content/);
  expectError(await call(t, "sup", "POST", "/contacts/u1/notes", { content: 7 }), 400, "missing_field", /content/);
  expectError(await call(t, "sup", "POST", "/contacts/nobody/notes", { content: "x" }), 404, "not_found", /nobody/);

  const history = (await call(t, "a1", "GET", "/history?contact_id=u1")).body.data.messages;
  assert.deepEqual(history.map((m: Json) => [m.direction, m.msg.content]), [
    ["note", "收到"],
    ["note", "VIP 客户，优先处理"],
    ["in", "什么时候发货？"],
  ]);
  const [u1] = (await call(t, "a1", "GET", "/contacts")).body.data.contacts;
  assert.equal(u1.awaiting_reply, true, "a note is no answer");
  assert.equal(u1.last_message.content, "什么时候发货？", "the preview is still the user's message");
  assert.deepEqual(receiver.received, [], "no note reached the user");
  assert.equal(await repliesSent(t), sentBefore, "the channels' reply count did not move");
  // While a reply moves it (the count above could have failed).
  a1.send({ data: { id: "r1", contact_id: "u1", msg: { content: "今天发" } }, result: { code: 1001, message: "c" } });
  await a1.next(103);
  assert.equal(await repliesSent(t), sentBefore + 1);
  assert.equal(receiver.received.length, 1);
});
