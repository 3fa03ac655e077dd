/**
 * The WXBot settings: off unless asked for, the seed's defaults, one account
 * from the environment and several from CONFIG_FILE's `wxbot` section, and a
 * ConfigError naming the variable or the place in the file for a bad value,
 * never quoting the key or a Token.
 */

import assert from "node:assert/strict";
import {
  DEFAULT_API_BASE,
  DEFAULT_VIDEO_PATH,
  DEFAULT_VOICE_PATH,
  DEFAULT_WS_URL,
  parseWxbotConfig,
} from "../../../src/channels/wxbot/config.ts";
import { ConfigError } from "../../../src/config/config.ts";

Deno.test("wxbot config: off when neither the environment nor CONFIG_FILE mentions it", () => {
  assert.equal(parseWxbotConfig({ PORT: "1234" }), undefined);
  assert.equal(parseWxbotConfig({ WXBOT_KEY: "  " }), undefined);
});

Deno.test("wxbot config: one account from the environment, with the seed's defaults", () => {
  const c = parseWxbotConfig({ WXBOT_KEY: "k", WXBOT_WXID: "wxid_a", WXBOT_TOKEN: "t", WXBOT_COMPANY_ID: "co" })!;
  assert.deepEqual(c, {
    wsUrl: DEFAULT_WS_URL,
    key: "k",
    apiBase: DEFAULT_API_BASE,
    accounts: [{ wxid: "wxid_a", token: "t", companyId: "co" }],
    reconnectMs: 10_000,
    authTimeoutMs: 30_000,
    timeoutMs: 30_000,
    maxRetries: 3,
    retryMinMs: 1000,
    retryMaxMs: 3000,
    voicePath: DEFAULT_VOICE_PATH,
    videoPath: DEFAULT_VIDEO_PATH,
    imageFormat: "seed",
  });
  assert.equal(DEFAULT_WS_URL, "ws://api.whosecard.com:19095");
});

Deno.test("wxbot config: CONFIG_FILE's section names several accounts; a variable wins over the file", () => {
  const c = parseWxbotConfig({ WXBOT_WS_URL: "wss://sync.example:1/", WXBOT_WXID: "wxid_env", WXBOT_TOKEN: "te" }, {
    key: "file-key",
    ws_url: "ws://ignored:1",
    api_base: "http://127.0.0.1:9/prefix/",
    accounts: [{ wxid: "wxid_a", token: "ta" }, { wxid: "wxid_b", token: "tb", company_id: "acme" }],
    reconnect_ms: 20,
    max_retries: 0,
    voice_path: "/wxapi/pc/message/sendText",
    image_format: "data_uri",
  })!;
  assert.deepEqual(
    [c.key, c.wsUrl, c.apiBase, c.reconnectMs, c.maxRetries, c.voicePath, c.imageFormat],
    ["file-key", "wss://sync.example:1", "http://127.0.0.1:9/prefix", 20, 0, "/wxapi/pc/message/sendText", "data_uri"],
  );
  assert.deepEqual(c.accounts.map((a) => [a.wxid, a.token, a.companyId]), [
    ["wxid_env", "te", ""],
    ["wxid_a", "ta", ""],
    ["wxid_b", "tb", "acme"],
  ]);
});

Deno.test("wxbot config: bad values are refused naming where they are, never quoting a secret", () => {
  const cases: [Record<string, string>, unknown, RegExp][] = [
    [
      { WXBOT_WXID: "wxid_a", WXBOT_TOKEN: "secret-token" },
      undefined,
      /WXBOT_KEY \(or CONFIG_FILE wxbot\.key\) is required.*WXBOT_WXID, WXBOT_TOKEN are set/,
    ],
    [{}, {}, /WXBOT_KEY .* is required, .*the section is there/],
    [
      { WXBOT_KEY: "k", WXBOT_WS_URL: "http://x" },
      undefined,
      /WXBOT_WS_URL="http:\/\/x": expected a ws:\/\/ or wss:\/\/ URL/,
    ],
    [
      { WXBOT_KEY: "k", WXBOT_API_BASE: "ftp://x" },
      undefined,
      /WXBOT_API_BASE="ftp:\/\/x": expected a http:\/\/ or https:\/\//,
    ],
    [{ WXBOT_KEY: "k", WXBOT_RECONNECT_MS: "soon" }, undefined, /WXBOT_RECONNECT_MS="soon": expected an integer/],
    [{ WXBOT_KEY: "k" }, { max_retries: 99 }, /CONFIG_FILE wxbot\.max_retries=99: expected an integer from 0 to 10/],
    [{ WXBOT_KEY: "k", WXBOT_VOICE_PATH: "sendVoice" }, undefined, /WXBOT_VOICE_PATH="sendVoice": expected a path/],
    [
      { WXBOT_KEY: "k", WXBOT_IMAGE_FORMAT: "png" },
      undefined,
      /WXBOT_IMAGE_FORMAT="png": expected seed or data_uri or raw/,
    ],
    [{ WXBOT_KEY: "k", WXBOT_RETRY_MIN_MS: "500", WXBOT_RETRY_MAX_MS: "100" }, undefined, /below WXBOT_RETRY_MIN_MS/],
    [{ WXBOT_KEY: "k", WXBOT_WXID: "wxid_a" }, undefined, /WXBOT_WXID and WXBOT_TOKEN: wxid and token are required/],
    [{ WXBOT_KEY: "k" }, { accounts: [{ wxid: "a", token: "x" }, { wxid: "a", token: "y" }] }, /"a" twice/],
    [
      { WXBOT_KEY: "k" },
      { accounts: [{ wxid: "a", tokn: "x" }] },
      /accounts\[0\]: unknown key "tokn" \(did you mean token\?\)/,
    ],
    [{ WXBOT_KEY: "k" }, { wsurl: "ws://x" }, /CONFIG_FILE wxbot: unknown key "wsurl" \(did you mean ws_url\?\)/],
    [{ WXBOT_KEY: "k" }, [], /CONFIG_FILE wxbot: expected an object/],
    [{ WXBOT_KEY: "k" }, { accounts: {} }, /wxbot\.accounts: expected \[/],
    [{ WXBOT_KEY: "k" }, { accounts: [{ wxid: "has space", token: "t" }] }, /is not a wxid/],
  ];
  for (const [env, file, re] of cases) {
    assert.throws(
      () => parseWxbotConfig(env, file),
      (e: unknown) => e instanceof ConfigError && re.test(e.message) && !e.message.includes("secret-token"),
      `${JSON.stringify(env)} ${JSON.stringify(file)}`,
    );
  }
});
