import assert from "node:assert/strict";
import { XMLParser } from "fast-xml-parser";
import { encryptedReplyXml, signature, WechatCipher } from "../../src/channels/wx_official/crypto.ts";
import {
  createWebhookSender,
  FAILURE_TEXT,
  newMsgId,
  userXml,
  type WebhookSenderOptions,
} from "../../src/simulator/webhook_sender.ts";
import { AgentClient, agentUrl, startService } from "../helpers.ts";

const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID = "wx2c2769f8efd9abc2";
const TOKEN = "simtoken";
const ACCOUNT = "gh_kefu_test";
const parser = new XMLParser({ parseTagValue: false });

const SAFE_ENV = { WECHAT_TOKEN: TOKEN, WECHAT_APPID: APPID, WECHAT_ENCODING_AES_KEY: AES_KEY };

function sender(url: string, options: Partial<WebhookSenderOptions> = {}) {
  return createWebhookSender({ url, token: TOKEN, accountId: ACCOUNT, appId: APPID, timeoutMs: 2000, ...options });
}

// A real HTTP server standing in for the account's server, for answers kefu never gives; `handler` sees each request.
function accountServer(handler: (req: Request, body: string) => Response | Promise<Response>) {
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    async (req) => handler(req, await req.text()),
  );
  return { url: `http://127.0.0.1:${server.addr.port}/wechat`, [Symbol.asyncDispose]: () => server.shutdown() };
}

Deno.test("userXml: WeChat's fields and order for messages and events", () => {
  const head = { openid: "oUser", accountId: ACCOUNT, createTime: 1700000000, msgId: "6054768590064713728" };
  assert.equal(
    userXml({ type: "text", content: "a]]>b" }, head),
    "<xml><ToUserName><![CDATA[gh_kefu_test]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName>" +
      "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>" +
      "<Content><![CDATA[a]]]]><![CDATA[>b]]></Content><MsgId>6054768590064713728</MsgId></xml>",
  );
  const fields = (input: Parameters<typeof userXml>[0]) => parser.parse(userXml(input, head)).xml;
  assert.deepEqual(fields({ type: "image", picUrl: "http://x/p.png", mediaId: "M1" }), {
    ToUserName: ACCOUNT,
    FromUserName: "oUser",
    CreateTime: "1700000000",
    MsgType: "image",
    PicUrl: "http://x/p.png",
    MediaId: "M1",
    MsgId: "6054768590064713728",
  });
  const loc = fields({ type: "location", latitude: "23.134521", longitude: "113.358803", scale: "20", label: "广州" });
  assert.deepEqual([loc.Location_X, loc.Location_Y, loc.Scale, loc.Label], ["23.134521", "113.358803", "20", "广州"]);
  const link = fields({ type: "link", title: "T", description: "D", url: "http://u" });
  assert.deepEqual([link.Title, link.Description, link.Url, link.MsgId], ["T", "D", "http://u", head.msgId]);

  const sub = fields({ type: "subscribe", scene: "123", ticket: "TK" });
  assert.deepEqual([sub.MsgType, sub.Event, sub.EventKey, sub.Ticket, sub.MsgId], [
    "event",
    "subscribe",
    "qrscene_123",
    "TK",
    undefined,
  ]);
  assert.deepEqual(Object.keys(fields({ type: "subscribe" })), [
    "ToUserName",
    "FromUserName",
    "CreateTime",
    "MsgType",
    "Event",
  ]);
  assert.equal(fields({ type: "unsubscribe" }).Event, "unsubscribe");
  const scan = fields({ type: "scan", scene: "123", ticket: "TK" });
  assert.deepEqual([scan.Event, scan.EventKey, scan.Ticket], ["SCAN", "123", "TK"]);
  assert.deepEqual(
    [fields({ type: "click", eventKey: "K" }).Event, fields({ type: "click", eventKey: "K" }).EventKey],
    [
      "CLICK",
      "K",
    ],
  );
  assert.equal(fields({ type: "view", url: "http://v" }).EventKey, "http://v");
  const rep = fields({ type: "report_location", latitude: "23.1", longitude: "113.3", precision: "119.3" });
  assert.deepEqual([rep.Event, rep.Latitude, rep.Longitude, rep.Precision], ["LOCATION", "23.1", "113.3", "119.3"]);

  const ids = new Set(Array.from({ length: 100 }, newMsgId));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.match(id, /^[1-9]\d{18}$/);
});

