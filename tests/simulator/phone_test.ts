import assert from "node:assert/strict";
import { ConfigError } from "../../src/config/config.ts";
import { createLogger } from "../../src/core/log.ts";
import { createLiveFeed } from "../../src/simulator/live_feed.ts";
import { amrSeconds, createSimulator, type SimulatorOptions } from "../../src/simulator/phone.ts";
import { parseSimulatorConfig, startSimulator } from "../../src/simulator/simulator.ts";
import { FAILURE_TEXT, userXml } from "../../src/simulator/webhook_sender.ts";
import { AgentClient, agentUrl, freePort, startService, type TestService } from "../helpers.ts";

const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID = "wx2c2769f8efd9abc2";
const SECRET = "sim-secret-value";
const TOKEN = "phonetoken";
const STATIC_DIR = new URL("../../static", import.meta.url).pathname;
const SAFE_ENV = { WECHAT_TOKEN: TOKEN, WECHAT_APPID: APPID, WECHAT_ENCODING_AES_KEY: AES_KEY };
const PNG: Uint8Array<ArrayBuffer> = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);
// A real AMR-NB voice note: 100 frames of 20 ms (tests/fixtures/media/make_amr.ts).
const AMR = await Deno.readFile(new URL("../fixtures/media/voice.amr", import.meta.url));

// deno-lint-ignore no-explicit-any
type Event = any;

/** A phone page's live socket: keeps every event so tests can wait for the one they expect. */
class PhoneSocket implements AsyncDisposable {
  readonly socket: WebSocket;
  readonly closed: Promise<CloseEvent>;
  readonly events: Event[] = [];
  #wake?: () => void;

  private constructor(url: string) {
    this.socket = new WebSocket(url);
    this.closed = new Promise((resolve) => this.socket.addEventListener("close", resolve, { once: true }));
    this.socket.addEventListener("message", (e) => {
      this.events.push(JSON.parse(e.data));
      this.#wake?.();
    });
    this.socket.addEventListener("close", () => this.#wake?.());
  }

  /** Connect and wait for the hello (the socket is then registered for events). */
  static async open(base: string): Promise<PhoneSocket> {
    const p = new PhoneSocket(`${base.replace(/^http/, "ws")}/phone/api/live`);
    await p.next((e) => e.kind === "hello");
    return p;
  }

  /** Take the first event that matches (others stay), waiting up to `timeoutMs`. */
  async next(match: (e: Event) => boolean, timeoutMs = 5000): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex(match);
      if (i >= 0) return this.events.splice(i, 1)[0];
      if (this.socket.readyState >= WebSocket.CLOSING) throw new Error("the phone socket closed while waiting");
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching phone event within ${timeoutMs} ms: ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, left);
        this.#wake = done;
        function done() {
          clearTimeout(t);
          resolve();
        }
      });
    }
  }

  async [Symbol.asyncDispose]() {
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close();
    await this.closed;
  }
}

