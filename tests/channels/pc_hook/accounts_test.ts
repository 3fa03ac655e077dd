/**
 * Several hooks (several personal WeChat accounts) at once through CONFIG_FILE:
 * each dials its own path, the account is each hook's wxid, the same user
 * writing to both is two contacts, and each reply goes out through its own hook.
 */

import assert from "node:assert/strict";
import { AgentClient, agentUrl, getJson } from "../../helpers.ts";
import { fakeHook, freePort, reply, startWithHook } from "./helpers.ts";

Deno.test("pc_hook accounts: two hooks, the same user on both: two contacts, each reply through its own hook", async () => {
  await using one = fakeHook({ wxid: "wxid_sales" });
  await using two = fakeHook({ wxid: "wxid_support", answers: "wrapped" });
  await using t = await startWithHook(undefined, {}, {}, {
    hooks: [{ name: "sales", api_url: one.apiUrl }, { name: "support", api_url: two.apiUrl }],
  });
  await one.waitConnected();
  await two.waitConnected();
  assert.match(one.callbacks()[0].url, /\/pc_hook\/ws\/sales$/);
  assert.match(two.callbacks()[0].url, /\/pc_hook\/ws\/support$/);
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  await one.text("wxid_same", "to sales");
  const first = await a.next(1001);
  await two.text("wxid_same", "to support");
  const second = await a.next(1001);
  assert.deepEqual([first.data.contact_id, second.data.contact_id], ["wxid_same", "wxid_same@wxid_support"]);

  a.send(reply("wxid_same@wxid_support", "support answers", "r2"));
  await a.next(103);
  a.send(reply("wxid_same", "sales answers", "r1"));
  await a.next(103);
  assert.deepEqual(one.sent, [{ type: 10009, userName: "wxid_same", msgContent: "sales answers" }]);
  assert.deepEqual(two.sent, [{ type: 10009, userName: "wxid_same", msgContent: "support answers" }]);
  const hooks = (await getJson(`${t.http}/healthz`)).body.channels.pc_hook.hooks;
  assert.deepEqual(hooks.map((h: Record<string, unknown>) => [h.name, h.account, h.connected, h.kept]), [
    ["sales", "wxid_sales", 1, 1],
    ["support", "wxid_support", 1, 1],
  ]);
});

Deno.test("pc_hook accounts: a hook that cannot say who it is: the pushes' robot names the account", async () => {
  await using hook = fakeHook({ wxid: "wxid_robot" });
  // Registration off: no type 28; the callback is set by hand, with a trailing slash as the seed writes it.
  const port = freePort();
  const url = `ws://127.0.0.1:${port}/websocket/`;
  await using t = await startWithHook(undefined, { register: false }, {
    PORT: String(port),
    HOOK_API_URL: hook.apiUrl,
    HOOK_CALLBACK_URL: url,
  });
  hook.addCallback(url);
  await hook.waitConnected();
  assert.deepEqual(hook.calls, [], "kefu called nothing");
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  await hook.text("wxid_u", "hi");
  await a.next(1001);
  const contacts = (await getJson(`${t.http}/im_component/wx_official_account/contacts?userid=a1`)).body;
  assert.equal(contacts.data.contacts[0].account_id, "wxid_robot");
  a.send(reply("wxid_u", "hello", "r1"));
  await a.next(103);
  assert.deepEqual(hook.sent, [{ type: 10009, userName: "wxid_u", msgContent: "hello" }]);
});
