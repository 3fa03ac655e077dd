import assert from "node:assert/strict";
import { ConfigError, DEFAULTS, editDistance, nearestKey, parseConfig, redactUrl } from "../../src/config/config.ts";
import { fsPermissions, permissionFlag } from "../../src/config/permissions.ts";
import { postgresAddress } from "../../src/config/postgres_url.ts";

Deno.test("config: defaults match the README (PORT 1234, heartbeat 30 s)", () => {
  const c = parseConfig({});
  assert.deepEqual(c, DEFAULTS);
  assert.equal(c.port, 1234);
  assert.equal(c.heartbeatSeconds, 30);
});

Deno.test("config: every variable is read", () => {
  const env = {
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
    DATABASE_POOL_SIZE: "4",
    STORE_SYNC: "full",
    RETENTION_DAYS: "7",
    REDELIVER_PAGE: "50",
    MAX_BUFFERED_BYTES: "65536",
    REASSIGN_AFTER_SECONDS: "0",
    AGENT_CAPACITY: "3",
    ASSIGN_POLICY: "round_robin",
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
  };
  const c = parseConfig(env);
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
    store: "memory",
    dataDir: "/var/lib/kefu",
    mediaDir: undefined,
    databaseUrl: undefined,
    databasePoolSize: 4,
    redisUrl: undefined,
    nodeId: DEFAULTS.nodeId,
    groupCommitMs: 0,
    storeSync: "FULL",
    retentionDays: 7,
    redeliverPage: 50,
    maxBufferedBytes: 65536,
    reassignAfterSeconds: 0,
    agentCapacity: 3,
    capacities: {},
    assignPolicy: "round_robin",
    pushReplyUrl: "http://127.0.0.1:9100/replies",
    pushToken: "push-token-0123456789",
    pushOpen: false,
    agentSecret: "agent-secret-0123456789",
    authTokenSeconds: 3600,
    authMaxSkewSeconds: 60,
    agents: [],
    roles: {},
    ffmpegPath: "/opt/ffmpeg/bin/ffmpeg",
    mediaTimeoutSeconds: 9,
    mediaMaxBytes: 2048,
    mediaAllowedHosts: ["a.example", "*.b.example"],
    publicUrl: "https://kefu.example.com",
    mediaUrlSeconds: 600,
    metricsToken: undefined,
    channelSources: { env, file: {} },
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
      ["NODE_ID", "has space"],
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
    { acounts: [account] },
    /^cannot read CONFIG_FILE="\/etc\/kefu.json": unknown key "acounts" \(did you mean accounts\?\)$/,
  );
  refused(
    { accounts: [account], debug: true },
    /unknown key "debug" \(known keys: accounts, agents, pc_hook, wxbot, automatic\)/,
  );
  refused(
    [account],
    /expected \{"accounts":\[\{…\}\],"agents":\[\{…\}\],"pc_hook":\{…\},"wxbot":\{…\}\} \(any may be left out\)/,
  );
});

