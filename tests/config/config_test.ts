import assert from "node:assert/strict";
import {
  ACCOUNT_KEYS,
  ConfigError,
  DEFAULTS,
  describeAccounts,
  editDistance,
  nearestKey,
  parseConfig,
} from "../../src/config/config.ts";
import { fsPermissions, permissionFlag } from "../../src/config/permissions.ts";

Deno.test("config: defaults match the README (PORT 1234, heartbeat 30 s)", () => {
  const c = parseConfig({});
  assert.deepEqual(c, DEFAULTS);
  assert.equal(c.port, 1234);
  assert.equal(c.heartbeatSeconds, 30);
});

Deno.test("config: every variable is read", () => {
  const c = parseConfig({
    PORT: "8080",
    HOST: "127.0.0.1",
    HEARTBEAT_SECONDS: "5",
    IDLE_TIMEOUT_SECONDS: "10",
    MAX_BODY_BYTES: "2048",
    MAX_WS_MESSAGE_BYTES: "4096",
    MAX_HELD_PER_AGENT: "7",
    MAX_HELD_TOTAL: "70",
    MAX_SOCKETS_PER_AGENT: "2",
    DEDUPE_WINDOW: "0",
    LOG_LEVEL: "WARN",
    STORE: "memory",
    DATA_DIR: "/var/lib/kefu",
    GROUP_COMMIT_MS: "0",
    STORE_SYNC: "full",
    RETENTION_DAYS: "7",
    REDELIVER_PAGE: "50",
    MAX_BUFFERED_BYTES: "65536",
    REASSIGN_AFTER_SECONDS: "0",
    PUSH_REPLY_URL: "http://127.0.0.1:9100/replies",
    PUSH_TOKEN: "push-token-0123456789",
    AGENT_SECRET: "agent-secret-0123456789",
    AUTH_TOKEN_SECONDS: "3600",
    AUTH_MAX_SKEW_SECONDS: "60",
    FFMPEG_PATH: "/opt/ffmpeg/bin/ffmpeg",
    MEDIA_TIMEOUT_SECONDS: "9",
    MEDIA_MAX_BYTES: "2048",
    MEDIA_ALLOWED_HOSTS: "a.example, *.b.example,",
    PUBLIC_URL: "https://kefu.example.com/",
    MEDIA_URL_SECONDS: "600",
  });
  assert.deepEqual(c, {
    port: 8080,
    host: "127.0.0.1",
    heartbeatSeconds: 5,
    idleTimeoutSeconds: 10,
    maxBodyBytes: 2048,
    maxWsMessageBytes: 4096,
    maxHeldPerAgent: 7,
    maxHeldTotal: 70,
    maxSocketsPerAgent: 2,
    dedupeWindow: 0,
    logLevel: "warn",
    accounts: [],
    store: "memory",
    dataDir: "/var/lib/kefu",
    groupCommitMs: 0,
    storeSync: "FULL",
    retentionDays: 7,
    redeliverPage: 50,
    maxBufferedBytes: 65536,
    reassignAfterSeconds: 0,
    pushReplyUrl: "http://127.0.0.1:9100/replies",
    pushToken: "push-token-0123456789",
    agentSecret: "agent-secret-0123456789",
    authTokenSeconds: 3600,
    authMaxSkewSeconds: 60,
    agents: [],
    ffmpegPath: "/opt/ffmpeg/bin/ffmpeg",
    mediaTimeoutSeconds: 9,
    mediaMaxBytes: 2048,
    mediaAllowedHosts: ["a.example", "*.b.example"],
    publicUrl: "https://kefu.example.com",
    mediaUrlSeconds: 600,
    pcHook: undefined,
    wxbot: undefined,
  });
  // A short secret is refused, and not quoted.
  assert.throws(() => parseConfig({ AGENT_SECRET: "short-one" }), (e) => {
    assert.match((e as Error).message, /AGENT_SECRET: a secret of at least 16 characters is required \(got 9\)/);
    assert.ok(!(e as Error).message.includes("short-one"));
    return true;
  });
  assert.throws(() => parseConfig({ PUSH_REPLY_URL: "ftp://x" }), /PUSH_REPLY_URL="ftp:\/\/x": expected an http/);
  assert.throws(() => parseConfig({ PUSH_REPLY_URL: "not a url" }), /PUSH_REPLY_URL/);
});

