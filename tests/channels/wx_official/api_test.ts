import assert from "node:assert/strict";
import {
  createWechatServer,
  type WechatServer,
  type WechatServerOptions,
} from "../../../src/simulator/wechat_server.ts";
import {
  customMedia,
  customText,
  WechatApi,
  WechatApiError,
  type WechatApiOptions,
} from "../../../src/channels/wx_official/api.ts";

const APP_ID = "wx0123456789abcdef";
const SECRET = "s3cr3t-0f-the-4pp-do-not-leak-9f8e7d6c";
const T0 = Date.UTC(2024, 0, 1);
const SECOND = 1000;
const HOUR = 3600 * SECOND;

/** The simulator on a real port and a client pointed at it, sharing one movable clock. */
interface Fixture extends AsyncDisposable {
  sim: WechatServer;
  api: WechatApi;
  base: string;
  clock: { t: number };
  /** A client on the same simulator with other options. */
  client(options?: Partial<WechatApiOptions>): WechatApi;
}

function start(options: Partial<WechatApiOptions> = {}, server: Partial<WechatServerOptions> = {}): Fixture {
  const clock = { t: T0 };
  const now = () => clock.t;
  const sim = createWechatServer({ appId: APP_ID, appSecret: SECRET, now, ...server });
  const http = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, sim.app.fetch);
  const base = `http://127.0.0.1:${http.addr.port}`;
  const client = (more: Partial<WechatApiOptions> = {}) =>
    new WechatApi({
      appId: APP_ID,
      appSecret: SECRET,
      apiBase: base,
      tokenMode: "token",
      backoffMs: 5,
      now,
      ...options,
      ...more,
    });
  return { sim, api: client(), base, clock, client, [Symbol.asyncDispose]: () => http.shutdown() };
}

/** Assert that an error's text carries neither the app secret nor an access token (nor any of `tokens`). */
function assertNoSecret(err: unknown, tokens: string[] = []): void {
  const text = err instanceof Error ? `${err}\n${err.stack ?? ""}` : String(err);
  assert.ok(!text.includes(SECRET), `the app secret leaked: ${text}`);
  assert.ok(!/access_token=(?!\*\*\*)/.test(text), `an access token leaked: ${text}`);
  for (const t of tokens) assert.ok(!text.includes(t), `the token ${t.slice(0, 8)}… leaked: ${text}`);
}

/** The WechatApiError a promise rejects with, checked to carry no secret. */
async function wechatError(p: Promise<unknown>, tokens: string[] = []): Promise<WechatApiError> {
  try {
    await p;
  } catch (err) {
    assertNoSecret(err, tokens);
    if (err instanceof WechatApiError) return err;
    throw err;
  }
  throw new Error("expected a WechatApiError, the call succeeded");
}

/** The plain Error (not from WeChat) a promise rejects with, checked to carry no secret. */
async function plainError(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(() => undefined, (e) => e);
  assert.ok(err instanceof Error && !(err instanceof WechatApiError), `expected a plain Error, got ${err}`);
  assertNoSecret(err);
  return err;
}

Deno.test("the access_token is fetched once and cached for many calls", async () => {
  await using f = start();
  f.sim.recordInteraction("u1", "message");
  const token = await f.api.accessToken();
  assert.match(token, /^[\w-]{100,}$/);
  assert.equal(await f.api.accessToken(), token);
  for (let i = 0; i < 3; i++) await f.api.sendCustom(customText("u1", `hello ${i}`));
  await f.api.typing("u1", "Typing");
  assert.equal(f.sim.tokenFetches, 1);
  assert.deepEqual(f.sim.inbox("u1").map((b) => (b.text as { content: string }).content), [
    "hello 0",
    "hello 1",
    "hello 2",
  ]);
});

Deno.test("20 concurrent sends on a cold cache cause exactly one token fetch", async () => {
  await using f = start();
  const users = Array.from({ length: 20 }, (_, i) => `user-${i}`);
  for (const u of users) f.sim.recordInteraction(u, "message");
  await Promise.all(users.map((u) => f.api.sendCustom(customText(u, `hi ${u}`))));
  assert.equal(f.sim.tokenFetches, 1);
  for (const u of users) assert.deepEqual(f.sim.inbox(u), [customText(u, `hi ${u}`)]);
});