Deno.test("config: nearestKey and editDistance", () => {
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("token", "token"), 0);
  const keys = ["appid", "appsecret", "token", "api_base", "max_skew_seconds"];
  assert.equal(nearestKey("tokn", keys), "token");
  assert.equal(nearestKey("AppSecret", keys), "appsecret");
  assert.equal(nearestKey("api-base", keys), "api_base");
  assert.equal(nearestKey("skew", keys), "max_skew_seconds");
  assert.equal(nearestKey("zzz", keys), undefined);
  assert.equal(nearestKey("x", ["accounts"]), undefined);
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

Deno.test("config: a DATABASE_URL on a Unix socket grants that socket (Deno connects to one with read and write)", () => {
  const socket = { DATA_DIR: "/var/lib/kefu", DATABASE_URL: "postgres:///kefu?host=/run/postgresql&user=kefu" };
  assert.deepEqual(fsPermissions(socket, "/app/static", []), {
    read: ["/app/static", "/var/lib/kefu", "/run/postgresql/.s.PGSQL.5432"],
    write: ["/var/lib/kefu", "/run/postgresql/.s.PGSQL.5432"],
  });
  // check-config's one write grant: the socket, or nothing.
  assert.equal(permissionFlag("socket", socket), "--allow-write=/run/postgresql/.s.PGSQL.5432");
  assert.equal(permissionFlag("socket", { DATABASE_URL: "postgres://kefu@db:5432/kefu" }), "--no-prompt");
  assert.equal(permissionFlag("socket", {}), "--no-prompt");
  assert.deepEqual(fsPermissions({ DATABASE_URL: "postgres://kefu@db/kefu" }, "/s", []).write, ["./data"]);
  // The forms libpq reads: the host parameter (with a port parameter), the host percent-encoded, a list.
  assert.deepEqual(postgresAddress("postgres:///kefu?host=/var/run/postgresql/&port=5433"), {
    host: "/var/run/postgresql/",
    port: 5433,
    socket: "/var/run/postgresql/.s.PGSQL.5433",
  });
  assert.equal(
    postgresAddress("postgres://kefu@%2Frun%2Fpostgresql:6000/kefu").socket,
    "/run/postgresql/.s.PGSQL.6000",
  );
  assert.equal(postgresAddress("postgresql:///kefu?host=/a,/b").socket, "/a/.s.PGSQL.5432");
  assert.deepEqual(postgresAddress("postgres://kefu:pw@db.example/kefu"), { host: "db.example", port: 5432 });
  assert.deepEqual(postgresAddress("postgres:///kefu"), { host: "localhost", port: 5432 });
  // libpq's ?password= is refused by name (postgres.js would send it to the server as a setting), never quoted.
  assert.throws(
    () => parseConfig({ STORE: "postgres", DATABASE_URL: "postgres:///kefu?host=/run/pg&password=pw-s3cret" }),
    (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(
        e.message,
        /^cannot use DATABASE_URL=.*: the password goes in the URL's user part, not in \?password=/,
      );
      assert.ok(!e.message.includes("pw-s3cret"), e.message);
      return true;
    },
  );
  // The service reads every one of them.
  for (const url of ["postgres:///kefu?host=/run/postgresql", "postgres://kefu:pw@%2Frun%2Fpostgresql/kefu"]) {
    assert.equal(parseConfig({ STORE: "postgres", DATABASE_URL: url }).databaseUrl, url);
  }
});

Deno.test("config: DATABASE_POOL_SIZE is a pool of 1 to 1000 connections, 10 by default", () => {
  assert.equal(parseConfig({}).databasePoolSize, 10);
  assert.equal(parseConfig({ DATABASE_POOL_SIZE: " 25 " }).databasePoolSize, 25);
  assert.equal(parseConfig({ DATABASE_POOL_SIZE: "1" }).databasePoolSize, 1);
  for (const bad of ["0", "1001", "-3", "2.5", "ten"]) {
    assert.throws(() => parseConfig({ DATABASE_POOL_SIZE: bad }), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.message, `cannot read DATABASE_POOL_SIZE="${bad}": expected an integer from 1 to 1000`);
      return true;
    });
  }
});

Deno.test("config: CONFIG_FILE agents need an id and a hash from kefu hash-password; typos and repeats are refused", () => {
  const hash = `scrypt$32768$8$1$${"A".repeat(22)}$${"B".repeat(43)}`;
  const read = (agents: unknown[]) => parseConfig({ CONFIG_FILE: "/etc/kefu.json" }, () => JSON.stringify({ agents }));
  assert.deepEqual(read([{ id: "a1", name: "小王", password_hash: hash }, { id: "a2", password_hash: hash }]).agents, [
    { id: "a1", name: "小王", passwordHash: hash },
    { id: "a2", name: "a2", passwordHash: hash },
  ]);
  assert.deepEqual(read([]).channelSources.file, {}, "accounts may be left out");
  assert.throws(() => read([{ id: "a1", password_hash: "plain text" }]), /agents\[0\]\.password_hash: not a hash/);
  assert.throws(() => read([{ id: "a1", password: "x", password_hash: hash }]), /unknown key "password"/);
  assert.throws(() => read([{ password_hash: hash }]), /agents\[0\]: id and password_hash/);
  assert.throws(() => read([{ id: "a1", password_hash: hash }, { id: "a1", password_hash: hash }]), /listed twice/);
});

