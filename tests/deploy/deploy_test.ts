/**
 * The deployment files, tried: Debian's nginx with deploy/nginx/kefu.conf (its TLS server, a self-signed
 * certificate made by openssl, ports of the test's own) in front of a real kefu, a WeChat webhook and an agent's
 * WebSocket through it; the systemd unit checked by systemd-analyze.
 */

import assert from "node:assert/strict";
import { freePort, signedQuery, spawnKefu, wechatText } from "../helpers.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const NGINX = "/usr/sbin/nginx";
const has = (path: string) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
};

/**
 * The site file as a test runs it: its TLS server on `tls`, its plain server on `plain`, kefu at `upstream`, the
 * certificate in `dir`; wrapped in a main configuration whose pid, logs and temporary files are in `dir`.
 */
export function testConfig(site: string, dir: string, ports: { tls: number; plain: number; upstream: number }) {
  const body = site
    .replace(/listen \[::\]:\d+[^;]*;\n/g, "")
    .replace(/listen 443 ssl( http2)?;/, `listen 127.0.0.1:${ports.tls} ssl$1;`)
    .replace(/listen 80;/, `listen 127.0.0.1:${ports.plain};`)
    .replace(/server 127\.0\.0\.1:1234;/, `server 127.0.0.1:${ports.upstream};`)
    .replace(/ssl_certificate \S+;/, `ssl_certificate ${dir}/cert.pem;`)
    .replace(/ssl_certificate_key \S+;/, `ssl_certificate_key ${dir}/key.pem;`)
    .replace(/root \/var\/www\/html;/, `root ${dir}/www;`);
  return `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${body}
}
`;
}

async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

