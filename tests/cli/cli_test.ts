import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { verifyPassword } from "../../src/agents/auth/passwords.ts";
import { KNOWN_VARIABLES, VARIABLE_GROUPS } from "../../src/cli/variables.ts";
import { COMMANDS } from "../../src/cli/help.ts";
import { VERSION } from "../../src/version.ts";
import { AgentClient, freePort, post, SEED_XML, spawnKefu } from "../helpers.ts";
import { startPostgres } from "../support/postgres.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** `deno task NAME ARGS…` as an operator types it, with these variables (WECHAT_TOKEN cleared unless given). */
async function task(
  name: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", name, ...args],
    cwd: ROOT,
    env: { WECHAT_TOKEN: "", NO_COLOR: "1", ...env },
  }).output();
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** `deno run -A main.ts ARGS…`. */
async function kefu(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
  }).output();
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** The lines kefu itself wrote on stderr (deno task echoes its command line first). */
const kefuLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("kefu"));

Deno.test("kefu --help lists every command and every variable, grouped as the docs; -h and help say the same", async () => {
  const help = await kefu(["--help"]);
  assert.equal(help.code, 0, help.stderr);
  for (const c of COMMANDS) assert.ok(help.stdout.includes(c.usage), c.usage);
  for (const command of ["serve", "simulate", "check-config", "backup FILE", "hash-password", "--version"]) {
    assert.ok(help.stdout.includes(command), command);
  }
  for (const g of VARIABLE_GROUPS) assert.ok(help.stdout.includes(`\n${g.title}:\n`), g.title);
  for (const name of KNOWN_VARIABLES) assert.match(help.stdout, new RegExp(`^  ${name} `, "m"), name);
  const titles = VARIABLE_GROUPS.map((g) => g.title);
  for (const g of ["Server", "Store", "Sign-in", "Official Account", "PC hook", "WXBot", "Media", "Limits"]) {
    assert.ok(titles.includes(g), g);
  }
  assert.equal((await kefu(["-h"])).stdout, help.stdout);
  assert.equal((await kefu(["help"])).stdout, help.stdout);
});

Deno.test("kefu --version prints the one version constant; the start log's listening line carries it", async () => {
  for (const flag of ["--version", "-V", "version"]) {
    const v = await kefu([flag]);
    assert.deepEqual([v.code, v.stdout.trim()], [0, `kefu ${VERSION}`]);
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    cwd: ROOT,
    env: { STORE: "memory", PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info" },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/"event":"listening"/.test(out)) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  child.kill("SIGTERM");
  await child.status;
  await reader.cancel();
  const listening = JSON.parse(out.split("\n").find((l) => l.includes('"listening"'))!);
  assert.equal(listening.version, VERSION);
});

Deno.test("deno task start: a DATA_DIR with a comma is one kefu line and exit code 2, no backtrace", async () => {
  const r = await task("start", [], { DATA_DIR: "/tmp/kefu,comma", PORT: "0", HOST: "127.0.0.1" });
  assert.equal(r.code, 2, r.stderr);
  assert.deepEqual(kefuLines(r.stderr).length, 1, r.stderr);
  assert.match(kefuLines(r.stderr)[0], /^kefu: cannot grant read access to "\/tmp\/kefu,comma": .*comma/);
  assert.ok(!/backtrace|error:|Caused by/i.test(r.stderr), r.stderr);
});

Deno.test("main.ts: several bad variables: one kefu line naming the first, the count of the rest, exit 2", async () => {
  const r = await kefu([], { PORT: "x", HEARTBEAT_SECONDS: "0", STORE: "memory" });
  assert.equal(r.code, 2);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /^kefu: cannot read PORT="x": .* \(and 1 more problem: kefu check-config lists them\)$/m);
});

Deno.test("kefu serve: a near miss of a variable and AGENT_SECRET without agents are warnings in the start log", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    cwd: ROOT,
    env: {
      STORE: "memory",
      PORT: "0",
      HOST: "127.0.0.1",
      LOG_LEVEL: "info",
      AGENT_SECRETS: "meant-to-be-the-secret",
      WECHAT_APP_ID: "wx123",
      AGENT_SECRET: "0123456789abcdef-secret",
    },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!/"event":"listening"/.test(out)) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  child.kill("SIGTERM");
  await child.status;
  await reader.cancel();
  const lines = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const near = lines.filter((l) => l.event === "config_unknown_variable");
  assert.deepEqual(near.map((l) => [l.level, l.variable, l.did_you_mean]), [
    ["warn", "AGENT_SECRETS", "AGENT_SECRET"],
    ["warn", "WECHAT_APP_ID", "WECHAT_APPID"],
  ]);
  assert.ok(lines.some((l) => l.event === "auth_no_agents" && l.level === "warn"));
  assert.ok(!out.includes("meant-to-be-the-secret") && !out.includes("0123456789abcdef-secret"), "no value logged");
});