Deno.test("the token is refreshed ahead of expiry, not before", async () => {
  await using f = start({ refreshAheadSeconds: 300 });
  const first = await f.api.accessToken();
  f.clock.t += (7200 - 301) * SECOND;
  assert.equal(await f.api.accessToken(), first);
  assert.equal(f.sim.tokenFetches, 1);
  f.clock.t += 2 * SECOND;
  const second = await f.api.accessToken();
  assert.notEqual(second, first);
  assert.equal(f.sim.tokenFetches, 2);
  // The renewed token serves calls; the old one still works during WeChat's hand-over.
  f.sim.recordInteraction("u", "message");
  await f.api.sendCustom(customText("u", "after refresh"));
  assert.equal(f.sim.tokenFetches, 2);
});

Deno.test("an expired token is refreshed once and the call retried: one more token fetch, even for 20 callers", async () => {
  await using f = start();
  for (let i = 0; i < 20; i++) f.sim.recordInteraction(`u${i}`, "message");
  await f.api.sendCustom(customText("u0", "warm"));
  assert.equal(f.sim.tokenFetches, 1);
  f.sim.expireTokens();
  await f.api.sendCustom(customText("u0", "after expiry"));
  assert.equal(f.sim.tokenFetches, 2);
  assert.equal(f.sim.calls("/cgi-bin/message/custom/send"), 3);
  f.sim.expireTokens();
  await Promise.all(Array.from({ length: 20 }, (_, i) => f.api.sendCustom(customText(`u${i}`, "together"))));
  assert.equal(f.sim.tokenFetches, 3);
  assert.equal(f.sim.inbox("u19").length, 1);
});

Deno.test("a caller whose token was rejected after another caller already renewed it uses the new token", async () => {
  // The slow user's request leaves with the old token but reaches WeChat after the renewal.
  const slow: typeof fetch = async (input, init) => {
    if (String(input).includes("/custom/send") && String(init?.body).includes("slow")) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return await fetch(input, init);
  };
  await using f = start({ fetch: slow });
  f.sim.recordInteraction("fast", "message");
  f.sim.recordInteraction("slow", "message");
  await f.api.accessToken();
  f.sim.expireTokens();
  await Promise.all([f.api.sendCustom(customText("fast", "x")), f.api.sendCustom(customText("slow", "x"))]);
  assert.equal(f.sim.tokenFetches, 2);
  assert.equal(f.sim.inbox("slow").length, 1);
});

Deno.test("a token WeChat keeps rejecting is refreshed once only, then the 40001 is thrown", async () => {
  // A proxy that breaks the token on API calls: refreshing cannot help.
  const bogus: typeof fetch = (input, init) =>
    fetch(String(input).replace(/access_token=[^&]*/, "access_token=bogus"), init);
  await using f = start({ fetch: bogus });
  f.sim.recordInteraction("u", "message");
  const err = await wechatError(f.api.sendCustom(customText("u", "x")));
  assert.equal(err.errcode, 40001);
  assert.equal(err.action, "message/custom/send");
  assert.match(err.message, /refreshed and the call retried once already/);
  assert.equal(f.sim.tokenFetches, 2);
  assert.equal(f.sim.calls("/cgi-bin/message/custom/send"), 2);
});

Deno.test("stable_token mode: POST /cgi-bin/stable_token, normal mode on expiry, force_refresh only as a last resort", async () => {
  await using f = start({ tokenMode: "stable_token" });
  f.sim.recordInteraction("u", "message");
  const token = await f.api.accessToken();
  await f.api.sendCustom(customText("u", "stable"));
  assert.equal(f.sim.calls("/cgi-bin/stable_token"), 1);
  assert.equal(f.sim.calls("/cgi-bin/token"), 0);
  // Another holder of the same account gets the same stable token.
  assert.equal(await f.client().accessToken(), token);
  f.sim.expireTokens();
  await f.api.sendCustom(customText("u", "after expiry"));
  assert.equal(f.sim.tokenFetches, 3);
  assert.notEqual(await f.api.accessToken(), token);

  // When the normal answer is the very token rejected, the client forces a new one.
  const bogus: typeof fetch = (input, init) =>
    fetch(String(input).replace(/access_token=[^&]*/, "access_token=bogus"), init);
  const broken = f.client({ fetch: bogus });
  const before = await broken.accessToken();
  const err = await wechatError(broken.sendCustom(customText("u", "x")));
  assert.equal(err.errcode, 40001);
  const after = await broken.accessToken();
  assert.notEqual(after, before);
  // The forced refresh invalidated the previous stable token.
  const raw = await fetch(`${f.base}/cgi-bin/message/custom/typing?access_token=${before}`, {
    method: "POST",
    body: JSON.stringify({ touser: "u", command: "Typing" }),
  });
  assert.equal((await raw.json()).errcode, 40001);
});

