/**
 * Availability, capacity and the queue through the real service (issue 22): busy and away agents get no new users,
 * resolved conversations do not count against capacity, a freed slot takes the longest-waiting user, round-robin
 * order, the API's answers (availability, open, capacity, queue positions and waiting time) and its refusals.
 */

import assert from "node:assert/strict";
import { AgentClient, agentUrl, eventually, getJson, post, startService, userXml } from "../helpers.ts";

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

async function push(http: string, user: string, text: string): Promise<Json> {
  const r = await post(`${http}/send`, userXml(user, text));
  // 202: kept, waiting (for an agent, or in the queue).
  assert.ok(r.status === 200 || r.status === 202, JSON.stringify(r.body));
  return r.body;
}

const setAvailability = (http: string, agent: string, availability: unknown) =>
  call(`${http}${BASE}/agents/me?userid=${agent}`, "PATCH", { availability });
const agentsOf = async (http: string, agent: string): Promise<Json[]> =>
  (await getJson(`${http}${BASE}/agents?userid=${agent}`)).body.data.agents;
const queueOf = async (http: string, agent: string): Promise<Json[]> =>
  (await getJson(`${http}${BASE}/queue?userid=${agent}`)).body.data.contacts;
const ownerOf = async (http: string, agent: string, id: string): Promise<string> =>
  (await getJson(`${http}${BASE}/contacts/${id}?userid=${agent}`)).body.data.contact.agent_id;

Deno.test("assignment: busy and away agents get no new users and keep theirs; colleagues hear of it (107)", async () => {
  await using t = await startService();
  await using a = await AgentClient.open(`${agentUrl(t, "A")}&ack=1`);
  await using b = await AgentClient.open(`${agentUrl(t, "B")}&ack=1`);
  await push(t.http, "u1", "hi");
  const first = await ownerOf(t.http, "A", "u1");
  const other = first === "A" ? "B" : "A";

  const busy = await setAvailability(t.http, first, "busy");
  assert.equal(busy.status, 200, JSON.stringify(busy.body));
  assert.deepEqual([busy.body.data.agent.availability, busy.body.data.agent.open], ["busy", 1]);
  // Both pages hear of it.
  for (const s of [a, b]) {
    const e = await s.next(107);
    assert.deepEqual([e.data.agent_id, e.data.availability], [first, "busy"]);
  }
  await push(t.http, "u2", "hello");
  await push(t.http, "u3", "hello");
  assert.equal(await ownerOf(t.http, other, "u2"), other);
  assert.equal(await ownerOf(t.http, other, "u3"), other);
  await push(t.http, "u1", "still there?");
  assert.equal(await ownerOf(t.http, first, "u1"), first, "a busy agent keeps their own");

  await setAvailability(t.http, other, "away");
  await push(t.http, "u4", "anyone?");
  assert.deepEqual((await queueOf(t.http, "A")).map((c: Json) => [c.contact_id, c.queue_position]), [["u4", 1]]);
  const listed = await agentsOf(t.http, "A");
  assert.deepEqual(
    listed.map((x: Json) => [x.agent_id, x.online, x.availability, x.open, x.capacity]),
    [["A", true, first === "A" ? "busy" : "away", first === "A" ? 1 : 2, null], [
      "B",
      true,
      first === "B" ? "busy" : "away",
      first === "B" ? 1 : 2,
      null,
    ]],
  );
  // Back online: the waiting user goes to them at once.
  await setAvailability(t.http, first, "online");
  await eventually("the queue emptied", async () => (await queueOf(t.http, "A")).length === 0);
  assert.equal(await ownerOf(t.http, first, "u4"), first);
});

Deno.test("assignment: capacity; resolved ones do not count; a freed slot takes the longest-waiting user", async () => {
  await using t = await startService({ AGENT_CAPACITY: "1" });
  await using a = await AgentClient.open(`${agentUrl(t, "A")}&ack=1`);
  await push(t.http, "u1", "first");
  assert.equal((await a.next(1001)).data.msg.content, "first");
  await push(t.http, "u2", "second");
  await push(t.http, "u3", "third");
  const queue = await queueOf(t.http, "A");
  assert.deepEqual(queue.map((c: Json) => [c.contact_id, c.queue_position]), [["u2", 1], ["u3", 2]]);
  assert.ok(queue.every((c: Json) => Number.isInteger(c.waiting_seconds) && c.waiting_seconds >= 0));
  assert.deepEqual((await agentsOf(t.http, "A")).map((x: Json) => [x.agent_id, x.open, x.capacity]), [["A", 1, 1]]);

  const resolved = await call(`${t.http}${BASE}/contacts/u1/resolve?userid=A`, "POST");
  assert.equal(resolved.status, 200, JSON.stringify(resolved.body));
  // The longest-waiting user comes with their message; the other keeps waiting, now first.
  const assigned = await a.next(106);
  while (assigned.data.action !== "assigned") Object.assign(assigned, await a.next(106));
  assert.deepEqual([assigned.data.contact.contact_id, assigned.data.to_agent_id], ["u2", "A"]);
  assert.equal((await a.next(1001)).data.msg.content, "second");
  // The history keeps who got the user from the queue, and when.
  const history = await call(`${t.http}${BASE}/history?userid=A&contact_id=u2`, "GET");
  const line = history.body.data.messages.find((m: Json) => m.direction === "system");
  assert.deepEqual([line?.event?.action, line?.event?.by, line?.event?.to_agent_id], ["assigned", "kefu", "A"]);
  assert.deepEqual((await queueOf(t.http, "A")).map((c: Json) => [c.contact_id, c.queue_position]), [["u3", 1]]);
  assert.deepEqual((await agentsOf(t.http, "A")).map((x: Json) => x.open), [1], "the resolved one does not count");
  // The resolved user writing again reopens their conversation with their agent, over capacity (it is theirs).
  await push(t.http, "u1", "one more thing");
  assert.equal(await ownerOf(t.http, "A", "u1"), "A");
});

