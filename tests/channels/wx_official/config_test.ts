import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../../src/config/config.ts";
import {
  ACCOUNT_KEYS,
  describeAccounts,
  parseWxOfficialConfig,
  type WechatAccount,
} from "../../../src/channels/wx_official/config.ts";
import { channelSettings } from "../../../main.ts";

/** The accounts as kefu reads them: the configuration hands the channel the environment and CONFIG_FILE's section. */
function accountsOf(
  env: Record<string, string | undefined>,
  readFile?: (path: string) => string,
): { accounts: WechatAccount[] } {
  const sources = parseConfig(env, readFile).channelSources;
  const accounts = parseWxOfficialConfig(sources.env, sources.file.accounts);
  // The composition root asks the channel the same way.
  assert.deepEqual(channelSettings({ channelSources: sources }).accounts, accounts);
  return { accounts };
}

Deno.test("wx_official config: one WeChat account from WECHAT_* on /wechat, more from CONFIG_FILE on /wechat/{appid}", () => {
  const files: Record<string, string> = {
    "/etc/kefu.json": JSON.stringify({
      accounts: [
        {
          appid: "wxB",
          appsecret: "sB",
          token: "tB",
          company_id: "cB",
          token_mode: "stable_token",
          auto_reply: "稍等",
          reply_mode: "passive",
          passive_hold_ms: 9000,
        },
        { appid: "wxC", token: "tC", path: "/hooks/c", max_skew_seconds: 60 },
      ],
    }),
  };
  const c = accountsOf({
    WECHAT_APPID: "wxA",
    WECHAT_APPSECRET: "sA",
    WECHAT_TOKEN: "tA",
    WECHAT_ENCODING_AES_KEY: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
    WECHAT_COMPANY_ID: "cA",
    WECHAT_API_BASE: "http://127.0.0.1:9/",
    CONFIG_FILE: "/etc/kefu.json",
  }, (p) => files[p]);
  assert.deepEqual(c.accounts.map((a) => [a.appId, a.path, a.tokenMode, a.maxSkewSeconds]), [
    ["wxA", "/wechat", "token", 300],
    ["wxB", "/wechat/wxB", "stable_token", 300],
    ["wxC", "/hooks/c", "token", 60],
  ]);
  assert.equal(c.accounts[0].apiBase, "http://127.0.0.1:9");
  assert.equal(c.accounts[1].apiBase, "https://api.weixin.qq.com");
  assert.equal(c.accounts[1].autoReply, "稍等");
  assert.deepEqual(c.accounts.map((a) => [a.replyMode, a.passiveHoldMs]), [
    ["custom", 14000],
    ["passive", 9000],
    ["custom", 14000],
  ]);
  assert.equal(accountsOf({ WECHAT_TOKEN: "t", WECHAT_REPLY_MODE: "passive" }).accounts[0].replyMode, "passive");
  assert.equal(c.accounts[0].encodingAesKey.length, 43);
  // The bench's setting: a token alone is a plaintext-only account.
  assert.deepEqual(accountsOf({ WECHAT_TOKEN: "bench" }).accounts.map((a) => [a.appId, a.path]), [["", "/wechat"]]);
});

Deno.test("wx_official config: bad account settings name the place, never the secret", () => {
  const key = "not-a-valid-key-but-secret";
  assert.throws(() => accountsOf({ WECHAT_TOKEN: "t", WECHAT_ENCODING_AES_KEY: key }), (e) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /WECHAT_ENCODING_AES_KEY/);
    assert.ok(!e.message.includes(key));
    return true;
  });
  assert.throws(() => accountsOf({ CONFIG_FILE: "x" }, () => "{"), /CONFIG_FILE="x"/);
  assert.throws(
    () => accountsOf({ WECHAT_TOKEN: "t", WECHAT_ENCODING_AES_KEY: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" }),
    /AppID is required/,
  );
  assert.throws(() => accountsOf({ CONFIG_FILE: "x" }, () => `{"accounts":[{"appid":"a"}]}`), /appid and token/);
  assert.throws(
    () =>
      accountsOf(
        { WECHAT_TOKEN: "t", CONFIG_FILE: "x" },
        () => `{"accounts":[{"appid":"a","token":"t","path":"/wechat"}]}`,
      ),
    /two accounts on the webhook path \/wechat/,
  );
});

