/**
 * The callback socket as the seed's server: the handshake variants, `ok` only
 * once the message is committed, protocol pings, on real sockets.
 */

import assert from "node:assert/strict";
import { pcHook } from "../../../src/channels/pc_hook/channel.ts";
import { parsePcHookConfig } from "../../../src/channels/pc_hook/config.ts";
import type { ChannelAdapter } from "../../../src/channels/channel.ts";
import type { Message } from "../../../src/core/message.ts";
import type { InboundResult } from "../../../src/hub/hub.ts";
import { silentLogger } from "../../../src/core/log.ts";
import { chatFrame } from "../../../src/simulator/pc_hook.ts";
import { AgentClient, agentUrl, eventually } from "../../helpers.ts";
import { startWithHook } from "./helpers.ts";

// The channel on, its registration off: the tests play the hook by hand.
const NO_API = { HOOK_API_URL: "http://127.0.0.1:1/api/" };

/** A WebSocket client that keeps every text frame, as a hook would see kefu's answers. */
class RawHook implements AsyncDisposable {
  readonly socket: WebSocket;
  readonly got: string[] = [];
  readonly closed: Promise<CloseEvent>;

  private constructor(url: string) {
    this.socket = new WebSocket(url);
    this.socket.onmessage = (e) => this.got.push(String(e.data));
    this.closed = new Promise((r) => this.socket.addEventListener("close", r, { once: true }));
  }

