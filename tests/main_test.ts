import assert from "node:assert/strict";
import { AgentClient, post, SEED_XML } from "./helpers.ts";

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
    const listening = await nextLine();
    assert.equal(listening.event, "listening");
    assert.equal(listening.level, "info");
    const port = listening.port as number;
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
  assert.match(new TextDecoder().decode(out.stderr), /unknown command "serv": expected serve \(default\) or simulate/);
});
