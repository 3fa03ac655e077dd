/**
 * deploy/nginx/kefu-cluster.conf in front of three nodes (Debian's nginx, a certificate of the test's own): WeChat's
 * webhooks through TLS reach all three nodes (no stickiness), and while one node is killed and another drained,
 * every webhook through nginx is still answered "success" (nginx tries the next node) and reaches its agent once.
 */

import assert from "node:assert/strict";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { eventually, freePort, signedQuery, wechatText } from "../helpers.ts";
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
    .replace(/listen 443 ssl( http2)?;/, `listen 127.0.0.1:${tls} ssl$1;`)
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
  name: "cluster: nginx with kefu-cluster.conf spreads webhooks over three nodes and passes over a node that is gone",
  ignore: !has(NGINX) || !has(OPENSSL),
  fn: async () => {
    await using pg = await startPostgres();
    await using db = await pg.createDatabase();
    await using redis = await startRedis();
    await using nodes = await startNodes(3, { databaseUrl: db.url, redisUrl: redis.url }, { WECHAT_TOKEN: TOKEN });
    await using a = new Agent("A");
    await a.connect(nodes[0]);
    await allOnline(nodes, ["A"]);

    const dir = await Deno.makeTempDir({ prefix: "kefu-nginx-cluster-" });
    let nginx: Deno.ChildProcess | undefined;
    try {
      await Deno.mkdir(`${dir}/www`);
      await certificate(dir);
      const [tls, plain] = [freePort(), freePort()];
      const site = await Deno.readTextFile(`${ROOT}/deploy/nginx/kefu-cluster.conf`);
      await Deno.writeTextFile(`${dir}/nginx.conf`, siteFor(site, dir, tls, plain, nodes));
      const check = await new Deno.Command(NGINX, { args: ["-t", "-p", dir, "-c", `${dir}/nginx.conf`] }).output();
      assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));
      nginx = new Deno.Command(NGINX, { args: ["-p", dir, "-c", `${dir}/nginx.conf`], stderr: "null" }).spawn();
      using client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(`${dir}/ca.pem`)] });
      const base = `https://127.0.0.1:${tls}`;
      await eventually("nginx listens", async () => {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port: tls })).close();
          return true;
        } catch {
          return false;
        }
      });
      // A webhook through nginx, as WeChat sends it: answered "success" (nothing else counts).
      const webhook = async (i: number) => {
        const r = await fetch(`${base}/wechat${await signedQuery(TOKEN)}`, {
          method: "POST",
          body: wechatText(`oNginx${i % 4}`, `through nginx ${i}`, `${7_700_000 + i}`),
          client,
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

      // n2 dies (SIGKILL) and n3 drains (SIGTERM): nginx passes over them; every webhook is still taken.
      await nodes[1].kill();
      assert.equal(await nodes[2].terminate(), 0);
      for (let i = 12; i < 24; i++) {
        assert.equal(await webhook(i), "200 success", `webhook ${i} with one node up`);
        ids.push(`${7_700_000 + i}`);
      }
      await eventually("A got every webhook's message", () => ids.every((id) => a.got.has(id)), 20_000);
      assert.deepEqual(a.duplicates(), [], "each once");
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