Deno.test("sender → kefu, plaintext: a text message reaches the agent with WeChat's id, user and time", async () => {
  await using t = await startService({ WECHAT_TOKEN: TOKEN });
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const s = sender(`${t.http}/wechat`);
  assert.equal(s.mode, "plaintext");
  const r = await s.send("oPlainUser", { type: "text", content: "你好 plain" });
  assert.equal(r.status, "accepted");
  assert.equal(r.attempts, 1);
  assert.equal(r.httpStatus, 200);
  assert.equal(r.error, undefined);
  const e = await agent.next(1001);
  assert.equal(e.data.id, r.msgId);
  assert.equal(e.data.contact_id, "oPlainUser");
  assert.equal(e.data.msg_type, "text");
  assert.equal(e.data.send_time, r.createTime);
  assert.deepEqual(e.data.msg, { content: "你好 plain" });
});

Deno.test("sender → kefu, safe and compatible mode: encrypted messages decrypt and reach the agent", async () => {
  await using t = await startService(SAFE_ENV);
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const safe = sender(`${t.http}/wechat`, { encodingAesKey: AES_KEY });
  assert.equal(safe.mode, "safe");
  const r = await safe.send("oSafeUser", { type: "text", content: "加密 safe" });
  assert.equal(r.status, "accepted", r.error);
  const e = await agent.next(1001);
  assert.deepEqual([e.data.id, e.data.contact_id, e.data.msg.content], [r.msgId, "oSafeUser", "加密 safe"]);

  const compatible = sender(`${t.http}/wechat`, { encodingAesKey: AES_KEY, mode: "compatible" });
  const loc = await compatible.send("oSafeUser", {
    type: "location",
    latitude: "23.134521",
    longitude: "113.358803",
    scale: "20",
    label: "广州塔",
  });
  assert.equal(loc.status, "accepted", loc.error);
  const l = await agent.next(1005);
  assert.equal(l.data.id, loc.msgId);
  assert.deepEqual(l.data.msg, {
    content: "广州塔",
    latitude: "23.134521",
    longitude: "113.358803",
    scale: "20",
    label: "广州塔",
  });

  // A sender with another AppID is refused by kefu: WeChat would show the failure text.
  const other = await sender(`${t.http}/wechat`, { encodingAesKey: AES_KEY, appId: "wxOTHER" })
    .send("oSafeUser", { type: "text", content: "x" });
  assert.equal(other.status, "failed");
  assert.equal(other.httpStatus, 400);
  assert.match(other.error!, /appid_mismatch/);
  assert.deepEqual(await agent.settle(), []);
});

Deno.test("sender → kefu: events reach the agent as system envelopes (code 102)", async () => {
  await using t = await startService(SAFE_ENV);
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const s = sender(`${t.http}/wechat`, { encodingAesKey: AES_KEY });
  const sub = await s.send("oEventUser", { type: "subscribe", scene: "promo42", ticket: "gQticket" });
  assert.equal(sub.status, "accepted", sub.error);
  assert.equal(sub.msgId, "", "events carry no MsgId");
  const e = await agent.next(102);
  assert.equal(e.data.contact_id, "system01");
  assert.equal(e.data.msg.event, "subscribe");
  assert.equal(e.data.msg.from_id, "oEventUser");
  assert.equal(e.data.msg.event_key, "qrscene_promo42");
  assert.equal(e.data.msg.ticket, "gQticket");
  assert.match(e.data.msg.content, /扫码关注/);
  assert.equal((await s.send("oEventUser", { type: "click", eventKey: "V1001_TODAY" })).status, "accepted");
  const click = await agent.next(102);
  assert.deepEqual([click.data.msg.event, click.data.msg.event_key], ["CLICK", "V1001_TODAY"]);
});