Deno.test("-1 busy is retried with back-off: fewer busy answers than retries succeed, more fail naming -1", async () => {
  await using f = start({ maxBusyRetries: 3, backoffMs: 10 });
  f.sim.recordInteraction("u", "message");
  await f.api.accessToken();
  f.sim.busyNext(3);
  const t0 = performance.now();
  await f.api.sendCustom(customText("u", "eventually"));
  assert.ok(performance.now() - t0 >= 10 + 20 + 40 - 5, "back-off doubles: 10, 20, 40 ms");
  assert.equal(f.sim.calls("/cgi-bin/message/custom/send"), 4);
  assert.equal(f.sim.inbox("u").length, 1);

  f.sim.busyNext(4);
  const err = await wechatError(f.api.sendCustom(customText("u", "never")));
  assert.equal(err.errcode, -1);
  assert.match(err.message, /errcode -1 .*WeChat busy, retried 3 times/);
  assert.equal(f.sim.calls("/cgi-bin/message/custom/send"), 8);
  assert.equal(f.sim.inbox("u").length, 1);

  // A busy token endpoint is retried the same way.
  const cold = f.client();
  f.sim.busyNext(2);
  await cold.sendCustom(customText("u", "token was busy"));
  assert.equal(f.sim.calls("/cgi-bin/token"), 1 + 3);
  assert.equal(f.sim.inbox("u").length, 2);
});

Deno.test("45015 once 48 hours have passed since the user wrote, with advice", async () => {
  await using f = start();
  f.sim.recordInteraction("u", "message");
  f.clock.t += 48 * HOUR - SECOND;
  await f.api.sendCustom(customText("u", "just in time"));
  f.clock.t += 2 * SECOND;
  const err = await wechatError(f.api.sendCustom(customText("u", "too late")));
  assert.equal(err.errcode, 45015);
  assert.match(err.message, /message\/custom\/send .*45015.*the user has not written in the last 48 hours/);
  // The user writes again: the window reopens.
  f.sim.recordInteraction("u", "message");
  await f.api.sendCustom(customText("u", "welcome back"));
  // An unfollowed user cannot be written to.
  f.sim.unfollow("u");
  assert.equal((await wechatError(f.api.sendCustom(customText("u", "gone")))).errcode, 45015);
});

Deno.test("45047 after 5 replies to one user message; the next user message resets the count", async () => {
  await using f = start();
  f.sim.recordInteraction("u", "message");
  for (let i = 1; i <= 5; i++) await f.api.sendCustom(customText("u", `reply ${i}`));
  const err = await wechatError(f.api.sendCustom(customText("u", "reply 6")));
  assert.equal(err.errcode, 45047);
  assert.match(err.message, /too many replies: wait for the user to write again/);
  assert.equal(f.sim.inbox("u").length, 5);
  f.sim.recordInteraction("u", "message");
  await f.api.sendCustom(customText("u", "reply 6"));
  assert.equal(f.sim.inbox("u").length, 6);
});

Deno.test("after a follow (or click, scan): 3 messages within 1 minute", async () => {
  await using f = start();
  f.sim.recordInteraction("fan", "follow");
  for (let i = 0; i < 3; i++) await f.api.sendCustom(customText("fan", `welcome ${i}`));
  assert.equal((await wechatError(f.api.sendCustom(customText("fan", "4th")))).errcode, 45047);
  f.sim.recordInteraction("clicker", "click");
  await f.api.sendCustom(customText("clicker", "menu answer"));
  f.clock.t += 61 * SECOND;
  assert.equal((await wechatError(f.api.sendCustom(customText("clicker", "late")))).errcode, 45015);
});

Deno.test("typing: within 30 s of the last exchange, shown 15 s, cancelled by a message", async () => {
  await using f = start();
  f.sim.recordInteraction("u", "message");
  f.clock.t += 10 * SECOND;
  await f.api.typing("u", "Typing");
  assert.equal(f.sim.isTyping("u"), true);
  assert.equal((await wechatError(f.api.typing("u", "Typing"))).errcode, 45081);
  f.clock.t += 16 * SECOND;
  assert.equal(f.sim.isTyping("u"), false);
  await f.api.typing("u", "Typing");
  await f.api.sendCustom(customText("u", "typed"));
  assert.equal(f.sim.isTyping("u"), false);
  // 31 s after the last message either way: no more typing.
  f.clock.t += 31 * SECOND;
  const err = await wechatError(f.api.typing("u", "Typing"));
  assert.equal(err.errcode, 45080);
  assert.equal(err.action, "message/custom/typing");
  await f.api.typing("u", "CancelTyping");
});

