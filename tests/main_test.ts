import assert from "node:assert/strict";
import { verifyPassword } from "../src/agents/auth/passwords.ts";
import { AgentClient, post, SEED_XML } from "./helpers.ts";
import { startPostgres } from "./support/postgres.ts";
import { start } from "../main.ts";
import { ConfigError, parseConfig } from "../src/config/config.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** JSON log lines of a child's stdout, one at a time. */
function lineReader(stdout: ReadableStream<Uint8Array>) {
  const reader = stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return {
    async next(): Promise<Record<string, unknown>> {
      for (;;) {
        const nl = buffered.indexOf("\n");
        if (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          return JSON.parse(line);
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("the service's stdout ended");
        buffered += value;
      }
    },
    /** The next line of this event (earlier ones are skipped). */
    async until(event: string): Promise<Record<string, unknown>> {
      for (;;) {
        const line = await this.next();
        if (line.event === event) return line;
      }
    },
    /** Everything left, once the child has closed its stdout. */
    async rest(): Promise<string> {
      let rest = buffered;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return rest;
        rest += value;
      }
    },
    cancel: () => reader.cancel().catch(() => {}),
  };
}

/** `deno task start` as an operator types it, with these variables; `WECHAT_TOKEN` cleared unless given. */
function taskStart(env: Record<string, string>, io: "piped" | "null" = "piped"): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["task", "start"],
    cwd: ROOT,
    env: { WECHAT_TOKEN: "", NO_COLOR: "1", LOG_LEVEL: "info", HOST: "127.0.0.1", PORT: "0", ...env },
    stdout: io,
    stderr: "piped",
  });
}

/**
 * Stop a `deno task` child that a failed assertion left running: SIGTERM, which the task passes on to kefu (a SIGKILL
 * would end the task alone and leave kefu running), then SIGKILL after 5 s.
 */
async function stopTask(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch {
    await child.status; // already gone
    return;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), 5_000));
  if (await Promise.race([child.status, late]) === "late") child.kill("SIGKILL");
  clearTimeout(timer);
  await child.status;
}

// The real binary path: `deno run main.ts` configured by environment variables, stopped by a signal.
Deno.test("main.ts: starts from env, logs JSON lines, and on SIGTERM closes agents with 1001 and exits 0", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "kefu-main-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", `--allow-read=.,${dataDir}`, `--allow-write=${dataDir}`, "main.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    env: { PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", HEARTBEAT_SECONDS: "60", DATA_DIR: dataDir },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  async function nextLine(): Promise<Record<string, unknown>> {
    for (;;) {
      const nl = buffered.indexOf("\n");
      if (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        return JSON.parse(line);
      }
      const { value, done } = await lines.read();
      if (done) throw new Error("the service's stdout ended");
      buffered += value;
    }
  }
  try {
    const loaded = await nextLine();
    assert.deepEqual([loaded.event, loaded.store, loaded.contacts], ["store_loaded", "sqlite", 0]);
    // Warnings before listening: no AGENT_SECRET (anyone can act as any agent), and no ffmpeg it may run (this
    // child has no --allow-run), each saying what to do.
    const warnings: Record<string, unknown>[] = [];
    let listening = await nextLine();
    for (; listening.event !== "listening"; listening = await nextLine()) warnings.push(listening);
    assert.deepEqual(warnings.map((w) => [w.event, w.level]), [
      ["ffmpeg_missing", "warn"],
      ["auth_off", "warn"],
      ["push_open", "warn"],
    ]);
    assert.match(String(warnings[0].detail), /FFMPEG_PATH/);
    assert.match(String(warnings[1].detail), /AGENT_SECRET/);
    assert.match(String(warnings[2].detail), /PUSH_TOKEN/);
    assert.equal(listening.level, "info");
    const port = listening.port as number;
    // No account configured: the start log says so.
    const accounts = await nextLine();
    assert.deepEqual([accounts.event, accounts.accounts], ["accounts", []]);
    const agent = await AgentClient.open(`ws://127.0.0.1:${port}?userId=1`, "echo");
    assert.equal((await post(`http://127.0.0.1:${port}/send`, SEED_XML)).status, 200);
    assert.equal((await agent.next()).data.msg.content, "occaecat ut in fugiat dolor");
    // Successful requests are not a line each (hot path): they are summed up every 10 s and at shutdown.
    assert.equal((await nextLine()).event, "ws_open");

    child.kill("SIGTERM");
    const closed = await agent.closed;
    assert.equal(closed.code, 1001);
    const status = await child.status;
    assert.equal(status.code, 0);
    let rest = buffered;
    for (;;) {
      const { value, done } = await lines.read();
      if (done) break;
      rest += value;
    }
    assert.match(rest, /"event":"http_summary","seconds":10,"requests":2,"errors":0/);
    assert.match(rest, /"event":"stopped"/);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await lines.cancel().catch(() => {});
    await child.stderr.cancel();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("main.ts: a bad variable stops the start with a message naming it, exit code 2", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "--allow-read=.", "main.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    env: { PORT: "not-a-port" },
  }).output();
  assert.equal(out.code, 2);
  assert.match(new TextDecoder().decode(out.stderr), /PORT="not-a-port"/);
});