Deno.test("deno task check-config: every problem at once, exit 2; a good configuration reaches the store, exit 0", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kefu-check-" });
  try {
    await Deno.writeTextFile(
      `${tmp}/kefu.json`,
      JSON.stringify({ accounts: [{ appid: "a", token: "t", app_secret: "s" }] }),
    );
    const bad = await task("check-config", [], {
      DATA_DIR: `${tmp}/data`,
      CONFIG_FILE: `${tmp}/kefu.json`,
      HEARTBEAT_SECONDS: "x",
      STORE: "postgres",
      HOOK_API_URL: "ftp://hook",
      AGENT_SECRETS: "x",
    });
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    const problems = bad.stdout.split("\n").filter((l) => l.startsWith("kefu: "));
    assert.equal(problems.length, 4, bad.stdout);
    assert.match(bad.stdout, /kefu: cannot read HEARTBEAT_SECONDS="x"/);
    assert.match(bad.stdout, /kefu: cannot use STORE=postgres: DATABASE_URL is required/);
    assert.match(bad.stdout, /kefu: cannot read CONFIG_FILE accounts\[0\]: unknown key "app_secret"/);
    assert.match(bad.stdout, /kefu: cannot read HOOK_API_URL="ftp:\/\/hook"/);
    assert.match(bad.stdout, /warning: AGENT_SECRETS .* did you mean AGENT_SECRET\?/);
    assert.match(bad.stdout, /kefu check-config: 4 problems$/m);

    // A first start: no DATA_DIR yet. Then with a store a kefu made (and holds: check-config reads it alongside).
    const fresh = await task("check-config", [], { DATA_DIR: `${tmp}/data` });
    assert.equal(fresh.code, 0, fresh.stdout + fresh.stderr);
    assert.match(fresh.stdout, /ok: store: sqlite, DATA_DIR=.* does not exist yet/);
    await using running = await spawnKefu({ DATA_DIR: `${tmp}/data`, PORT: "0" });
    const good = await task("check-config", [], { DATA_DIR: `${tmp}/data` });
    assert.equal(good.code, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /ok: store: sqlite ".*kefu\.db" opens \(schema v\d+, 0 contacts, 0 messages\)/);
    assert.match(good.stdout, /the configuration is good$/m);
    // The running kefu kept its lock and serves on.
    assert.equal(await fetch(`http://127.0.0.1:${running.port}/healthz`).then((r) => r.body?.cancel()), undefined);
    assert.ok(Number((await Deno.readTextFile(`${tmp}/data/kefu.lock`)).trim()) > 0);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test({
  name: "deno task check-config: Redis and PostgreSQL are reached when configured (real redis-server; a closed port)",
  ignore: !(() => {
    try {
      return Deno.statSync("/usr/bin/redis-server").isFile;
    } catch {
      return false;
    }
  })(),
  fn: async () => {
    const port = freePort();
    const redis = new Deno.Command("/usr/bin/redis-server", {
      args: ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      for (let i = 0; i < 100; i++) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const closed = freePort();
      const r = await task("check-config", [], {
        STORE: "postgres",
        DATABASE_URL: `postgres://kefu:db-pass-word@127.0.0.1:${closed}/kefu`,
        REDIS_URL: `redis://127.0.0.1:${port}/0`,
      });
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`ok: Redis at redis://127.0.0.1:${port}/0 answers: Redis \\d+\\.\\d+\\.\\d+`));
      assert.match(
        r.stdout,
        /kefu: cannot reach PostgreSQL at postgres:\/\/kefu:\*\*\*@127\.0\.0\.1:\d+\/kefu \(DATABASE_URL\)/,
      );
      assert.ok(!r.stdout.includes("db-pass-word") && !r.stderr.includes("db-pass-word"), "no password shown");
    } finally {
      redis.kill("SIGTERM");
      await redis.status;
    }
  },
});

Deno.test("deno task check-config: a DATABASE_URL on PostgreSQL's Unix socket is reached there (real PostgreSQL)", async () => {
  await using pg = await startPostgres();
  const socket = `${pg.dir}/.s.PGSQL.${pg.port}`;
  const good = await task("check-config", [], {
    STORE: "postgres",
    DATABASE_URL: `postgres://postgres:sock-pass-word@${encodeURIComponent(pg.dir)}:${pg.port}/kefu`,
  });
  assert.equal(good.code, 0, good.stdout + good.stderr);
  assert.match(good.stdout, new RegExp(`ok: store: PostgreSQL at .* \\(Unix socket "${socket}" answers\\)`));
  assert.ok(!good.stdout.includes("sock-pass-word"), "no password shown");
  // The host parameter names the same socket; a directory without one is a problem that says so.
  const encoded = await task("check-config", [], {
    STORE: "postgres",
    DATABASE_URL: `postgres:///kefu?host=${pg.dir}&port=${pg.port}&user=postgres`,
  });
  assert.equal(encoded.code, 0, encoded.stdout + encoded.stderr);
  const none = await task("check-config", [], {
    STORE: "postgres",
    DATABASE_URL: `postgres:///kefu?host=${pg.dir}&port=${freePort()}`,
  });
  assert.equal(none.code, 2, none.stdout + none.stderr);
  assert.match(none.stdout, /kefu: cannot reach PostgreSQL at .* by Unix socket ".*": no such socket/);
});

Deno.test("deno task backup: a consistent copy of the SQLite store while kefu runs and writes; it opens with the rows", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kefu-backup-" });
  try {
    await using running = await spawnKefu({ DATA_DIR: `${tmp}/data`, PORT: "0", STORE: "sqlite" });
    const base = `http://127.0.0.1:${running.port}`;
    await using agent = await AgentClient.open(`ws://127.0.0.1:${running.port}?userId=1`, "echo");
    for (let i = 0; i < 20; i++) {
      assert.equal((await post(`${base}/send`, SEED_XML.replace("<MsgId>", `<MsgId>${i}`))).status, 200);
    }
    for (let i = 0; i < 20; i++) await agent.next();
    // Writes go on while the copy is taken.
    let writing = true;
    const writer = (async () => {
      for (let i = 100; writing; i++) await post(`${base}/send`, SEED_XML.replace("<MsgId>", `<MsgId>${i}`));
    })();
    const r = await task("backup", [`${tmp}/copy.db`], { DATA_DIR: `${tmp}/data` });
    writing = false;
    await writer;
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout.trim());
    assert.equal(result.event, "backup");
    assert.ok(result.messages >= 20, JSON.stringify(result));
    const copy = new DatabaseSync(`${tmp}/copy.db`, { readOnly: true });
    try {
      assert.equal((copy.prepare("PRAGMA quick_check").get() as { quick_check: string }).quick_check, "ok");
      const n = (copy.prepare("SELECT count(*) AS n FROM messages").get() as { n: number }).n;
      assert.equal(n, result.messages);
    } finally {
      copy.close();
    }
    // One file: no -wal or -shm beside it, no partial file left.
    assert.deepEqual([...Deno.readDirSync(tmp)].map((e) => e.name).sort(), ["copy.db", "data"]);
    // It does not overwrite, and a wrong use is one line, exit 2.
    const again = await task("backup", [`${tmp}/copy.db`], { DATA_DIR: `${tmp}/data` });
    assert.equal(again.code, 2);
    assert.match(kefuLines(again.stderr).join("\n"), /^kefu: cannot back up to ".*copy\.db": it exists/);
    const none = await kefu(["backup"], { DATA_DIR: `${tmp}/data` });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /^kefu: backup takes one argument/);
    const pg = await kefu(["backup", `${tmp}/pg.dump`], {
      STORE: "postgres",
      DATABASE_URL: "postgres://kefu:pg-secret-pw@db:5432/kefu",
    });
    assert.equal(pg.code, 2);
    assert.match(pg.stderr, /pg_dump --format=custom --file=".*pg\.dump" "\$DATABASE_URL"/);
    assert.ok(!pg.stderr.includes("pg-secret-pw"));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test({
  name: "kefu hash-password at a terminal: prompts twice, echoes nothing, prints a hash that verifies",
  ignore: !(() => {
    try {
      return Deno.statSync("/usr/bin/script").isFile;
    } catch {
      return false;
    }
  })(),
  fn: async () => {
    // script(1) gives the command a terminal; what is written to its stdin is typed at that terminal.
    const command = `${Deno.execPath()} run main.ts hash-password`;
    const child = new Deno.Command("/usr/bin/script", {
      args: ["-qec", command, "/dev/null"],
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    // Typed once the prompt shows (the terminal is then in no-echo mode), however long kefu takes to start.
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let said = "";
    const waitFor = async (prompt: string, seen: number) => {
      const deadline = Date.now() + 30_000;
      while (said.split(prompt).length - 1 < seen) {
        if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(prompt)} within 30 s: ${JSON.stringify(said)}`);
        const { value, done } = await reader.read();
        if (done) break;
        said += value;
      }
    };
    const type = (s: string) => w.write(new TextEncoder().encode(s));
    await waitFor("Password (not shown): ", 1);
    await type("s3cret horse\r");
    await waitFor("Again: ", 1);
    await type("s3cret horse\r");
    await w.close().catch(() => {});
    const stderr = new Response(child.stderr).text();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      said += value;
    }
    const { code } = await child.status;
    assert.equal(code, 0, said + await stderr);
    assert.match(said, /Password \(not shown\): /);
    assert.match(said, /Again: /);
    assert.ok(!said.includes("s3cret"), `the password was echoed: ${JSON.stringify(said)}`);
    const hash = said.split(/\r?\n/).map((l) => l.trim()).find((l) => l.startsWith("scrypt$"))!;
    assert.equal(await verifyPassword("s3cret horse", hash), true);
  },
});