Deno.test("wx_official config: describeAccounts says which webhooks are on and how, never a secret", () => {
  const c = accountsOf({
    WECHAT_TOKEN: "env-token",
    WECHAT_REPLY_MODE: "passive",
    CONFIG_FILE: "x",
  }, () =>
    JSON.stringify({
      accounts: [
        {
          appid: "wxB",
          appsecret: "secret-b",
          token: "token-b",
          encoding_aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        },
        { appid: "wxC", token: "token-c", path: "/hooks/c" },
      ],
    }));
  const described = describeAccounts(c.accounts);
  assert.deepEqual(described, [
    { account: "/wechat", path: "/wechat", mode: "plaintext", reply_mode: "passive" },
    { account: "wxB", path: "/wechat/wxB", mode: "safe", reply_mode: "custom" },
    { account: "wxC", path: "/hooks/c", mode: "plaintext", reply_mode: "custom" },
  ]);
  const text = JSON.stringify(described);
  for (const secret of ["env-token", "secret-b", "token-b", "abcdefghij", "token-c"]) assert.ok(!text.includes(secret));
  assert.deepEqual(describeAccounts([]), []);
});

Deno.test("wx_official config: CONFIG_FILE refuses unknown keys, naming the key and the nearest known one", () => {
  const file = (doc: unknown) => () => JSON.stringify(doc);
  const refused = (doc: unknown, expected: RegExp) =>
    assert.throws(() => accountsOf({ CONFIG_FILE: "/etc/kefu.json" }, file(doc)), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, expected);
      return true;
    });
  const account = { appid: "wxA", token: "t" };
  refused(
    { accounts: [account, { ...account, appid: "wxB", app_secret: "s" }] },
    /^cannot read CONFIG_FILE accounts\[1\]: unknown key "app_secret" \(did you mean appsecret\?\)$/,
  );
  refused({ accounts: [{ ...account, aes_key: "k" }] }, /unknown key "aes_key" \(did you mean encoding_aes_key\?\)/);
  refused({ accounts: [{ ...account, appId: "x" }] }, /unknown key "appId" \(did you mean appid\?\)/);
  refused({ accounts: [{ ...account, replymode: "passive" }] }, /did you mean reply_mode\?/);
  // Checked before the required keys: the misspelt one is the reason appid seems missing.
  refused({ accounts: [{ app_id: "wxA", token: "t" }] }, /unknown key "app_id" \(did you mean appid\?\)/);
  // Nothing close: the known keys are listed instead.
  refused(
    { accounts: [{ ...account, webhook_url: "x" }] },
    /unknown key "webhook_url" \(known keys: appid, appsecret, token,/,
  );
  refused(
    { acounts: [account] },
    /^cannot read CONFIG_FILE="\/etc\/kefu.json": unknown key "acounts" \(did you mean accounts\?\)$/,
  );
  refused(
    { accounts: [account], debug: true },
    /unknown key "debug" \(known keys: accounts, agents, pc_hook, wxbot, automatic\)/,
  );
  refused({ accounts: ["wxA"] }, /accounts\[0\]: expected an object/);
  refused(
    [account],
    /expected \{"accounts":\[\{…\}\],"agents":\[\{…\}\],"pc_hook":\{…\},"wxbot":\{…\}\} \(any may be left out\)/,
  );
  // The value of an unknown key, maybe a secret, is never quoted.
  assert.throws(
    () => accountsOf({ CONFIG_FILE: "x" }, file({ accounts: [{ ...account, app_secret: "s3cr3t" }] })),
    (e) => e instanceof ConfigError && !e.message.includes("s3cr3t"),
  );
  // Every documented key is known.
  const all = Object.fromEntries(ACCOUNT_KEYS.map((k) => [k, ""]));
  Object.assign(all, { appid: "wxA", token: "t", max_skew_seconds: 60, passive_hold_ms: 1000, replay_guard: false });
  assert.equal(accountsOf({ CONFIG_FILE: "x" }, file({ accounts: [all] })).accounts.length, 1);
});

Deno.test("wx_official config: a bad WECHAT_* value names the variable and quotes it", () => {
  for (
    const [name, value] of [["WECHAT_REPLY_MODE", "shout"], ["WECHAT_TOKEN_MODE", "x"], [
      "WECHAT_MAX_SKEW_SECONDS",
      "0",
    ]]
  ) {
    assert.throws(() => accountsOf({ WECHAT_TOKEN: "t", [name]: value }), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.ok(e.message.includes(`${name}="${value}"`), e.message);
      return true;
    });
  }
});