  static async open(url: string): Promise<RawHook> {
    const h = new RawHook(url);
    await new Promise((resolve, reject) => {
      h.socket.onopen = resolve;
      h.socket.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    return h;
  }

  /** Send, then wait for the `n`th answer overall. */
  async say(text: string, n: number, ms = 3000): Promise<string> {
    this.socket.send(text);
    return await this.answer(n, ms);
  }

  async answer(n: number, ms = 3000): Promise<string> {
    const deadline = Date.now() + ms;
    while (this.got.length < n) {
      if (Date.now() > deadline) throw new Error(`no answer ${n} within ${ms} ms (got ${JSON.stringify(this.got)})`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.got[n - 1];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close();
    await this.closed;
  }
}

Deno.test("pc_hook socket: garbage and a push before hello are answered 'connected fail'; a late hello opens it", async () => {
  await using t = await startWithHook(undefined, { register: false }, { HOOK_CALLBACK_URL: "ws://127.0.0.1:1/x" });
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  await using hook = await RawHook.open(`${t.ws}/x`);
  assert.equal(await hook.say("garbage", 1), "connected fail");
  assert.equal(await hook.say(chatFrame("wxid_me", "wxid_early", "too early"), 2), "connected fail");
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(await hook.say("hello", 3), "hello");
  assert.equal(await hook.say(chatFrame("wxid_me", "wxid_u", "now"), 4), "ok");
  const got = await a.next(1001);
  assert.deepEqual([got.data.contact_id, got.data.msg.content], ["wxid_u", "now"]);
  // A second "hello" after the handshake is a frame like any other: unreadable (the operator's, counted), answered ok.
  assert.equal(await hook.say("hello", 5), "ok");
  assert.deepEqual(await a.settle(100), [], "neither the early push nor the unreadable frame reaches the agent");
});

Deno.test("pc_hook socket: a plain GET is told to upgrade; an unknown hook's path is 404", async () => {
  await using t = await startWithHook(undefined, { register: false }, NO_API);
  const r = await fetch(`${t.http}/pc_hook/ws`);
  assert.equal(r.status, 426);
  assert.match((await r.json()).data.detail ?? "", /callback WebSocket/);
  const r2 = await fetch(`${t.http}/pc_hook/ws/nobody`, { headers: { upgrade: "websocket" } });
  assert.equal(r2.status, 404);
  await r2.body?.cancel();
});

// The channel alone, with an accept path the test holds open.
function held(): {
  adapter: ChannelAdapter;
  url: string;
  accepted: Message[];
  release: (error?: Error) => void;
  [Symbol.asyncDispose](): Promise<void>;
} {
  const options = parsePcHookConfig({ HOOK_API_URL: "http://127.0.0.1:1/api/" })!;
  const accepted: Message[] = [];
  let release: (error?: Error) => void = () => {};
  const adapter = pcHook({ ...options, register: false })({
    log: silentLogger,
    maxBodyBytes: 1 << 20,
    accept(m) {
      accepted.push(m);
      return new Promise<InboundResult>((resolve, reject) => {
        release = (error) =>
          error ? reject(error) : resolve({ status: "queued", id: m.id, agent: "", contact: m.contact, sockets: 0 });
      });
    },
  });
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, adapter.routes!.fetch);
  return {
    adapter,
    url: `ws://127.0.0.1:${server.addr.port}/pc_hook/ws`,
    accepted,
    release: (e) => release(e),
    async [Symbol.asyncDispose]() {
      await adapter.stop?.(100);
      await server.shutdown();
    },
  };
}

Deno.test("pc_hook socket: 'ok' only once the message is committed; a frame that was not kept gets none", async () => {
  await using ch = held();
  await using hook = await RawHook.open(ch.url);
  assert.equal(await hook.say("hello", 1), "hello");
  hook.socket.send(chatFrame("wxid_me", "wxid_u", "first"));
  hook.socket.send(chatFrame("wxid_me", "wxid_u", "second"));
  await eventually("the first frame handed over", () => ch.accepted.length > 0);
  await new Promise((r) => setTimeout(r, 150));
  // One at a time, in order: the second is not even handed over before the first is committed.
  assert.deepEqual(ch.accepted.map((m) => m.content), ["first"]);
  assert.deepEqual(hook.got, ["hello"], "no ok while the commit is under way");
  ch.release();
  assert.equal(await hook.answer(2), "ok");
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(ch.accepted.map((m) => m.content), ["first", "second"]);
  // The store fails: no ok, and the socket is closed so that the hook reconnects.
  ch.release(new Error("disk full"));
  const closed = await hook.closed;
  assert.equal(closed.code, 1011);
  assert.deepEqual(hook.got, ["hello", "ok"]);
});

Deno.test("pc_hook socket: kefu pings a quiet hook, and drops one that never answers", async () => {
  await using t = await startWithHook(undefined, { register: false, pingSeconds: 1 }, NO_API);
  // A bare TCP client that upgrades and then never reads a frame nor answers a ping.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
  try {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await conn.write(new TextEncoder().encode(
      `GET /pc_hook/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ));
    const bytes: number[] = [];
    const buf = new Uint8Array(1024);
    const started = Date.now();
    const frames: { at: number; opcode: number }[] = [];
    let headerEnd = -1;
    while (Date.now() - started < 10_000) {
      const n = await conn.read(buf);
      if (n === null) break;
      bytes.push(...buf.subarray(0, n));
      if (headerEnd < 0) {
        const text = new TextDecoder().decode(new Uint8Array(bytes));
        const i = text.indexOf("\r\n\r\n");
        if (i < 0) continue;
        assert.match(text, /^HTTP\/1\.1 101/);
        headerEnd = i + 4;
        bytes.splice(0, headerEnd);
      }
      // Server frames are unmasked with short payloads here: opcode in the low bits of byte 0, length in byte 1.
      while (bytes.length >= 2 && bytes.length >= 2 + (bytes[1] & 0x7f)) {
        frames.push({ at: Date.now() - started, opcode: bytes[0] & 0x0f });
        bytes.splice(0, 2 + (bytes[1] & 0x7f));
      }
      if (frames.some((f) => f.opcode === 0x8)) break;
    }
    const ping = frames.find((f) => f.opcode === 0x9);
    assert.ok(ping, `a ping came (frames: ${JSON.stringify(frames)})`);
    // After the quiet second (pingSeconds 1, not the default 5 s), with room for a slow machine.
    assert.ok(ping.at >= 800 && ping.at < 4000, `the ping came after about 1 s (at ${ping.at} ms)`);
    const close = frames.find((f) => f.opcode === 0x8);
    assert.ok(close && close.at > ping.at, "unanswered, the socket was closed");
  } finally {
    conn.close();
  }
});
