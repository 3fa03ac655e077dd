/**
 * Issue 20, tried again: open doors. With sign-in on, pushes need PUSH_TOKEN and the PC hook's callback socket
 * HOOK_CALLBACK_TOKEN unless a setting opens them on purpose; whatever is open is said in the start log.
 */

import assert from "node:assert/strict";
import { start } from "../../main.ts";
import { ConfigError, parseConfig } from "../../src/config/config.ts";
import { createLogger } from "../../src/core/log.ts";
import { fakeHook } from "../channels/pc_hook/helpers.ts";
import { userXml } from "../helpers.ts";

const SECRET = "open-doors-secret-0123456";

async function startLogged(env: Record<string, string>) {
  const lines: { level: string; event: string; detail?: string }[] = [];
  const log = createLogger({ level: "info", write: (l) => lines.push(JSON.parse(l)) });
  const svc = await start(parseConfig({ PORT: "0", HOST: "127.0.0.1", STORE: "memory", ...env }), { log });
  const warned = (event: string) => lines.filter((l) => l.level === "warn" && l.event === event);
  return { svc, http: `http://127.0.0.1:${svc.port}`, warned, [Symbol.asyncDispose]: () => svc.shutdown() };
}

Deno.test("security: with sign-in on and no PUSH_TOKEN, pushes are refused unless PUSH_OPEN=1, which the log says", async () => {
  {
    await using k = await startLogged({ AGENT_SECRET: SECRET });
    for (
      const path of ["/send", "/im_component/wx_official_account/send", "/im_component/wx_official_account/send_xml"]
    ) {
      const r = await fetch(`${k.http}${path}`, { method: "POST", body: userXml("oCEO", "FORGED", { to: "a1" }) });
      const body = await r.json();
      assert.deepEqual([r.status, body.data.error], [401, "auth_required"], path);
      assert.match(body.data.detail, /PUSH_TOKEN.*PUSH_OPEN=1/);
    }
    assert.deepEqual(k.warned("push_open"), []);
    assert.deepEqual(k.warned("auth_off"), []);
  }
  {
    await using k = await startLogged({ AGENT_SECRET: SECRET, PUSH_OPEN: "1" });
    const r = await fetch(`${k.http}/send`, { method: "POST", body: userXml("oUser", "hello", { to: "a1" }) });
    assert.equal(r.status, 202);
    await r.body?.cancel();
    assert.match(k.warned("push_open")[0].detail!, /PUSH_OPEN=1.*set PUSH_TOKEN/);
  }
  {
    // Sign-in off: every door is open, and each is said.
    await using k = await startLogged({});
    assert.equal(k.warned("auth_off").length, 1);
    assert.equal(k.warned("push_open").length, 1);
  }
});

Deno.test("security: with sign-in on, the PC hook without HOOK_CALLBACK_TOKEN is refused at start unless HOOK_OPEN=1", async () => {
  await using hook = fakeHook();
  const env = {
    AGENT_SECRET: SECRET,
    PUSH_TOKEN: "push-token-0123456789",
    HOOK_API_URL: hook.apiUrl,
    HOOK_REGISTER: "off",
  };
  await assert.rejects(
    startLogged(env),
    (e) => e instanceof ConfigError && /HOOK_CALLBACK_TOKEN/.test(e.message) && /HOOK_OPEN=1/.test(e.message),
  );
  {
    // Opened on purpose: the socket takes any caller, and the log says so.
    await using k = await startLogged({ ...env, HOOK_OPEN: "1" });
    assert.match(k.warned("hook_open")[0].detail!, /HOOK_OPEN=1.*HOOK_CALLBACK_TOKEN/);
    const ws = new WebSocket(`${k.http.replace("http", "ws")}/pc_hook/ws`);
    const first = new Promise<string>((resolve) => ws.onmessage = (e) => resolve(String(e.data)));
    ws.onopen = () => ws.send("hello");
    assert.equal(await first, "hello");
    ws.close();
    await new Promise((r) => ws.onclose = r);
  }
  {
    // With the token: a caller without it is refused before the upgrade, and nothing is warned.
    await using k = await startLogged({ ...env, HOOK_CALLBACK_TOKEN: "hook-token-0123456789" });
    assert.deepEqual(k.warned("hook_open"), []);
    const r = await fetch(`${k.http}/pc_hook/ws`, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    });
    assert.equal(r.status, 401);
    await r.body?.cancel();
  }
});
