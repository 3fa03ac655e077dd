/**
 * Issue 19, exactly one holder: three kefu nodes (child processes) on one PostgreSQL and one Redis, with the
 * simulator's WXBot platform and PC hook, and a TCP load balancer of the test's own in front of the nodes (the PC
 * hook's callback URL is the balancer's, as in production):
 *
 * - while the three run, one socket is signed in to the platform and one callback is registered with the hook;
 * - SIGKILL the holder: another node holds within 15 s; what the platform pushed while a socket was signed in, and
 *   everything the hook pushed (it pushes again what got no `ok`), reaches the agent, once;
 * - SIGTERM the next holder: it gives its leases back, and another node takes them sooner.
 *
 * The failover times are printed (`holders: …`), not asserted beyond the 15 s.
 */

import assert from "node:assert/strict";
import { chatFrame, startPcHookSimulator } from "../../src/simulator/pc_hook.ts";
import { startWxbotSim } from "../../src/simulator/wxbot.ts";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { eventually } from "../helpers.ts";
import { Agent, missing, type Node, onlineOn, startNodes } from "./cluster_support.ts";

const KEY = "wxbot-cluster-key";
const WXID = "wxid_cluster_bot";
const TOKEN = "token-cluster";
const HOOK_WXID = "wxid_cluster_hook";
/** The bound on a failover. */
const FAILOVER_MS = 15_000;
/** Messages per burst (bounded). */
const BURST = 10;

// deno-lint-ignore no-explicit-any
type Json = any;

/** A TCP load balancer: each connection goes to the first node (round robin) that accepts it. */
function startBalancer(ports: () => number[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const serving = new Set<Promise<void>>();
  let turn = 0;
  const close = (c: Deno.Conn) => {
    open.delete(c);
    try {
      c.close();
    } catch { /* closed */ }
  };
  const serve = async (client: Deno.Conn) => {
    open.add(client);
    const list = ports();
    const start = turn++;
    for (let i = 0; i < list.length; i++) {
      let upstream: Deno.Conn;
      try {
        upstream = await Deno.connect({ hostname: "127.0.0.1", port: list[(start + i) % list.length] });
      } catch {
        continue; // that node is gone: the next one
      }
      open.add(upstream);
      await Promise.race([
        client.readable.pipeTo(upstream.writable, { preventClose: true }).catch(() => {}),
        upstream.readable.pipeTo(client.writable, { preventClose: true }).catch(() => {}),
      ]);
      close(upstream);
      break;
    }
    close(client);
  };
  const accepting = (async () => {
    try {
      for await (const c of listener) {
        const p: Promise<void> = serve(c).finally(() => serving.delete(p));
        serving.add(p);
      }
    } catch { /* closed */ }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const c of [...open]) close(c);
      await Promise.allSettled([...serving]);
    },
  };
}

async function health(node: Node): Promise<Json> {
  return (await (await fetch(`${node.http}/healthz`)).json()).channels;
}

/** Which of `nodes` holds the WXBot key and the hook's registration (by their /healthz), among those alive. */
async function holders(nodes: Node[]): Promise<{ wxbot: Node[]; hook: Node[] }> {
  const out = { wxbot: [] as Node[], hook: [] as Node[] };
  for (const n of nodes) {
    const h = await health(n);
    if (h.wxbot.hold?.hold === "holding") out.wxbot.push(n);
    if (h.pc_hook.hooks[0].hold?.hold === "holding") out.hook.push(n);
  }
  return out;
}

