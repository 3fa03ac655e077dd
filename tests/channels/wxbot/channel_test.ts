/**
 * The WXBot channel through the real service and the simulated platform, over
 * real sockets: users' AddMsg frames reach an agent (text, image, a group
 * member), the account's own messages do not, a NewMsgId past 2^53 is the
 * message's exact id and a repeat of it is delivered once; replies reach the
 * platform's API with the Token of the account the user wrote to, and its
 * refusals reach the agent saying what to do.
 */

import assert from "node:assert/strict";
import { start } from "../../../main.ts";
import { WXBOT, wxbot } from "../../../src/channels/wxbot/channel.ts";
import { MAX_VIDEO_BYTES } from "../../../src/channels/wxbot/sender.ts";
import { parseConfig } from "../../../src/config/config.ts";
import type { Message } from "../../../src/core/message.ts";
import { UPLOAD_PATH } from "../../../src/envelope/protocol.ts";
import { Uploads } from "../../../src/media/uploads.ts";
import { AgentClient, agentUrl, getJson, type TestService } from "../../helpers.ts";
import { BOT, BOT2, configFor, sleep, startSim, TOKENS, until } from "./helpers.ts";

interface Setup extends AsyncDisposable {
  t: TestService;
  p: ReturnType<typeof startSim>;
  a: AgentClient;
  uploads: Uploads;
  own: Message[];
}

async function setup(env: Record<string, string> = {}): Promise<Setup> {
  const p = startSim();
  const uploads = new Uploads();
  const own: Message[] = [];
  const config = parseConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", STORE: "memory" });
  const channel = wxbot({ config: configFor(p, env), uploads, onOwnMessage: (m) => void own.push(m) });
  const svc = await start(config, { channels: [channel], uploads });
  const t: TestService = {
    svc,
    port: svc.port,
    http: `http://127.0.0.1:${svc.port}`,
    ws: `ws://127.0.0.1:${svc.port}`,
    [Symbol.asyncDispose]: () => svc.shutdown(),
  };
  const a = await AgentClient.open(agentUrl(t, "a1"));
  await until(() => p.sim.stats().synced === 1, "kefu synced with the platform");
  return {
    t,
    p,
    a,
    uploads,
    own,
    async [Symbol.asyncDispose]() {
      await a.close();
      await svc.shutdown();
      await p.shutdown();
    },
  };
}

function reply(contact: string, id: string, type: string, msg: Record<string, string>) {
  const codes: Record<string, number> = { text: 1001, image: 1002, voice: 1003, video: 1004 };
  return { data: { id, msg_type: type, contact_id: contact, msg }, result: { code: codes[type] } };
}

Deno.test("wxbot channel: a user's text, image and group messages reach the agent; healthz shows the channel up", async () => {
  await using s = await setup();
  const { p, a, t } = s;
  p.sim.push({ wxid: BOT, from: "wxid_user1", content: "你好，客服", newMsgId: "1001" });
  const text = await a.next(1001);
  assert.deepEqual([text.data.id, text.data.contact_id, text.data.msg.content], ["1001", "wxid_user1", "你好，客服"]);

  p.sim.push({
    wxid: BOT,
    from: "wxid_user1",
    msgType: 3,
    content: '<msg><img length="10" /></msg>',
    newMsgId: "1002",
  });
  const image = await a.next(1002);
  assert.deepEqual([image.data.msg_type, image.data.contact_id], ["image", "wxid_user1"]);
  assert.match(image.data.msg.content, /^\[图片\]（WXBot 不转发文件内容/);

  p.sim.push({ wxid: BOT, from: "20001@chatroom", content: "wxid_member:\n群里问一下", newMsgId: "1003" });
  const group = await a.next(1001);
  assert.deepEqual([group.data.contact_id, group.data.msg.content], ["20001@chatroom", "wxid_member: 群里问一下"]);

  const contacts = (await getJson(`${t.http}/im_component/wx_official_account/contacts?userid=a1`)).body;
  assert.deepEqual(
    contacts.data.contacts.map((c: Record<string, string>) => [c.contact_id, c.channel, c.account_id]).sort(),
    [["20001@chatroom", WXBOT, BOT], ["wxid_user1", WXBOT, BOT]],
  );
  const health = (await getJson(`${t.http}/healthz`)).body.channels.wxbot;
  assert.deepEqual([health.state, health.up, health.received, health.accounts], ["synced", true, 3, [BOT, BOT2]]);
  assert.equal(JSON.stringify(health).includes(TOKENS[BOT]), false, "no Token in healthz");
});

