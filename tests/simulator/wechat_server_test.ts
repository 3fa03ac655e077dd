import assert from "node:assert/strict";
import { createWechatServer, type WechatServerOptions } from "../../src/simulator/wechat_server.ts";

const APP_ID = "wx0123456789abcdef";
const SECRET = "simulator-secret";
const TOKEN_QUERY = `grant_type=client_credential&appid=${APP_ID}&secret=${SECRET}`;

// The simulator's own wire shapes, checked with raw HTTP (the client's view is in wechat_api_test.ts).
function start(options: Partial<WechatServerOptions> = {}) {
  const clock = { t: Date.UTC(2024, 0, 1) };
  const sim = createWechatServer({ appId: APP_ID, appSecret: SECRET, now: () => clock.t, ...options });
  const http = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, sim.app.fetch);
  const base = `http://127.0.0.1:${http.addr.port}`;
  // deno-lint-ignore no-explicit-any
  async function call(path: string, init?: RequestInit): Promise<any> {
    const res = await fetch(`${base}${path}`, init);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    return await res.json();
  }
  const post = (path: string, body: unknown) =>
    call(path, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body) });
  return { sim, clock, base, call, post, [Symbol.asyncDispose]: () => http.shutdown() };
}

Deno.test("token endpoints: WeChat's shapes and credential errcodes, all HTTP 200", async () => {
  await using s = start();
  const ok = await s.call(`/cgi-bin/token?${TOKEN_QUERY}`);
  assert.deepEqual(Object.keys(ok).sort(), ["access_token", "expires_in"]);
  assert.equal(ok.expires_in, 7200);
  const err = await s.call(`/cgi-bin/token?appid=${APP_ID}&secret=${SECRET}`);
  assert.equal(err.errcode, 40002);
  assert.match(err.errmsg, /^invalid grant_type rid: [0-9a-f-]+$/);
  assert.equal((await s.call(`/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=${SECRET}`)).errcode, 40013);
  assert.equal((await s.call(`/cgi-bin/token?grant_type=client_credential&appid=${APP_ID}&secret=x`)).errcode, 40125);
  assert.equal((await s.call(`/cgi-bin/token?${TOKEN_QUERY}`, { method: "POST" })).errcode, 43001);
  assert.equal(s.sim.tokenFetches, 5);

  // A new plain token leaves the previous one valid for 5 minutes only.
  const next = await s.call(`/cgi-bin/token?${TOKEN_QUERY}`);
  const typing = (token: string) =>
    s.post(`/cgi-bin/message/custom/typing?access_token=${token}`, { touser: "nobody", command: "Typing" });
  assert.equal((await typing(ok.access_token)).errcode, 40003);
  s.clock.t += 301_000;
  assert.equal((await typing(ok.access_token)).errcode, 42001);
  assert.equal((await typing(next.access_token)).errcode, 40003);
});

Deno.test("stable_token: same token in normal mode, a new one in its last 5 minutes; force_refresh spaced 30 s", async () => {
  await using s = start();
  const body = { grant_type: "client_credential", appid: APP_ID, secret: SECRET };
  const a = await s.post("/cgi-bin/stable_token", body);
  s.clock.t += 1000_000;
  const b = await s.post("/cgi-bin/stable_token", body);
  assert.equal(b.access_token, a.access_token);
  assert.equal(b.expires_in, 7200 - 1000);
  s.clock.t += (7200 - 1000 - 299) * 1000;
  const c = await s.post("/cgi-bin/stable_token", body);
  assert.notEqual(c.access_token, a.access_token);
  const d = await s.post("/cgi-bin/stable_token", { ...body, force_refresh: true });
  assert.notEqual(d.access_token, c.access_token);
  const e = await s.post("/cgi-bin/stable_token", { ...body, force_refresh: true });
  assert.equal(e.access_token, d.access_token, "a second force within 30 s does not refresh");
  assert.equal((await s.post("/cgi-bin/stable_token", { ...body, secret: "x" })).errcode, 40125);
  assert.equal((await s.post("/cgi-bin/stable_token", "{not json")).errcode, 47001);
});

