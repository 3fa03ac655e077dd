/**
 * Automatic messages through the real service (CONFIG_FILE `automatic`), the Official Account's webhook and the
 * simulator's WeChat API over real HTTP: the welcome on a follow, counted against WeChat's 3-in-a-minute rule like an
 * agent's reply; the closed reply once per closed period; both in the history as kefu's own lines. Runs on SQLite
 * here and on PostgreSQL in tests/on_postgres_test.ts.
 */

import assert from "node:assert/strict";
import {
  AgentClient,
  agentUrl,
  eventually,
  getJson,
  signedQuery,
  startService,
  startWechat,
  wechatText,
} from "../helpers.ts";

const APPID = "wx00000000000000ab";
const SECRET = "s3cr3t-for-tests";
const BASE = "/im_component/wx_official_account";

async function setup(automatic: unknown[]) {
  const dir = await Deno.makeTempDir({ prefix: "kefu-automatic-svc-" });
  const configFile = `${dir}/kefu.json`;
  await Deno.writeTextFile(configFile, JSON.stringify({ automatic }));
  const wechat = startWechat({ appId: APPID, appSecret: SECRET });
  const t = await startService({
    WECHAT_TOKEN: "tok",
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: SECRET,
    WECHAT_API_BASE: wechat.url,
    CONFIG_FILE: configFile,
  });
  const agent = await AgentClient.open(agentUrl(t, "a1"));
  return {
    t,
    sim: wechat.sim,
    agent,
    post: async (xml: string) => {
      const r = await fetch(`${t.http}/wechat${await signedQuery("tok")}`, { method: "POST", body: xml });
      assert.equal(await r.text(), "success");
    },
    texts: (openid: string) => wechat.sim.inbox(openid).map((b) => (b.text as { content: string }).content),
    history: async (contact: string) =>
      (await getJson(`${t.http}${BASE}/history?userid=a1&contact_id=${encodeURIComponent(contact)}`)).body.data
        .messages as Record<string, unknown>[],
    async [Symbol.asyncDispose]() {
      await agent.close();
      await t[Symbol.asyncDispose]();
      await wechat[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function follow(openid: string, createTime: number): string {
  return `<xml><ToUserName><![CDATA[gh_a]]></ToUserName><FromUserName><![CDATA[${openid}]]></FromUserName>` +
    `<CreateTime>${createTime}</CreateTime><MsgType><![CDATA[event]]></MsgType>` +
    `<Event><![CDATA[subscribe]]></Event></xml>`;
}

Deno.test("automatic: a follow gets the welcome, counted against the 3-in-a-minute window: 2 agent replies go, the 3rd is refused", async () => {
  await using s = await setup([{ channel: "wx_official_account", welcome: "欢迎关注！有问题请直接留言。" }]);
  const now = Math.floor(Date.now() / 1000);
  s.sim.recordInteraction("oFan", "follow");
  await s.post(follow("oFan", now));
  await s.agent.next(102);
  await eventually("the welcome reached the phone", () => s.texts("oFan").length === 1, 15_000);
  assert.deepEqual(s.texts("oFan"), ["欢迎关注！有问题请直接留言。"]);
  // The owner's socket is told of kefu's line (code 110) as the history has it.
  const told = (await s.agent.next(110, 15_000)).data;
  assert.deepEqual(
    [told.contact_id, told.direction, told.state, told.automatic, told.msg.content],
    ["oFan", "out", "sent", "welcome", "欢迎关注！有问题请直接留言。"],
  );
  // WeChat retries the same event: a duplicate, no second welcome.
  await s.post(follow("oFan", now));

  const reply = (id: string) =>
    s.agent.send({
      data: { id, contact_id: "oFan", send_time: now, msg: { content: `reply ${id}` } },
      result: { code: 1001, message: "common" },
    });
  reply("r1");
  assert.equal((await s.agent.next(103, 15_000)).data.status, "sent");
  reply("r2");
  assert.equal((await s.agent.next(103, 15_000)).data.status, "sent");
  reply("r3");
  const refused = await s.agent.next(-1, 15_000);
  assert.deepEqual([refused.data.error, refused.data.id], ["reply_window_closed", "r3"]);
  assert.match(refused.data.detail, /3 replies were already sent since the user's last action/);
  assert.deepEqual(s.texts("oFan"), ["欢迎关注！有问题请直接留言。", "reply r1", "reply r2"]);

  // The history shows the welcome as kefu's own line, apart from the agent's replies.
  const history = await s.history("oFan");
  const welcome = history.find((m) => m.automatic !== undefined);
  assert.ok(welcome, JSON.stringify(history));
  assert.deepEqual([welcome.automatic, welcome.direction, welcome.state], ["welcome", "out", "sent"]);
  assert.equal(history.filter((m) => m.automatic !== undefined).length, 1);
  assert.equal(history.filter((m) => m.direction === "out" && m.automatic === undefined).length, 2);
});

Deno.test("automatic: a user who writes outside business hours gets the closed reply once per closed period", async () => {
  // Open every day, except yesterday, today and tomorrow in Shanghai: closed now, whatever the time of day.
  const today = Temporal.Now.plainDateISO("Asia/Shanghai");
  const closed = [today.subtract({ days: 1 }), today, today.add({ days: 1 })].map((d) => d.toString());
  await using s = await setup([{
    hours: [{ days: ["mon-sun"], from: "00:00", to: "24:00" }],
    closed_dates: closed,
    closed_reply: "您好，现在是非工作时间，我们上班后会尽快回复。",
  }]);
  s.sim.recordInteraction("oNight", "message");
  await s.post(wechatText("oNight", "有人吗？", "9001"));
  await eventually("the closed reply reached the phone", () => s.texts("oNight").length === 1, 15_000);
  await s.post(wechatText("oNight", "在吗？", "9002"));
  await s.agent.next(1001);
  await s.agent.next(1001);
  // The same closed period: the store's record of the first closed reply keeps the second from going.
  await eventually(
    "both messages kept",
    async () => (await s.history("oNight")).filter((m) => m.direction === "in").length === 2,
  );
  assert.deepEqual(s.texts("oNight"), ["您好，现在是非工作时间，我们上班后会尽快回复。"]);
  const lines = (await s.history("oNight")).filter((m) => m.automatic === "closed");
  assert.equal(lines.length, 1);
});

Deno.test("automatic: a bad time zone in CONFIG_FILE stops the start, naming it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kefu-automatic-bad-" });
  try {
    await Deno.writeTextFile(`${dir}/kefu.json`, JSON.stringify({ automatic: [{ time_zone: "Mars/Olympus" }] }));
    await assert.rejects(
      () => startService({ CONFIG_FILE: `${dir}/kefu.json` }),
      /CONFIG_FILE automatic\[0\]\.time_zone="Mars\/Olympus": not a time zone/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("automatic: on a channel without a follow (the HTTP push), a new contact's first message gets the welcome, once", async () => {
  const received: { contact: string; content: string }[] = [];
  const receiver = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const body = await req.json();
    received.push({ contact: body.data.contact_id, content: body.data.msg.content });
    return new Response("ok");
  });
  const dir = await Deno.makeTempDir({ prefix: "kefu-automatic-push-" });
  try {
    await Deno.writeTextFile(
      `${dir}/kefu.json`,
      JSON.stringify({ automatic: [{ channel: "http_push", welcome: "您好，这里是客服中心。" }] }),
    );
    await using t = await startService({
      CONFIG_FILE: `${dir}/kefu.json`,
      PUSH_REPLY_URL: `http://127.0.0.1:${receiver.addr.port}/replies`,
    });
    const push = async (id: string, content: string) => {
      const xml = `<xml><ToUserName>a1</ToUserName><FromUserName>uPush</FromUserName>` +
        `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType>text</MsgType>` +
        `<Content><![CDATA[${content}]]></Content><MsgId>${id}</MsgId></xml>`;
      const r = await fetch(`${t.http}/send`, { method: "POST", body: xml });
      assert.ok(r.ok, await r.text());
    };
    await push("p1", "第一条");
    await eventually("the welcome was posted", () => received.length === 1, 15_000);
    assert.deepEqual(received, [{ contact: "uPush", content: "您好，这里是客服中心。" }]);
    await push("p2", "第二条");
    // A second message is no first message: its history has two messages, and the store's record says it was sent.
    const history = async () =>
      (await getJson(`${t.http}${BASE}/history?userid=a1&contact_id=uPush`)).body.data.messages as {
        automatic?: string;
        direction: string;
      }[];
    await eventually(
      "both messages kept",
      async () => (await history()).filter((m) => m.direction === "in").length === 2,
    );
    assert.equal((await history()).filter((m) => m.automatic === "welcome").length, 1);
    assert.equal(received.length, 1);
  } finally {
    await receiver.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
