/**
 * The cluster benchmark's own parts: its knobs are checked and named when wrong, and the nginx it generates (Debian's,
 * for real) spreads webhooks over every node without stickiness and upgrades agents' WebSockets.
 */
import assert from "node:assert/strict";
import { parseSetup, readSettings } from "../../bench/cluster/settings.ts";
import { NGINX, nginxCommand } from "../../bench/cluster/nginx.ts";
import { freePort } from "../support/process.ts";

const hasNginx = (() => {
  try {
    return Deno.statSync(NGINX).isFile;
  } catch {
    return false;
  }
})();

Deno.test("bench:cluster: setups and knobs are read, and a wrong one is named", () => {
  assert.deepEqual(parseSetup("cluster-3"), { id: "cluster-3", store: "postgres", nodes: 3, redis: true, nginx: true });
  assert.deepEqual(parseSetup("sqlite-1"), { id: "sqlite-1", store: "sqlite", nodes: 1, redis: false, nginx: false });
  assert.throws(() => parseSetup("cluster-0"), /unknown setup "cluster-0"/);
  assert.throws(() => readSettings({ SETUPS: "pg-1,redis-2" }), /unknown setup "redis-2"/);
  assert.throws(() => readSettings({ RATE: "fast" }), /RATE must be a whole number ≥ 0, got "fast"/);
  assert.throws(() => readSettings({ PG_SYNC: "maybe" }), /PG_SYNC must be on or off, got "maybe"/);
  assert.throws(() => readSettings({ SERVER_ENV: "LOG_LEVEL" }), /SERVER_ENV: expected K=V, got "LOG_LEVEL"/);
  const s = readSettings({ SETUPS: "sqlite-1, cluster-2", RATE: "500", PIN: "0", SERVER_ENV: "LOG_LEVEL=warn" });
  assert.deepEqual(s.setups, ["sqlite-1", "cluster-2"]);
  assert.equal(s.rate, 500);
  assert.equal(s.pin, false);
  assert.equal(s.balance, "random");
  assert.throws(() => readSettings({ NGINX_BALANCE: "sticky" }), /NGINX_BALANCE must be random or round-robin/);
  assert.deepEqual(s.serverEnv, { LOG_LEVEL: "warn" });
});

for (const balance of ["round-robin", "random"] as const) {
  Deno.test({
    name: `bench:cluster: nginx (${balance}) spreads webhooks over every node and upgrades agents' sockets`,
    ignore: !hasNginx,
    fn: () => throughNginx(balance),
  });
}

/** Two stand-in nodes behind the generated nginx: each answers who it is, over HTTP and over a WebSocket. */
async function throughNginx(balance: "random" | "round-robin") {
  const nodes = ["n1", "n2"].map((id) => {
    const port = freePort();
    const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (req) => {
      if (req.headers.get("upgrade") === "websocket") {
        const { socket, response } = Deno.upgradeWebSocket(req);
        socket.onmessage = (e) => socket.send(`${id}:${e.data}`);
        return response;
      }
      return new Response(id);
    });
    return { port, server };
  });
  const dir = await Deno.makeTempDir({ prefix: "kefu_nginx_test_" });
  await Deno.chmod(dir, 0o755); // nginx's workers run as nobody when the test runs as root
  const port = freePort();
  const upstreams = nodes.map((n) => n.port);
  const argv = await nginxCommand({ dir, port, upstreams, workers: 1, maxConnections: 64, balance });
  const nginx = new Deno.Command(argv[0], { args: argv.slice(1), stdin: "null", stdout: "null", stderr: "piped" })
    .spawn();
  try {
    // Up once it answers (at most 10 s).
    let first = "";
    for (let i = 0; i < 200 && first === ""; i++) {
      first = await fetch(`http://127.0.0.1:${port}/wechat`, { method: "POST", body: "x" })
        .then((r) => r.text()).catch(() => new Promise<string>((ok) => setTimeout(() => ok(""), 50)));
    }
    assert.ok(first === "n1" || first === "n2", `nginx never answered on ${port}: ${JSON.stringify(first)}`);
    // A node per request, also on one keep-alive connection: no stickiness (random: both within 64, all but surely).
    const seen = new Set([first]);
    for (let i = 0; i < 64 && seen.size < 2; i++) {
      seen.add(await (await fetch(`http://127.0.0.1:${port}/wechat`, { method: "POST", body: "x" })).text());
    }
    assert.deepEqual([...seen].sort(), ["n1", "n2"]);
    // Agents' sockets go through, upgraded, to either node.
    for (let i = 0; i < 2; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/im_component/wx_official_account/msg?userid=a${i}`);
      const answer = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no answer over the socket in 10 s")), 10_000);
        ws.onopen = () => ws.send("ping");
        ws.onmessage = (e) => {
          clearTimeout(timer);
          resolve(String(e.data));
        };
        ws.onerror = () => {
          clearTimeout(timer);
          reject(new Error("the socket through nginx failed"));
        };
      });
      await new Promise<void>((resolve) => {
        ws.onclose = () => resolve();
        ws.close();
      });
      assert.match(answer, /^n[12]:ping$/);
    }
  } finally {
    nginx.kill("SIGTERM");
    const out = await nginx.output();
    await Promise.all(nodes.map((n) => n.server.shutdown()));
    await Deno.remove(dir, { recursive: true });
    // nginx exits 0 on SIGTERM; anything it said on stderr would be a configuration problem.
    assert.equal(new TextDecoder().decode(out.stderr).trim(), "");
  }
}
