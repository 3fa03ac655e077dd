/**
 * The fake hook's controls for a person (`/sim/text`, `/sim/frame`, `/sim/state`)
 * and its settings under `kefu simulate`.
 */

import assert from "node:assert/strict";
import { parsePcHookSimConfig } from "../../../src/simulator/pc_hook.ts";
import { ConfigError } from "../../../src/config/config.ts";
import { AgentClient, agentUrl } from "../../helpers.ts";
import { fakeHook, reply, startWithHook } from "./helpers.ts";

Deno.test("pc_hook simulator: a person pushes with curl-style calls and reads what kefu sent", async () => {
  await using hook = fakeHook({ wxid: "wxid_walk" });
  await using t = await startWithHook(hook);
  await hook.waitConnected();
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  const base = hook.apiUrl.replace(/\/api\/$/, "");
  const r = await fetch(`${base}/sim/text`, {
    method: "POST",
    body: JSON.stringify({ from: "wxid_eve", content: "群里好", room: "55@chatroom", nickName: "Eve" }),
  });
  const text = await r.text();
  assert.match(text, /^\{"ok":true,"frame":\{"pushType":1,.*"msgSvrID":\d{19},/, "msgSvrID as the hook writes it");
  assert.equal((await a.next(1001)).data.msg.content, "Eve (wxid_eve):\n群里好");
  const f = await fetch(`${base}/sim/frame`, { method: "POST", body: "{broken" });
  assert.deepEqual(await f.json(), { ok: true });
  // Unreadable: the operator's matter (logged and counted), nothing for the agent.
  assert.deepEqual(await a.settle(100), []);
  a.send(reply("55@chatroom", "收到", "r1"));
  await a.next(103);
  const state = await (await fetch(`${base}/sim/state`)).json();
  assert.deepEqual([state.wxid, state.connected, state.sent], [
    "wxid_walk",
    1,
    [{ type: 10009, userName: "55@chatroom", msgContent: "收到" }],
  ]);
});

Deno.test("pc_hook simulator: settings from SIM_HOOK_*", () => {
  assert.deepEqual(parsePcHookSimConfig({}), {
    port: 8888,
    host: "127.0.0.1",
    wxid: "wxid_kefu_sim_hook",
    answers: "seed",
    logLevel: "info",
  });
  assert.equal(parsePcHookSimConfig({ SIM_HOOK_ANSWERS: "wrapped", SIM_HOOK_PORT: "0" }).answers, "wrapped");
  assert.throws(() => parsePcHookSimConfig({ SIM_HOOK_WXID: "a b" }), ConfigError);
  assert.throws(() => parsePcHookSimConfig({ SIM_HOOK_PORT: "x" }), /SIM_HOOK_PORT/);
});