Deno.test("holders: three nodes, one WXBot socket and one PC-hook registration, failover within 15 s", async (t) => {
  await using pg = await startPostgres();
  await using db = await pg.createDatabase();
  await using redis = await startRedis();
  const wx = startWxbotSim({ port: 0, host: "127.0.0.1", key: KEY, tokens: { [WXID]: TOKEN }, logLevel: "silent" });
  await using _wx = { [Symbol.asyncDispose]: () => wx.shutdown() };
  const hook = startPcHookSimulator({ wxid: HOOK_WXID, reconnectMs: 200 });
  await using _hook = { [Symbol.asyncDispose]: () => hook.shutdown() };
  let live: Node[] = [];
  await using lb = startBalancer(() => live.map((n) => Number(new URL(n.http).port)));
  await using nodes = await startNodes(3, { databaseUrl: db.url, redisUrl: redis.url }, {
    WXBOT_WS_URL: wx.wsUrl,
    WXBOT_API_BASE: wx.apiBase,
    WXBOT_KEY: KEY,
    WXBOT_WXID: WXID,
    WXBOT_TOKEN: TOKEN,
    WXBOT_RECONNECT_MS: "500",
    HOOK_API_URL: hook.apiUrl,
    HOOK_WXID: HOOK_WXID,
    HOOK_CALLBACK_URL: `ws://127.0.0.1:${lb.port}/pc_hook/ws`,
  });
  live = [...nodes];
  await using agent = new Agent("A");

  // What the platform and the hook pushed that must reach the agent, by message id.
  const expected = new Set<string>();
  let seq = 0;
  /** Push one WXBot message; expected when a socket was signed in to take it. */
  const pushWxbot = () => {
    const id = String(8_100_000_000_000_000_000n + BigInt(++seq));
    const r = wx.sim.push({ wxid: WXID, from: `wx_user${seq % 4}`, content: `wx ${seq}`, newMsgId: id });
    if (r.sockets > 0) expected.add(id);
    return r.sockets;
  };
  /** Push one hook message; resolves once a node answered `ok` (the hook pushes again until one does). */
  const pushHook = async () => {
    const id = String(7_900_000_000_000_000_000n + BigInt(++seq));
    expected.add(id);
    const frame = chatFrame(HOOK_WXID, `hook_user${seq % 4}`, `hook ${seq}`, { id });
    assert.ok(await hook.push(frame), `the hook's push ${id} was ok'd`);
  };

  const everythingArrived = async (what: string) => {
    await eventually(`${what}: the agent got every message`, () => missing(agent, expected).length === 0, 20_000);
    assert.deepEqual(agent.duplicates(), [], `${what}: every message once`);
  };

  await t.step("while three nodes run: one socket signed in, one callback registered", async () => {
    await eventually("a node signed in to the platform", () => wx.sim.stats().synced === 1, 20_000);
    await eventually("a node registered with the hook, and the hook dialed", () => hook.connected() === 1, 20_000);
    const held = await holders(live);
    assert.equal(held.wxbot.length, 1, "one node holds the WXBot key");
    assert.equal(held.hook.length, 1, "one node holds the hook's registration");
    // The others stand by and name the holder; every node is ready (a standby is not a channel down).
    for (const n of live) {
      const h = await health(n);
      assert.equal(h.wxbot.hold.holder, held.wxbot[0].id, `${n.id} names the WXBot holder`);
      const ready = await fetch(`${n.http}/readyz`);
      assert.equal(ready.status, 200, `${n.id} is ready: ${await ready.text()}`);
    }
    // The agent on a node that holds neither (one of three at least).
    const free = live.find((n) => !held.wxbot.includes(n) && !held.hook.includes(n))!;
    await agent.connect(free);
    for (const n of live) {
      await eventually(`${n.id} sees A online`, async () => (await onlineOn(n)).get("A") === true, 10_000);
    }
    for (let i = 0; i < BURST; i++) {
      assert.equal(pushWxbot(), 1, "one socket takes each push");
      await pushHook();
    }
    await everythingArrived("three nodes");
    // A few renewals later: still one of each, never two.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(wx.sim.stats().peakSynced, 1, "never two sockets signed in with the key");
    assert.deepEqual(hook.stats(), { callbacks: 1, registrations: 1, peakCallbacks: 1, connected: 1 });
  });

  await t.step("SIGKILL the holder: another node holds within 15 s; nothing lost, nothing twice", async () => {
    const before = await holders(live);
    const victim = before.wxbot[0];
    // The first node started takes both leases, as a rule; when another took the hook's, it is not measured here.
    const hookMoves = before.hook[0] === victim;
    const killedAt = Date.now();
    await victim.kill();
    live = live.filter((n) => n !== victim);
    // The agent's node is alive (it held nothing). Keep pushing while the others take over.
    await eventually("the platform saw the socket drop", () => wx.sim.stats().synced === 0, 10_000);
    let wxbotAt = 0;
    let hookAt = 0;
    for (let i = 0; i < 200 && (wxbotAt === 0 || hookAt === 0); i++) {
      if (Date.now() - killedAt > FAILOVER_MS + 5000) break;
      pushWxbot();
      await pushHook();
      const held = await holders(live);
      if (wxbotAt === 0 && held.wxbot.length === 1 && wx.sim.stats().synced === 1) wxbotAt = Date.now();
      if (hookAt === 0 && held.hook.length === 1) hookAt = Date.now();
      await new Promise((r) => setTimeout(r, 200));
    }
    const wxbotMs = wxbotAt - killedAt;
    const hookMs = hookAt - killedAt;
    console.log(
      `holders: SIGKILL failover: wxbot ${wxbotMs} ms (socket signed in again), ` +
        (hookMoves ? `pc_hook ${hookMs} ms` : "pc_hook held by another node (not moved)"),
    );
    assert.ok(wxbotAt > 0 && wxbotMs <= FAILOVER_MS, `the WXBot key is held again within 15 s (${wxbotMs} ms)`);
    assert.ok(hookAt > 0 && hookMs <= FAILOVER_MS, `the hook's registration is held within 15 s (${hookMs} ms)`);
    for (let i = 0; i < BURST; i++) {
      assert.equal(pushWxbot(), 1, "one socket takes each push after the failover");
      await pushHook();
    }
    await everythingArrived("after SIGKILL");
    // The node taking over adopted the callback the dead one left: still one, never registered anew.
    assert.deepEqual(hook.stats(), { callbacks: 1, registrations: 1, peakCallbacks: 1, connected: 1 });
    assert.equal(wx.sim.stats().peakSynced, 1);
  });

  await t.step("SIGTERM the holder: it gives the leases back; another node takes them sooner", async () => {
    const held = await holders(live);
    const victim = held.wxbot[0];
    const hookMoves = held.hook[0] === victim;
    // The agent away from the node that drains (its page would reconnect elsewhere anyway), once all is read.
    const stay = live.find((n) => n !== victim)!;
    await eventually("everything read", async () => (await (await fetch(`${stay.http}/healthz`)).json()).held === 0);
    await agent.connect(stay);
    await eventually(`${stay.id} sees A online`, async () => (await onlineOn(stay)).get("A") === true, 10_000);
    const stoppedAt = Date.now();
    const terminated = victim.terminate();
    live = live.filter((n) => n !== victim);
    let wxbotAt = 0;
    let hookAt = 0;
    for (let i = 0; i < 200 && (wxbotAt === 0 || hookAt === 0); i++) {
      if (Date.now() - stoppedAt > FAILOVER_MS + 5000) break;
      const now = await holders(live);
      if (wxbotAt === 0 && now.wxbot.length === 1 && wx.sim.stats().synced === 1) wxbotAt = Date.now();
      if (hookAt === 0 && now.hook.length === 1) hookAt = Date.now();
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(await terminated, 0, "the drain exits 0");
    const wxbotMs = wxbotAt - stoppedAt;
    const hookMs = hookAt - stoppedAt;
    console.log(
      `holders: SIGTERM handover: wxbot ${wxbotMs} ms (socket signed in again), ` +
        (hookMoves ? `pc_hook ${hookMs} ms` : "pc_hook held by another node (not moved)"),
    );
    assert.ok(wxbotAt > 0 && wxbotMs <= FAILOVER_MS, `the WXBot key is held again (${wxbotMs} ms)`);
    assert.ok(hookAt > 0 && hookMs <= FAILOVER_MS, `the hook's registration is held again (${hookMs} ms)`);
    for (let i = 0; i < BURST; i++) {
      assert.equal(pushWxbot(), 1, "one socket takes each push after the handover");
      await pushHook();
    }
    await everythingArrived("after SIGTERM");
    // The drained holder left the callback and the next one adopted it: registered once in the whole run.
    const { callbacks, peakCallbacks, registrations } = hook.stats();
    assert.deepEqual(
      { callbacks, peakCallbacks, registrations, peakSynced: wx.sim.stats().peakSynced },
      { callbacks: 1, peakCallbacks: 1, registrations: 1, peakSynced: 1 },
    );
  });
});