Deno.test("config: one WeChat account from WECHAT_* on /wechat, more from CONFIG_FILE on /wechat/{appid}", () => {
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
  const c = parseConfig({
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
  assert.equal(parseConfig({ WECHAT_TOKEN: "t", WECHAT_REPLY_MODE: "passive" }).accounts[0].replyMode, "passive");
  assert.equal(c.accounts[0].encodingAesKey.length, 43);
  // The bench's setting: a token alone is a plaintext-only account.
  assert.deepEqual(parseConfig({ WECHAT_TOKEN: "bench" }).accounts.map((a) => [a.appId, a.path]), [["", "/wechat"]]);
});

Deno.test("config: bad account settings name the place, never the secret", () => {
  const key = "not-a-valid-key-but-secret";
  assert.throws(() => parseConfig({ WECHAT_TOKEN: "t", WECHAT_ENCODING_AES_KEY: key }), (e) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /WECHAT_ENCODING_AES_KEY/);
    assert.ok(!e.message.includes(key));
    return true;
  });
  assert.throws(() => parseConfig({ CONFIG_FILE: "x" }, () => "{"), /CONFIG_FILE="x"/);
  assert.throws(
    () => parseConfig({ WECHAT_TOKEN: "t", WECHAT_ENCODING_AES_KEY: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG" }),
    /AppID is required/,
  );
  assert.throws(() => parseConfig({ CONFIG_FILE: "x" }, () => `{"accounts":[{"appid":"a"}]}`), /appid and token/);
  assert.throws(
    () =>
      parseConfig(
        { WECHAT_TOKEN: "t", CONFIG_FILE: "x" },
        () => `{"accounts":[{"appid":"a","token":"t","path":"/wechat"}]}`,
      ),
    /two accounts on the webhook path \/wechat/,
  );
});

Deno.test("config: a bad value names the variable and quotes it", () => {
  for (
    const [name, value] of [
      ["PORT", "abc"],
      ["PORT", "70000"],
      ["HEARTBEAT_SECONDS", "0"],
      ["MAX_BODY_BYTES", "1.5"],
      ["LOG_LEVEL", "loud"],
      ["STORE", "redis"],
      ["STORE_SYNC", "sometimes"],
      ["GROUP_COMMIT_MS", "-1"],
      ["RETENTION_DAYS", "0"],
      ["WECHAT_REPLY_MODE", "shout"],
    ]
  ) {
    assert.throws(() => parseConfig({ WECHAT_TOKEN: "t", [name]: value }), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.ok(e.message.includes(`${name}="${value}"`), e.message);
      return true;
    });
  }
});

Deno.test("config: CONFIG_FILE refuses unknown keys, naming the key and the nearest known one", () => {
  const file = (doc: unknown) => () => JSON.stringify(doc);
  const refused = (doc: unknown, expected: RegExp) =>
    assert.throws(() => parseConfig({ CONFIG_FILE: "/etc/kefu.json" }, file(doc)), (e) => {
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
  refused({ accounts: [account], debug: true }, /unknown key "debug" \(known keys: accounts, agents, pc_hook, wxbot\)/);
  refused({ accounts: ["wxA"] }, /accounts\[0\]: expected an object/);
  refused(
    [account],
    /expected \{"accounts":\[\{…\}\],"agents":\[\{…\}\],"pc_hook":\{…\},"wxbot":\{…\}\} \(any may be left out\)/,
  );
  // The value of an unknown key, maybe a secret, is never quoted.
  assert.throws(
    () => parseConfig({ CONFIG_FILE: "x" }, file({ accounts: [{ ...account, app_secret: "s3cr3t" }] })),
    (e) => e instanceof ConfigError && !e.message.includes("s3cr3t"),
  );
  // Every documented key is known.
  const all = Object.fromEntries(ACCOUNT_KEYS.map((k) => [k, ""]));
  Object.assign(all, { appid: "wxA", token: "t", max_skew_seconds: 60, passive_hold_ms: 1000 });
  assert.equal(parseConfig({ CONFIG_FILE: "x" }, file({ accounts: [all] })).accounts.length, 1);
});

Deno.test("config: nearestKey and editDistance", () => {
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("token", "token"), 0);
  assert.equal(nearestKey("tokn", ACCOUNT_KEYS), "token");
  assert.equal(nearestKey("AppSecret", ACCOUNT_KEYS), "appsecret");
  assert.equal(nearestKey("api-base", ACCOUNT_KEYS), "api_base");
  assert.equal(nearestKey("skew", ACCOUNT_KEYS), "max_skew_seconds");
  assert.equal(nearestKey("zzz", ACCOUNT_KEYS), undefined);
  assert.equal(nearestKey("x", ["accounts"]), undefined);
});

Deno.test("config: describeAccounts says which webhooks are on and how, never a secret", () => {
  const c = parseConfig({
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

Deno.test("config: the start task's permissions follow DATA_DIR and CONFIG_FILE", () => {
  assert.deepEqual(fsPermissions({}, "/app/static", []), { read: ["/app/static", "./data"], write: ["./data"] });
  assert.deepEqual(fsPermissions({ DATA_DIR: " /var/lib/kefu ", CONFIG_FILE: "/etc/kefu.json" }, "/app/static", []), {
    read: ["/app/static", "/var/lib/kefu", "/etc/kefu.json"],
    write: ["/var/lib/kefu"],
  });
  // The same directory the service uses.
  assert.equal(fsPermissions({ DATA_DIR: "rel/dir" }).write[0], parseConfig({ DATA_DIR: "rel/dir" }).dataDir);
  assert.equal(permissionFlag("write", { DATA_DIR: "/srv/kefu data" }), "--allow-write=/srv/kefu data");
  assert.match(
    permissionFlag("read", { CONFIG_FILE: "/etc/kefu.json" }),
    /^--allow-read=.*static,.*\/src\/store\/background_worker\.ts,.*\/src\/store\/search\.ts,\.\/data,\/etc\/kefu.json$/,
  );
  // Deno's lists are comma-separated: such a path cannot be granted, and the message says so.
  assert.throws(() => permissionFlag("write", { DATA_DIR: "/srv/a,b" }), /cannot grant write access to "\/srv\/a,b"/);
});

Deno.test("config: CONFIG_FILE agents need an id and a hash from kefu hash-password; typos and repeats are refused", () => {
  const hash = `scrypt$32768$8$1$${"A".repeat(22)}$${"B".repeat(43)}`;
  const read = (agents: unknown[]) => parseConfig({ CONFIG_FILE: "/etc/kefu.json" }, () => JSON.stringify({ agents }));
  assert.deepEqual(read([{ id: "a1", name: "小王", password_hash: hash }, { id: "a2", password_hash: hash }]).agents, [
    { id: "a1", name: "小王", passwordHash: hash },
    { id: "a2", name: "a2", passwordHash: hash },
  ]);
  assert.deepEqual(read([]).accounts, [], "accounts may be left out");
  assert.throws(() => read([{ id: "a1", password_hash: "plain text" }]), /agents\[0\]\.password_hash: not a hash/);
  assert.throws(() => read([{ id: "a1", password: "x", password_hash: hash }]), /unknown key "password"/);
  assert.throws(() => read([{ password_hash: hash }]), /agents\[0\]: id and password_hash/);
  assert.throws(() => read([{ id: "a1", password_hash: hash }, { id: "a1", password_hash: hash }]), /listed twice/);
});
