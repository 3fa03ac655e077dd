/**
 * Issue 20, tried again: memory before sign-in. Thirty sockets without a token each send one 60 MiB frame; kefu
 * (a child process, measured with ps) must refuse them before reading a frame, so its RSS barely moves. Before the
 * fix each socket was upgraded and its whole frame read before the close: 117 MB → 1.16 GB.
 */

import assert from "node:assert/strict";
import { spawnKefu } from "../helpers.ts";

const SOCKETS = 30;
const FRAME = 60 << 20;
const CHUNK = new Uint8Array(1 << 20);

async function rssMb(pid: number): Promise<number> {
  const out = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)], stdout: "piped" }).output();
  return Number(new TextDecoder().decode(out.stdout).trim()) / 1024;
}

// One unauthenticated upgrade, then a 60 MiB text frame (masked, as a client sends it) until kefu stops reading.
async function flood(port: number): Promise<string> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await c.write(new TextEncoder().encode(
      "GET /im_component/wx_official_account/msg?userid=a1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    ));
    const head = new Uint8Array(14);
    head[0] = 0x81;
    head[1] = 0x80 | 127;
    new DataView(head.buffer).setBigUint64(2, BigInt(FRAME));
    await c.write(head);
    for (let sent = 0; sent < FRAME; sent += CHUNK.length) await c.write(CHUNK);
    return "sent";
  } catch {
    return "refused";
  } finally {
    try {
      c.close();
    } catch { /* closed by kefu */ }
  }
}

Deno.test("security: 30 sockets without a token sending 60 MiB frames each leave kefu's memory as it was", async () => {
  await using kefu = await spawnKefu({ PORT: "0", STORE: "memory", AGENT_SECRET: "socket-memory-secret-0123" });
  const pid = kefu.process.pid;
  const before = await rssMb(pid);
  let peak = before;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rssMb(pid));
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  const results = await Promise.all(Array.from({ length: SOCKETS }, () => flood(kefu.port)));
  sampling = false;
  await sampler;
  console.log(
    `kefu RSS ${before.toFixed(1)} MB before, ${peak.toFixed(1)} MB at peak; ${
      results.filter((r) => r === "refused").length
    }/${SOCKETS} refused mid-frame`,
  );
  // Generous: the frames alone would be 1.8 GB.
  assert.ok(peak - before < 300, `RSS grew by ${(peak - before).toFixed(1)} MB`);
  // And the refusal is an HTTP 401 saying why, before any upgrade.
  const res = await fetch(`http://127.0.0.1:${kefu.port}/im_component/wx_official_account/msg?userid=a1`, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  assert.deepEqual([res.status, (await res.json()).data.error], [401, "auth_required"]);
});
