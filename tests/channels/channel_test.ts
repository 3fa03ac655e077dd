/**
 * Channels as adapters, through the real service: a channel registered by a
 * test brings messages in and takes replies out with nothing outside its own
 * module; contact identity is (channel, account, user id); the reply router
 * sends each reply the way its user came, and refuses what it cannot route.
 */

import assert from "node:assert/strict";
import { start } from "../../main.ts";
import { parseConfig } from "../../src/config/config.ts";
import {
  AgentClient,
  agentUrl,
  getJson,
  post,
  signedQuery,
  startWechat,
  type TestService,
  userXml,
  wechatText,
} from "../helpers.ts";
import { testChannel, type TestChannelState } from "./test_channel.ts";

async function startWith(state: TestChannelState, env: Record<string, string> = {}): Promise<TestService> {
  const config = parseConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", STORE: "memory", ...env });
  const svc = await start(config, { channels: [testChannel(state)] });
  return {
    svc,
    port: svc.port,
    http: `http://127.0.0.1:${svc.port}`,
    ws: `ws://127.0.0.1:${svc.port}`,
    [Symbol.asyncDispose]: () => svc.shutdown(),
  };
}

function reply(contact: string, content: string, id: string) {
  return { data: { id, msg_type: "text", contact_id: contact, msg: { content } }, result: { code: 1001 } };
}

Deno.test("channels: a channel registered by a test brings a message in and takes the reply out", async () => {
  const state: TestChannelState = { sent: [] };
  await using t = await startWith(state);
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  const r = await post(`${t.http}/test/in`, JSON.stringify({ user: "u1", text: "hello from test", id: "m1" }));
  assert.deepEqual([r.status, r.body.status, r.body.contact], [200, "delivered", "u1"]);
  const got = await a.next(1001);
  assert.deepEqual([got.data.contact_id, got.data.msg.content], ["u1", "hello from test"]);

  a.send(reply("u1", "hello back", "r1"));
  const ok = await a.next(103);
  assert.deepEqual([ok.data.id, ok.data.status], ["r1", "sent"]);
  assert.deepEqual(state.sent, [{ user: "u1", account: "t1", content: "hello back" }]);
  const contacts = (await getJson(`${t.http}/im_component/wx_official_account/contacts?userid=a1`)).body;
  assert.deepEqual(
    contacts.data.contacts.map((c: Record<string, string>) => [c.contact_id, c.channel, c.account_id, c.user_id]),
    [["u1", "test", "t1", "u1"]],
  );
  const history = (await getJson(`${t.http}/im_component/wx_official_account/history?userid=a1&contact_id=u1`)).body;
  assert.deepEqual(history.data.messages.map((m: Record<string, string>) => [m.id, m.state]), [
    ["r1", "sent"],
    ["m1", "acked"],
  ]);

  // The channel refuses: the agent is told why, with the reply's id, and the row says failed.
  state.refuse = "the test channel is down";
  a.send(reply("u1", "are you there?", "r2"));
  const err = await a.next(-1);
  assert.deepEqual([err.data.id, err.data.detail], ["r2", "the test channel is down"]);
  const after = (await getJson(`${t.http}/im_component/wx_official_account/history?userid=a1&contact_id=u1`)).body;
  assert.deepEqual([after.data.messages[0].id, after.data.messages[0].state], ["r2", "failed"]);
});

Deno.test("channels: the same user id through two channels is two contacts; each reply goes the way its user came", async () => {
  const state: TestChannelState = { sent: [] };
  await using t = await startWith(state);
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  await post(`${t.http}/send`, userXml("same", "via push", { id: "p1" }));
  const first = await a.next(1001);
  await post(`${t.http}/test/in`, JSON.stringify({ user: "same", text: "via test", id: "p1" }));
  const second = await a.next(1001);
  // The first keeps the bare id; the second is qualified by its account (its channel when it has none).
  assert.equal(first.data.contact_id, "same");
  assert.equal(second.data.contact_id, "same@t1");
  assert.equal(second.data.msg.content, "via test", "the same MsgId under another contact is not a repeat");

  a.send(reply("same@t1", "to the test user", "r1"));
  assert.equal((await a.next(103)).data.id, "r1");
  assert.deepEqual(state.sent, [{ user: "same", account: "t1", content: "to the test user" }]);
  // The pushed user has no way back: refused by the router, never shown as sent.
  a.send(reply("same", "to the pushed user", "r2"));
  const err = await a.next(-1);
  assert.deepEqual([err.data.error, err.data.id, err.data.channel], ["no_route", "r2", "http_push"]);
  assert.equal(state.sent.length, 1);
  // Each contact's history is its own.
  const h = (await getJson(`${t.http}/im_component/wx_official_account/history?userid=a1&contact_id=same@t1`)).body;
  assert.deepEqual(h.data.messages.map((m: Record<string, string>) => m.id), ["r1", "p1"]);
});