Deno.test("wxbot channel: the account's own messages are not delivered to agents; they go to onOwnMessage", async () => {
  await using s = await setup();
  const { p, a } = s;
  p.sim.push({ wxid: BOT, from: BOT, to: "wxid_user1", content: "sent from the phone", newMsgId: "2001" });
  p.sim.push({ wxid: BOT, from: "wxid_user1", content: "after it", newMsgId: "2002" });
  const got = await a.next(1001);
  assert.equal(got.data.msg.content, "after it", "the own message came first and was not delivered");
  assert.deepEqual(s.own.map((m) => [m.id, m.direction, m.contact, m.account, m.content]), [
    ["2001", "out", "wxid_user1", BOT, "sent from the phone"],
  ]);
});

Deno.test("wxbot channel: NewMsgId above 2^53 is the exact message id, and the same id twice is delivered once", async () => {
  await using s = await setup();
  const { p, a } = s;
  const big = "18446744073709551615"; // 2^64 - 1
  const frame = p.sim.push({ wxid: BOT, from: "wxid_user2", content: "first", newMsgId: big }).frame;
  assert.match(frame, /"NewMsgId":18446744073709551615\b/);
  const first = await a.next(1001);
  assert.equal(first.data.id, big);
  p.sim.push(frame); // the platform sends it again
  p.sim.push({ wxid: BOT, from: "wxid_user2", content: "second", newMsgId: "18446744073709551614" });
  const next = await a.next(1001);
  assert.deepEqual([next.data.id, next.data.msg.content], ["18446744073709551614", "second"]);
  assert.deepEqual(
    (await a.settle(100)).filter((e) => e.result.code === 1001),
    [],
    "the repeat never reached the agent",
  );
  const h =
    (await getJson(`${s.t.http}/im_component/wx_official_account/history?userid=a1&contact_id=wxid_user2`)).body;
  assert.deepEqual(h.data.messages.map((m: Record<string, string>) => m.id), ["18446744073709551614", big]);
});

Deno.test("wxbot channel: a reply reaches the platform's API with the Token of the account the user wrote to", async () => {
  await using s = await setup();
  const { p, a } = s;
  // The same user writes to both accounts under the key: two contacts.
  p.sim.push({ wxid: BOT, from: "wxid_same", content: "to one", newMsgId: "3001" });
  p.sim.push({ wxid: BOT2, from: "wxid_same", content: "to two", newMsgId: "3001" });
  const one = await a.next(1001);
  const two = await a.next(1001);
  assert.deepEqual([one.data.contact_id, two.data.contact_id], ["wxid_same", `wxid_same@${BOT2}`]);

  a.send(reply(two.data.contact_id, "r2", "text", { content: "answer from two" }));
  const sent = await a.next(103);
  assert.deepEqual([sent.data.id, sent.data.status], ["r2", "sent"]);
  a.send(reply("wxid_same", "r1", "text", { content: "answer from one" }));
  assert.deepEqual((await a.next(103)).data.status, "sent");
  assert.deepEqual(p.sim.sent.map((x) => [x.op, x.body]), [
    ["sendText", { UserName: "wxid_same", Content: "answer from two", Token: TOKENS[BOT2] }],
    ["sendText", { UserName: "wxid_same", Content: "answer from one", Token: TOKENS[BOT] }],
  ]);
});

