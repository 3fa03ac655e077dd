/**
 * Issue 20, what held — kept so: uploaded HTML and SVG never run as kefu's origin, paths do not leave their
 * directories, XML bombs are refused before they expand, and neither secrets, passwords nor tokens reach the log,
 * whatever was tried (wrong logins, revocations, replays, refused sockets).
 */

import assert from "node:assert/strict";
import { start } from "../../main.ts";
import { hashPassword } from "../../src/agents/auth/passwords.ts";
import { signature } from "../../src/channels/wx_official/crypto.ts";
import { parseConfig } from "../../src/config/config.ts";
import { createLogger } from "../../src/core/log.ts";

const SECRET = "held-agent-secret-0123456789";
const PUSH = "held-push-token-0123456789";
const APPSECRET = "held-app-secret-0123456789";
const PASSWORD = "held password 密码";
const BASE = "/im_component/wx_official_account";

Deno.test("security: uploads never run as kefu, paths stay put, XML bombs are refused, and nothing secret is logged", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/kefu.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({ agents: [{ id: "a1", password_hash: await hashPassword(PASSWORD) }] }),
  );
  const lines: string[] = [];
  const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
  const svc = await start(
    parseConfig({
      PORT: "0",
      HOST: "127.0.0.1",
      STORE: "sqlite",
      DATA_DIR: `${dir}/data`,
      AGENT_SECRET: SECRET,
      PUSH_TOKEN: PUSH,
      CONFIG_FILE: file,
      WECHAT_TOKEN: "heldtoken",
      WECHAT_APPID: "wx0000000000000099",
      WECHAT_APPSECRET: APPSECRET,
    }),
    { log },
  );
  const http = `http://127.0.0.1:${svc.port}`;
  try {
    for (let i = 0; i < 3; i++) {
      await fetch(`${http}/auth/login`, {
        method: "POST",
        body: JSON.stringify({ id: "a1", password: `${PASSWORD}!` }),
      })
        .then((r) => r.body?.cancel());
    }
    const login = await fetch(`${http}/auth/login`, {
      method: "POST",
      body: JSON.stringify({ id: "a1", password: PASSWORD }),
    });
    const token: string = (await login.json()).content.token;

    // An uploaded page and an SVG come back as bytes, never as a document of this origin.
    for (
      const [name, type, body] of [
        ["x.html", "text/html", "<script>alert(1)</script>"],
        ["x.svg", "image/svg+xml", `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`],
      ]
    ) {
      const up = await fetch(`${http}${BASE}/media?filename=${name}`, {
        method: "POST",
        body,
        headers: { "content-type": type, authorization: `Bearer ${token}` },
      });
      const path: string = (await up.json()).data.media_path;
      const r = await fetch(`${http}${path}`, { headers: { authorization: `Bearer ${token}` } });
      await r.body?.cancel();
      assert.deepEqual([r.status, r.headers.get("content-type"), r.headers.get("x-content-type-options")], [
        200,
        "application/octet-stream",
        "nosniff",
      ], name);
    }
    // Paths do not climb out of the page's directory or the media store.
    for (
      const path of ["/static/../main.ts", "/static/%2e%2e/main.ts", "/static/..%2fmain.ts", "/media/..%2f..%2fkefu.db"]
    ) {
      const r = await fetch(`${http}${path}?token=${token}`);
      const text = await r.text();
      assert.ok(r.status === 404 || r.status === 403 || r.status === 400, `${path}: ${r.status}`);
      assert.ok(!text.includes("import ") && !text.includes("SQLite"), path);
    }
    // A billion-laughs body is refused before anything expands.
    const ts = String(Math.floor(Date.now() / 1000));
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>` +
      `<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>` +
      `<MsgType>text</MsgType><Content>&lol2;</Content><MsgId>1</MsgId></xml>`;
    const q = `?signature=${signature("heldtoken", ts, "5")}&timestamp=${ts}&nonce=5`;
    const refused = await fetch(`${http}/wechat${q}`, { method: "POST", body: bomb });
    assert.deepEqual([refused.status, (await refused.json()).data.error], [400, "xml_doctype_forbidden"]);
    // A sign-out and an administrator's revocation, a refused socket, a refused push: all logged without secrets.
    await fetch(`${http}/auth/logout`, { method: "POST", headers: { authorization: `Bearer ${token}` } }).then((r) =>
      r.body?.cancel()
    );
    await fetch(`${http}/auth/revoke`, {
      method: "POST",
      body: JSON.stringify({ agent_id: "a1" }),
      headers: { authorization: `Bearer ${SECRET}` },
    }).then((r) => r.body?.cancel());
    await fetch(`${http}${BASE}/msg?token=${token}`, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
      },
    }).then((r) => r.body?.cancel());
    await fetch(`${http}/send`, { method: "POST", body: "<xml/>", headers: { authorization: "Bearer not-the-token" } })
      .then((r) => r.body?.cancel());
  } finally {
    await svc.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
  const all = lines.join("\n");
  assert.ok(lines.length > 10);
  for (const secret of [SECRET, PUSH, APPSECRET, PASSWORD, "heldtoken", "v1."]) {
    assert.ok(!all.includes(secret), `the log holds ${JSON.stringify(secret.slice(0, 6))}…`);
  }
});
