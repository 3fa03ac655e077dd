/**
 * Issue 20, sign-in on the server: the session cookie, throttling per agent id and per address, the login flood, the
 * token request and tokens of agents that are not (or no longer) configured, and revocation — a sign-out, an
 * administrator's — kept by the store across a restart.
 */

import assert from "node:assert/strict";
import { AuthCode, seedSign } from "../../src/agents/auth/auth.ts";
import { hashPassword } from "../../src/agents/auth/passwords.ts";
import { AgentClient, getJson, startService } from "../helpers.ts";

const SECRET = "signin-secret-0123456789";
const BASE = "/im_component/wx_official_account";
const PASSWORD = "correct horse battery";
const HASH = await hashPassword(PASSWORD);

async function withAgents(ids: string[], run: (env: Record<string, string>, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/kefu.json`;
    await Deno.writeTextFile(file, JSON.stringify({ agents: ids.map((id) => ({ id, password_hash: HASH })) }));
    await run({ AGENT_SECRET: SECRET, CONFIG_FILE: file }, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function login(http: string, id: string, password: string, headers: Record<string, string> = {}) {
  return fetch(`${http}/auth/login`, {
    method: "POST",
    body: JSON.stringify({ id, password }),
    headers: { "content-type": "application/json", ...headers },
  });
}

Deno.test("sign-in: the login sets an HttpOnly SameSite=Strict cookie that signs every request, from kefu's own page only", async () => {
  await withAgents(["a1"], async (env) => {
    await using t = await startService(env);
    const r = await login(t.http, "a1", PASSWORD);
    assert.equal(r.status, 200);
    await r.body?.cancel();
    const cookie = r.headers.get("set-cookie") ?? "";
    assert.match(cookie, /^kefu_session=v1\.[^;]+;/);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    const session = cookie.split(";")[0];
    const me = await fetch(`${t.http}/auth/me`, { headers: { cookie: session } });
    assert.equal((await me.json()).content.agent.id, "a1");
    const contacts = await fetch(`${t.http}${BASE}/contacts`, { headers: { cookie: session, origin: t.http } });
    assert.equal(contacts.status, 200);
    await contacts.body?.cancel();
    // `?token=cookie` names the cookie explicitly (the page's requests say so where they used to put the token).
    const marked = await fetch(`${t.http}${BASE}/contacts?token=cookie`, { headers: { cookie: session } });
    assert.equal(marked.status, 200);
    await marked.body?.cancel();
    // Another origin's page does not get to use it.
    const foreign = await fetch(`${t.http}${BASE}/contacts`, {
      headers: { cookie: session, origin: "http://evil.example" },
    });
    assert.equal(foreign.status, 401);
    await foreign.body?.cancel();
    // Sign-out revokes the token (the cookie is cleared) and every request with it is refused from then on.
    const out = await fetch(`${t.http}/auth/logout`, { method: "POST", headers: { cookie: session } });
    assert.deepEqual((await out.json()).content, { revoked: true });
    assert.match(out.headers.get("set-cookie") ?? "", /^kefu_session=;.*Max-Age=0/);
    const after = await fetch(`${t.http}/auth/me`, { headers: { cookie: session } });
    assert.deepEqual([after.status, (await after.json()).data.error], [401, "token_revoked"]);
  });
});

Deno.test("sign-in: after 5 failures per agent id, then per address, each try waits longer (429 with Retry-After)", async () => {
  await withAgents(["a1", "b1"], async (env) => {
    await using t = await startService(env);
    for (let i = 0; i < 5; i++) {
      const r = await login(t.http, "a1", `wrong ${i}`);
      assert.deepEqual([r.status, (await r.json()).code], [401, AuthCode.wrongPassword]);
    }
    // The sixth try, even with the right password, waits: nothing is checked meanwhile.
    const blocked = await login(t.http, "a1", PASSWORD);
    const body = await blocked.json();
    assert.deepEqual([blocked.status, body.code], [429, AuthCode.throttled]);
    assert.ok(Number(blocked.headers.get("retry-after")) >= 1);
    assert.match(body.msg, /try again in \d+ s/);
    // The address failed five times too: another agent id from it waits as well.
    const other = await login(t.http, "b1", PASSWORD);
    assert.equal(other.status, 429);
    await other.body?.cancel();
  });
});

Deno.test("sign-in: 300 concurrent wrong logins run a few password checks at a time; the rest are told to come back", async () => {
  await withAgents(["a1"], async (env) => {
    await using t = await startService(env);
    const statuses = await Promise.all(
      Array.from(
        { length: 300 },
        (_, i) => login(t.http, `guess${i}`, "nope").then(async (r) => (await r.body?.cancel(), r.status)),
      ),
    );
    const checked = statuses.filter((s) => s === 401).length;
    const turnedAway = statuses.filter((s) => s === 429).length;
    assert.equal(checked + turnedAway, 300);
    // Two run and eight wait; the address is blocked from its fifth failure. Ten if the flood arrives before any check
    // ends; on a slow machine the first checks may end while it still arrives: then at most the five failures that
    // block it, and the two running and eight waiting at that moment — a few scrypts, never one per request.
    assert.ok(checked <= 15, `${checked} password checks ran`);
  });
});

Deno.test("sign-in: the token request refuses a uid that is not a configured agent; a removed agent's token is refused", async () => {
  await withAgents(["a1", "gone"], async (env, dir) => {
    const ts = String(Math.floor(Date.now() / 1000));
    let goneToken: string;
    {
      await using t = await startService(env);
      const stranger = await getJson(
        `${t.http}/auth/websocket?uid=mallory&timestamp=${ts}&sign=${seedSign("mallory", ts, SECRET)}`,
      );
      assert.deepEqual([stranger.status, stranger.body.code], [403, AuthCode.unknownAgent]);
      const ok = await getJson(
        `${t.http}/auth/websocket?uid=gone&timestamp=${ts}&sign=${seedSign("gone", ts, SECRET)}`,
      );
      goneToken = ok.body.content.token;
      assert.equal((await getJson(`${t.http}/auth/me?token=${goneToken}`)).status, 200);
    }
    // The agent is removed from CONFIG_FILE: its token, still unexpired, no longer works.
    await Deno.writeTextFile(env.CONFIG_FILE, JSON.stringify({ agents: [{ id: "a1", password_hash: HASH }] }));
    await using t = await startService(env);
    const me = await getJson(`${t.http}/auth/me?token=${goneToken}`);
    assert.deepEqual([me.status, me.body.data.error], [401, "token_revoked"]);
    assert.match(me.body.data.detail, /no longer an agent/);
    void dir;
  });
});

Deno.test("sign-in: a sign-out and an administrator's revocation survive a restart; open sockets are closed (4401)", async () => {
  await withAgents(["a1"], async (env, dir) => {
    const store = { ...env, DATA_DIR: `${dir}/data` };
    const tokens: string[] = [];
    {
      await using t = await startService(store);
      for (let i = 0; i < 3; i++) tokens.push((await (await login(t.http, "a1", PASSWORD)).json()).content.token);
      // Signing out with the first revokes it alone.
      const out = await fetch(`${t.http}/auth/logout`, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens[0]}` },
      });
      assert.deepEqual((await out.json()).content, { revoked: true });
      assert.equal((await getJson(`${t.http}/auth/me?token=${tokens[1]}`)).status, 200);
    }
    {
      await using t = await startService(store);
      assert.equal((await getJson(`${t.http}/auth/me?token=${tokens[0]}`)).body.data.error, "token_revoked");
      assert.equal((await getJson(`${t.http}/auth/me?token=${tokens[1]}`)).status, 200);
      // An administrator (AGENT_SECRET) revokes every token of a1: the open socket is closed with 4401.
      await using sock = await AgentClient.open(`${t.ws}${BASE}/msg?token=${tokens[2]}`);
      const refused = await fetch(`${t.http}/auth/revoke`, {
        method: "POST",
        body: JSON.stringify({ agent_id: "a1" }),
        headers: { authorization: `Bearer ${tokens[1]}` },
      });
      assert.equal(refused.status, 401);
      await refused.body?.cancel();
      const revoke = await fetch(`${t.http}/auth/revoke`, {
        method: "POST",
        body: JSON.stringify({ agent_id: "a1" }),
        headers: { authorization: `Bearer ${SECRET}` },
      });
      assert.equal((await revoke.json()).code, 0);
      const closed = await sock.closed;
      assert.deepEqual([closed.code, closed.reason.split(":")[0]], [4401, "token_revoked"]);
      // A token kefu issued but no longer takes still gets its close code (the page signs in again on it).
      const late = new AgentClient(`${t.ws}${BASE}/msg?token=${tokens[1]}`);
      assert.equal((await late.closed).code, 4401);
    }
    await using t = await startService(store);
    for (const token of tokens) assert.equal((await getJson(`${t.http}/auth/me?token=${token}`)).status, 401);
    // A new sign-in works.
    const fresh = (await (await login(t.http, "a1", PASSWORD)).json()).content.token;
    assert.equal((await getJson(`${t.http}/auth/me?token=${fresh}`)).status, 200);
  });
});
