/**
 * PostgreSQL stopped while three nodes take webhooks and pushes (issue 19): nothing is answered "success" (or 2xx)
 * while it is away; the nodes stay up and say not ready; once it is back every message ever answered success is
 * stored once and reaches its agent once, and the refused ones, sent again, arrive. A push is refused at once (its
 * sender retries); WeChat's push is held while WeChat waits (an HTTP error would show the user WeChat's failure
 * notice): kept if PostgreSQL returns within WeChat's 5 s, else answered to nobody and retried by WeChat.
 */

import assert from "node:assert/strict";
import { createWebhookSender, FAILURE_TEXT } from "../../src/simulator/webhook_sender.ts";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { eventually, post, startWechat, userXml } from "../helpers.ts";
import { Agent, allOnline, load, type Node, onlineOn, push, readyz, type Sent, startNodes } from "./cluster_support.ts";

const APPID = "wx00000000000000c1";
const SECRET = "cluster-secret";
const TOKEN = "cluster-token";
// Bounds of the load: at most this many sends, for at most this long.
const COUNT = 2000;
const LOAD_MS = 120_000;

Deno.test("cluster: PostgreSQL stopped under load refuses, nodes stay up, nothing answered success is lost", async () => {
  await using pg = await startPostgres();
  await using db = await pg.createDatabase();
  await using redis = await startRedis();
  await using wechat = startWechat({ appId: APPID, appSecret: SECRET });
  await using nodes = await startNodes(3, { databaseUrl: db.url, redisUrl: redis.url }, {
    WECHAT_TOKEN: TOKEN,
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: SECRET,
    WECHAT_API_BASE: wechat.url,
  });
  await using a = new Agent("A");
  await using b = new Agent("B");
  await using c = new Agent("C");
  const agents = [a, b, c];
  for (const [i, x] of agents.entries()) await x.connect(nodes[i]);
  await allOnline(nodes, ["A", "B", "C"]);

  // WeChat tries once here: the test sends the refused ones again itself, after PostgreSQL is back.
  const senders = nodes.map((node) =>
    createWebhookSender({ url: `${node.http}/wechat`, token: TOKEN, accountId: "gh_account", maxAttempts: 1 })
  );
  const webhook = async (node: number, user: string, id: string) =>
    (await senders[node].send(user, { type: "text", content: `text ${id}` }, { msgId: id })).status === "accepted";
  // Even i: a webhook (the Official Account's users, assigned to whoever is online); odd: a push to one agent.
  const send = async (i: number) => {
    const n = i % 3;
    const id = `${9_000_000 + i}`;
    const ok = i % 2 === 0
      ? await webhook(n, `oUser${i % 12}`, id)
      : (await push(nodes[n], `p${i % 12}`, agents[i % 3].id, id)) !== undefined;
    return { id, node: nodes[n].id, ok };
  };

  // The phases, driven beside the load: PostgreSQL stops after 30 accepted, comes back after 30 refused.
  let stoppedAt = 0;
  let restartAt = 0;
  let readyAgainAt = 0;
  let upAt = 0; // PostgreSQL answers again
  let notReadyAfter = 0;
  const outcomes: Sent[] = [];
  const accepted = () => outcomes.filter((o) => o.ok).length;
  const refusedWhileAway = () => outcomes.filter((o) => !o.ok && o.start >= stoppedAt && stoppedAt > 0).length;
  let finished = false; // the load is over: the driver stops waiting for it
  let failed = false; // the driver failed: the load stops
  const driver = (async () => {
    await eventually("30 messages accepted before the stop", () => accepted() >= 30 || finished, 60_000);
    const t0 = Date.now();
    await pg.stop();
    stoppedAt = Date.now();
    for (const node of nodes) {
      await eventually(`${node.id} says not ready (503)`, async () => (await readyz(node)) === 503, 15_000);
    }
    notReadyAfter = Date.now() - t0;
    // A push is told why, in kefu's JSON error (a retry is the sender's to make).
    const refused = await post(`${nodes[0].http}/send`, userXml("p-probe", "probe", { to: "A", id: "probe-1" }));
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.data.error, "store_failed");
    // Alive all along: liveness answers while the store is away.
    for (const node of nodes) {
      const res = await fetch(`${node.http}/healthz`);
      await res.body?.cancel();
      assert.equal(res.status, 200, `${node.id} answers /healthz with PostgreSQL away`);
    }
    // Away for a while (3 s at least), long enough for every node's pool to have lost its connections.
    await eventually(
      "30 messages refused while PostgreSQL is away, 3 s at least",
      () => (refusedWhileAway() >= 30 && Date.now() - stoppedAt >= 3_000) || finished,
      60_000,
    );
    restartAt = Date.now();
    await pg.restart();
    upAt = Date.now();
    await Promise.all(
      nodes.map((node) => eventually(`${node.id} ready again`, async () => (await readyz(node)) === 200, 30_000)),
    );
    readyAgainAt = Date.now();
  })().catch((e) => {
    failed = true;
    throw e;
  });
  const phases = { back: () => readyAgainAt > 0 };
  const running = load(
    {
      count: COUNT,
      concurrency: 6,
      paceMs: 100,
      ms: LOAD_MS,
      // 30 more accepted after PostgreSQL is back, then the load stops.
      stop: () => failed || phases.back() && outcomes.filter((o) => o.ok && o.start > readyAgainAt).length >= 30,
    },
    send,
    outcomes,
  ).finally(() => finished = true);
  const [drove] = await Promise.allSettled([driver, running]);
  if (drove.status === "rejected") throw drove.reason;

  // While PostgreSQL was away (from its stop until its restart began), nothing was answered success.
  const away = outcomes.filter((o) => o.start >= stoppedAt && o.end <= restartAt);
  assert.ok(away.length >= 20, `enough sends while PostgreSQL was away (${away.length})`);
  assert.deepEqual(away.filter((o) => o.ok).map((o) => o.id), [], "accepted while PostgreSQL was away");

  // The refused ones again, as WeChat (or the pusher) sends them again: each is taken now.
  const refused = outcomes.filter((o) => !o.ok);
  for (const o of refused) {
    const ok = (await send(o.i)).ok;
    assert.ok(ok, `${o.id}, refused while PostgreSQL was away, is taken when sent again`);
  }
  const ids = new Set(outcomes.map((o) => o.id));

  // Every message ever accepted reaches one agent, once.
  const got = () => {
    const all = new Map<string, number>();
    for (const x of agents) for (const [id, n] of x.got) all.set(id, (all.get(id) ?? 0) + n);
    return all;
  };
  await eventually(
    `all ${ids.size} messages reached an agent`,
    () => [...ids].every((id) => got().has(id)),
    30_000,
  ).catch((e) => {
    throw new Error(`${e.message}; missing: ${[...ids].filter((id) => !got().has(id)).join(",")}`);
  });
  assert.deepEqual([...got()].filter(([, n]) => n > 1), [], "no message reached an agent twice");
  // A push names its agent: it reached that one.
  for (const o of outcomes) {
    if (o.i % 2 === 1) assert.ok(agents[o.i % 3].got.has(o.id), `${o.id} reached ${agents[o.i % 3].id}`);
  }

  // Stored once each.
  const rows = await pg.sql(
    `SELECT id, count(*) FROM messages WHERE direction = 'in' GROUP BY id ORDER BY id`,
    db.name,
  );
  const stored = new Map(rows.split("\n").filter(Boolean).map((l) => l.split("\t")).map(([id, n]) => [id, Number(n)]));
  for (const id of ids) assert.equal(stored.get(id), 1, `${id} is stored once`);

  // WeChat's pushes sent while PostgreSQL was away and held until it was back: answered success, no notice shown.
  const heldThrough = outcomes.filter((o) => o.i % 2 === 0 && o.ok && o.start >= stoppedAt && o.start < restartAt);
  const firstAfter = Math.min(...outcomes.filter((o) => o.ok && o.start >= restartAt).map((o) => o.end));
  const nodesUp = await Promise.all(nodes.map(async (node: Node) => (await readyz(node)) === 200));
  assert.deepEqual(nodesUp, [true, true, true], "the same three processes serve after the outage");
  console.log(
    `cluster: PostgreSQL away ${restartAt - stoppedAt} ms; all nodes not ready ${notReadyAfter} ms after the stop; ` +
      `PostgreSQL up ${upAt - restartAt} ms after its restart began; every node ready ${readyAgainAt - upAt} ms ` +
      `later, the first message taken ${firstAfter - upAt} ms later; ${outcomes.length} sends, ` +
      `${refused.length} refused and taken when sent again, ${heldThrough.length} webhooks sent while it was away ` +
      `held until it was back and answered success, ${ids.size} messages delivered once`,
  );
});

