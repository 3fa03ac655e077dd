/**
 * deploy/nginx/kefu-cluster.conf in front of three nodes (Debian's nginx; its TLS server listens without TLS here,
 * because a WebSocket of this process cannot be told to trust a certificate of the test's own — tests/deploy runs the
 * same TLS lines with TLS): agents' sockets and WeChat's webhooks go through it to all three nodes (no stickiness).
 * A node drained: its agents get 4002 and reconnect through nginx at once to another node (never back to the node
 * going away, which least_conn would pick: it refuses them with 503 and nginx tries the next). A node killed: its
 * agents reconnect elsewhere. Every webhook through nginx is answered "success" and reaches an agent once.
 */

import assert from "node:assert/strict";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { eventually, freePort, signedQuery, wechatText } from "../helpers.ts";
import { Close } from "../../src/envelope/protocol.ts";
import { Agent, allOnline, type Node, startNodes } from "./cluster_support.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const NGINX = "/usr/sbin/nginx";
const OPENSSL = "/usr/bin/openssl";
const TOKEN = "cluster-nginx-token";
const has = (path: string) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
};

/** The site as the test runs it: its servers on the test's ports, the three nodes' ports, files in `dir`. */
function siteFor(site: string, dir: string, tls: number, plain: number, nodes: Node[]): string {
  let n = 0;
  const body = site
    .replace(/listen \[::\]:\d+[^;]*;\n/g, "")
    .replace(/listen 443 ssl( http2)?;/, `listen 127.0.0.1:${tls};`)
    .replace(/listen 80;/, `listen 127.0.0.1:${plain};`)
    .replace(/server 127\.0\.0\.1:\d+/g, () => `server 127.0.0.1:${new URL(nodes[n++].http).port}`)
    .replace(/ssl_certificate \S+;/, `ssl_certificate ${dir}/cert.pem;`)
    .replace(/ssl_certificate_key \S+;/, `ssl_certificate_key ${dir}/key.pem;`)
    .replace(/root \/var\/www\/html;/, `root ${dir}/www;`);
  assert.equal(n, 3, "the site names three nodes");
  return `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  log_format up '$request_uri $status $upstream_addr';
  access_log ${dir}/access.log up;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${body}
}
`;
}

async function certificate(dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/leaf.ext`, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  for (
    const args of [
      ["req", "-x509", ...ec, "-days", "1", "-subj", "/CN=kefu test CA", "-keyout", "ca.key", "-out", "ca.pem"],
      ["req", ...ec, "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "leaf.csr"],
      ["x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1"]
        .concat(["-extfile", "leaf.ext", "-out", "cert.pem"]),
    ]
  ) {
    const out = await new Deno.Command(OPENSSL, { args, cwd: dir, stdout: "null", stderr: "piped" }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  }
}

Deno.test({
  name: "cluster: nginx with kefu-cluster.conf — sockets and webhooks on three nodes, a drain and a kill passed over",
  ignore: !has(NGINX) || !has(OPENSSL),
  fn: async () => {
    await using pg = await startPostgres();
    await using db = await pg.createDatabase();
    await using redis = await startRedis();
    await using nodes = await startNodes(3, { databaseUrl: db.url, redisUrl: redis.url }, { WECHAT_TOKEN: TOKEN });
    const agents = ["A", "B", "C", "D", "E", "F"].map((id) => new Agent(id));
    await using _agents = {
      [Symbol.asyncDispose]: () => Promise.all(agents.map((x) => x.disconnect())).then(() => {}),
    };

    const dir = await Deno.makeTempDir({ prefix: "kefu-nginx-cluster-" });
    let nginx: Deno.ChildProcess | undefined;
    try {
      await Deno.mkdir(`${dir}/www`);
      await certificate(dir);
      const [port, plain] = [freePort(), freePort()];
      const site = await Deno.readTextFile(`${ROOT}/deploy/nginx/kefu-cluster.conf`);
      await Deno.writeTextFile(`${dir}/nginx.conf`, siteFor(site, dir, port, plain, nodes));
      const check = await new Deno.Command(NGINX, { args: ["-t", "-p", dir, "-c", `${dir}/nginx.conf`] }).output();
      assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
      nginx = new Deno.Command(NGINX, { args: ["-p", dir, "-c", `${dir}/nginx.conf`], stderr: "null" }).spawn();
      const base = `http://127.0.0.1:${port}`;
      await eventually("nginx listens", async () => {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port })).close();
          return true;
        } catch {
          return false;
        }
      });
      // The agents' pages know one address, nginx's, and reconnect to it on every close.
      const balancer = { ws: `ws://127.0.0.1:${port}` } as Node;
      for (const x of agents) {
        await x.connect(balancer);
        x.follow(() => balancer);
      }
      await allOnline(nodes, agents.map((x) => x.id));
      const sockets = async (node: Node) => {
        const res = await fetch(`${node.http}/healthz`);
        return (await res.json()).sockets as number;
      };
      assert.deepEqual(await Promise.all(nodes.map(sockets)), [2, 2, 2], "least_conn spread the sockets");

      // A webhook through nginx, as WeChat sends it: answered "success" (nothing else counts).
      const webhook = async (i: number) => {
        const r = await fetch(`${base}/wechat${await signedQuery(TOKEN)}`, {
          method: "POST",
          body: wechatText(`oNginx${i % 6}`, `through nginx ${i}`, `${7_700_000 + i}`),
        });
        return `${r.status} ${await r.text()}`;
      };
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        assert.equal(await webhook(i), "200 success", `webhook ${i} with three nodes up`);
        ids.push(`${7_700_000 + i}`);
      }
      const upstreams = async () =>
        new Set(
          (await Deno.readTextFile(`${dir}/access.log`)).split("\n").filter((l) => l.startsWith("/wechat"))
            .map((l) => l.split(" ")[2]),
        );
      assert.equal((await upstreams()).size, 3, "no stickiness: the webhooks went to all three nodes");

      // n3 drains: its two agents get 4002 and are on n1 or n2 at once, none back on n3.
      assert.equal(await nodes[2].terminate(), 0);
      await Promise.all(agents.map((x) => x.settled()));
      await allOnline(nodes.slice(0, 2), agents.map((x) => x.id));
      const moved = agents.filter((x) => x.closeCodes.length > 0);
      assert.equal(moved.length, 2, "n3's two agents were moved");
      for (const x of moved) assert.deepEqual(x.closeCodes, [Close.reconnect], `${x.id}: one close, 4002`);
      assert.deepEqual(await Promise.all(nodes.slice(0, 2).map(sockets)).then((n) => n[0] + n[1]), 6);

      // n2 dies: its agents reconnect through nginx to n1; webhooks are still taken.
      await nodes[1].kill();
      await Promise.all(agents.map((x) => x.settled()));
      await eventually("every agent has a socket on n1", async () => (await sockets(nodes[0])) === 6, 20_000);
      for (let i = 12; i < 24; i++) {
        assert.equal(await webhook(i), "200 success", `webhook ${i} with one node up`);
        ids.push(`${7_700_000 + i}`);
      }
      const got = (id: string) => agents.reduce((n, x) => n + (x.got.get(id) ?? 0), 0);
      await eventually("every webhook's message reached an agent", () => ids.every((id) => got(id) > 0), 20_000);
      for (const x of agents) assert.deepEqual(x.sameSocketDuplicates, [], `${x.id}: nothing twice on one socket`);
    } finally {
      if (nginx) {
        try {
          nginx.kill("SIGQUIT");
        } catch { /* gone */ }
        await nginx.status;
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});