Deno.test("assignment: two slots freeing at once assign each waiting user once", async () => {
  await using t = await startService({ AGENT_CAPACITY: "1" });
  await using _a = await AgentClient.open(`${agentUrl(t, "A")}&ack=1`);
  await using _b = await AgentClient.open(`${agentUrl(t, "B")}&ack=1`);
  for (const u of ["u1", "u2", "w1", "w2", "w3"]) await push(t.http, u, `from ${u}`);
  const firstA = (await getJson(`${t.http}${BASE}/contacts?userid=A`)).body.data.contacts[0].contact_id;
  const firstB = (await getJson(`${t.http}${BASE}/contacts?userid=B`)).body.data.contacts[0].contact_id;
  assert.deepEqual([firstA, firstB].sort(), ["u1", "u2"]);
  const [ra, rb] = await Promise.all([
    call(`${t.http}${BASE}/contacts/${firstA}/resolve?userid=A`, "POST"),
    call(`${t.http}${BASE}/contacts/${firstB}/resolve?userid=B`, "POST"),
  ]);
  assert.deepEqual([ra.status, rb.status], [200, 200]);
  await eventually("two users left the queue", async () => (await queueOf(t.http, "A")).length === 1);
  const ownersA = (await getJson(`${t.http}${BASE}/contacts?userid=A`)).body.data.contacts.map((c: Json) =>
    c.contact_id
  );
  const ownersB = (await getJson(`${t.http}${BASE}/contacts?userid=B`)).body.data.contacts.map((c: Json) =>
    c.contact_id
  );
  const taken = [...ownersA, ...ownersB].filter((id: string) => id.startsWith("w")).sort();
  assert.deepEqual(taken, ["w1", "w2"], "the two longest-waiting, each once");
  assert.deepEqual((await queueOf(t.http, "A")).map((c: Json) => c.contact_id), ["w3"]);
  assert.deepEqual((await agentsOf(t.http, "A")).map((x: Json) => x.open), [1, 1]);
});

Deno.test("assignment: round-robin gives each available agent a turn", async () => {
  await using t = await startService({ ASSIGN_POLICY: "round_robin" });
  await using _a = await AgentClient.open(`${agentUrl(t, "A")}&ack=1`);
  await using _b = await AgentClient.open(`${agentUrl(t, "B")}&ack=1`);
  for (const u of ["u1", "u2", "u3", "u4"]) await push(t.http, u, "hi");
  const ofA = (await getJson(`${t.http}${BASE}/contacts?userid=A`)).body.data.contacts.map((c: Json) => c.contact_id);
  const got = ["u1", "u2", "u3", "u4"].map((u) => ofA.includes(u) ? "A" : "B");
  assert.notEqual(got[0], got[1]);
  assert.deepEqual([got[2], got[3]], [got[0], got[1]], "turns alternate");
});

Deno.test("assignment: bad availability and bad capacity are refused clearly", async () => {
  await using t = await startService();
  const bad = await setAvailability(t.http, "A", "sleeping");
  assert.equal(bad.status, 400);
  assert.match(bad.body.data.detail, /cannot set the availability of agent "A" to "sleeping": expected one of online/);
  const missing = await call(`${t.http}${BASE}/agents/me?userid=A`, "PATCH", {});
  assert.equal(missing.status, 400);
  assert.match(missing.body.data.detail, /availability is required/);
  const notJson = await call(`${t.http}${BASE}/agents/me?userid=A`, "PATCH", "{nope");
  assert.equal(notJson.status, 400);
  await assert.rejects(() => startService({ AGENT_CAPACITY: "-1" }), /AGENT_CAPACITY/);
  await assert.rejects(() => startService({ ASSIGN_POLICY: "random" }), /ASSIGN_POLICY/);
});

Deno.test("assignment: a user whose agent is away goes only to an agent who is online and under capacity", async () => {
  await using t = await startService({ REASSIGN_AFTER_SECONDS: "1", AGENT_CAPACITY: "1" });
  {
    await using c = await AgentClient.open(agentUrl(t, "C"));
    await post(`${t.http}/send`, userXml("u1", "for C", { to: "C" }));
    await c.next(1001);
  }
  await using _a = await AgentClient.open(`${agentUrl(t, "A")}&ack=1`);
  assert.equal((await setAvailability(t.http, "A", "busy")).status, 200);
  // C has been away past the grace period and u1 waits with a message: A is busy, so u1 stays C's.
  await push(t.http, "u1", "anyone?");
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(await ownerOf(t.http, "C", "u1"), "C");
  // A is online again: the reassign job moves u1 (A has a free slot).
  await setAvailability(t.http, "A", "online");
  await eventually("u1 moved to A", async () => (await ownerOf(t.http, "A", "u1").catch(() => "")) === "A");
});