// PostgreSQL's rows of one inbound message, and of one user's contact (the webhook's contact id is the openid).
async function rowsOf(pg: { sql(q: string, db?: string): Promise<string> }, db: string, id: string, openid: string) {
  const n = async (q: string) => Number((await pg.sql(q, db)).trim());
  return {
    messages: await n(`SELECT count(*) FROM messages WHERE id = '${id}' AND direction = 'in'`),
    contacts: await n(`SELECT count(*) FROM contacts WHERE user_id = '${openid}'`),
  };
}

// What the node holds for the store now (its /healthz, sign-in off).
async function heldForStore(node: Node): Promise<number> {
  const body = await (await fetch(`${node.http}/healthz`)).json();
  return body.channels.wx_official_account.held_for_store;
}

Deno.test("PostgreSQL away: WeChat's push is held; back within WeChat's 5 s, or its retries', no failure is shown; away past them WeChat shows it and nothing is kept", async () => {
  await using pg = await startPostgres();
  await using db = await pg.createDatabase();
  await using redis = await startRedis();
  await using nodes = await startNodes(1, { databaseUrl: db.url, redisUrl: redis.url }, { WECHAT_TOKEN: TOKEN });
  const [node] = nodes;
  await using a = new Agent("A");
  await a.connect(node);
  await allOnline(nodes, ["A"]);
  // WeChat as it is: 5 s per attempt, 4 attempts.
  const wechat = createWebhookSender({ url: `${node.http}/wechat`, token: TOKEN, accountId: "gh_account" });
  const text = (id: string) => ({ type: "text" as const, content: `text ${id}` });
  // A message sent after another has arrived: anything of the other still to come would have come first.
  const settle = async (id: string) => {
    const r = await wechat.send("oSettle", text(id), { msgId: id });
    assert.equal(r.status, "accepted", JSON.stringify(r));
    await eventually(`${id} reached A`, () => a.got.has(id), 30_000);
  };
  await settle("9100000000000000001");

  // 1. PostgreSQL away about 3 s: the push sent meanwhile is held, kept once PostgreSQL is back, answered success.
  await pg.stop();
  const stoppedAt = Date.now();
  const sentAt = Date.now();
  const held = wechat.send("oShort", text("9100000000000000002"), { msgId: "9100000000000000002" });
  await eventually("the push held for the store", async () => (await heldForStore(node)) === 1, 10_000);
  // The outage's length, not an assertion: PostgreSQL comes back 3 s after it stopped.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 3_000 - (Date.now() - stoppedAt))));
  const restartAt = Date.now();
  await pg.restart();
  const upAt = Date.now();
  const short = await held;
  const shortMs = Date.now() - sentAt;
  assert.equal(short.status, "accepted", JSON.stringify(short));
  assert.equal(short.shown, undefined, "WeChat shows the user no failure");
  await eventually("9100000000000000002 reached A", () => a.got.has("9100000000000000002"), 30_000);
  await settle("9100000000000000003");
  assert.equal(a.got.get("9100000000000000002"), 1, "the agent got it once");
  assert.deepEqual(await rowsOf(pg, db.name, "9100000000000000002", "oShort"), { messages: 1, contacts: 1 });

  // 2. Away 7 s, past WeChat's first attempt: that one is answered 503 to nobody, WeChat's retry is held and kept.
  await pg.stop();
  const midStop = Date.now();
  const retried = wechat.send("oMid", text("9100000000000000006"), { msgId: "9100000000000000006" });
  await new Promise((resolve) => setTimeout(resolve, 7_000));
  const midRestart = Date.now();
  await pg.restart();
  const mid = await retried;
  const midMs = Date.now() - midStop;
  assert.equal(mid.status, "accepted", JSON.stringify(mid));
  assert.ok(mid.attempts >= 2, `kept on a retry of WeChat's (attempt ${mid.attempts})`);
  assert.equal(mid.shown, undefined, "WeChat shows the user no failure");
  await settle("9100000000000000007");
  assert.equal(a.got.get("9100000000000000006"), 1, "the agent got it once");
  assert.deepEqual(await rowsOf(pg, db.name, "9100000000000000006", "oMid"), { messages: 1, contacts: 1 });

  // 3. PostgreSQL away past WeChat's whole budget (4 attempts of 5 s): WeChat shows its notice; nothing is kept.
  await pg.stop();
  const longStart = Date.now();
  const long = await wechat.send("oLong", text("9100000000000000004"), { msgId: "9100000000000000004" });
  const longMs = Date.now() - longStart;
  assert.equal(long.status, "failed", JSON.stringify(long));
  assert.equal(long.attempts, 4, "WeChat tried 4 times");
  assert.equal(long.shown, FAILURE_TEXT);
  // The node answers its last held push (to nobody) before PostgreSQL comes back: no try of it is left to commit.
  await eventually("no push held any more", async () => (await heldForStore(node)) === 0, 15_000);
  await eventually("not ready while PostgreSQL is away", async () => (await readyz(node)) === 503, 10_000);
  await pg.restart();
  await eventually("ready again", async () => (await readyz(node)) === 200, 30_000);
  await settle("9100000000000000005");
  assert.equal(a.got.has("9100000000000000004"), false, "the agent never got the message WeChat failed");
  assert.deepEqual(await rowsOf(pg, db.name, "9100000000000000004", "oLong"), { messages: 0, contacts: 0 });
  assert.equal((await onlineOn(node)).get("A"), true, "the same process serves on");
  console.log(
    `single node: PostgreSQL away ${restartAt - stoppedAt} ms (up ${upAt - restartAt} ms after its restart began): ` +
      `the push sent meanwhile answered success after ${shortMs} ms on attempt ${short.attempts}; away ` +
      `${midRestart - midStop} ms: answered success after ${midMs} ms on attempt ${mid.attempts}; away past ` +
      `WeChat's retries: failure shown after ${long.attempts} attempts, ${longMs} ms`,
  );
});
