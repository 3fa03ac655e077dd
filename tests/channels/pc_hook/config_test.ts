/**
 * The channel's settings: off by default, one hook from the environment,
 * several from CONFIG_FILE's `pc_hook` section, and every bad value named.
 */

import assert from "node:assert/strict";
import { parsePcHookConfig, PC_HOOK_DEFAULTS } from "../../../src/channels/pc_hook/config.ts";
import { ConfigError } from "../../../src/config/config.ts";

Deno.test("pc_hook config: off unless HOOK_API_URL, HOOK_CALLBACK_URL or the section is there", () => {
  assert.equal(parsePcHookConfig({}), undefined);
  assert.equal(parsePcHookConfig({ HOOK_WXID: "wxid_a" }), undefined);
});

Deno.test("pc_hook config: one hook from the environment, with the documented defaults", () => {
  const o = parsePcHookConfig({ HOOK_API_URL: "http://127.0.0.1:8888/api/", PORT: "1234" })!;
  assert.deepEqual(o.hooks, [{
    name: "default",
    apiUrl: "http://127.0.0.1:8888/api/",
    callbackUrl: "ws://127.0.0.1:1234/pc_hook/ws",
    wxid: undefined,
    secretKey: undefined,
  }]);
  assert.equal(o.path, "/pc_hook/ws");
  assert.deepEqual(o.send, PC_HOOK_DEFAULTS.send);
  assert.deepEqual([o.register, o.pingSeconds, o.timeoutMs, o.checkMs, o.retryMaxMs], [
    true,
    5,
    10_000,
    30_000,
    60_000,
  ]);
  // The callback URL alone turns it on with the seed's API address; its path is the one served.
  const p = parsePcHookConfig({
    HOOK_CALLBACK_URL: "ws://10.0.0.2:1234/hook/",
    HOOK_WXID: "wxid_a",
    HOOK_SECRET_KEY: "k",
    HOOK_REGISTER: "off",
    HOOK_SEND_TEXT_TYPE: "10100",
    HOOK_SEND_CONTENT_FIELD: "content",
  })!;
  assert.deepEqual(
    [p.hooks[0].apiUrl, p.hooks[0].callbackUrl, p.path, p.hooks[0].wxid, p.hooks[0].secretKey, p.register],
    ["http://127.0.0.1:8888/api/", "ws://10.0.0.2:1234/hook/", "/hook", "wxid_a", "k", false],
  );
  assert.deepEqual([p.send.textType, p.send.contentField, p.send.userField], [10100, "content", "userName"]);
});

Deno.test("pc_hook config: several hooks from CONFIG_FILE, each dialing its own path", () => {
  const o = parsePcHookConfig({ PORT: "1234", HOOK_PING_SECONDS: "7" }, {
    path: "/hooks",
    callback_url: "ws://kefu.lan:1234/hooks",
    send: { text_type: 10009, user_field: "userName" },
    check_seconds: 10,
    hooks: [
      { name: "sales", api_url: "http://10.0.0.5:8888/api/", wxid: "wxid_sales", secret_key: "s" },
      { api_url: "http://10.0.0.6:8889/api/", callback_url: "ws://kefu.lan:1234/hooks/x" },
    ],
  })!;
  assert.deepEqual(o.hooks.map((h) => [h.name, h.apiUrl, h.callbackUrl, h.wxid]), [
    ["sales", "http://10.0.0.5:8888/api/", "ws://kefu.lan:1234/hooks/sales", "wxid_sales"],
    ["hook2", "http://10.0.0.6:8889/api/", "ws://kefu.lan:1234/hooks/x", undefined],
  ]);
  assert.deepEqual([o.path, o.pingSeconds, o.checkMs], ["/hooks", 7, 10_000]);
});

Deno.test("pc_hook config: every bad value is refused, naming it", () => {
  const cases: [Record<string, string>, unknown, RegExp][] = [
    [
      { HOOK_API_URL: "ftp://x" },
      undefined,
      /cannot read HOOK_API_URL="ftp:\/\/x": expected a http:\/\/ or https:\/\/ URL/,
    ],
    [{ HOOK_CALLBACK_URL: "http://x/" }, undefined, /HOOK_CALLBACK_URL="http:\/\/x\/": expected a ws:\/\/ or wss:\/\//],
    [{ HOOK_API_URL: "http://x/", HOOK_CALLBACK_PATH: "no-slash" }, undefined, /callback path "no-slash"/],
    [
      { HOOK_API_URL: "http://x/", HOOK_SEND_USER_FIELD: "user name" },
      undefined,
      /HOOK_SEND_USER_FIELD="user name": expected a JSON field name/,
    ],
    [{ HOOK_API_URL: "http://x/", HOOK_SEND_TEXT_TYPE: "ten" }, undefined, /HOOK_SEND_TEXT_TYPE="ten"/],
    [{ HOOK_API_URL: "http://x/", HOOK_REGISTER: "maybe" }, undefined, /HOOK_REGISTER="maybe": expected on or off/],
    [{ HOOK_CALLBACK_URL: "ws://k:1/" }, undefined, /cannot serve the PC hook's callback on "\/"/],
    [
      { HOOK_API_URL: "http://x/", HOOK_CALLBACK_TOKEN: "short" },
      undefined,
      /HOOK_CALLBACK_TOKEN: a secret of at least 16/,
    ],
    [{}, [], /CONFIG_FILE pc_hook: expected an object/],
    [{}, { hook: [] }, /unknown key "hook"/],
    [{}, {}, /no hook: list at least one/],
    [{}, { hooks: [{ name: "a" }] }, /hooks\[0\]: api_url is required/],
    [{}, { hooks: [{ api_url: "http://x/", wxid: 5 }] }, /hooks\[0\]\.wxid: expected a string/],
    [{}, { hooks: [{ api_url: "http://x/", name: "a b" }] }, /hooks\[0\]\.name="a b"/],
    [
      {},
      { hooks: [{ api_url: "http://x/", name: "a" }, { api_url: "http://y/", name: "a" }] },
      /two PC hooks named "a"/,
    ],
    [{}, {
      hooks: [{ api_url: "http://x/", callback_url: "ws://k/" }, { api_url: "http://y/", callback_url: "ws://k/" }],
    }, /two PC hooks with the callback URL/],
    [{}, { hooks: [{ api_url: "http://x/" }], send: { text_type: -1 } }, /pc_hook\.send\.text_type=-1/],
    [{}, { hooks: [{ api_url: "http://x/" }], send: { txt_type: 1 } }, /pc_hook\.send: unknown key "txt_type"/],
    [{}, { hooks: [{ api_url: "http://x/" }], register: "yes" }, /pc_hook\.register: expected true or false/],
  ];
  for (const [env, file, re] of cases) {
    assert.throws(() => parsePcHookConfig(env, file), (e) => e instanceof ConfigError && re.test(e.message), re.source);
  }
});