Deno.test("sender: no answer within the timeout → the same MsgId again, 4 attempts at most; kefu delivers it once", async () => {
  await using t = await startService({ WECHAT_TOKEN: TOKEN });
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const seen: { msgId: string; createTime: string; signature: string; nonce: string }[] = [];
  const forwards: Promise<void>[] = [];
  const gate = Promise.withResolvers<void>();
  let answerFrom = Infinity;
  // Passes each request on to kefu, then (until `answerFrom`) keeps the sender waiting past its timeout.
  await using proxy = accountServer(async (req, body) => {
    const q = new URL(req.url).searchParams;
    const xml = parser.parse(body).xml;
    seen.push({ msgId: xml.MsgId, createTime: xml.CreateTime, signature: q.get("signature")!, nonce: q.get("nonce")! });
    const forwarded = fetch(`${t.http}/wechat${new URL(req.url).search}`, { method: "POST", body })
      .then((r) => r.text());
    forwards.push(forwarded.then(() => {}));
    const answer = await forwarded;
    if (seen.length < answerFrom) await gate.promise;
    return new Response(answer);
  });
  // Declared after the proxy, so disposed first: a failed assertion must not leave handlers waiting forever.
  using _release = { [Symbol.dispose]: () => gate.resolve() };
  const attempts: string[] = [];
  const s = sender(proxy.url, { timeoutMs: 300 });
  const r = await s.send("oRetryUser", { type: "text", content: "慢" }, {
    onAttempt: (n, of) => attempts.push(`${n}/${of}`),
  });
  assert.equal(r.status, "failed");
  assert.equal(r.attempts, 4);
  assert.equal(r.shown, FAILURE_TEXT);
  assert.match(r.error!, /no answer from http:\/\/127\.0\.0\.1:\d+\/wechat within 300 ms \(4 attempts\)/);
  assert.deepEqual(attempts, ["1/4", "2/4", "3/4", "4/4"]);
  await Promise.all(forwards);
  assert.equal(seen.length, 4);
  assert.deepEqual(new Set(seen.map((x) => x.msgId)), new Set([r.msgId]));
  assert.deepEqual(new Set(seen.map((x) => x.createTime)), new Set([String(r.createTime)]));
  assert.equal(new Set(seen.map((x) => `${x.nonce}:${x.signature}`)).size, 4, "each attempt is signed afresh");
  const e = await agent.next(1001);
  assert.equal(e.data.id, r.msgId);
  assert.deepEqual(await agent.settle(), [], "kefu drops WeChat's retries");

  // Answered on the third attempt: taken, after two retries.
  seen.length = 0;
  answerFrom = 3;
  // The third attempt goes through to kefu and back within WeChat's timeout: 1 s here, not 300 ms, for a slow machine.
  const late = await sender(proxy.url, { timeoutMs: 1000 }).send("oRetryUser", { type: "text", content: "第三次" });
  assert.equal(late.status, "accepted", late.error);
  assert.equal(late.attempts, 3);
  assert.equal((await agent.next(1001)).data.msg.content, "第三次");
  gate.resolve();
  await Promise.all(forwards);
  assert.deepEqual(await agent.settle(), []);
});

Deno.test("sender → kefu: the auto-reply (no agent online) comes back as a passive reply, decrypted in safe mode", async () => {
  await using t = await startService({ ...SAFE_ENV, WECHAT_AUTO_REPLY: "客服暂时不在，请稍候" });
  const safe = await sender(`${t.http}/wechat`, { encodingAesKey: AES_KEY })
    .send("oLonely", { type: "text", content: "有人吗" });
  assert.equal(safe.status, "replied", safe.error);
  assert.deepEqual(safe.reply, { type: "text", content: "客服暂时不在，请稍候" });

  await using p = await startService({ WECHAT_TOKEN: TOKEN, WECHAT_AUTO_REPLY: "plain auto" });
  const plain = await sender(`${p.http}/wechat`).send("oLonely", { type: "text", content: "hi" });
  assert.equal(plain.status, "replied", plain.error);
  assert.deepEqual(plain.reply, { type: "text", content: "plain auto" });
});

Deno.test("sender → kefu: a wrong token is refused and the user sees WeChat's failure text", async () => {
  await using t = await startService({ WECHAT_TOKEN: TOKEN });
  const r = await sender(`${t.http}/wechat`, { token: "not-the-token" }).send("oUser", { type: "text", content: "x" });
  assert.equal(r.status, "failed");
  assert.equal(r.attempts, 1, "an answer, even an error, is not retried");
  assert.equal(r.httpStatus, 401);
  assert.equal(r.shown, "该公众号提供的服务出现故障，请稍后再试");
  assert.match(r.error!, /HTTP 401.*bad_signature/);
});

