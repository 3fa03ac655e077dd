import assert from "node:assert/strict";
import { start } from "../../main.ts";
import { parseConfig } from "../../src/config/config.ts";
import { createLogger } from "../../src/core/log.ts";
import { channelStates, opsRoutes } from "../../src/metrics/routes.ts";
import type { ChannelAdapter } from "../../src/channels/channel.ts";
import { AgentClient, eventually, post, userXml } from "../helpers.ts";

const TOKEN = "metrics-token-0123456789";
const ROOT = new URL("../..", import.meta.url).pathname;

/** A real kefu (memory store) with METRICS_TOKEN, its log lines kept. */
async function startKefu(env: Record<string, string> = {}) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: "info", write: (l) => lines.push(JSON.parse(l)) });
  const svc = await start(
    parseConfig({ PORT: "0", HOST: "127.0.0.1", STORE: "memory", METRICS_TOKEN: TOKEN, ...env }),
    { log },
  );
  const http = `http://127.0.0.1:${svc.port}`;
  return {
    svc,
    http,
    lines,
    scrape: async () => {
      const r = await fetch(`${http}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(r.status, 200);
      assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      return await r.text();
    },
    [Symbol.asyncDispose]: () => svc.shutdown(),
  };
}

/** The value of one sample (`name{labels}`), 0 when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const ok = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (ok) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return 0;
}

Deno.test("metrics: /metrics answers Prometheus' text with METRICS_TOKEN only; off (404) without the setting", async () => {
  {
    await using k = await startKefu();
    const none = await fetch(`${k.http}/metrics`);
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
    await none.body?.cancel();
    const wrong = await fetch(`${k.http}/metrics`, { headers: { authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401);
    await wrong.body?.cancel();
    const text = await k.scrape();
    for (const name of ["kefu_messages_accepted_total", "kefu_delivery_latency_seconds", "kefu_agents_online"]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, "m"), name);
    }
  }
  await using off = await startKefu({ METRICS_TOKEN: "" });
  const r = await fetch(`${off.http}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(r.status, 404);
  assert.match((await r.json()).detail, /METRICS_TOKEN/);
});

Deno.test("metrics: accepted, delivered with its latency, waiting, agents and sockets; a failed reply is a warn line and a counter", async () => {
  await using k = await startKefu();
  const before = await k.scrape();
  const accepted = (t: string) =>
    sample(t, "kefu_messages_accepted_total", { channel: "http_push", status: "delivered" });
  const queued = (t: string) => sample(t, "kefu_messages_accepted_total", { channel: "http_push", status: "queued" });
  const latencyCount = (t: string) => sample(t, "kefu_delivery_latency_seconds_count", { channel: "http_push" });
  // Nobody online: it waits.
  await post(`${k.http}/send`, userXml("metrics-user", "first", { to: "m1" }));
  let now = await k.scrape();
  assert.equal(queued(now) - queued(before), 1);
  assert.equal(sample(now, "kefu_messages_waiting"), 1);
  {
    await using agent = await AgentClient.open(`ws://127.0.0.1:${k.svc.port}?userId=m1`, "echo");
    await agent.next(1001); // the backlog
    await post(`${k.http}/send`, userXml("metrics-user", "second", { to: "m1" }));
    await agent.next(1001);
    now = await k.scrape();
    assert.equal(accepted(now) - accepted(before), 1);
    assert.equal(sample(now, "kefu_agents_online"), 1);
    assert.equal(sample(now, "kefu_sockets"), 1);
    // The backlog counts as read once it has left kefu for this socket (it sends no receipts): a moment later.
    await eventually("nothing waiting", async () => sample(await k.scrape(), "kefu_messages_waiting") === 0);
    assert.equal(latencyCount(now) - latencyCount(before), 2, "the live one and the backlog one");
    assert.ok(
      sample(now, "kefu_messages_delivered_total", { channel: "http_push", how: "backlog" }) >= 1,
      "the backlog one",
    );
    // A pushed user has no way back: the reply fails with no_route, seen in the log and the counter.
    const failed = (t: string) => sample(t, "kefu_replies_failed_total", { channel: "http_push", code: "no_route" });
    agent.send({
      data: { id: "r-metrics", msg_type: "text", contact_id: "metrics-user", msg: { content: "您好" } },
      result: { code: 1001, message: "common" },
    });
    assert.equal((await agent.next(-1)).data.error, "no_route");
    assert.equal(failed(await k.scrape()) - failed(now), 1);
    const warn = k.lines.find((l) => l.event === "reply_failed");
    assert.ok(warn, JSON.stringify(k.lines.map((l) => l.event)));
    assert.deepEqual([warn.level, warn.channel, warn.account, warn.contact, warn.code], [
      "warn",
      "http_push",
      "",
      "metrics-user",
      "no_route",
    ]);
    assert.match(String(warn.reason), /no way back/);
  }
});

Deno.test("readyz: 200 while the store answers and no channel is down; 503 otherwise; /healthz stays liveness", async () => {
  await using k = await startKefu();
  const ready = await fetch(`${k.http}/readyz`);
  assert.deepEqual([ready.status, (await ready.json()).status], [200, "ready"]);
  const alive = await fetch(`${k.http}/healthz`);
  assert.equal(alive.status, 200);
  await alive.body?.cancel();

  const never = { stats: () => new Promise<never>(() => {}) };
  const failing = { stats: () => Promise.reject(new Error("database is locked")) };
  const up = () => [{ channel: "wxbot", name: "wxid_a", state: "synced", up: true }];
  const down = () => [{ channel: "pc_hook", name: "default", state: "away", up: false }];
  const ask = async (app: ReturnType<typeof opsRoutes>) => {
    const r = await app.request("/readyz");
    return [r.status, await r.json()] as const;
  };
  const [s1, b1] = await ask(opsRoutes({ store: never, channels: up, readyTimeoutMs: 50 }));
  assert.deepEqual([s1, b1.status, b1.store], [503, "not_ready", "no answer within 50 ms"]);
  const [s2, b2] = await ask(opsRoutes({ store: failing, channels: up }));
  assert.equal(s2, 503);
  assert.match(b2.store, /unreachable: Error: database is locked/);
  const [s3, b3] = await ask(opsRoutes({ store: { stats: () => Promise.resolve({}) }, channels: down }));
  assert.deepEqual([s3, b3.channels_down], [503, [{ channel: "pc_hook", name: "default", state: "away" }]]);
});

Deno.test("metrics: channel states from each channel's health — a hook per hook, WXBot per key", () => {
  const channels = [
    { name: "wx_official_account", health: () => ({ accounts: [] }) },
    {
      name: "pc_hook",
      health: () => ({
        hooks: [{ name: "a", registration: "registered", connected: 1 }, {
          name: "b",
          registration: "away",
          connected: 0,
        }],
      }),
    },
    { name: "wxbot", health: () => ({ state: "reconnecting", up: false, accounts: ["wxid_1", "wxid_2"] }) },
    { name: "http_push" },
  ] as unknown as ChannelAdapter[];
  assert.deepEqual(channelStates(channels), [
    { channel: "pc_hook", name: "a", state: "registered", up: true },
    { channel: "pc_hook", name: "b", state: "away", up: false },
    { channel: "wxbot", name: "wxid_1,wxid_2", state: "reconnecting", up: false },
  ]);
});

Deno.test("grafana: every metric the dashboard's panels use is one kefu exports (scraped from a real kefu)", async () => {
  await using k = await startKefu();
  const text = await k.scrape();
  const exported = new Set(
    [...text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].flatMap(([, name, type]) =>
      type === "histogram" ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name]
    ),
  );
  const dashboard = JSON.parse(await Deno.readTextFile(`${ROOT}/deploy/grafana/kefu.json`));
  const exprs: string[] = [];
  const walk = (panels: { targets?: { expr: string }[]; panels?: unknown[] }[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) exprs.push(t.expr);
      walk((p.panels ?? []) as typeof panels);
    }
  };
  walk(dashboard.panels);
  for (const v of dashboard.templating?.list ?? []) if (typeof v.query === "string") exprs.push(v.query);
  assert.ok(exprs.length >= 15, `${exprs.length} expressions`);
  // Metric names: identifiers of kefu_/process_ not followed by "(" (functions) and not label names inside {…}.
  const used = new Set<string>();
  for (const e of exprs) {
    const bare = e.replace(/\{[^}]*\}/g, "{}").replace(/\[[^\]]*\]/g, "[]");
    for (const m of bare.matchAll(/\b((?:kefu|process)_[a-z0-9_]+)\b(?!\s*\()/g)) used.add(m[1]);
  }
  assert.ok(used.size >= 15, [...used].join(" "));
  assert.deepEqual([...used].filter((n) => !exported.has(n)).sort(), []);
});
