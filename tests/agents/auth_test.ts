/**
 * Agent sign-in: seed 003's sign computed the documented way, tokens and their
 * expiry, and, through the real service, every agent endpoint refusing without
 * a token and acting only for the token's agent.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Auth, AuthCode, seedSign } from "../../src/agents/auth/auth.ts";
import { hashPassword, verifyPassword } from "../../src/agents/auth/passwords.ts";
import { KefuError } from "../../src/core/errors.ts";
import { AgentClient, getJson, post, startService, userXml } from "../helpers.ts";

const SECRET = "kefu-demo-secret-0123";
const BASE = "/im_component/wx_official_account";

// The worked example of docs/protocol.md (Tokens), and the sign computed here step by step.
Deno.test("auth: the seed 003 sign is md5(md5(uid) + md5(timestamp) + md5(secret)), the docs' example", () => {
  const md5 = (s: string) => createHash("md5").update(s).digest("hex");
  assert.equal(md5("user_1"), "3f49044c1469c6990a665f46ec6c0a41");
  assert.equal(md5("1630485655"), "f1ca8afc97a505c69eaa30decba7e293");
  assert.equal(md5(SECRET), "99b8dd07f8c12d315a9ec65ccfd2a12b");
  const sign = md5(md5("user_1") + md5("1630485655") + md5(SECRET));
  assert.equal(sign, "d19ac6bf72328d79c5f9c449cef4d149");
  assert.equal(seedSign("user_1", "1630485655", SECRET), sign);
});

Deno.test("auth: a token request with the right sign gets a token; stale, wrong or missing ones say which", () => {
  let now = 1630485655;
  const auth = new Auth({ secret: SECRET, tokenSeconds: 86400, maxSkewSeconds: 300, now: () => now });
  const t = auth.request("user_1", "1630485655", "d19ac6bf72328d79c5f9c449cef4d149");
  assert.equal(t.expire, 86400);
  const claims = auth.verify(t.token);
  assert.deepEqual([claims.agent, claims.expiresAt, claims.tokenId], ["user_1", now + 86400, t.tokenId]);
  // Upper-case hex is the same sign.
  assert.equal(auth.request("user_1", "1630485655", "D19AC6BF72328D79C5F9C449CEF4D149").expire, 86400);
  const refused = (f: () => unknown, code: number, msg: RegExp) =>
    assert.throws(f, (e) => e instanceof KefuError && (e as { code?: number }).code === code && msg.test(e.message));
  refused(() => auth.request("user_1", "1630485655", "0".repeat(32)), AuthCode.wrongSign, /sign does not match/);
  refused(() => auth.request("user_2", "1630485655", "d19ac6bf72328d79c5f9c449cef4d149"), AuthCode.wrongSign, /sign/);
  refused(
    () => auth.request("user_1", "1630485000", seedSign("user_1", "1630485000", SECRET)),
    AuthCode.staleTimestamp,
    /655 s/,
  );
  refused(() => auth.request("", "1630485655", "x"), AuthCode.badRequest, /uid is required/);
  refused(() => auth.request("user_1", "soon", "x"), AuthCode.badRequest, /timestamp/);
  refused(() => auth.request("user_1", "1630485655", "xyz"), AuthCode.badRequest, /32 hex/);
  // The secret is in no message.
  for (const f of [() => auth.request("user_1", "1630485655", "0".repeat(32)), () => auth.verify("v1.x.y")]) {
    try {
      f();
    } catch (e) {
      assert.ok(!(e as Error).message.includes(SECRET));
    }
  }
  // Expiry, with the clock moved.
  now += 86400;
  assert.throws(() => auth.verify(t.token), (e) => e instanceof KefuError && e.kind === "token_expired");
});

Deno.test("auth: tokens survive a restart and are checked by any kefu with the secret; forged ones are refused", () => {
  const one = new Auth({ secret: SECRET, tokenSeconds: 60, maxSkewSeconds: 300 });
  const two = new Auth({ secret: SECRET, tokenSeconds: 60, maxSkewSeconds: 300 });
  const other = new Auth({ secret: "another-secret-0123456", tokenSeconds: 60, maxSkewSeconds: 300 });
  const { token } = one.issue("a1");
  assert.equal(two.verify(token).agent, "a1");
  assert.throws(() => other.verify(token), (e) => e instanceof KefuError && e.kind === "invalid_token");
  // Another agent's name in the payload breaks the MAC.
  const [v, , mac] = token.split(".");
  const forged = `${v}.${btoa(JSON.stringify({ a: "boss", e: 9e9 })).replace(/=+$/, "")}.${mac}`;
  assert.throws(() => one.verify(forged), (e) => e instanceof KefuError && e.kind === "invalid_token");
  assert.throws(() => one.verify("not a token"), (e) => e instanceof KefuError && e.kind === "invalid_token");
});

Deno.test("auth: passwords are scrypt hashes, checked in constant time; no hash never matches", async () => {
  const hash = await hashPassword("correct horse");
  assert.match(hash, /^scrypt\$32768\$8\$1\$/);
  assert.equal(await verifyPassword("correct horse", hash), true);
  assert.equal(await verifyPassword("wrong horse", hash), false);
  assert.equal(await verifyPassword("correct horse", undefined), false);
  assert.notEqual(await hashPassword("correct horse"), hash, "a new salt each time");
});

async function tokenFor(http: string, uid: string): Promise<string> {
  const ts = String(Math.floor(Date.now() / 1000));
  const r = await getJson(`${http}/auth/websocket?uid=${uid}&timestamp=${ts}&sign=${seedSign(uid, ts, SECRET)}`);
  assert.equal(r.body.code, 0, JSON.stringify(r.body));
  return r.body.content.token;
}

Deno.test("auth on: every agent endpoint wants a token and acts only for its agent", async () => {
  await using t = await startService({ AGENT_SECRET: SECRET, PUSH_TOKEN: "push-secret-0123456789" });
  // Without authorization /healthz says only that kefu is alive; with a token, its details.
  assert.deepEqual((await getJson(`${t.http}/healthz`)).body, { status: "ok" });
  const a = await tokenFor(t.http, "a1");
  assert.equal((await getJson(`${t.http}/healthz?token=${a}`)).body.auth, "on");
  const b = await tokenFor(t.http, "b1");

  // The seed's token request, answered in the seed's shape; a bad one with a non-zero code.
  const bad = await getJson(
    `${t.http}/auth/websocket?uid=a1&timestamp=${Math.floor(Date.now() / 1000)}&sign=${"0".repeat(32)}`,
  );
  assert.deepEqual([bad.status, bad.body.code], [401, AuthCode.wrongSign]);
  assert.match(bad.body.msg, /sign does not match/);

  // No token: 401 saying how to get one; a socket is refused before the upgrade (kefu reads no frame of it).
  const gets = [
    `${BASE}/contacts?userid=a1`,
    `${BASE}/history?userid=a1&contact_id=u`,
    "/auth/me",
    `${BASE}/contacts/u?userid=a1`,
    `${BASE}/queue?userid=a1`,
    `${BASE}/agents?userid=a1`,
    `${BASE}/search?userid=a1&q=x`,
  ];
  for (const path of gets) {
    const r = await getJson(`${t.http}${path}`);
    assert.deepEqual([r.status, r.body.data.error], [401, "auth_required"], path);
    assert.match(r.body.data.detail, /POST \/auth\/login.*\/auth\/websocket/);
  }
  for (const action of ["transfer", "resolve", "reopen", "take", "release"]) {
    const r = await post(`${t.http}${BASE}/contacts/u/${action}?userid=a1`, "{}");
    assert.deepEqual([r.status, r.body.data.error], [401, "auth_required"], action);
  }
  const patch = await fetch(`${t.http}${BASE}/contacts/u?userid=a1`, { method: "PATCH", body: '{"note":"x"}' });
  assert.deepEqual([patch.status, (await patch.json()).data.error], [401, "auth_required"]);
  const upload = await fetch(`${t.http}${BASE}/media?userid=a1&filename=a.png`, { method: "POST", body: "x" });
  assert.equal(upload.status, 401);
  await upload.body?.cancel();
  for (const url of [`${t.ws}${BASE}/msg?userid=a1`, `${t.ws}/?userId=a1`, `${t.ws}/?token=nonsense`]) {
    const s = new AgentClient(url);
    await assert.rejects(s.opened, /cannot connect/, url);
    assert.notEqual((await s.closed).code, 4401, url);
    const refused = await fetch(url.replace(/^ws/, "http"), {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    const body = await refused.json();
    assert.equal(refused.status, 401, url);
    assert.match(body.data.error, /^(auth_required|invalid_token)$/, url);
  }

  // Pushes need PUSH_TOKEN.
  assert.equal((await post(`${t.http}/send`, userXml("u1", "no token", { to: "a1" }))).status, 401);
  const pushed = await post(`${t.http}/send`, userXml("u1", "hello a1", { to: "a1", id: "p1" }), {
    authorization: "Bearer push-secret-0123456789",
  });
  assert.equal(pushed.status, 202);
  await post(`${t.http}/send`, userXml("u2", "hello b1", { to: "b1", id: "p2" }), {
    authorization: "Bearer push-secret-0123456789",
  });

  // A's token reads A's contacts and socket, by query or by header; B's id with A's token is 403.
  const mine = await fetch(`${t.http}${BASE}/contacts`, { headers: { authorization: `Bearer ${a}` } });
  assert.deepEqual((await mine.json()).data.contacts.map((c: { contact_id: string }) => c.contact_id), ["u1"]);
  const theirs = await getJson(`${t.http}${BASE}/history?token=${a}&contact_id=u2`);
  assert.deepEqual([theirs.status, theirs.body.data.error], [403, "not_your_contact"]);
  const mismatch = await getJson(`${t.http}${BASE}/contacts?token=${a}&userid=b1`);
  assert.deepEqual([mismatch.status, mismatch.body.data.error], [403, "agent_mismatch"]);
  const forbidden = new AgentClient(`${t.ws}${BASE}/msg?token=${a}&userid=b1`);
  assert.equal((await forbidden.closed).code, 4403);
  await using sock = await AgentClient.open(`${t.ws}${BASE}/msg?token=${a}&userid=a1`);
  assert.equal((await sock.next(1001)).data.msg.content, "hello a1");
  const me = await getJson(`${t.http}/auth/me?token=${b}`);
  assert.deepEqual(me.body.content.agent, { id: "b1", name: "b1" });
});

Deno.test("auth off: agents name themselves with ?userid= as the seed has it, and /healthz says so", async () => {
  await using t = await startService();
  assert.equal((await getJson(`${t.http}/healthz`)).body.auth, "off");
  assert.equal((await getJson(`${t.http}${BASE}/contacts?userid=a1`)).status, 200);
  const r = await getJson(`${t.http}/auth/websocket?uid=a1&timestamp=1&sign=${"0".repeat(32)}`);
  assert.deepEqual([r.status, r.body.code], [404, 40005]);
  assert.match(r.body.msg, /AGENT_SECRET/);
});

Deno.test("auth: agents of CONFIG_FILE sign in with a password and get the same kind of token", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/kefu.json`;
    const hash = await hashPassword("s3cret pass");
    await Deno.writeTextFile(file, JSON.stringify({ agents: [{ id: "a1", name: "小王", password_hash: hash }] }));
    await using t = await startService({ AGENT_SECRET: SECRET, CONFIG_FILE: file });
    const login = (id: string, password: string) =>
      post(`${t.http}/auth/login`, JSON.stringify({ id, password }), { "content-type": "application/json" });
    const ok = await login("a1", "s3cret pass");
    assert.equal(ok.status, 200);
    assert.deepEqual([ok.body.code, ok.body.msg, ok.body.content.agent], [0, "SUCCESS", { id: "a1", name: "小王" }]);
    const me = await getJson(`${t.http}/auth/me?token=${ok.body.content.token}`);
    assert.equal(me.body.content.agent.name, "小王");
    for (const [id, pw] of [["a1", "wrong"], ["nobody", "s3cret pass"]]) {
      const r = await login(id, pw);
      assert.deepEqual([r.status, r.body.code, r.body.msg], [
        401,
        AuthCode.wrongPassword,
        "wrong agent id or password",
      ]);
    }
    const malformed = await post(`${t.http}/auth/login`, "{", { "content-type": "application/json" });
    assert.deepEqual([malformed.status, malformed.body.code], [400, AuthCode.badRequest]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
