/**
 * The PC-hook channel through the real service, against the fake hook on real
 * sockets: registration as the hook's API saw it, messages in (text, group,
 * self-sent, unreadable), replies out through the hook's send call.
 */

import assert from "node:assert/strict";
import { AgentClient, agentUrl, getJson } from "../../helpers.ts";
import { chatFrame } from "../../../src/simulator/pc_hook.ts";
import { fakeHook, reply, startWithHook } from "./helpers.ts";

Deno.test("pc_hook: list, register, a text in, the reply out through 10009, and the callback removed at shutdown", async () => {
  await using hook = fakeHook({ wxid: "wxid_shop" });
  const t = await startWithHook(hook);
  let mine = "";
  try {
    await hook.waitConnected();
    mine = hook.callbacks()[0].cookie;
    assert.deepEqual(hook.calls.map((c) => c.type), [1003, 28, 1001]);
    assert.deepEqual(hook.calls[2].body, { type: 1001, protocol: 3, url: t.options.hooks[0].callbackUrl });
    assert.equal(t.options.hooks[0].callbackUrl, `ws://127.0.0.1:${t.port}/pc_hook/ws`);

    await using a = await AgentClient.open(agentUrl(t, "a1"));
    const frame = await hook.text("wxid_alice", "你好，在吗？", { nickName: "Alice" });
    const got = await a.next(1001);
    const id = /"szMsgSvrID":"(\d+)"/.exec(frame)![1];
    assert.deepEqual(
      [got.data.id, got.data.contact_id, got.data.name, got.data.msg.content],
      [id, "wxid_alice", "Alice", "你好，在吗？"],
    );
    const contacts = (await getJson(`${t.http}/im_component/wx_official_account/contacts?userid=a1`)).body;
    assert.deepEqual(
      contacts.data.contacts.map((c: Record<string, string>) => [c.contact_id, c.channel, c.account_id, c.user_id]),
      [["wxid_alice", "pc_hook", "wxid_shop", "wxid_alice"]],
    );

    a.send(reply("wxid_alice", "您好，请讲", "r1"));
    const sent = await a.next(103);
    assert.deepEqual([sent.data.id, sent.data.status], ["r1", "sent"]);
    assert.deepEqual(hook.sent, [{ type: 10009, userName: "wxid_alice", msgContent: "您好，请讲" }]);
    const health = (await getJson(`${t.http}/healthz`)).body.channels.pc_hook;
    assert.deepEqual(
      [health.hooks[0].registration, health.hooks[0].account, health.hooks[0].connected, health.hooks[0].kept],
      ["registered", "wxid_shop", 1, 1],
    );
  } finally {
    await t.svc.shutdown();
  }
  // A clean shutdown removes kefu's callback by its cookie.
  const last = hook.calls.at(-1)!;
  assert.deepEqual(last.body, { type: 1002, cookie: mine });
  assert.deepEqual(hook.callbacks(), []);
});

Deno.test("pc_hook: kefu's callbacks left behind: one exactly as kefu registers it is adopted, the rest removed; another program's stays", async () => {
  await using hook = fakeHook();
  const other = "ws://127.0.0.1:9/someone-else";
  const otherCookie = hook.addCallback(other);
  // The callback URL is known only once the port is: register the stale ones the way an earlier kefu left them.
  let stale: string[] = [];
  const t = await startWithHook(hook, { checkMs: 60_000 }, {}, undefined);
  try {
    await hook.waitConnected();
    // This kefu's own registration is in place; now play "an earlier run left two behind" and restart kefu.
    stale = [hook.addCallback(t.options.hooks[0].callbackUrl), hook.addCallback(`${t.options.hooks[0].callbackUrl}/`)];
  } finally {
    await t.svc.shutdown();
  }
  hook.calls.length = 0;
  const t2 = await startWithHook(hook, { checkMs: 60_000 }, { PORT: String(t.port) });
  try {
    await hook.waitConnected();
    const removed = hook.calls.filter((c) => c.type === 1002).map((c) => c.body.cookie);
    // The shutdown removed this kefu's own; of the two left behind, the one with the trailing slash goes.
    assert.deepEqual(removed, [stale[1]]);
    assert.deepEqual(hook.calls.map((c) => c.type), [1003, 1002, 28], "adopted: nothing registered anew");
    assert.deepEqual(hook.callbacks().map((c) => c.cookie).sort(), [stale[0], otherCookie].sort());
  } finally {
    await t2.svc.shutdown();
  }
  assert.deepEqual(hook.callbacks().map((c) => c.cookie), [otherCookie]);
});