Deno.test("uploadMedia then getMedia: bytes, filename and type round-trip; a video answers its URL", async () => {
  await using f = start();
  const jpeg = crypto.getRandomValues(new Uint8Array(5000));
  const up = await f.api.uploadMedia("image", jpeg, "photo.jpg");
  assert.match(up.media_id, /^[\w-]{20,}$/);
  assert.equal(up.created_at, T0 / 1000);
  const got = await f.api.getMedia(up.media_id);
  assert.ok("bytes" in got);
  assert.deepEqual(got.bytes, jpeg);
  assert.equal(got.filename, "photo.jpg");
  assert.equal(got.contentType, "image/jpeg");

  const voice = await f.api.uploadMedia("voice", new Uint8Array([1, 2, 3]), "语音.amr", "audio/amr");
  const v = await f.api.getMedia(voice.media_id);
  assert.ok("bytes" in v);
  assert.equal(v.filename, "语音.amr");
  assert.equal(v.contentType, "audio/amr");

  const mp4 = new Uint8Array([0, 0, 0, 32, 102, 116, 121, 112]);
  const video = await f.api.uploadMedia("video", mp4, "clip.mp4");
  const vid = await f.api.getMedia(video.media_id);
  assert.ok("videoUrl" in vid);
  const res = await fetch(vid.videoUrl);
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), mp4);

  // WeChat answers a thumb upload with thumb_media_id; the client hands it back as media_id.
  const thumb = await f.api.uploadMedia("thumb", new Uint8Array([255, 216, 255]), "t.jpg");
  assert.ok(f.sim.media(thumb.media_id));
  f.sim.recordInteraction("u", "message");
  await f.api.sendCustom(customMedia("u", "image", up.media_id));
  await f.api.sendCustom(customMedia("u", "video", video.media_id, { thumb_media_id: thumb.media_id, title: "T" }));
  assert.deepEqual(f.sim.inbox("u"), [
    { touser: "u", msgtype: "image", image: { media_id: up.media_id } },
    { touser: "u", msgtype: "video", video: { media_id: video.media_id, thumb_media_id: thumb.media_id, title: "T" } },
  ]);
  assert.equal(f.sim.tokenFetches, 1);
});

Deno.test("media errors: unknown or expired media_id is 40007, wrong type 40004, wrong format 40005", async () => {
  await using f = start();
  const err = await wechatError(f.api.getMedia("no-such-media"));
  assert.equal(err.errcode, 40007);
  assert.equal(err.action, "media/get");
  assert.match(err.message, /upload the file again/);
  const up = await f.api.uploadMedia("image", new Uint8Array([1]), "a.png");
  f.clock.t += 72 * HOUR;
  assert.equal((await wechatError(f.api.getMedia(up.media_id))).errcode, 40007);
  // deno-lint-ignore no-explicit-any
  assert.equal((await wechatError(f.api.uploadMedia("file" as any, new Uint8Array([1]), "a.png"))).errcode, 40004);
  assert.equal((await wechatError(f.api.uploadMedia("image", new Uint8Array([1]), "a.txt"))).errcode, 40005);
  assert.equal((await wechatError(f.api.uploadMedia("thumb", new Uint8Array(70_000), "t.jpg"))).errcode, 40006);
  f.sim.recordInteraction("u", "message");
  const voice = await f.api.uploadMedia("voice", new Uint8Array([1]), "v.mp3");
  assert.equal((await wechatError(f.api.sendCustom(customMedia("u", "image", voice.media_id)))).errcode, 40007);
});

Deno.test("message errors: unknown openid 40003, text over 2048 bytes 45002, no permission 48001", async () => {
  await using f = start();
  const unknown = await wechatError(f.api.sendCustom(customText("stranger", "hi")));
  assert.equal(unknown.errcode, 40003);
  assert.match(unknown.message, /invalid openid/);
  f.sim.recordInteraction("u", "message");
  await f.api.sendCustom(customText("u", "字".repeat(682))); // 2046 bytes
  const long = await wechatError(f.api.sendCustom(customText("u", "字".repeat(683))));
  assert.equal(long.errcode, 45002);
  assert.match(long.message, /content too long/);
  await using g = start({}, { customerService: false });
  g.sim.recordInteraction("u", "message");
  const denied = await wechatError(g.api.sendCustom(customText("u", "hi")));
  assert.equal(denied.errcode, 48001);
  assert.match(denied.message, /no customer-service API permission/);
});