Deno.test({
  name: "deploy: nginx with deploy/nginx/kefu.conf in front of kefu — a webhook and an agent's socket through TLS",
  ignore: !has(NGINX) || !has("/usr/bin/openssl"),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "kefu-nginx-" });
    const ports = { tls: freePort(), plain: freePort(), upstream: freePort() };
    let nginx: Deno.ChildProcess | undefined;
    try {
      await Deno.mkdir(`${dir}/www`);
      // A CA of the test's own and a server certificate it signs (rustls refuses a CA as the server's own).
      await Deno.writeTextFile(
        `${dir}/leaf.ext`,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
      );
      const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
      for (
        const args of [
          ["req", "-x509", ...ec, "-days", "1", "-subj", "/CN=kefu test CA", "-keyout", "ca.key", "-out", "ca.pem"],
          ["req", ...ec, "-subj", "/CN=127.0.0.1", "-keyout", "key.pem", "-out", "leaf.csr"],
          [
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
          ],
        ]
      ) {
        const out = await new Deno.Command("/usr/bin/openssl", { args, cwd: dir, stdout: "null", stderr: "piped" })
          .output();
        assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      }
      const site = await Deno.readTextFile(`${ROOT}/deploy/nginx/kefu.conf`);
      await Deno.writeTextFile(`${dir}/nginx.conf`, testConfig(site, dir, ports));
      const check = await new Deno.Command(NGINX, { args: ["-t", "-p", dir, "-c", `${dir}/nginx.conf`] }).output();
      assert.equal(check.code, 0, new TextDecoder().decode(check.stderr));

      await using _kefu = await spawnKefu({
        PORT: String(ports.upstream),
        STORE: "memory",
        WECHAT_TOKEN: "nginx-test-token",
        HEARTBEAT_SECONDS: "1",
      });
      nginx = new Deno.Command(NGINX, {
        args: ["-p", dir, "-c", `${dir}/nginx.conf`],
        stdout: "null",
        stderr: "piped",
      }).spawn();
      await waitForPort(ports.tls);
      const base = `https://127.0.0.1:${ports.tls}`;
      const caCerts = [await Deno.readTextFile(`${dir}/ca.pem`)];
      using client = Deno.createHttpClient({ caCerts });

      // The agent's socket through nginx (wss, upgraded): a client of its own that trusts the certificate.
      const agent = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          `--cert=${dir}/ca.pem`,
          "--allow-net",
          `${ROOT}/tests/deploy/ws_client.ts`,
          `wss://127.0.0.1:${ports.tls}/?userId=a1`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const lines = agent.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      const nextLine = async () => {
        for (;;) {
          const nl = out.indexOf("\n");
          if (nl >= 0) {
            const line = out.slice(0, nl);
            out = out.slice(nl + 1);
            return JSON.parse(line);
          }
          const { value, done } = await lines.read();
          if (done) throw new Error(`the agent's client ended: ${out}`);
          out += value;
        }
      };
      try {
        const opened = await nextLine();
        assert.equal(opened.event, "open", JSON.stringify(opened));
        // A heartbeat (code 101) comes through the proxy: the socket stays up past a quiet second.
        const codeOf = (e: { result?: { code?: number } }) => Number(e.result?.code);
        let first = await nextLine();
        while (codeOf(first) !== 101) first = await nextLine();

        // WeChat's webhook through nginx, signed as WeChat signs it.
        const r = await fetch(`${base}/wechat${await signedQuery("nginx-test-token")}`, {
          method: "POST",
          body: wechatText("oNginxUser", "through nginx", "77001"),
          client,
        });
        assert.equal(r.status, 200);
        assert.equal(await r.text(), "success");
        let m = await nextLine();
        while (codeOf(m) !== 1001) m = await nextLine();
        assert.deepEqual([m.data.contact_id, m.data.msg.content], ["oNginxUser", "through nginx"]);

        // An upload as large as an agent may send (over nginx's default 1 MiB) is let through.
        const health = await fetch(`${base}/healthz`, { client });
        assert.equal(health.status, 200);
        await health.body?.cancel();
        const upload = await fetch(`${base}/im_component/wx_official_account/upload?userid=a1&filename=big.bin`, {
          method: "POST",
          body: new Uint8Array(3 << 20),
          client,
        });
        assert.notEqual(upload.status, 413, "nginx refused a 3 MiB upload");
        await upload.body?.cancel();
        // Plain HTTP redirects to https, but for the webhook.
        const plain = await fetch(`http://127.0.0.1:${ports.plain}/`, { redirect: "manual" });
        assert.equal(plain.status, 301);
        await plain.body?.cancel();
        // /metrics is for the internal network (127.0.0.1 is in it) and kefu asks its token.
        const metrics = await fetch(`${base}/metrics`, { client });
        assert.equal(metrics.status, 404, "METRICS_TOKEN unset: off");
        await metrics.body?.cancel();
        // nginx logged the webhook it passed on.
        const log = await Deno.readTextFile(`${dir}/access.log`);
        assert.match(log, /POST \/wechat\?/);
      } finally {
        try {
          agent.kill("SIGTERM");
        } catch { /* gone */ }
        await agent.status;
        await lines.cancel().catch(() => {});
        await agent.stderr.cancel();
      }
    } finally {
      if (nginx) {
        try {
          nginx.kill("SIGQUIT");
        } catch { /* gone */ }
        await nginx.status;
        await nginx.stderr.cancel();
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("deploy: nginx's timeouts outlive the heartbeat and idle pings; its body size takes kefu's largest upload", async () => {
  const site = await Deno.readTextFile(`${ROOT}/deploy/nginx/kefu.conf`);
  const seconds = (name: string) => Number(new RegExp(`${name} (\\d+)s;`).exec(site)?.[1]);
  assert.ok(seconds("proxy_read_timeout") > 60, "longer than IDLE_TIMEOUT_SECONDS (60) and HEARTBEAT_SECONDS (30)");
  assert.ok(seconds("proxy_send_timeout") > 60);
  const mb = Math.max(...[...site.matchAll(/client_max_body_size (\d+)m;/g)].map((m) => Number(m[1])));
  assert.ok(mb * 1024 * 1024 >= 10 << 20, "MEDIA_MAX_BYTES' default (10 MiB) fits");
  for (const header of ["Upgrade $http_upgrade", "X-Forwarded-For $proxy_add_x_forwarded_for", "X-Forwarded-Proto"]) {
    assert.ok(site.includes(`proxy_set_header ${header}`), header);
  }
});

Deno.test({
  name: "deploy: the systemd unit is one systemd reads without a complaint, with its hardening",
  ignore: !has("/usr/bin/systemd-analyze"),
  fn: async () => {
    const unit = await Deno.readTextFile(`${ROOT}/deploy/systemd/kefu.service`);
    for (
      const line of [
        "User=kefu",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/kefu",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "EnvironmentFile=/etc/kefu/kefu.env",
        "Environment=DATA_DIR=/var/lib/kefu",
        "ExecStartPre=/usr/local/bin/kefu check-config",
      ]
    ) assert.ok(unit.split("\n").includes(line), line);
    const dir = await Deno.makeTempDir({ prefix: "kefu-unit-" });
    try {
      // The binary is not installed here: a stand-in, so that systemd-analyze checks the rest.
      await Deno.writeTextFile(`${dir}/kefu.service`, unit.replaceAll("/usr/local/bin/kefu", "/bin/true"));
      const out = await new Deno.Command("/usr/bin/systemd-analyze", { args: ["verify", `${dir}/kefu.service`] })
        .output();
      const said = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, said);
      assert.ok(!/kefu\.service:\d+:/.test(said), said);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "deploy: the template unit for several nodes (kefu@.service) is one systemd reads without a complaint",
  ignore: !has("/usr/bin/systemd-analyze"),
  fn: async () => {
    const unit = await Deno.readTextFile(`${ROOT}/deploy/systemd/kefu@.service`);
    for (
      const line of [
        "User=kefu",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/kefu/%i",
        "Environment=PORT=%i NODE_ID=%H-%i DATA_DIR=/var/lib/kefu/%i",
        "EnvironmentFile=/etc/kefu/kefu.env",
        "KillSignal=SIGTERM",
        "RestartPreventExitStatus=2",
      ]
    ) assert.ok(unit.split("\n").includes(line), line);
    // Not before each start: check-config answers 2 while PostgreSQL or Redis is away, and 2 is not restarted.
    assert.ok(!unit.split("\n").some((l) => l.startsWith("ExecStartPre=")), "no check-config before each start");
    const dir = await Deno.makeTempDir({ prefix: "kefu-unit-" });
    try {
      await Deno.writeTextFile(`${dir}/kefu@.service`, unit.replaceAll("/usr/local/bin/kefu", "/bin/true"));
      // An instance of the template, as systemctl start kefu@8081 makes it.
      const out = await new Deno.Command("/usr/bin/systemd-analyze", { args: ["verify", `${dir}/kefu@8081.service`] })
        .output();
      const said = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, said);
      assert.ok(!/kefu@(8081)?\.service:\d+:/.test(said), said);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
