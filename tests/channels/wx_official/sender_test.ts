/**
 * Agents' replies through the real service to the simulator's WeChat API over
 * real HTTP: customer-service messages, windows, tokens, media, typing.
 */

import assert from "node:assert/strict";
import {
  AgentClient,
  agentUrl,
  eventually,
  signedQuery,
  startService,
  startWechat,
  wechatText,
} from "../../helpers.ts";

const APPID = "wx0000000000000001";
const SECRET = "s3cr3t-for-tests";

async function setup(extra: Record<string, string> = {}) {
  const wechat = startWechat({ appId: APPID, appSecret: SECRET });
  const t = await startService({
    WECHAT_TOKEN: "tok",
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: SECRET,
    WECHAT_API_BASE: wechat.url,
    ...extra,
  });
  const agent = await AgentClient.open(agentUrl(t, "a1"));
  return {
    wechat,
    sim: wechat.sim,
    t,
    agent,
    /** A user writes: WeChat records the interaction and pushes the message to kefu. */
    async userWrites(openid: string, content: string, msgId: string, createTime?: number) {
      wechat.sim.recordInteraction(openid, "message", createTime === undefined ? undefined : createTime * 1000);
      const r = await fetch(`${t.http}/wechat${await signedQuery("tok")}`, {
        method: "POST",
        body: wechatText(openid, content, msgId, createTime),
      });
      assert.equal(await r.text(), "success");
    },
    reply(contact: string, msg: Record<string, string>, id: string, type = "text") {
      const code = { text: 1001, image: 1002, voice: 1003, video: 1004 }[type];
      agent.send({ data: { id, msg_type: type, contact_id: contact, msg }, result: { code } });
    },
    async [Symbol.asyncDispose]() {
      await agent.close();
      await t[Symbol.asyncDispose]();
      await wechat[Symbol.asyncDispose]();
    },
  };
}

Deno.test("outbound: an agent's text reply reaches the user's phone as WeChat's customer-service JSON", async () => {
  await using s = await setup();
  await s.userWrites("oPhone1", "你好", "7001");
  assert.equal((await s.agent.next(1001)).data.msg.content, "你好");
  s.reply("oPhone1", { content: "您好，请问有什么可以帮您？" }, "r1");
  const ok = await s.agent.next(103);
  assert.deepEqual([ok.data.id, ok.data.status, ok.data.contact_id], ["r1", "sent", "oPhone1"]);
  assert.deepEqual(s.sim.inbox("oPhone1"), [
    { touser: "oPhone1", msgtype: "text", text: { content: "您好，请问有什么可以帮您？" } },
  ]);
});

Deno.test("outbound: a reply after 48 hours is refused locally, before any call to WeChat", async () => {
  await using s = await setup();
  const fortyNineHoursAgo = Math.floor(Date.now() / 1000) - 49 * 3600;
  await s.userWrites("oOld", "are you there?", "7002", fortyNineHoursAgo);
  await s.agent.next(1001);
  s.reply("oOld", { content: "sorry for the wait" }, "late1");
  const err = await s.agent.next(-1);
  assert.equal(err.data.error, "reply_window_closed");
  assert.equal(err.data.id, "late1");
  assert.match(err.data.detail, /48/);
  assert.equal(s.sim.calls("/cgi-bin/message/custom/send"), 0);
  assert.equal(s.sim.tokenFetches, 0);
});

Deno.test("outbound: the sixth reply to one message is refused locally (5 per user message)", async () => {
  await using s = await setup();
  await s.userWrites("oQuota", "q", "7003");
  await s.agent.next(1001);
  for (let i = 0; i < 6; i++) s.reply("oQuota", { content: `answer ${i}` }, `q${i}`);
  // The store refuses the sixth when it keeps it, which may be before the fifth is out: the refusal may come first.
  const got: { data: { id: string; error?: string }; result: { code: number } }[] = [];
  await eventually("five confirmations and one refusal", () => {
    got.push(...s.agent.drain());
    return got.filter((e) => e.result.code === 103).length === 5 && got.some((e) => e.result.code === -1);
  }, 15_000);
  assert.deepEqual(got.filter((e) => e.result.code === 103).map((e) => e.data.id), ["q0", "q1", "q2", "q3", "q4"]);
  const err = got.find((e) => e.result.code === -1)!;
  assert.deepEqual([err.data.error, err.data.id], ["reply_window_closed", "q5"]);
  assert.equal(s.sim.inbox("oQuota").length, 5);
  // Sent one at a time, in the agent's order.
  assert.deepEqual(s.sim.inbox("oQuota").map((m) => (m.text as { content: string }).content), [
    "answer 0",
    "answer 1",
    "answer 2",
    "answer 3",
    "answer 4",
  ]);
});