Deno.test("token errors: bad secret 40125 and bad appid 40013 at token time; a failed fetch is tried again next call", async () => {
  await using f = start();
  const bad = f.client({ appSecret: `${SECRET}-wrong` });
  const err = await wechatError(bad.accessToken());
  assert.equal(err.errcode, 40125);
  assert.equal(err.action, "token");
  assert.match(err.message, /invalid AppSecret/);
  assert.ok(!err.message.includes(SECRET));
  const stable = f.client({ appSecret: `${SECRET}-wrong`, tokenMode: "stable_token" });
  assert.equal((await wechatError(stable.sendCustom(customText("u", "x")))).errcode, 40125);
  assert.equal((await wechatError(f.client({ appId: "wx-other" }).accessToken())).errcode, 40013);
  // All waiters of a failed fetch share its error; the next call fetches again.
  const fetches = f.sim.tokenFetches;
  const all = await Promise.allSettled([bad.accessToken(), bad.accessToken(), bad.accessToken()]);
  assert.ok(all.every((r) => r.status === "rejected" && r.reason.errcode === 40125));
  assert.equal(f.sim.tokenFetches, fetches + 1);
  f.sim.failNext(1, 40164, "invalid ip 10.0.0.1 ipv6 ::ffff:10.0.0.1, not in whitelist");
  const ip = await wechatError(f.api.accessToken());
  assert.match(ip.message, /IP is not whitelisted/);
  assert.ok(await f.api.accessToken());
});

Deno.test("an unreachable API is a plain Error naming the action and the base, without the secret", async () => {
  const http = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => new Response("bye"));
  const base = `http://127.0.0.1:${http.addr.port}`;
  await http.shutdown();
  const api = new WechatApi({ appId: APP_ID, appSecret: SECRET, apiBase: base, tokenMode: "token" });
  const err = await plainError(api.accessToken());
  assert.match(err.message, new RegExp(`^WeChat token: cannot reach WeChat API at ${base}: `));
});

Deno.test("a non-200 or non-JSON answer is a plain Error, the body consumed", async () => {
  await using http = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req) =>
      new URL(req.url).pathname === "/cgi-bin/token"
        ? new Response("<html>bad gateway</html>", { status: 502 })
        : new Response("not json"),
  );
  const api = new WechatApi({
    appId: APP_ID,
    appSecret: SECRET,
    apiBase: `http://127.0.0.1:${http.addr.port}`,
    tokenMode: "token",
  });
  const err = await plainError(api.accessToken());
  assert.match(String(err), /WeChat token: http:\/\/127\.0\.0\.1:\d+ answered HTTP 502/);
});

Deno.test("no error message carries the app secret or a token, whatever failed", async () => {
  // Each test checks the errors it provokes (wechatError, plainError); this one provokes one of each family
  // on its own, so that it holds when run alone (--filter) and in any order.
  await using f = start();
  const token = await f.api.accessToken();
  const errors: unknown[] = [];
  const collect = (p: Promise<unknown>) =>
    p.then(() => assert.fail("expected the call to fail"), (e) => errors.push(e));
  // At token time: a wrong secret (40125), a wrong AppID (40013), an IP not whitelisted (40164).
  await collect(f.client({ appSecret: `${SECRET}-wrong` }).accessToken());
  await collect(f.client({ appSecret: `${SECRET}-wrong`, tokenMode: "stable_token" }).accessToken());
  await collect(f.client({ appId: "wx-other" }).accessToken());
  f.sim.failNext(1, 40164, "invalid ip 10.0.0.1 ipv6 ::ffff:10.0.0.1, not in whitelist");
  await collect(f.client().accessToken());
  // On calls with a token in the URL: a rejected token (40001), business errors, busy (-1) after retries.
  const bogus: typeof fetch = (input, init) =>
    fetch(String(input).replace(/access_token=[^&]*/, "access_token=bogus"), init);
  await collect(f.client({ fetch: bogus }).sendCustom(customText("u", "x")));
  await collect(f.api.sendCustom(customText("stranger", "x")));
  await collect(f.api.typing("stranger", "Typing"));
  await collect(f.api.getMedia("no-such-media"));
  f.sim.busyNext(4);
  await collect(f.client({ maxBusyRetries: 3, backoffMs: 1 }).sendCustom(customText("stranger", "x")));
  // Not reaching WeChat: refused connection, non-JSON answer.
  const closed = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => new Response("bye"));
  await closed.shutdown();
  await collect(f.client({ apiBase: `http://127.0.0.1:${closed.addr.port}` }).accessToken());
  const html: typeof fetch = () => Promise.resolve(new Response("<html>bad gateway</html>", { status: 502 }));
  await collect(f.client({ fetch: html }).sendCustom(customText("u", "x")));

  assert.equal(errors.length, 11);
  assert.ok(errors.some((e) => e instanceof WechatApiError) && errors.some((e) => !(e instanceof WechatApiError)));
  for (const e of errors) assertNoSecret(e, [token]);
});