Deno.test("channels: a contact whose channel is not registered after a restart gets no_route and a failed row", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const state: TestChannelState = { sent: [] };
    {
      await using t = await startWith(state, { DATA_DIR: dir, STORE: "sqlite" });
      await using a = await AgentClient.open(agentUrl(t, "a1"));
      await post(`${t.http}/test/in`, JSON.stringify({ user: "gone", text: "hi", id: "g1" }));
      await a.next(1001);
    }
    // The same data, without the test channel.
    const config = parseConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", DATA_DIR: dir });
    const svc = await start(config);
    try {
      await using a = await AgentClient.open(
        `ws://127.0.0.1:${svc.port}/im_component/wx_official_account/msg?userid=a1`,
      );
      a.send(reply("gone", "still there?", "r1"));
      const err = await a.next(-1);
      assert.equal(err.data.error, "no_route");
      assert.match(err.data.detail, /contact "gone": its channel "test" is not configured in this kefu/);
      const h = await getJson(
        `http://127.0.0.1:${svc.port}/im_component/wx_official_account/history?userid=a1&contact_id=gone`,
      );
      assert.deepEqual([h.body.data.messages[0].id, h.body.data.messages[0].state], ["r1", "failed"]);
    } finally {
      await svc.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("channels: the same openid writing to two Official Accounts is two contacts; each reply reaches its own account", async () => {
  const one = startWechat({ appId: "wxAccountOne000001", appSecret: "s1" });
  const two = startWechat({ appId: "wxAccountTwo000002", appSecret: "s2" });
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/kefu.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        accounts: [
          { appid: "wxAccountOne000001", appsecret: "s1", token: "t1", api_base: one.url },
          { appid: "wxAccountTwo000002", appsecret: "s2", token: "t2", api_base: two.url },
        ],
      }),
    );
    const state: TestChannelState = { sent: [] };
    await using t = await startWith(state, { CONFIG_FILE: file });
    await using a = await AgentClient.open(agentUrl(t, "a1"));
    for (const [appid, token, sim] of [["wxAccountOne000001", "t1", one], ["wxAccountTwo000002", "t2", two]] as const) {
      sim.sim.recordInteraction("oSame", "message");
      const r = await fetch(`${t.http}/wechat/${appid}${await signedQuery(token)}`, {
        method: "POST",
        body: wechatText("oSame", `to ${appid}`, "9001"),
      });
      assert.equal(await r.text(), "success");
    }
    const [m1, m2] = [await a.next(1001), await a.next(1001)];
    assert.deepEqual([m1.data.contact_id, m1.data.msg.content], ["oSame", "to wxAccountOne000001"]);
    assert.deepEqual([m2.data.contact_id, m2.data.msg.content], ["oSame@wxAccountTwo000002", "to wxAccountTwo000002"]);

    a.send(reply("oSame@wxAccountTwo000002", "answer two", "r2"));
    assert.equal((await a.next(103)).data.id, "r2");
    a.send(reply("oSame", "answer one", "r1"));
    assert.equal((await a.next(103)).data.id, "r1");
    // Each account's API got its own reply, addressed to the openid itself.
    assert.deepEqual(one.sim.inbox("oSame"), [{ touser: "oSame", msgtype: "text", text: { content: "answer one" } }]);
    assert.deepEqual(two.sim.inbox("oSame"), [{ touser: "oSame", msgtype: "text", text: { content: "answer two" } }]);
  } finally {
    await one[Symbol.asyncDispose]();
    await two[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("channels: the seed's §2.1 JSON push exactly as written reaches an agent", async () => {
  await using t = await startWith({ sent: [] });
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  const seed = {
    data: { msg_type: "text", contact_id: "oSeedUser", msg: { content: "按种子文档推送" } },
    result: { code: 1001, message: "common" },
  };
  const r = await post(`${t.http}/im_component/wx_official_account/send`, JSON.stringify(seed), {
    "content-type": "application/json",
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual([r.body.data.status, r.body.data.agent_id, r.body.data.contact_id], [
    "delivered",
    "a1",
    "oSeedUser",
  ]);
  const got = await a.next(1001);
  assert.deepEqual([got.data.contact_id, got.data.msg.content], ["oSeedUser", "按种子文档推送"]);
});