Deno.test("config: capacities per agent in CONFIG_FILE over AGENT_CAPACITY; a bad one is refused naming it", () => {
  const hash = `scrypt$32768$8$1$${"A".repeat(22)}$${"B".repeat(43)}`;
  const read = (agents: unknown[], env: Record<string, string> = {}) =>
    parseConfig({ CONFIG_FILE: "/etc/kefu.json", ...env }, () => JSON.stringify({ agents }));
  const c = read([{ id: "a1", password_hash: hash, capacity: 5 }, { id: "a2", password_hash: hash }], {
    AGENT_CAPACITY: "2",
  });
  assert.deepEqual([c.capacities, c.agentCapacity, c.assignPolicy], [{ a1: 5 }, 2, "fewest"]);
  assert.throws(
    () => read([{ id: "a1", password_hash: hash, capacity: -1 }]),
    /agents\[0\]\.capacity=-1: expected a whole number of open conversations \(0: no limit\)/,
  );
  assert.throws(() => read([{ id: "a1", password_hash: hash, capacity: "5" }]), /agents\[0\]\.capacity="5"/);
  assert.throws(() => read([], { AGENT_CAPACITY: "many" }), /AGENT_CAPACITY/);
  assert.throws(() => read([], { ASSIGN_POLICY: "random" }), /ASSIGN_POLICY/);
});

Deno.test("config: every problem is found at once; the message is the first, problems lists them all", () => {
  assert.throws(
    () => parseConfig({ PORT: "x", HEARTBEAT_SECONDS: "0", LOG_LEVEL: "loud", CONFIG_FILE: "x" }, () => "{"),
    (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^cannot read CONFIG_FILE="x"/);
      assert.equal(e.problems.length, 4, e.problems.join("\n"));
      assert.ok(e.problems.some((p) => p.includes('PORT="x"')));
      assert.ok(e.problems.some((p) => p.includes('HEARTBEAT_SECONDS="0"')));
      assert.ok(e.problems.some((p) => p.includes('LOG_LEVEL="loud"')));
      return true;
    },
  );
});

Deno.test("config: STORE=postgres needs DATABASE_URL, a postgres:// URL, never quoted with its password", () => {
  assert.throws(() => parseConfig({ STORE: "postgres" }), /STORE=postgres: DATABASE_URL is required/);
  const c = parseConfig({ STORE: "Postgres", DATABASE_URL: "postgres://kefu:pw-s3cret@db.example:5432/kefu" });
  assert.deepEqual([c.store, c.databaseUrl], ["postgres", "postgres://kefu:pw-s3cret@db.example:5432/kefu"]);
  assert.equal(parseConfig({ DATABASE_URL: "postgresql://db/kefu" }).databaseUrl, "postgresql://db/kefu");
  for (const bad of ["mysql://kefu:pw-s3cret@db/kefu", "postgres//kefu:pw-s3cret@db", "kefu:pw-s3cret@db"]) {
    assert.throws(() => parseConfig({ STORE: "postgres", DATABASE_URL: bad }), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^cannot read DATABASE_URL=.*: expected a URL like postgres:\/\//, e.message);
      assert.ok(!e.message.includes("pw-s3cret"), e.message);
      assert.equal(e.problems.length, 1, "one problem, not also 'required'");
      return true;
    });
  }
  assert.equal(redactUrl("postgres://kefu:pw@db:5432/kefu"), "postgres://kefu:***@db:5432/kefu");
  assert.equal(redactUrl("postgres://db/kefu?password=pw"), "postgres://db/kefu?password=***");
  assert.equal(redactUrl("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
});

Deno.test("config: REDIS_URL and NODE_ID (for cluster mode)", () => {
  const c = parseConfig({ REDIS_URL: "redis://:pw@127.0.0.1:6379/0", NODE_ID: "kefu-a.1" });
  assert.deepEqual([c.redisUrl, c.nodeId], ["redis://:pw@127.0.0.1:6379/0", "kefu-a.1"]);
  assert.equal(parseConfig({ REDIS_URL: "rediss://cache.example:6380" }).redisUrl, "rediss://cache.example:6380");
  assert.throws(() => parseConfig({ REDIS_URL: "http://:pw@x" }), (e) => {
    assert.ok(e instanceof ConfigError && /REDIS_URL=.*redis:\/\//.test(e.message) && !e.message.includes(":pw@"));
    return true;
  });
  // The default: host name (when Deno may read it) and pid.
  assert.match(parseConfig({}).nodeId, new RegExp(`-${Deno.pid}$`));
});
