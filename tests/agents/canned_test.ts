/**
 * Canned replies and contacts' tags through the real service (issue 22): roles from CONFIG_FILE (a plain agent may
 * not touch the team's replies: 403), another agent's own replies invisible and out of reach (404), bad input a clear
 * 400, shortcuts unique per owner (409); tags set by the owner or a supervisor, told to the owner's sockets (106
 * `updated` with the tags), listed with the contacts and found by the workplace search.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../../src/agents/auth/passwords.ts";
import { ConfigError, parseConfig } from "../../src/config/config.ts";
import { AgentClient, agentUrl, getJson, post, startTeam, type TestService, userXml } from "../helpers.ts";

const BASE = "/im_component/wx_official_account";
const HASH = await hashPassword("not used: sign-in is off");

// deno-lint-ignore no-explicit-any
type Json = any;

/** kefu with four agents in CONFIG_FILE: sup (supervisor), adm (admin), a1 and a2 (agents; a2 says so). */
function team(): Promise<TestService & { dir: string }> {
  return startTeam([{ id: "sup", role: "supervisor" }, { id: "adm", role: "admin" }, { id: "a1" }, {
    id: "a2",
    role: "agent",
  }]);
}

async function call(
  t: TestService,
  agent: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Json }> {
  const sep = path.includes("?") ? "&" : "?";
  const res = await fetch(`${t.http}${BASE}${path}${sep}userid=${encodeURIComponent(agent)}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

function expectError(r: { status: number; body: Json }, status: number, kind: string, says: RegExp): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.data.error, kind);
  assert.match(r.body.data.detail, says);
}

const list = async (t: TestService, agent: string) => (await call(t, agent, "GET", "/canned_replies")).body.data;

Deno.test("canned replies: supervisors and admins manage the team's; a plain agent reads them and gets 403", async () => {
  await using t = await team();
  const refused = await call(t, "a1", "POST", "/canned_replies", { scope: "team", shortcut: "/hi", text: "您好" });
  expectError(refused, 403, "role_required", /cannot add a team canned reply: agent "a1" is an agent/);
  assert.deepEqual((await list(t, "a1")).replies, [], "nothing was kept");

  const added = await call(t, "sup", "POST", "/canned_replies", {
    scope: "team",
    shortcut: "hi",
    text: "  您好 {name}，我是{agent}  ",
  });
  assert.equal(added.status, 200, JSON.stringify(added.body));
  const reply = added.body.data.reply;
  assert.deepEqual(
    [reply.scope, reply.shortcut, reply.text, reply.owner, reply.updated_by, reply.editable],
    ["team", "/hi", "您好 {name}，我是{agent}", "", "sup", true],
    "the shortcut gets its slash, the text is trimmed",
  );

  const seen = await list(t, "a1");
  assert.deepEqual([seen.role, seen.manages_team], ["agent", false]);
  assert.deepEqual(seen.replies.map((r: Json) => [r.id, r.editable]), [[reply.id, false]]);
  assert.deepEqual([(await list(t, "adm")).role, (await list(t, "adm")).manages_team], ["admin", true]);

  expectError(
    await call(t, "a1", "PATCH", `/canned_replies/${reply.id}`, { text: "x" }),
    403,
    "role_required",
    /change/,
  );
  expectError(await call(t, "a2", "DELETE", `/canned_replies/${reply.id}`), 403, "role_required", /delete/);

  const changed = await call(t, "adm", "PATCH", `/canned_replies/${reply.id}`, { text: "您好 {name}" });
  assert.equal(changed.status, 200, JSON.stringify(changed.body));
  assert.deepEqual([changed.body.data.reply.text, changed.body.data.reply.updated_by], ["您好 {name}", "adm"]);

  assert.equal((await call(t, "sup", "DELETE", `/canned_replies/${reply.id}`)).status, 200);
  assert.deepEqual((await list(t, "a1")).replies, []);
  expectError(await call(t, "sup", "DELETE", `/canned_replies/${reply.id}`), 404, "not_found", /no such reply/);
});

Deno.test("canned replies: an agent's own are its alone; a shortcut is unique per owner", async () => {
  await using t = await team();
  const mine = await call(t, "a1", "POST", "/canned_replies", { shortcut: "/addr", text: "上海市 1 号" });
  assert.equal(mine.status, 200, JSON.stringify(mine.body));
  const id = mine.body.data.reply.id;
  assert.equal(mine.body.data.reply.scope, "personal", "personal by default");
  assert.deepEqual((await list(t, "a1")).replies.map((r: Json) => [r.shortcut, r.editable]), [["/addr", true]]);

  assert.deepEqual((await list(t, "a2")).replies, [], "another agent's own replies are not listed");
  assert.deepEqual((await list(t, "sup")).replies, [], "nor a supervisor's");
  for (const who of ["a2", "sup"]) {
    expectError(await call(t, who, "PATCH", `/canned_replies/${id}`, { text: "mine now" }), 404, "not_found", /./);
    expectError(await call(t, who, "DELETE", `/canned_replies/${id}`), 404, "not_found", /./);
  }
  assert.equal((await list(t, "a1")).replies[0].text, "上海市 1 号", "unchanged");

  const again = await call(t, "a1", "POST", "/canned_replies", { shortcut: "/addr", text: "again" });
  expectError(again, 409, "conflict", /cannot add canned reply "\/addr": you have a reply with that shortcut already/);
  // Another agent, or the team, may use the same shortcut.
  assert.equal((await call(t, "a2", "POST", "/canned_replies", { shortcut: "/addr", text: "a2's" })).status, 200);
  const teams = await call(t, "sup", "POST", "/canned_replies", { scope: "team", shortcut: "/addr", text: "team" });
  assert.equal(teams.status, 200);
  assert.deepEqual((await list(t, "a1")).replies.map((r: Json) => [r.scope, r.text]), [
    ["team", "team"],
    ["personal", "上海市 1 号"],
  ]);

  const other = await call(t, "a1", "POST", "/canned_replies", { shortcut: "/bye", text: "再见" });
  expectError(
    await call(t, "a1", "PATCH", `/canned_replies/${other.body.data.reply.id}`, { shortcut: "/addr" }),
    409,
    "conflict",
    /cannot change canned reply "\/addr"/,
  );
  const renamed = await call(t, "a1", "PATCH", `/canned_replies/${id}`, { shortcut: "/where" });
  assert.deepEqual([renamed.status, renamed.body.data.reply.shortcut], [200, "/where"]);
  assert.equal((await call(t, "a1", "DELETE", `/canned_replies/${id}`)).status, 200);
  assert.deepEqual((await list(t, "a1")).replies.map((r: Json) => r.shortcut), ["/addr", "/bye"]);
});

Deno.test("canned replies: bad input is a clear 400 that names what was wrong; nothing is kept", async () => {
  await using t = await team();
  const add = (body: unknown) => call(t, "a1", "POST", "/canned_replies", body);
  expectError(await add({ text: "hi" }), 400, "missing_field", /shortcut is required/);
  expectError(await add({ shortcut: "/hi" }), 400, "missing_field", /text is required/);
  expectError(
    await add({ shortcut: "/h i", text: "x" }),
    400,
    "wrong_type",
    /shortcut "\/h i" must be "\/" and 1 to 31/,
  );
  expectError(await add({ shortcut: "/", text: "x" }), 400, "wrong_type", /shortcut "\/"/);
  expectError(await add({ shortcut: `/${"x".repeat(40)}`, text: "x" }), 400, "wrong_type", /shortcut/);
  expectError(await add({ shortcut: 5, text: "x" }), 400, "wrong_type", /shortcut must be a string, got "5"/);
  expectError(await add({ shortcut: "/hi", text: "   " }), 400, "missing_field", /text is empty/);
  expectError(await add({ shortcut: "/hi", text: "好".repeat(601) }), 400, "wrong_type", /601 characters; at most 600/);
  expectError(await add({ shortcut: "/hi", text: "a\u0000b" }), 400, "wrong_type", /control characters/);
  expectError(
    await add({ scope: "global", shortcut: "/hi", text: "x" }),
    400,
    "wrong_type",
    /scope must be .*"global"/,
  );
  expectError(await add("{not json"), 400, "invalid_json", /cannot read the request body as JSON/);
  expectError(await add("[1]"), 400, "invalid_json", /must be a JSON object/);
  assert.deepEqual((await list(t, "a1")).replies, [], "nothing was kept");

  const ok = await add({ shortcut: "/hi", text: "好".repeat(600) });
  assert.equal(ok.status, 200, "600 characters are kept");
  const id = ok.body.data.reply.id;
  expectError(await call(t, "a1", "PATCH", "/canned_replies/abc", { text: "x" }), 400, "wrong_type", /"abc"/);
  expectError(await call(t, "a1", "DELETE", "/canned_replies/0"), 400, "wrong_type", /positive integer, got "0"/);
  expectError(await call(t, "a1", "PATCH", `/canned_replies/${id}`, {}), 400, "missing_field", /shortcut and\/or text/);
  expectError(await call(t, "a1", "PATCH", `/canned_replies/${id}`, { scope: "team" }), 400, "wrong_type", /scope/);
  expectError(await call(t, "a1", "PATCH", "/canned_replies/999999", { text: "x" }), 404, "not_found", /999999/);
});

Deno.test("CONFIG_FILE: an agent's role is agent, supervisor or admin; anything else is refused by name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/kefu.json`;
    const write = (role: unknown) =>
      Deno.writeTextFile(
        file,
        JSON.stringify({ agents: [{ id: "a1", password_hash: HASH }, { id: "b", role, password_hash: HASH }] }),
      );
    await write("supervisor");
    assert.deepEqual(parseConfig({ CONFIG_FILE: file }).roles, { b: "supervisor" });
    await write("agent");
    assert.deepEqual(parseConfig({ CONFIG_FILE: file }).roles, {});
    await write("boss");
    assert.throws(
      () => parseConfig({ CONFIG_FILE: file }),
      (e: Error) =>
        e instanceof ConfigError && /agents\[1\]\.role="boss": expected agent, supervisor, admin/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function push(t: TestService, user: string, text: string, agent: string): Promise<void> {
  const r = await post(`${t.http}/send`, userXml(user, text, { to: agent }));
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

Deno.test("tags: the owner or a supervisor sets them; the owner's sockets are told; listed and searched", async () => {
  await using t = await team();
  await using a1 = await AgentClient.open(agentUrl(t, "a1"));
  await push(t, "u1", "你好", "a1");
  await push(t, "u2", "在吗", "a1");
  await a1.next(1001);
  await a1.next(1001);

  const set = await call(t, "a1", "PATCH", "/contacts/u1", { tags: [" VIP ", "退款", "VIP"] });
  assert.equal(set.status, 200, JSON.stringify(set.body));
  assert.deepEqual(set.body.data.contact.tags, ["VIP", "退款"], "trimmed, each once, sorted");
  const told = await a1.next(106);
  assert.deepEqual([told.data.action, told.data.by, told.data.contact.tags], ["updated", "a1", ["VIP", "退款"]]);

  const listed = (await getJson(`${t.http}${BASE}/contacts?userid=a1`)).body.data.contacts;
  assert.deepEqual(listed.map((c: Json) => [c.contact_id, c.tags]).sort(), [["u1", ["VIP", "退款"]], ["u2", []]]);

  const found = await call(t, "a1", "GET", "/search?q=vip");
  assert.deepEqual(found.body.data.contacts.map((c: Json) => c.contact_id), ["u1"], "the search finds a tag");

  // Another agent may not; a supervisor may set tags (only tags) on anyone's contact, and the owner is told.
  expectError(await call(t, "a2", "PATCH", "/contacts/u1", { tags: ["x"] }), 403, "not_your_contact", /u1/);
  const bySup = await call(t, "sup", "PATCH", "/contacts/u1", { tags: ["大客户"] });
  assert.equal(bySup.status, 200, JSON.stringify(bySup.body));
  assert.deepEqual([bySup.body.data.contact.tags, bySup.body.data.contact.agent_id], [["大客户"], "a1"]);
  const toOwner = await a1.next(106);
  assert.deepEqual([toOwner.data.by, toOwner.data.contact.tags], ["sup", ["大客户"]]);
  expectError(await call(t, "sup", "PATCH", "/contacts/u1", { note: "x" }), 403, "not_your_contact", /u1/);
  expectError(await call(t, "sup", "PATCH", "/contacts/nobody", { tags: ["x"] }), 404, "not_found", /"nobody"/);

  // Bad tags: a clear 400, nothing changed.
  const bad = (tags: unknown) => call(t, "a1", "PATCH", "/contacts/u1", { tags });
  expectError(await bad("vip"), 400, "wrong_type", /tags must be an array of strings, got "vip"/);
  expectError(await bad([1]), 400, "wrong_type", /tags must be an array of strings/);
  expectError(await bad(["a,b"]), 400, "wrong_type", /tag "a,b" must be a string without commas/);
  expectError(await bad(["  "]), 400, "wrong_type", /must be 1 to 20 characters/);
  expectError(await bad(["x".repeat(21)]), 400, "wrong_type", /must be 1 to 20 characters/);
  expectError(await bad(Array.from({ length: 11 }, (_, i) => `t${i}`)), 400, "wrong_type", /11 tags; at most 10/);
  assert.deepEqual((await call(t, "a1", "GET", "/contacts/u1")).body.data.contact.tags, ["大客户"]);

  const cleared = await call(t, "a1", "PATCH", "/contacts/u1", { tags: [] });
  assert.deepEqual(cleared.body.data.contact.tags, []);
});