Deno.test("outbound: an expired token is refreshed once and the send retried", async () => {
  await using s = await setup();
  await s.userWrites("oTok", "hi", "7004");
  await s.agent.next(1001);
  s.reply("oTok", { content: "first" }, "t1");
  await s.agent.next(103);
  assert.equal(s.sim.tokenFetches, 1);
  s.sim.expireTokens();
  s.reply("oTok", { content: "second" }, "t2");
  assert.equal((await s.agent.next(103)).data.id, "t2");
  assert.equal(s.sim.tokenFetches, 2);
  assert.equal(s.sim.calls("/cgi-bin/message/custom/send"), 3);
  assert.equal(s.sim.inbox("oTok").length, 2);
});

Deno.test("outbound: concurrent replies to many users cause one token fetch", async () => {
  await using s = await setup();
  const users = Array.from({ length: 8 }, (_, i) => `oMany${i}`);
  for (const [i, u] of users.entries()) await s.userWrites(u, "hi", `71${i}`);
  for (const _ of users) await s.agent.next(1001);
  for (const u of users) s.reply(u, { content: `hello ${u}` }, `m-${u}`);
  const ids = new Set<string>();
  for (const _ of users) ids.add((await s.agent.next(103)).data.id);
  assert.equal(ids.size, users.length);
  assert.equal(s.sim.tokenFetches, 1);
  for (const u of users) assert.equal(s.sim.inbox(u).length, 1);
});

Deno.test("outbound: WeChat's refusals reach the agent as error envelopes naming the errcode; -1 is retried", async () => {
  await using s = await setup();
  await s.userWrites("oErr", "hi", "7005");
  await s.agent.next(1001);
  // A first reply fetches the token, so that the failures below hit the sends.
  s.reply("oErr", { content: "warm" }, "e0");
  await s.agent.next(103);
  s.sim.failNext(1, 45047, "out of response count limit");
  s.reply("oErr", { content: "x" }, "e1");
  const err = await s.agent.next(-1);
  assert.equal(err.data.error, "wechat_api_error");
  assert.equal(err.data.errcode, 45047);
  assert.equal(err.data.id, "e1");
  assert.match(err.data.detail, /45047/);
  assert.match(err.data.detail, /wait for the user to write again/);
  // Busy twice, then through: the agent sees only the success.
  s.sim.busyNext(2);
  s.reply("oErr", { content: "y" }, "e2");
  assert.equal((await s.agent.next(103)).data.id, "e2");
  assert.equal(s.sim.inbox("oErr").length, 2);
});

Deno.test("outbound: an uploaded image is uploaded to WeChat once and sent by media_id", async () => {
  await using s = await setup();
  await s.userWrites("oImg", "send me the picture", "7006");
  await s.agent.next(1001);
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);
  const up = await fetch(`${s.t.http}/im_component/wx_official_account/media?userid=a1&filename=chart.png`, {
    method: "POST",
    body: png,
    headers: { "content-type": "image/png" },
  });
  assert.equal(up.status, 200);
  const path = (await up.json()).data.media_path;
  assert.match(path, /^\/im_component\/wx_official_account\/media\//);
  const served = await fetch(`${s.t.http}${path}`);
  assert.deepEqual(new Uint8Array(await served.arrayBuffer()), png);
  s.reply("oImg", { media_path: path }, "i1", "image");
  s.reply("oImg", { media_path: path }, "i2", "image");
  assert.equal((await s.agent.next(103)).data.id, "i1");
  assert.equal((await s.agent.next(103)).data.id, "i2");
  const [a, b] = s.sim.inbox("oImg") as { msgtype: string; image: { media_id: string } }[];
  assert.equal(a.msgtype, "image");
  assert.equal(a.image.media_id, b.image.media_id);
  assert.deepEqual(s.sim.media(a.image.media_id)?.bytes, png);
  assert.equal(s.sim.calls("/cgi-bin/media/upload"), 1);
  // An unknown upload is refused with what to do.
  s.reply("oImg", { media_path: "/im_component/wx_official_account/media/nope" }, "i3", "image");
  const err = await s.agent.next(-1);
  assert.deepEqual([err.data.error, err.data.id], ["media_not_found", "i3"]);
});