Deno.test("pc_hook: the API away at start and WeChat restarted later: kefu registers again, with back-off", async () => {
  await using hook = fakeHook({ answers: "wrapped" });
  await hook.goAway();
  await using t = await startWithHook(hook);
  const health = async () => (await getJson(`${t.http}/healthz`)).body.channels.pc_hook.hooks[0];
  let h = await health();
  for (let i = 0; i < 100 && h.registration !== "away"; i++) {
    await new Promise((r) => setTimeout(r, 20));
    h = await health();
  }
  assert.equal(h.registration, "away");
  assert.match(
    h.error,
    /cannot list the hook's callbacks: the PC hook "default" at http:\/\/127\.0\.0\.1:\d+\/api\/ did not answer/,
  );
  hook.comeBack();
  await hook.waitConnected(1, 5000);
  assert.deepEqual(hook.calls.map((c) => c.type), [1003, 28, 1001]);

  // WeChat closed and started again: the socket drops, the callback is forgotten; kefu notices and registers anew.
  await hook.goAway();
  hook.calls.length = 0;
  hook.comeBack();
  await hook.waitConnected(1, 5000);
  assert.deepEqual(hook.calls.filter((c) => c.type !== 1003).map((c) => c.type), [28, 1001]);
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  await hook.text("wxid_back", "after the restart");
  assert.equal((await a.next(1001)).data.msg.content, "after the restart");
  assert.equal((await health()).registration, "registered");
});

Deno.test("pc_hook: a group message: the room is the contact, the member who wrote is shown on the message", async () => {
  await using hook = fakeHook({ wxid: "wxid_shop" });
  await using t = await startWithHook(hook);
  await hook.waitConnected();
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  await hook.text("wxid_bob", "群里问一下", { room: "123456@chatroom", nickName: "Bob" });
  const got = await a.next(1001);
  assert.deepEqual(
    [got.data.contact_id, got.data.msg.content],
    ["123456@chatroom", "Bob (wxid_bob):\n群里问一下"],
  );
  a.send(reply("123456@chatroom", "大家好", "r1"));
  await a.next(103);
  assert.deepEqual(hook.sent, [{ type: 10009, userName: "123456@chatroom", msgContent: "大家好" }]);
});

Deno.test("pc_hook: what the account sent itself is not delivered; the same msgSvrID twice is one message, kept exact", async () => {
  await using hook = fakeHook({ wxid: "wxid_shop" });
  await using t = await startWithHook(hook);
  await hook.waitConnected();
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  await hook.text("wxid_shop", "sent from the phone", { isSender: 1 });
  await hook.push({
    pushType: 4,
    robot: { userName: "wxid_shop" },
    data: { from: "wxid_shop", to: "wxid_c", type: 1 },
  });
  const big = "18446744073709551601";
  const frame = chatFrame("wxid_shop", "wxid_carol", "only once", { id: big });
  await hook.push(frame);
  await hook.push(frame);
  await hook.text("wxid_carol", "next");
  const first = await a.next(1001);
  assert.deepEqual([first.data.id, first.data.msg.content], [big, "only once"]);
  assert.equal((await a.next(1001)).data.msg.content, "next");
  assert.deepEqual(await a.settle(100), []);
  const h = (await getJson(`${t.http}/healthz`)).body.channels.pc_hook.hooks[0];
  assert.deepEqual([h.kept, h.duplicate, h.skipped], [2, 1, 2]);
});