Deno.test("custom/send: access_token and body checks in WeChat's errcodes; delivered bodies reach the callback", async () => {
  const seen: [string, unknown][] = [];
  await using s = start({ onCustomMessage: (openid, body) => seen.push([openid, body]), maxInbox: 2 });
  const { access_token } = await s.call(`/cgi-bin/token?${TOKEN_QUERY}`);
  const send = (body: unknown, token = access_token) =>
    s.post(`/cgi-bin/message/custom/send?access_token=${token}`, body);
  s.sim.recordInteraction("u", "message");
  const text = { touser: "u", msgtype: "text", text: { content: "hi" } };
  assert.equal((await s.post("/cgi-bin/message/custom/send", text)).errcode, 41001);
  assert.equal((await send(text, "nope")).errcode, 40001);
  assert.equal((await send("")).errcode, 44002);
  assert.equal((await send("[1]")).errcode, 47001);
  assert.equal((await send({ touser: "u", text: { content: "hi" } })).errcode, 40008);
  assert.equal((await send({ touser: "u", msgtype: "text", text: { content: "" } })).errcode, 44004);
  assert.equal((await send({ msgtype: "text", text: { content: "hi" } })).errcode, 40003);
  assert.equal((await s.call(`/cgi-bin/message/custom/send?access_token=${access_token}`)).errcode, 43002);
  assert.deepEqual(await send(text), { errcode: 0, errmsg: "ok" });
  for (const n of [1, 2]) await send({ ...text, text: { content: `m${n}` } });
  assert.deepEqual(seen.map(([openid]) => openid), ["u", "u", "u"]);
  assert.deepEqual(s.sim.inbox("u").map((b) => (b.text as { content: string }).content), ["m1", "m2"]);
  s.sim.failNext(1, 45009, "reach max api daily quota limit");
  assert.equal((await send(text)).errcode, 45009);
  assert.equal(s.sim.calls("/cgi-bin/message/custom/send"), 12);
});

Deno.test("media: Content-Disposition filename on download, oldest files dropped past the cap, user media by addMedia", async () => {
  await using s = start({ maxMedia: 2 });
  const { access_token } = await s.call(`/cgi-bin/token?${TOKEN_QUERY}`);
  const upload = (name: string, type = "image") => {
    const form = new FormData();
    form.append("media", new File([new Uint8Array([1, 2, 3])], name, { type: "image/png" }));
    return s.call(`/cgi-bin/media/upload?access_token=${access_token}&type=${type}`, { method: "POST", body: form });
  };
  const first = await upload("one.png");
  assert.deepEqual(Object.keys(first).sort(), ["created_at", "media_id", "type"]);
  assert.equal(first.type, "image");
  assert.equal((await upload("x.png", "file")).errcode, 40004);
  const form = new FormData();
  form.append("other", "x");
  const missing = await s.call(`/cgi-bin/media/upload?access_token=${access_token}&type=image`, {
    method: "POST",
    body: form,
  });
  assert.equal(missing.errcode, 41005);
  const res = await fetch(`${s.base}/cgi-bin/media/get?access_token=${access_token}&media_id=${first.media_id}`);
  assert.equal(res.headers.get("content-disposition"), 'attachment; filename="one.png"');
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), new Uint8Array([1, 2, 3]));
  await upload("two.png");
  await upload("three.png");
  assert.equal(s.sim.media(first.media_id), undefined);
  const fromUser = s.sim.addMedia("voice", new Uint8Array([9]), "hello.amr", "audio/amr");
  const got = await fetch(`${s.base}/cgi-bin/media/get?access_token=${access_token}&media_id=${fromUser}`);
  assert.equal(got.headers.get("content-type"), "audio/amr");
  assert.deepEqual(new Uint8Array(await got.arrayBuffer()), new Uint8Array([9]));
});
