/**
 * The simulated WXBot platform as a person drives it (`kefu simulate`): its
 * settings from the environment, and the /sim/ controls over HTTP.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../../../src/config/config.ts";
import { ConfigError } from "../../../src/config/config.ts";
import { parseWxbotSimConfig } from "../../../src/simulator/wxbot.ts";
import { KEY, startSim, TOKENS, until } from "./helpers.ts";

Deno.test("wxbot simulator: played when WXBOT_KEY is set, on the seed's port unless SIM_WXBOT_PORT says otherwise", () => {
  assert.equal(parseWxbotSimConfig({}), undefined);
  assert.deepEqual(parseWxbotSimConfig({ WXBOT_KEY: "k", WXBOT_WXID: "wxid_a", WXBOT_TOKEN: "t" }), {
    port: 19095,
    host: "127.0.0.1",
    key: "k",
    tokens: { wxid_a: "t" },
    logLevel: "info",
  });
  assert.equal(parseWxbotSimConfig({ WXBOT_KEY: "k", WXBOT_TOKEN: "t", SIM_WXBOT_PORT: "0" })!.port, 0);
  assert.throws(() => parseWxbotSimConfig({ WXBOT_KEY: "k" }), ConfigError);
  assert.throws(() => parseWxbotSimConfig({ WXBOT_KEY: "k", WXBOT_TOKEN: "t", SIM_WXBOT_PORT: "x" }), /SIM_WXBOT_PORT/);
  // The same variables configure kefu's side: the two agree by construction.
  assert.ok(parseConfig({ WXBOT_KEY: "k" }));
});

Deno.test("wxbot simulator: /sim/ controls push a message, make the API fail, show what was sent, drop sockets", async () => {
  await using p = startSim();
  const ws = new WebSocket(p.wsUrl);
  const frames: string[] = [];
  ws.onmessage = (e) => frames.push(e.data);
  await new Promise((r) => ws.onopen = r);
  ws.send("garbage first"); // not an auth packet: no answer
  ws.send(JSON.stringify({ app: "wxbot", version: "1.0", key: KEY }));
  await until(() => frames.length === 1, "the auth result");
  assert.deepEqual(JSON.parse(frames[0]), {
    type: "AuthCheckResult",
    msg: "鉴权成功，本账号下所有已登录微信号的消息均会同步",
    retCode: 0,
  });

  const post = (path: string, body: unknown) =>
    fetch(`${p.apiBase}${path}`, { method: "POST", body: JSON.stringify(body) }).then((r) => r.json());
  const pushed = await post("/sim/addmsg", { from: "wxid_user", text: "hi", new_msg_id: "12345678901234567890" });
  assert.equal(pushed.sockets, 1);
  await until(() => frames.length === 2, "the AddMsg");
  assert.match(frames[1], /"NewMsgId":12345678901234567890\b/);
  assert.match(frames[1], /"userInfo":\{"wxid":"wxid_bot_one"/);

  await post("/sim/fail", { retCode: 1004, count: 1 });
  const send = (token: string) =>
    post(`/wxapi/pc/message/sendText?key=${KEY}`, { UserName: "u", Content: "c", Token: token });
  assert.deepEqual(await send(TOKENS.wxid_bot_one), { ok: false, retCode: 1004, cost: false });
  assert.deepEqual((await send(TOKENS.wxid_bot_one)).retCode, 0);
  await post("/sim/fail", { retCode: 1003, cost: true });
  assert.deepEqual(await send(TOKENS.wxid_bot_one), { ok: false, retCode: 1003, cost: true });
  await post("/sim/fail", { retCode: null });
  assert.equal((await send(TOKENS.wxid_bot_one)).ok, true);
  const sent = await fetch(`${p.apiBase}/sim/sent`).then((r) => r.json());
  assert.deepEqual(sent.map((s: { key: string; answer: { retCode: number } }) => [s.key, s.answer.retCode]), [
    ["(right key)", 1004],
    ["(right key)", 0],
    ["(right key)", 1003],
    ["(right key)", 0],
  ]);

  const closed = new Promise<CloseEvent>((r) => ws.onclose = r);
  assert.deepEqual(await post("/sim/drop", {}), { dropped: 1 });
  assert.equal((await closed).code, 1011);
});