Deno.test("main.ts simulate: serves the WeChat simulator from the same entry point, stops on SIGTERM", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "--allow-read=.", "main.ts", "simulate"],
    cwd: new URL("..", import.meta.url).pathname,
    env: { SIM_PORT: "0", WECHAT_TOKEN: "t", WECHAT_APPID: "wx1", WECHAT_APPSECRET: "s", LOG_LEVEL: "info" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    let out = "";
    while (!out.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    const line = JSON.parse(out.slice(0, out.indexOf("\n")));
    assert.equal(line.event, "simulator_listening");
    assert.ok(!out.includes('"s"'), "the app secret is not logged");
    const token = await (await fetch(`${line.api_base}/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=s`))
      .json();
    assert.equal(typeof token.access_token, "string");
    const page = await fetch(line.phone);
    assert.match(await page.text(), /WeChat simulator/);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await reader.cancel().catch(() => {});
    await child.stderr.cancel();
  }
});

Deno.test("main.ts: an unknown sub-command exits 2 and says what it expected", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "--allow-read=.", "main.ts", "serv"],
    cwd: new URL("..", import.meta.url).pathname,
  }).output();
  assert.equal(out.code, 2);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /unknown command "serv": expected serve \(default\), simulate, check-config, backup FILE, hash-password, help or version/,
  );
});

// The operator's paths of docs/operations.md (Permissions), outside the project: the task's permissions follow DATA_DIR and CONFIG_FILE.
Deno.test("deno task start: DATA_DIR and CONFIG_FILE anywhere; accounts in the start log; one kefu per DATA_DIR", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kefu-operator-" });
  const dataDir = `${tmp}/var/lib/kefu`; // created by kefu
  const configFile = `${tmp}/etc/kefu.json`;
  await Deno.mkdir(`${tmp}/etc`);
  await Deno.writeTextFile(
    configFile,
    JSON.stringify({
      accounts: [{ appid: "wxOps", appsecret: "ops-secret-1", token: "ops-token-1", path: "/hooks/ops" }],
    }),
  );
  const child = taskStart({ DATA_DIR: dataDir, CONFIG_FILE: configFile, HEARTBEAT_SECONDS: "60" }).spawn();
  const lines = lineReader(child.stdout);
  try {
    const listening = await lines.until("listening");
    const port = listening.port as number;
    assert.deepEqual((await lines.next()).accounts, [
      { account: "wxOps", path: "/hooks/ops", mode: "plaintext", reply_mode: "custom" },
    ]);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    assert.equal((await health.json()).status, "ok");
    // The static files stay readable.
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/);
    // The account's webhook answers (a request without a signature is refused, not unknown).
    const hook = await fetch(`http://127.0.0.1:${port}/hooks/ops`);
    await hook.body?.cancel();
    assert.ok(hook.status === 401 || hook.status === 403, `${hook.status}`);
    assert.ok((await Deno.stat(`${dataDir}/kefu.db`)).isFile);
    // Search runs in a worker, which Deno loads only with the read access the task grants its modules.
    const found = await fetch(`http://127.0.0.1:${port}/im_component/wx_official_account/search?userid=a1&q=x`);
    assert.deepEqual([found.status, (await found.json()).data.messages], [200, []]);
    const holder = Number((await Deno.readTextFile(`${dataDir}/kefu.lock`)).trim());
    assert.ok(holder > 0);

    // A second kefu on the same DATA_DIR is refused, naming the directory and the holder.
    const second = await taskStart({ DATA_DIR: dataDir, CONFIG_FILE: configFile }, "null").output();
    assert.equal(second.code, 2);
    const said = new TextDecoder().decode(second.stderr);
    assert.match(said, new RegExp(`kefu: cannot use DATA_DIR="${dataDir}": another process \\(pid ${holder}\\) holds`));

    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    const rest = await lines.rest();
    assert.match(rest, /"event":"stopped"/);
    assert.ok(!rest.includes("ops-secret-1") && !rest.includes("ops-token-1"), "no secret in the log");
    // Released: the next start may take it.
    assert.equal(await Deno.readTextFile(`${dataDir}/kefu.lock`), "");
  } finally {
    await stopTask(child);
    await lines.cancel();
    await child.stderr.cancel();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("deno task start: what the operator sets and kefu cannot use exits 2 with a message naming it", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kefu-operator-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const refused = async (env: Record<string, string>, expected: RegExp) => {
    const out = await taskStart(env, "null").output();
    const said = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 2, said);
    assert.match(said, expected);
  };
  try {
    await Deno.writeTextFile(
      `${tmp}/typo.json`,
      JSON.stringify({ accounts: [{ appid: "a", token: "t", app_secret: "s" }] }),
    );
    await refused(
      { CONFIG_FILE: `${tmp}/typo.json`, STORE: "memory" },
      /kefu: cannot read CONFIG_FILE accounts\[0\]: unknown key "app_secret" \(did you mean appsecret\?\)/,
    );
    await refused(
      { CONFIG_FILE: `${tmp}/missing.json`, STORE: "memory" },
      /kefu: cannot read CONFIG_FILE=".*missing.json"/,
    );
    await Deno.writeTextFile(`${tmp}/a-file`, "");
    await refused({ DATA_DIR: `${tmp}/a-file` }, new RegExp(`kefu: cannot use DATA_DIR="${tmp}/a-file": `));
    await refused(
      { STORE: "memory", PORT: String(listener.addr.port) },
      new RegExp(`kefu: cannot listen on 127.0.0.1:${listener.addr.port} \\(HOST, PORT\\): address already in use`),
    );
  } finally {
    listener.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("main.ts: without the permission for DATA_DIR, exit 2 naming DATA_DIR and the permission", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "--allow-read=.", "main.ts"],
    cwd: ROOT,
    env: { DATA_DIR: "/nonexistent-kefu-dir", PORT: "0", HOST: "127.0.0.1" },
  }).output();
  const said = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 2, said);
  assert.match(said, /kefu: cannot use DATA_DIR="\/nonexistent-kefu-dir": .*--allow-write/);
});