Deno.test("pc_hook: a frame kefu cannot read is answered ok, logged and counted for the operator, never a contact", async () => {
  await using hook = fakeHook({ wxid: "wxid_shop" });
  await using t = await startWithHook(hook);
  await hook.waitConnected();
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  assert.equal(await hook.push("this is not json {"), true);
  // A push of a shape kefu does not know is the operator's matter the same way.
  assert.equal(await hook.push({ pushType: 9, data: {} }), true);
  await hook.text("wxid_dave", "a real one");
  assert.equal((await a.next(1001)).data.msg.content, "a real one");
  assert.deepEqual(await a.settle(100), [], "nothing else reaches the agent");
  const { body } = await getJson(`${t.http}/im_component/wx_official_account/contacts?userid=a1`);
  assert.deepEqual(body.data.contacts.map((c: { user_id: string }) => c.user_id), ["wxid_dave"]);
  const h = (await getJson(`${t.http}/healthz`)).body.channels.pc_hook.hooks[0];
  assert.deepEqual([h.kept, h.undecodable], [1, 2]);
});

Deno.test("pc_hook: the send call's type and field names are configuration; the hook's error reaches the agent", async () => {
  await using hook = fakeHook({ wxid: "wxid_shop", answers: "wrapped" });
  await using t = await startWithHook(hook, {}, {
    HOOK_SEND_TEXT_TYPE: "10100",
    HOOK_SEND_USER_FIELD: "wxid",
    HOOK_SEND_CONTENT_FIELD: "text",
  });
  await hook.waitConnected();
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  await hook.text("wxid_dave", "hi");
  await a.next(1001);
  a.send(reply("wxid_dave", "hello", "r1"));
  await a.next(103);
  assert.deepEqual(hook.sent, [{ type: 10100, wxid: "wxid_dave", text: "hello" }]);

  hook.failSends = { error_code: 10004, description: "许可已过期" };
  a.send(reply("wxid_dave", "again", "r2"));
  const err = await a.next(-1);
  assert.equal(err.data.id, "r2");
  assert.match(
    err.data.detail,
    /cannot send the reply to "wxid_dave" as "wxid_shop": the PC hook "default" at .* answered error_code 10004 "许可已过期" \(the hook's licence has expired\)/,
  );
  // An image is sent only from a path on the hook's PC.
  hook.failSends = undefined;
  a.send(reply("wxid_dave", "", "r3", "image", "https://example.invalid/a.png"));
  assert.match((await a.next(-1)).data.detail, /images or files only from a path on the hook's own PC/);
  a.send(reply("wxid_dave", "", "r4", "image", "C:\\kefu\\a.png"));
  await a.next(103);
  assert.deepEqual(hook.sent.at(-1), { type: 10010, wxid: "wxid_dave", filePath: "C:\\kefu\\a.png" });
});

Deno.test("pc_hook: a push over MAX_BODY_BYTES is answered ok and counted as unreadable for the operator", async () => {
  await using hook = fakeHook({ wxid: "wxid_shop" });
  await using t = await startWithHook(hook, {}, { MAX_BODY_BYTES: "2048" });
  await hook.waitConnected();
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  assert.equal(await hook.push(chatFrame("wxid_shop", "wxid_big", "x".repeat(5000))), true);
  assert.deepEqual(await a.settle(100), []);
  const h = (await getJson(`${t.http}/healthz`)).body.channels.pc_hook.hooks[0];
  assert.deepEqual([h.kept, h.undecodable], [0, 1]);
});

Deno.test("pc_hook: with HOOK_CALLBACK_TOKEN the callback carries it, and a socket without it is refused", async () => {
  const token = "a-long-enough-callback-token";
  await using hook = fakeHook({ wxid: "wxid_shop" });
  await using t = await startWithHook(hook, {}, { HOOK_CALLBACK_TOKEN: token });
  await hook.waitConnected();
  assert.equal(hook.callbacks()[0].url, `ws://127.0.0.1:${t.port}/pc_hook/ws?token=${token}`);
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  await hook.text("wxid_t", "with the token");
  assert.equal((await a.next(1001)).data.msg.content, "with the token");
  for (const q of ["", "?token=wrong-but-long-enough-token"]) {
    const r = await fetch(`${t.http}/pc_hook/ws${q}`, { headers: { upgrade: "websocket" } });
    assert.equal(r.status, 401);
    assert.match((await r.json()).data.detail, /needs HOOK_CALLBACK_TOKEN/);
  }
  const health = JSON.stringify((await getJson(`${t.http}/healthz`)).body);
  assert.ok(!health.includes(token), "the token is not shown");
});
