/**
 * One inbox, many channels, end to end: one agent, connected once, gets users of an Official Account (the WeChat
 * simulator), a PC hook (the fake hook) and a WXBot platform (the fake platform) side by side — the same user id on
 * all three is three contacts — and answers each; every reply goes back the way its user came.
 */

import assert from "node:assert/strict";
import { start } from "../../main.ts";
import { parseConfig } from "../../src/config/config.ts";
import { startPcHookSimulator } from "../../src/simulator/pc_hook.ts";
import { startWxbotSim } from "../../src/simulator/wxbot.ts";
import { AgentClient, eventually, freePort, getJson, signedQuery, startWechat, wechatText } from "../helpers.ts";

const APPID = "wx00000000000000c1";

Deno.test("inbox: one agent answers an Official Account user, a PC-hook user and a WXBot user, each the way they came", async () => {
  await using wechat = startWechat({ appId: APPID, appSecret: "s" });
  const hook = startPcHookSimulator({ reconnectMs: 50, wxid: "wxid_hook_account" });
  const platform = startWxbotSim({
    port: 0,
    host: "127.0.0.1",
    key: "inbox-platform-key",
    tokens: { wxid_bot_account: "bot-token" },
    logLevel: "silent",
  });
  const port = freePort();
  const svc = await start(parseConfig({
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "silent",
    STORE: "memory",
    WECHAT_TOKEN: "tok",
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: "s",
    WECHAT_API_BASE: wechat.url,
    HOOK_API_URL: hook.apiUrl,
    WXBOT_KEY: "inbox-platform-key",
    WXBOT_WS_URL: platform.wsUrl,
    WXBOT_API_BASE: platform.apiBase,
    WXBOT_WXID: "wxid_bot_account",
    WXBOT_TOKEN: "bot-token",
    WXBOT_RECONNECT_MS: "50",
  }));
  try {
    const http = `http://127.0.0.1:${port}`;
    await using agent = await AgentClient.open(`ws://127.0.0.1:${port}/im_component/wx_official_account/msg?userid=a1`);
    await hook.waitConnected(1);
    await eventually("the WXBot key signed in and synced", () => platform.sim.stats().synced > 0, 15_000);

    // The same user id, "wxid_same", through all three channels.
    wechat.sim.recordInteraction("wxid_same", "message");
    const r = await fetch(`${http}/wechat${await signedQuery("tok")}`, {
      method: "POST",
      body: wechatText("wxid_same", "from the Official Account", "5001"),
    });
    assert.equal(await r.text(), "success");
    const fromOa = await agent.next(1001);
    await hook.text("wxid_same", "from the PC hook");
    const fromHook = await agent.next(1001);
    platform.sim.push({ wxid: "wxid_bot_account", from: "wxid_same", content: "from WXBot" });
    const fromBot = await agent.next(1001);
    assert.deepEqual([fromOa, fromHook, fromBot].map((e) => e.data.msg.content), [
      "from the Official Account",
      "from the PC hook",
      "from WXBot",
    ]);
    const ids = [fromOa, fromHook, fromBot].map((e) => e.data.contact_id);
    assert.deepEqual(ids, ["wxid_same", "wxid_same@wxid_hook_account", "wxid_same@wxid_bot_account"]);

    const contacts = (await getJson(`${http}/im_component/wx_official_account/contacts?userid=a1`)).body.data.contacts;
    assert.deepEqual(
      contacts.map((c: Record<string, string>) => [c.contact_id, c.channel, c.account_id]).sort(),
      [
        ["wxid_same", "wx_official_account", APPID],
        ["wxid_same@wxid_bot_account", "wxbot", "wxid_bot_account"],
        ["wxid_same@wxid_hook_account", "pc_hook", "wxid_hook_account"],
      ],
    );

    // Each answered; each reply leaves by its own channel, addressed to the user's own id.
    for (const [contact, text, id] of [[ids[0], "to OA", "r1"], [ids[1], "to hook", "r2"], [ids[2], "to bot", "r3"]]) {
      agent.send({
        data: { id, msg_type: "text", contact_id: contact, msg: { content: text } },
        result: { code: 1001 },
      });
      const ok = await agent.next(103);
      assert.deepEqual([ok.data.id, ok.data.status], [id, "sent"]);
    }
    assert.deepEqual(wechat.sim.inbox("wxid_same"), [{
      touser: "wxid_same",
      msgtype: "text",
      text: { content: "to OA" },
    }]);
    assert.deepEqual(hook.sent.map((b) => [b.userName, b.msgContent]), [["wxid_same", "to hook"]]);
    const botSends = platform.sim.sent.filter((s) => s.op.includes("sendText"));
    assert.deepEqual(botSends.map((s) => [s.body.UserName, s.body.Content, s.body.Token]), [
      ["wxid_same", "to bot", "bot-token"],
    ]);
  } finally {
    await svc.shutdown();
    await hook.shutdown();
    await platform.shutdown();
  }
});