/** `promise`, or a rejection naming `what` after `ms`: a broken simulator must fail a test, not hang it. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

const silent = createLogger({ level: "silent" });

function startSim(kefu: TestService | string, env: Record<string, string> = {}) {
  const webhook = typeof kefu === "string" ? kefu : `${kefu.http}/wechat`;
  const config = parseSimulatorConfig({
    WECHAT_APPSECRET: SECRET,
    SIM_PORT: "0",
    SIM_WEBHOOK_URL: webhook,
    SIM_ACCOUNT_ID: "gh_phone_test",
    ...SAFE_ENV,
    ...env,
  });
  const running = startSimulator(config, silent, STATIC_DIR);
  const base = `http://127.0.0.1:${running.port}`;
  return {
    ...running,
    base,
    // deno-lint-ignore no-explicit-any
    async post(path: string, body: unknown, init: RequestInit = {}): Promise<{ status: number; body: any }> {
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        body: body instanceof Uint8Array ? body as Uint8Array<ArrayBuffer> : JSON.stringify(body),
        ...init,
      });
      return { status: res.status, body: await res.json() };
    },
    [Symbol.asyncDispose]: () => running.shutdown(),
  };
}

// A test-only server: Deno.serve on a free port with the simulator app built from `options`.
function serveSim(options: Partial<SimulatorOptions>) {
  const sim = createSimulator({
    appId: APPID,
    appSecret: SECRET,
    token: TOKEN,
    webhookUrl: "http://127.0.0.1:9/wechat",
    accountId: "gh_x",
    staticDir: STATIC_DIR,
    ...options,
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, sim.app.fetch);
  return {
    sim,
    base: `http://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: async () => {
      sim.close();
      await server.shutdown();
    },
  };
}

Deno.test("parseSimulatorConfig: defaults, modes, and errors that name the variable but never the secret", () => {
  const c = parseSimulatorConfig({ WECHAT_TOKEN: "t" });
  assert.deepEqual(c, {
    appId: "",
    appSecret: "",
    token: "t",
    encodingAesKey: "",
    mode: "plaintext",
    port: 9000,
    host: "127.0.0.1",
    webhookUrl: "http://127.0.0.1:1234/wechat",
    accountId: "gh_kefu_simulator",
    timeoutMs: 5000,
    logLevel: "info",
  });
  assert.equal(parseSimulatorConfig(SAFE_ENV).mode, "safe");
  assert.equal(parseSimulatorConfig({ ...SAFE_ENV, SIM_MODE: "compatible" }).mode, "compatible");
  const fails = (env: Record<string, string>, re: RegExp) => {
    assert.throws(() => parseSimulatorConfig(env), (e) => e instanceof ConfigError && re.test(e.message));
  };
  fails({}, /WECHAT_TOKEN is required/);
  fails(
    { WECHAT_TOKEN: "t", SIM_PORT: "70000" },
    /^cannot read SIM_PORT="70000": expected an integer from 0 to 65535$/,
  );
  fails({ WECHAT_TOKEN: "t", SIM_TIMEOUT_MS: "fast" }, /SIM_TIMEOUT_MS="fast"/);
  fails({ WECHAT_TOKEN: "t", SIM_WEBHOOK_URL: "ftp://x" }, /SIM_WEBHOOK_URL="ftp:\/\/x": expected an http\(s\) URL/);
  fails({ WECHAT_TOKEN: "t", SIM_ACCOUNT_ID: "gh bad" }, /SIM_ACCOUNT_ID="gh bad"/);
  fails({ WECHAT_TOKEN: "t", SIM_MODE: "safe" }, /SIM_MODE=safe: WECHAT_ENCODING_AES_KEY is required/);
  fails({ WECHAT_TOKEN: "t", SIM_MODE: "loud" }, /SIM_MODE="loud"/);
  fails({ WECHAT_TOKEN: "t", WECHAT_ENCODING_AES_KEY: AES_KEY }, /WECHAT_APPID is required/);
  fails({ WECHAT_TOKEN: "t", LOG_LEVEL: "chatty" }, /LOG_LEVEL="chatty"/);
  const secretKey = "secretsecretsecret";
  assert.throws(
    () => parseSimulatorConfig({ ...SAFE_ENV, WECHAT_ENCODING_AES_KEY: secretKey }),
    (e) => e instanceof ConfigError && /WECHAT_ENCODING_AES_KEY/.test(e.message) && !e.message.includes(secretKey),
  );
});

Deno.test("phone API → kefu (safe mode): a text reaches the agent; the phone socket sees it, its attempt and its result", async () => {
  await using kefu = await startService(SAFE_ENV);
  await using sim = startSim(kefu);
  await using agent = await AgentClient.open(agentUrl(kefu, "a1"));
  await using phone = await PhoneSocket.open(sim.base);
  const r = await sim.post("/phone/api/send", { openid: "oPhoneUser", type: "text", content: "你好，客服", id: "m-1" });
  assert.equal(r.status, 200);
  assert.equal(r.body.status, "accepted", r.body.error);
  assert.equal(r.body.id, "m-1");
  assert.equal(r.body.attempts, 1);
  assert.match(r.body.msgId, /^\d{19}$/);
  const e = await agent.next(1001);
  assert.deepEqual([e.data.id, e.data.contact_id, e.data.msg.content], [r.body.msgId, "oPhoneUser", "你好，客服"]);

  const user = await phone.next((x) => x.kind === "user");
  assert.deepEqual([user.openid, user.id, user.msgId, user.input], [
    "oPhoneUser",
    "m-1",
    r.body.msgId,
    { type: "text", content: "你好，客服" },
  ]);
  const attempt = await phone.next((x) => x.kind === "attempt");
  assert.deepEqual([attempt.openid, attempt.id, attempt.attempt, attempt.of], ["oPhoneUser", "m-1", 1, 4]);
  const result = await phone.next((x) => x.kind === "result");
  assert.deepEqual([result.openid, result.id, result.result.status, result.result.msgId], [
    "oPhoneUser",
    "m-1",
    "accepted",
    r.body.msgId,
  ]);
  assert.ok(user.seq < attempt.seq && attempt.seq < result.seq);
  // A page opened later gets the conversation (attempts are not kept).
  const history = await (await fetch(`${sim.base}/phone/api/history?openid=oPhoneUser`)).json();
  assert.deepEqual(history.events.map((x: Event) => x.kind), ["user", "result"]);
});

Deno.test("round trip: a user writes on the phone, the agent answers, kefu's customer-service call reaches the phone", async () => {
  const port = freePort();
  await using kefu = await startService({
    ...SAFE_ENV,
    WECHAT_APPSECRET: SECRET,
    WECHAT_API_BASE: `http://127.0.0.1:${port}`,
  });
  await using sim = startSim(kefu, { SIM_PORT: String(port) });
  await using agent = await AgentClient.open(agentUrl(kefu, "a1"));
  await using phone = await PhoneSocket.open(sim.base);
  const r = await sim.post("/phone/api/send", { openid: "oRound", type: "text", content: "我的订单到哪了？" });
  assert.equal(r.body.status, "accepted", r.body.error);
  assert.equal((await agent.next(1001)).data.msg.content, "我的订单到哪了？");
  agent.send({
    data: { id: "r-1", msg_type: "text", contact_id: "oRound", msg: { content: "已发货，明天送到" } },
    result: { code: 1001 },
  });
  const sent = await agent.next(103);
  assert.deepEqual([sent.data.id, sent.data.status], ["r-1", "sent"]);
  const custom = await phone.next((e) => e.kind === "custom");
  assert.equal(custom.openid, "oRound");
  assert.deepEqual(custom.message, { touser: "oRound", msgtype: "text", text: { content: "已发货，明天送到" } });
  assert.equal(sim.simulator.wechat.tokenFetches, 1);
});

Deno.test("the simulator's customer-service API: messages, media and typing reach the phone socket live", async () => {
  await using kefu = await startService(SAFE_ENV);
  await using sim = startSim(kefu);
  await using phone = await PhoneSocket.open(sim.base);
  const tokenUrl = `${sim.base}/cgi-bin/token?grant_type=client_credential&appid=${APPID}&secret=${SECRET}`;
  const { access_token } = await (await fetch(tokenUrl)).json();
  const api = async (path: string, body: unknown) =>
    (await sim.post(`/cgi-bin/${path}?access_token=${access_token}`, body)).body;
  const text = (content: string) => ({ touser: "oCs", msgtype: "text", text: { content } });
  // Before the user has written there is no one to send to, as on WeChat.
  assert.equal((await api("message/custom/send", text("x"))).errcode, 40003);

  assert.equal(
    (await sim.post("/phone/api/send", { openid: "oCs", type: "text", content: "在吗" })).body.status,
    "accepted",
  );
  assert.equal((await api("message/custom/typing", { touser: "oCs", command: "Typing" })).errcode, 0);
  const typing = await phone.next((e) => e.kind === "typing");
  assert.deepEqual([typing.openid, typing.typing], ["oCs", true]);
  assert.deepEqual(await api("message/custom/send", text("您好，请讲")), { errcode: 0, errmsg: "ok" });
  assert.equal((await phone.next((e) => e.kind === "typing")).typing, false, "a message ends the typing indicator");
  const custom = await phone.next((e) => e.kind === "custom");
  assert.equal(custom.openid, "oCs");
  assert.deepEqual(custom.message, text("您好，请讲"));

  // Media the gateway uploaded is shown through a URL the simulator serves.
  const form = new FormData();
  form.append("media", new File([PNG], "reply.png", { type: "image/png" }));
  const upload = await fetch(`${sim.base}/cgi-bin/media/upload?access_token=${access_token}&type=image`, {
    method: "POST",
    body: form,
  });
  const { media_id } = await upload.json();
  assert.equal((await api("message/custom/send", { touser: "oCs", msgtype: "image", image: { media_id } })).errcode, 0);
  const image = await phone.next((e) => e.kind === "custom");
  assert.equal(image.mediaUrl, `/phone/media/${encodeURIComponent(media_id)}`);
  const served = await fetch(`${sim.base}${image.mediaUrl}`);
  assert.equal(served.headers.get("content-type"), "image/png");
  assert.equal(served.headers.get("x-content-type-options"), "nosniff");
  assert.deepEqual(new Uint8Array(await served.arrayBuffer()), PNG);

  // After the user unfollows, WeChat refuses customer-service messages to them.
  assert.equal((await sim.post("/phone/api/send", { openid: "oCs", type: "unsubscribe" })).body.status, "accepted");
  assert.equal((await api("message/custom/send", text("还在吗"))).errcode, 45015);
});

Deno.test("an image sent from the phone is stored and served; kefu re-stores it from PicUrl and the agent gets kefu's URL", async () => {
  // No AppSecret, so kefu takes the image from its PicUrl, on the simulator's host.
  await using kefu = await startService({ WECHAT_TOKEN: TOKEN, MEDIA_ALLOWED_HOSTS: "127.0.0.1" });
  await using sim = startSim(kefu, { WECHAT_ENCODING_AES_KEY: "" });
  await using agent = await AgentClient.open(agentUrl(kefu, "a1"));
  const r = await sim.post("/phone/api/image?openid=oPic&name=cat.png&id=img-1", PNG, {
    headers: { "content-type": "image/png" },
  });
  assert.equal(r.status, 200);
  assert.equal(r.body.status, "accepted", r.body.error);
  assert.equal(r.body.id, "img-1");
  const { picUrl, mediaId } = r.body.input;
  assert.equal(picUrl, `${sim.base}/phone/media/${encodeURIComponent(mediaId)}`);
  assert.equal(sim.simulator.wechat.media(mediaId)?.filename, "cat.png");
  const served = await fetch(picUrl);
  assert.deepEqual(new Uint8Array(await served.arrayBuffer()), PNG);
  const e = await agent.next(1002);
  assert.equal(e.data.id, r.body.msgId);
  assert.equal(e.data.contact_id, "oPic");
  const hash = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", PNG)))
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(e.data.msg.media_path, `/media/${hash}.png`);
  assert.equal(e.data.msg.media_type, "image/png");
  const got = await fetch(`${kefu.http}${e.data.msg.media_path}`);
  assert.equal(got.headers.get("content-type"), "image/png");
  assert.deepEqual(new Uint8Array(await got.arrayBuffer()), PNG);
});

Deno.test("phone API events: a scan by a non-follower subscribes with qrscene_, by a follower is SCAN; clicks reach the agent", async () => {
  await using kefu = await startService(SAFE_ENV);
  await using sim = startSim(kefu);
  await using agent = await AgentClient.open(agentUrl(kefu, "a1"));
  const send = async (body: Record<string, string>) => {
    const r = await sim.post("/phone/api/send", { openid: "oEv", ...body });
    assert.equal(r.body.status, "accepted", r.body.error);
    assert.equal(r.body.msgId, "");
    return r.body;
  };
  const first = await send({ type: "scan", scene: "shop7" });
  assert.equal(first.input.type, "subscribe");
  assert.match(first.input.ticket, /^gQ/);
  const sub = await agent.next(102);
  assert.deepEqual([sub.data.msg.event, sub.data.msg.from_id, sub.data.msg.event_key], [
    "subscribe",
    "oEv",
    "qrscene_shop7",
  ]);
  assert.equal((await send({ type: "scan", scene: "shop8", ticket: "T8" })).input.type, "scan");
  const scan = await agent.next(102);
  assert.deepEqual([scan.data.msg.event, scan.data.msg.event_key, scan.data.msg.ticket], ["SCAN", "shop8", "T8"]);
  await send({ type: "click", eventKey: "V1001_TODAY_MUSIC" });
  const click = await agent.next(102);
  assert.deepEqual([click.data.msg.event, click.data.msg.event_key], ["CLICK", "V1001_TODAY_MUSIC"]);
  assert.equal(click.data.msg.content, "用户 oEv 点击了菜单（V1001_TODAY_MUSIC）");
  await send({ type: "unsubscribe" });
  assert.equal((await agent.next(102)).data.msg.event, "unsubscribe");
  assert.equal(
    (await send({ type: "scan", scene: "shop9" })).input.type,
    "subscribe",
    "unfollowed: a scan follows again",
  );
});

Deno.test("phone API: kefu's passive reply reaches the phone; a gateway that is down gets 4 attempts and the failure text", async () => {
  await using kefu = await startService({ ...SAFE_ENV, WECHAT_AUTO_REPLY: "稍等，马上为您服务" });
  await using sim = startSim(kefu);
  await using phone = await PhoneSocket.open(sim.base);
  const r = await sim.post("/phone/api/send", { openid: "oWait", type: "text", content: "有人吗" });
  assert.equal(r.body.status, "replied", r.body.error);
  assert.deepEqual(r.body.reply, { type: "text", content: "稍等，马上为您服务" });
  const shown = await phone.next((e) => e.kind === "result");
  assert.deepEqual(shown.result.reply, r.body.reply);

  const gone = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => new Response());
  const port = gone.addr.port;
  await gone.shutdown();
  await using down = startSim(`http://127.0.0.1:${port}/wechat`, { SIM_TIMEOUT_MS: "200" });
  await using phone2 = await PhoneSocket.open(down.base);
  const f = await down.post("/phone/api/send", { openid: "oWait", type: "text", content: "喂" });
  assert.equal(f.status, 200);
  assert.equal(f.body.status, "failed");
  assert.equal(f.body.attempts, 4);
  assert.equal(f.body.shown, FAILURE_TEXT);
  for (const n of [1, 2, 3, 4]) await phone2.next((e) => e.kind === "attempt" && e.attempt === n && e.of === 4);
  assert.equal((await phone2.next((e) => e.kind === "result")).result.shown, FAILURE_TEXT);
});

Deno.test("phone page and bad input: files served, each bad request refused with what was wrong, nothing sent", async () => {
  await using s = serveSim({ maxImageBytes: 16 });
  const home = await fetch(`${s.base}/`, { redirect: "manual" });
  await home.body?.cancel();
  assert.deepEqual([home.status, home.headers.get("location")], [302, "/phone/"]);
  const page = await fetch(`${s.base}/phone/`);
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  assert.match(await page.text(), /<script src="\/phone\/phone\.js"/);
  for (const [file, type] of [["phone.js", /^text\/javascript/], ["phone.css", /^text\/css/]] as const) {
    const res = await fetch(`${s.base}/phone/${file}`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, type);
    await res.body?.cancel();
  }
  const missing = await fetch(`${s.base}/phone/other.js`);
  assert.equal(missing.status, 404);
  await missing.body?.cancel();

  // deno-lint-ignore no-explicit-any
  const refused = async (path: string, body: BodyInit, type = "application/json"): Promise<[number, any]> => {
    const res = await fetch(`${s.base}${path}`, { method: "POST", body, headers: { "content-type": type } });
    return [res.status, await res.json()];
  };
  const send = (body: unknown) => refused("/phone/api/send", JSON.stringify(body));
  assert.equal((await refused("/phone/api/send", "{nope"))[1].error, "invalid_json");
  assert.deepEqual(await send({ openid: "o1" }), [400, {
    error: "missing_field",
    detail: 'cannot send: "type" is required',
  }]);
  assert.match((await send({ openid: "bad id!", type: "text", content: "x" }))[1].detail, /"openid".*"bad id!"/);
  assert.match((await send({ openid: "o1", type: "shout" }))[1].detail, /"type" "shout" is not one of/);
  assert.match((await send({ openid: "o1", type: "text", content: "长".repeat(5000) }))[1].detail, /over 4096/);
  assert.match((await send({ openid: "o1", type: "location", latitude: "north", longitude: "1" }))[1].detail, /north/);
  assert.equal((await send({ openid: "o1", type: "click" }))[0], 400);
  const html = await refused("/phone/api/image?openid=o1", "<script>", "text/html");
  assert.deepEqual([html[0], html[1].error], [415, "unsupported_body"]);
  const big = await refused("/phone/api/image?openid=o1", new Uint8Array(17), "image/png");
  assert.deepEqual([big[0], big[1].error], [413, "body_too_large"]);
  assert.equal((await refused("/phone/api/send", "x".repeat(70_000)))[0], 413);

  const live = await fetch(`${s.base}/phone/api/live`);
  assert.equal(live.status, 426);
  await live.body?.cancel();
  const media = await fetch(`${s.base}/phone/media/nope`);
  assert.equal(media.status, 404);
  await media.body?.cancel();
  assert.deepEqual(s.sim.feed.history("o1"), [], "no refused request reached the webhook or the phone");
  // The WeChat API answers on the same port.
  const token = await (await fetch(`${s.base}/cgi-bin/token?grant_type=client_credential&appid=${APPID}&secret=x`))
    .json();
  assert.equal(token.errcode, 40125);
});

Deno.test("live feed: history bounded per user and in users; attempts and typing are not kept; sockets capped", async () => {
  const feed = createLiveFeed({ maxUsers: 2, maxHistory: 3 });
  for (let i = 0; i < 5; i++) feed.publish({ kind: "result", openid: "u1", id: `r${i}` });
  feed.publish({ kind: "attempt", openid: "u1", id: "r4", attempt: 2, of: 4 });
  feed.publish({ kind: "typing", openid: "u1", typing: true });
  assert.deepEqual(feed.history("u1").map((e) => e.id), ["r2", "r3", "r4"]);
  feed.publish({ kind: "custom", openid: "u2" });
  feed.publish({ kind: "custom", openid: "u1" });
  feed.publish({ kind: "custom", openid: "u3" });
  assert.equal(feed.history("u2").length, 0, "the least recently active user is forgotten");
  assert.equal(feed.history("u1").length, 3);
  assert.equal(feed.history("u3").length, 1);

  await using s = serveSim({ maxSockets: 1 });
  await using first = await PhoneSocket.open(s.base);
  await using second = await PhoneSocket.open(s.base);
  const closed = await within(first.closed, 5000, "the oldest phone socket closed");
  assert.equal(closed.code, 1008);
  assert.equal(s.sim.feed.sockets, 1);
  assert.equal(second.socket.readyState, WebSocket.OPEN);
});

Deno.test("shutdown: a send in flight is cancelled and phone pages are closed with 1001", async () => {
  const gate = Promise.withResolvers<void>();
  const arrived = Promise.withResolvers<void>();
  // The gateway takes the message and never answers (until the test ends).
  const slow = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    await req.text();
    arrived.resolve();
    await gate.promise;
    return new Response("success");
  });
  await using _slow = { [Symbol.asyncDispose]: () => slow.shutdown() };
  await using sim = startSim(`http://127.0.0.1:${slow.addr.port}/wechat`, { SIM_TIMEOUT_MS: "60000" });
  // Disposed before the simulator: a shutdown that does not cancel must fail the test, not hang it.
  using _release = { [Symbol.dispose]: () => gate.resolve() };
  await using phone = await PhoneSocket.open(sim.base);
  const pending = sim.post("/phone/api/send", { openid: "oLate", type: "text", content: "…" });
  await arrived.promise;
  await within(sim.shutdown(), 5000, "shutdown with a send in flight");
  const r = await pending;
  assert.equal(r.body.status, "failed");
  assert.equal(r.body.error, "the send was cancelled");
  assert.equal((await within(phone.closed, 5000, "the phone socket closed")).code, 1001);
});

Deno.test("a voice note from the phone: real AMR kept with a MediaId, posted as voice XML; the agent gets kefu's converted file", async () => {
  const port = freePort();
  await using kefu = await startService({
    ...SAFE_ENV,
    WECHAT_APPSECRET: SECRET,
    WECHAT_API_BASE: `http://127.0.0.1:${port}`,
  });
  await using sim = startSim(kefu, { SIM_PORT: String(port) });
  await using agent = await AgentClient.open(agentUrl(kefu, "a1"));
  await using phone = await PhoneSocket.open(sim.base);

  // The page's voice button sends the sample it is served: the fixture's bytes.
  const sample = await fetch(`${sim.base}/phone/sample-voice.amr`);
  assert.equal(sample.headers.get("content-type"), "audio/amr");
  assert.deepEqual(new Uint8Array(await sample.arrayBuffer()), AMR);

  const r = await sim.post("/phone/api/voice?openid=oVoice&name=note.amr&id=v-1", AMR, {
    headers: { "content-type": "audio/amr" },
  });
  assert.equal(r.status, 200);
  assert.equal(r.body.status, "accepted", r.body.error);
  assert.equal(r.body.id, "v-1");
  const { mediaId } = r.body.input;
  assert.deepEqual(r.body.input, { type: "voice", mediaId, format: "amr", seconds: 2 });
  const kept = sim.simulator.wechat.media(mediaId);
  assert.deepEqual([kept?.type, kept?.filename, kept?.contentType], ["voice", "note.amr", "audio/amr"]);
  assert.deepEqual(kept?.bytes, AMR);
  const user = await phone.next((e) => e.kind === "user");
  assert.deepEqual([user.openid, user.id, user.input], ["oVoice", "v-1", r.body.input]);

  // kefu fetched it with media/get (the same bytes) and converted it for browsers.
  const e = await agent.next(1003, 15_000);
  assert.deepEqual([e.data.id, e.data.contact_id, e.data.msg_type], [r.body.msgId, "oVoice", "voice"]);
  assert.equal(e.data.msg.media_error, undefined);
  assert.match(e.data.msg.media_path, /^\/media\/[0-9a-f]{64}\.ogg$/);
  assert.equal(e.data.msg.media_type, "audio/ogg");
  assert.equal(sim.simulator.wechat.calls("/cgi-bin/media/get"), 1);
  const ogg = await fetch(`${kefu.http}${e.data.msg.media_path}`);
  assert.equal(ogg.headers.get("content-type"), "audio/ogg");
  assert.equal(new TextDecoder().decode((await ogg.bytes()).subarray(0, 4)), "OggS");
});

Deno.test("voice XML as WeChat posts it: MediaId and Format; the length is the page's, not WeChat's", () => {
  const xml = userXml(
    { type: "voice", mediaId: "M_1", format: "amr", seconds: 2 },
    { openid: "oV", accountId: "gh_x", createTime: 1700000000, msgId: "123" },
  );
  assert.equal(
    xml,
    "<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[oV]]></FromUserName>" +
      "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[voice]]></MsgType>" +
      "<MediaId><![CDATA[M_1]]></MediaId><Format><![CDATA[amr]]></Format><MsgId>123</MsgId></xml>",
  );
});

Deno.test("amrSeconds: whole AMR-NB files only, 20 ms a frame", () => {
  assert.equal(amrSeconds(AMR), 2);
  assert.equal(amrSeconds(AMR.subarray(0, AMR.length - 1)), undefined, "a cut frame");
  assert.equal(amrSeconds(AMR.subarray(0, 6)), undefined, "no frames");
  assert.equal(amrSeconds(PNG), undefined);
  assert.equal(amrSeconds(new TextEncoder().encode("#!AMR-WB\n")), undefined, "AMR-WB is not what WeChat sends");
  // A frame of an unknown type (12–14 are reserved).
  assert.equal(amrSeconds(new Uint8Array([...new TextEncoder().encode("#!AMR\n"), 12 << 3])), undefined);
});

Deno.test("phone API voice: refused unless it is AMR-NB of a sane size, nothing sent", async () => {
  await using s = serveSim({ maxVoiceBytes: 4096 });
  // deno-lint-ignore no-explicit-any
  const refused = async (body: BodyInit, type: string, query = "openid=o1"): Promise<[number, any]> => {
    const res = await fetch(`${s.base}/phone/api/voice?${query}`, {
      method: "POST",
      body,
      headers: { "content-type": type },
    });
    return [res.status, await res.json()];
  };
  assert.deepEqual((await refused(AMR, "audio/mpeg"))[0], 415);
  assert.match((await refused(AMR, "audio/mpeg"))[1].detail, /"audio\/mpeg" is not audio\/amr/);
  const fake = await refused(PNG, "audio/amr");
  assert.deepEqual([fake[0], fake[1].error], [415, "unsupported_body"]);
  assert.match(fake[1].detail, /not an AMR-NB file/);
  assert.deepEqual((await refused(new Uint8Array(5000), "audio/amr"))[0], 413);
  assert.deepEqual((await refused(new Uint8Array(0), "audio/amr"))[1].error, "empty_body");
  assert.match((await refused(AMR, "audio/amr", "openid=bad id"))[1].detail, /"openid"/);
  assert.deepEqual(s.sim.feed.history("o1"), [], "no refused voice note reached the webhook or the phone");
});