Deno.test("sender: answers WeChat cannot use are failures; an unreachable server is tried 4 times", async () => {
  const cipher = await WechatCipher.create(AES_KEY, APPID);
  let answer: (q: URLSearchParams) => Promise<string> = () => Promise.resolve("");
  const reply = (to: string, type = "text", inner = "<Content><![CDATA[hi]]></Content>") =>
    `<xml><ToUserName><![CDATA[${to}]]></ToUserName><FromUserName><![CDATA[${ACCOUNT}]]></FromUserName>` +
    `<CreateTime>1700000000</CreateTime><MsgType><![CDATA[${type}]]></MsgType>${inner}</xml>`;
  await using server = accountServer(async (req) => {
    const q = new URL(req.url).searchParams;
    assert.equal(q.get("signature"), signature(TOKEN, q.get("timestamp")!, q.get("nonce")!));
    assert.equal(q.get("openid"), "oU");
    return new Response(await answer(q));
  });
  const plain = sender(server.url);
  const safe = sender(server.url, { encodingAesKey: AES_KEY });
  const text = { type: "text" as const, content: "x" };
  const outcome = async (s = plain) => {
    const r = await s.send("oU", text);
    return r.status === "failed" ? r.error! : r.status;
  };

  answer = () => Promise.resolve("  success \n");
  assert.equal(await outcome(), "accepted");
  answer = () => Promise.resolve("");
  assert.equal(await outcome(), "accepted");
  answer = () => Promise.resolve('{"errcode":0}');
  assert.match(await outcome(), /neither "success", empty nor reply XML/);
  answer = () => Promise.resolve(reply("someoneElse"));
  assert.match(await outcome(), /ToUserName "someoneElse" is not the user "oU"/);
  answer = () => Promise.resolve(reply("oU", "shout"));
  assert.match(await outcome(), /MsgType "shout"/);
  answer = () => Promise.resolve(reply("oU", "transfer_customer_service", ""));
  assert.equal(await outcome(), "accepted");
  answer = () => Promise.resolve(reply("oU", "image", "<Image><MediaId><![CDATA[M9]]></MediaId></Image>"));
  assert.deepEqual((await plain.send("oU", text)).reply, { type: "image", mediaId: "M9" });
  answer = () =>
    Promise.resolve(reply(
      "oU",
      "news",
      "<ArticleCount>1</ArticleCount><Articles><item><Title>T</Title><Description>D</Description>" +
        "<PicUrl>http://p</PicUrl><Url>http://u</Url></item></Articles>",
    ));
  assert.deepEqual((await plain.send("oU", text)).reply, {
    type: "news",
    articles: [{ title: "T", description: "D", picUrl: "http://p", url: "http://u" }],
  });

  // Safe mode: the reply must be encrypted and its MsgSignature must hold.
  assert.match(await outcome(safe), /plaintext but the account is in safe mode/);
  answer = (q) => encryptedReplyXml(cipher, TOKEN, reply("oU"), q.get("timestamp")!, q.get("nonce")!);
  assert.equal(await outcome(safe), "replied");
  assert.match(await outcome(), /encrypted but the account is in plaintext mode/);
  answer = (q) => encryptedReplyXml(cipher, "other-token", reply("oU"), q.get("timestamp")!, q.get("nonce")!);
  assert.match(await outcome(safe), /MsgSignature does not match/);

  // Connection refused is retried like a timeout.
  const closed = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, () => new Response());
  const port = closed.addr.port;
  await closed.shutdown();
  const r = await sender(`http://127.0.0.1:${port}/wechat`).send("oU", text);
  assert.equal(r.status, "failed");
  assert.equal(r.attempts, 4);
  assert.match(r.error!, /^cannot reach http:\/\/127\.0\.0\.1:\d+\/wechat: .*\(4 attempts\)$/);
});

Deno.test("sender → kefu in passive mode: the agent's reply rides on WeChat's retry of the same message", async () => {
  // kefu presumes a request dropped after 150 ms; the sender drops it after 250 ms and retries.
  await using t = await startService({
    WECHAT_TOKEN: TOKEN,
    WECHAT_REPLY_MODE: "passive",
    WECHAT_PASSIVE_HOLD_MS: "5000",
    WECHAT_PASSIVE_ATTEMPT_MS: "150",
  });
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const r = await sender(`${t.http}/wechat`, { timeoutMs: 250 }).send("oPassive", { type: "text", content: "在吗" }, {
    // The agent answers only once WeChat has given up on the first request.
    onAttempt: (n) => {
      if (n === 2) {
        agent.send({
          data: { id: "p1", msg_type: "text", contact_id: "oPassive", msg: { content: "在的" } },
          result: { code: 1001 },
        });
      }
    },
  });
  assert.equal(r.status, "replied", r.error);
  assert.ok(r.attempts >= 2, `answered on attempt ${r.attempts}`);
  assert.deepEqual(r.reply, { type: "text", content: "在的" });
  assert.equal((await agent.next(1001)).data.id, r.msgId);
  assert.equal((await agent.next(103)).data.status, "passive");
  assert.deepEqual((await agent.settle()).filter((e) => e.result.code === 1001), [], "the retries were delivered once");
});
