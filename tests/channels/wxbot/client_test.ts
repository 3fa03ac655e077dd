/**
 * The WXBot socket against the simulated platform, over real sockets: the
 * auth packet as the seed writes it, a refused key stops for good, a drop is
 * connected again (and again), and stop() leaves nothing running (these tests
 * run with the op and resource sanitizers on).
 */

import assert from "node:assert/strict";
import { WxbotClient } from "../../../src/channels/wxbot/client.ts";
import type { Frame } from "../../../src/channels/wxbot/codec.ts";
import { KEY, MemoryLog, sleep, startSim, until } from "./helpers.ts";

function client(url: string, log: MemoryLog, frames: Frame[] = [], key = KEY, authTimeoutMs = 2000) {
  return new WxbotClient({
    url,
    key,
    reconnectMs: 50,
    authTimeoutMs,
    log,
    onFrame: (f) => {
      frames.push(f);
      return Promise.resolve();
    },
  });
}

Deno.test("wxbot client: signs in with the seed's auth packet, is synced, and hands frames on in order", async () => {
  await using p = startSim();
  const log = new MemoryLog();
  const frames: Frame[] = [];
  const c = client(p.wsUrl, log, frames);
  try {
    c.start();
    await until(() => c.state === "synced", "synced");
    assert.deepEqual(p.sim.stats(), { connected: 1, synced: 1, peakSynced: 1, auths: { ok: 1, refused: 0 } });
    assert.deepEqual([c.health().up, c.health().connects, c.health().reason], [true, 1, undefined]);
    p.sim.push('{"eventType":"AddMsg","n":1}');
    p.sim.push('{"eventType":"AddMsg","n":2}');
    await until(() => frames.length === 2, "two frames");
    assert.deepEqual(frames.map((f) => f.n), [1, 2]);
  } finally {
    await c.stop(1000);
  }
  assert.equal(c.state, "stopped");
  await until(() => p.sim.stats().connected === 0, "the platform sees the socket closed");
});

Deno.test("wxbot client: a refused key (retCode 1000) stops it for good: an error line, health down with the reason, no reconnect", async () => {
  await using p = startSim();
  const log = new MemoryLog();
  const c = client(p.wsUrl, log, [], "a-wrong-key");
  try {
    c.start();
    await until(() => c.state === "auth_failed", "auth_failed");
    // Ten reconnect delays later, still the one attempt.
    await sleep(500);
    assert.deepEqual(p.sim.stats().auths, { ok: 0, refused: 1 });
    const h = c.health();
    assert.deepEqual([h.state, h.up, h.connects], ["auth_failed", false, 1]);
    assert.match(h.reason!, /refused WXBOT_KEY \(AuthCheckResult retCode 1000, "鉴权失败，无效key"\).*does not retry/);
    const errors = log.lines.filter((l) => l.level === "error");
    assert.deepEqual(errors.map((l) => [l.event, l.fields.retCode]), [["wxbot_auth_failed", 1000]]);
    assert.equal(JSON.stringify(log.lines).includes("a-wrong-key"), false, "the key is never logged");
    await until(() => p.sim.stats().connected === 0, "the client closed its socket itself");
    assert.equal(log.of("wxbot_reconnecting").length, 0);
  } finally {
    await c.stop(1000);
  }
});

Deno.test("wxbot client: a dropped socket is connected again after the delay, every time, and health shows it", async () => {
  await using p = startSim();
  const log = new MemoryLog();
  const frames: Frame[] = [];
  const c = client(p.wsUrl, log, frames);
  try {
    c.start();
    await until(() => c.state === "synced", "synced");
    for (let drop = 1; drop <= 3; drop++) {
      p.sim.drop();
      await until(() => c.state === "reconnecting", `reconnecting after drop ${drop}`);
      const h = c.health();
      assert.equal(h.up, false);
      assert.match(h.reason!, /the socket dropped: closed by the platform \(code 1011, "simulated drop"\)/);
      assert.ok(h.next_attempt, "health says when the next attempt is");
      await until(() => c.state === "synced", `synced again after drop ${drop}`);
      assert.deepEqual([c.health().connects, c.health().drops], [drop + 1, drop]);
    }
    assert.equal(p.sim.stats().auths.ok, 4, "each new socket signs in again");
    p.sim.push('{"eventType":"AddMsg","after":"drops"}');
    await until(() => frames.length === 1, "a frame after the drops");
  } finally {
    await c.stop(1000);
  }
});

Deno.test("wxbot client: a platform that is not there is tried again and again; stop() ends the waiting", async () => {
  // A port nothing listens on: take one, and let it go.
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const log = new MemoryLog();
  const c = client(`ws://127.0.0.1:${port}`, log);
  c.start();
  await until(() => c.health().connects >= 3, "three attempts");
  assert.equal(c.health().up, false);
  assert.match(c.health().reason!, /cannot sign in at "ws:\/\/127\.0\.0\.1:\d+"/);
  await c.stop(1000);
  const attempts = c.health().connects;
  await sleep(200);
  assert.equal(c.health().connects, attempts, "no attempt after stop()");
});

Deno.test("wxbot client: no AuthCheckResult in time drops the socket and connects again", async () => {
  // A server that takes the socket and never answers.
  const quiet = new Set<WebSocket>();
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    quiet.add(socket);
    socket.onclose = () => quiet.delete(socket);
    return response;
  });
  const log = new MemoryLog();
  const c = client(`ws://127.0.0.1:${server.addr.port}`, log, [], KEY, 100);
  try {
    c.start();
    await until(() => c.health().connects >= 2, "a second attempt");
    assert.match(log.of("wxbot_reconnecting")[0].fields.reason as string, /no AuthCheckResult within 100 ms/);
  } finally {
    await c.stop(1000);
    for (const ws of quiet) ws.close();
    await until(() => quiet.size === 0, "server sockets closed");
    await server.shutdown();
  }
});

Deno.test("wxbot client: frames before the auth result are skipped, not taken for it", async () => {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = () => {
      socket.send('{"eventType":"AddMsg","early":true}');
      socket.send("not json");
      socket.send('{"type":"AuthCheckResult","msg":"ok","retCode":0}');
      socket.send('{"eventType":"AddMsg","late":true}');
    };
    return response;
  });
  const log = new MemoryLog();
  const frames: Frame[] = [];
  const c = client(`ws://127.0.0.1:${server.addr.port}`, log, frames);
  try {
    c.start();
    await until(() => frames.length === 1, "the frame after auth");
    assert.deepEqual([c.state, frames[0].late], ["synced", true]);
    assert.equal(log.of("wxbot_frame_before_auth").length, 2);
  } finally {
    await c.stop(1000);
    await server.shutdown();
  }
});