Deno.test("start: the store's DATA_DIR is locked until shutdown; STORE=memory takes no lock", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "kefu-lock-" });
  const config = parseConfig({ DATA_DIR: dataDir, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent" });
  try {
    const first = await start(config);
    await assert.rejects(() => start(config), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, new RegExp(`^cannot use DATA_DIR="${dataDir}": another process \\(pid ${Deno.pid}\\)`));
      return true;
    });
    const memory = await start({ ...config, store: "memory" });
    await memory.shutdown();
    await first.shutdown();
    // Closing the store let go of the lock.
    await (await start(config)).shutdown();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("main.ts: hash-password reads the password on standard input and prints a hash that verifies", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "main.ts", "hash-password"],
    cwd: new URL("..", import.meta.url).pathname,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode("correct horse\n"));
  await w.close();
  const out = await child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const hash = new TextDecoder().decode(out.stdout).trim();
  assert.match(hash, /^scrypt\$/);
  assert.equal(await verifyPassword("correct horse", hash), true, "the trailing newline is not part of it");
  // Nothing on standard input: says how to use it.
  const empty = await new Deno.Command(Deno.execPath(), {
    args: ["run", "main.ts", "hash-password"],
    cwd: new URL("..", import.meta.url).pathname,
    stdin: "null",
  }).output();
  assert.equal(empty.code, 2);
  assert.match(new TextDecoder().decode(empty.stderr), /reads the password on standard input/);
});

Deno.test("deno task start: STORE=postgres over the server's Unix socket (the task grants that socket alone)", async () => {
  await using pg = await startPostgres();
  const dataDir = await Deno.makeTempDir({ prefix: "kefu-sock-" });
  const child = taskStart({
    DATA_DIR: dataDir,
    STORE: "postgres",
    DATABASE_URL: `postgres:///kefu?host=${pg.dir}&port=${pg.port}&user=postgres`,
  }).spawn();
  const lines = lineReader(child.stdout);
  try {
    const port = (await lines.until("listening")).port as number;
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    assert.deepEqual([ready.status, (await ready.json()).status], [200, "ready"]);
    // Stored through the socket: the server has kefu's connections with no client address.
    const viaSocket = await pg.sql(
      "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kefu' AND client_addr IS NULL",
    );
    assert.ok(Number(viaSocket) > 0, viaSocket);
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    await lines.rest();
  } finally {
    await stopTask(child);
    await lines.cancel();
    await child.stderr.cancel();
    await Deno.remove(dataDir, { recursive: true });
  }
});