Deno.test("outbound: typing shows after a recent message, once per 15 s; a reply ends it", async () => {
  await using s = await setup();
  await s.userWrites("oType", "hello?", "7007");
  await s.agent.next(1001);
  s.agent.send({ data: { msg_type: "typing", contact_id: "oType" } });
  const shown = await s.agent.next(104);
  assert.deepEqual([shown.data.contact_id, shown.data.status], ["oType", "typing"]);
  assert.equal(s.sim.isTyping("oType"), true);
  s.agent.send({ data: { msg_type: "typing", contact_id: "oType" } });
  const again = await s.agent.next(104);
  assert.equal(again.data.status, "skipped");
  assert.match(again.data.detail, /already/);
  assert.equal(s.sim.calls("/cgi-bin/message/custom/typing"), 1);
  s.reply("oType", { content: "here" }, "ty1");
  await s.agent.next(103);
  assert.equal(s.sim.isTyping("oType"), false);
  // Typing for a contact that does not exist is refused like a reply.
  s.agent.send({ data: { msg_type: "typing", contact_id: "oStranger" } });
  assert.equal((await s.agent.next(-1)).data.error, "not_found");
});

Deno.test("outbound: an account without AppSecret refuses replies and says how to fix it", async () => {
  await using wechat = startWechat({ appId: APPID, appSecret: SECRET });
  await using t = await startService({ WECHAT_TOKEN: "tok", WECHAT_APPID: APPID });
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  await fetch(`${t.http}/wechat${await signedQuery("tok")}`, {
    method: "POST",
    body: wechatText("oNoApi", "hi", "7008"),
  }).then((r) => r.text());
  await agent.next(1001);
  agent.send({ data: { id: "n1", msg_type: "text", contact_id: "oNoApi", msg: { content: "x" } } });
  const err = await agent.next(-1);
  assert.deepEqual([err.data.error, err.data.id], ["reply_not_supported", "n1"]);
  assert.match(err.data.detail, /AppSecret.*passive/);
  assert.equal(wechat.sim.tokenFetches, 0);
});

Deno.test("outbound: an upload is kept in the media store: the same file twice is one upload, uploaded to WeChat once, and it outlives a restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "kefu-uploads-" });
  try {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 5, 6, 7, 8]);
    const upload = async (http: string) => {
      const r = await fetch(`${http}/im_component/wx_official_account/media?userid=a1&filename=x.png`, {
        method: "POST",
        body: png,
        headers: { "content-type": "image/png" },
      });
      return (await r.json()).data.media_path as string;
    };
    let path: string;
    {
      await using s = await setup({ DATA_DIR: dataDir });
      await s.userWrites("oUp", "send it", "7101");
      await s.agent.next(1001);
      path = await upload(s.t.http);
      assert.equal(await upload(s.t.http), path, "the same bytes, the same upload");
      s.reply("oUp", { media_path: path }, "u1", "image");
      s.reply("oUp", { media_path: path }, "u2", "image");
      assert.equal((await s.agent.next(103)).data.id, "u1");
      assert.equal((await s.agent.next(103)).data.id, "u2");
      assert.equal(s.sim.calls("/cgi-bin/media/upload"), 1);
    }
    // After a restart the file is still there (the media_id cache is not: WeChat gets it once more).
    await using again = await setup({ DATA_DIR: dataDir });
    const served = await fetch(`${again.t.http}${path}`);
    assert.deepEqual(new Uint8Array(await served.arrayBuffer()), png);
    await again.userWrites("oUp", "again", "7102");
    await again.agent.next(1001);
    again.reply("oUp", { media_path: path }, "u3", "image");
    assert.equal((await again.agent.next(103)).data.id, "u3");
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