Deno.test("wxbot channel: image, voice and video replies from uploads; a video over 3 MB is refused before any call", async () => {
  await using s = await setup();
  const { p, a } = s;
  p.sim.push({ wxid: BOT, from: "wxid_user3", content: "send me a picture", newMsgId: "4001" });
  await a.next(1001);
  // Uploaded by the agent (only its own files go out).
  const upload = async (bytes: Uint8Array<ArrayBuffer>, filename: string, type: string) => {
    const r = await fetch(`${s.t.http}${UPLOAD_PATH}?userid=a1&filename=${filename}`, {
      method: "POST",
      body: bytes,
      headers: { "content-type": type },
    });
    return { id: String((await r.json()).data.media_path).split("/").pop()! };
  };
  const png = await upload(new Uint8Array([137, 80, 78, 71, 1, 2, 3]), "a.png", "image/png");
  a.send(reply("wxid_user3", "r-img", "image", { media_path: `${UPLOAD_PATH}/${png.id}` }));
  assert.equal((await a.next(103)).data.id, "r-img");
  assert.deepEqual(p.sim.sent.at(-1)!.op, "sendImage");
  assert.equal(p.sim.sent.at(-1)!.body.Base64Image, "data:base64;image/png,iVBORwECAw==");

  // 2 s of 12.2 kbit/s AMR: the header and 100 frames of 32 bytes.
  const amr = new Uint8Array(6 + 100 * 32);
  amr.set(new TextEncoder().encode("#!AMR\n"));
  const voice = await upload(amr, "note.amr", "audio/amr");
  a.send(reply("wxid_user3", "r-voice", "voice", { media_path: `${UPLOAD_PATH}/${voice.id}` }));
  assert.equal((await a.next(103)).data.id, "r-voice");
  const v = p.sim.sent.at(-1)!;
  assert.deepEqual([v.op, v.body.Type, v.body.VoiceTime, v.body.UserName, v.body.Token], [
    "sendVoice",
    0,
    2000,
    "wxid_user3",
    TOKENS[BOT],
  ]);

  const video = await upload(new Uint8Array(1000), "clip.mp4", "video/mp4");
  a.send(reply("wxid_user3", "r-video", "video", { media_path: `${UPLOAD_PATH}/${video.id}` }));
  assert.equal((await a.next(103)).data.id, "r-video");
  const vid = p.sim.sent.at(-1)!;
  assert.deepEqual([vid.op, typeof vid.body.ImageFileBase64, vid.body.VideoTime], ["sendVideo", "string", 0]);

  const calls = p.sim.sent.length;
  const big = await upload(new Uint8Array(MAX_VIDEO_BYTES + 1), "big.mp4", "video/mp4");
  a.send(reply("wxid_user3", "r-big", "video", { media_path: `${UPLOAD_PATH}/${big.id}` }));
  const err = await a.next(-1);
  assert.deepEqual([err.data.id, err.data.error], ["r-big", "media_too_large"]);
  assert.match(err.data.detail, /takes videos up to 3 MB/);
  assert.equal(p.sim.sent.length, calls, "nothing reached the platform");
});

Deno.test("wxbot channel: the platform's refusals reach the agent saying what to do (1004, 1002, 1003 retried)", async () => {
  await using s = await setup();
  const { p, a } = s;
  p.sim.push({ wxid: BOT, from: "wxid_user4", content: "hello", newMsgId: "5001" });
  await a.next(1001);

  p.sim.failNext(1, 1004);
  a.send(reply("wxid_user4", "r1", "text", { content: "one" }));
  const e1 = await a.next(-1);
  assert.deepEqual([e1.data.id, e1.data.error], ["r1", "wxbot_no_balance"]);
  assert.match(e1.data.detail, /balance or permission .*top up the WXBot account/);

  p.sim.failNext(1, 1002);
  a.send(reply("wxid_user4", "r2", "text", { content: "two" }));
  const e2 = await a.next(-1);
  assert.deepEqual([e2.data.id, e2.data.error], ["r2", "wxbot_contact_gone"]);

  p.sim.failNext(2, 1003);
  a.send(reply("wxid_user4", "r3", "text", { content: "three" }));
  assert.equal((await a.next(103)).data.id, "r3");
  assert.deepEqual(p.sim.sent.slice(-3).map((x) => x.answer.retCode), [1003, 1003, 0]);
});

Deno.test("wxbot channel: a refused key shows the channel down with the reason in /healthz, and kefu keeps serving", async () => {
  await using p = startSim();
  const config = parseConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", STORE: "memory" });
  const svc = await start(config, {
    channels: [wxbot({ config: configFor(p, { WXBOT_KEY: "wrong-key" }), uploads: new Uploads() })],
  });
  try {
    const url = `http://127.0.0.1:${svc.port}/healthz`;
    let h: Record<string, unknown> = {};
    for (const deadline = Date.now() + 5000; h.state !== "auth_failed" && Date.now() < deadline;) {
      h = (await getJson(url)).body.channels.wxbot;
      if (h.state !== "auth_failed") await sleep(10);
    }
    assert.deepEqual([h.state, h.up], ["auth_failed", false]);
    assert.match(String(h.reason), /refused WXBOT_KEY .*retCode 1000/);
    assert.equal(p.sim.stats().auths.refused, 1);
  } finally {
    await svc.shutdown();
  }
});
