/**
 * The seed's retry rules, driven over (cost, retCode) against the simulated
 * platform's HTTP API: cost=true is never retried whatever ok says; cost=false
 * retries 1000 and 1003 a bounded number of times and never 1001/1002/1004;
 * each refusal is a KefuError saying what happened and what to do.
 */

import assert from "node:assert/strict";
import { type ApiAnswer, verdict, WxbotApi } from "../../../src/channels/wxbot/api.ts";
import { TEXT_PATH } from "../../../src/channels/wxbot/config.ts";
import { KefuError } from "../../../src/core/errors.ts";
import { BOT, KEY, MemoryLog, startSim, TOKENS } from "./helpers.ts";

const MAX_RETRIES = 3;

function api(base: string, log = new MemoryLog(), options: { timeoutMs?: number; key?: string } = {}) {
  return new WxbotApi({
    base,
    key: options.key ?? KEY,
    timeoutMs: options.timeoutMs ?? 2000,
    maxRetries: MAX_RETRIES,
    retryMinMs: 5,
    retryMaxMs: 10,
    log,
  });
}

const body = { UserName: "wxid_user1", Content: "你好", Token: TOKENS[BOT] };

Deno.test("wxbot api: the verdict of every (ok, cost, retCode) the seed speaks of", () => {
  const cases: [ApiAnswer, string][] = [
    [{ ok: true, cost: true, retCode: 0 }, "done"],
    [{ ok: true, cost: false, retCode: 0 }, "done"],
    [{ ok: true, retCode: 0 }, "done"],
  ];
  for (const retCode of [1000, 1001, 1002, 1003, 1004, 1234]) {
    cases.push([{ ok: false, cost: true, retCode }, "fail"]); // counted: never again, whatever it was
    cases.push([{ ok: false, cost: false, retCode }, retCode === 1000 || retCode === 1003 ? "retry" : "fail"]);
    cases.push([{ ok: false, retCode }, "fail"]); // no cost: the seed is silent, so nothing risks going out twice
  }
  for (const [a, expected] of cases) assert.equal(verdict(a), expected, JSON.stringify(a));
});

Deno.test("wxbot api: the retry table over the platform's real answers (cost × retCode)", async () => {
  await using p = startSim();
  const rows: { cost: boolean; retCode: number; attempts: number; kind: string; says: RegExp }[] = [
    { cost: true, retCode: 1000, attempts: 1, kind: "wxbot_busy", says: /counted the call \(cost=true\)/ },
    { cost: true, retCode: 1003, attempts: 1, kind: "wxbot_busy", says: /cost=true/ },
    { cost: true, retCode: 1001, attempts: 1, kind: "wxbot_bad_request", says: /refused the parameters/ },
    { cost: true, retCode: 1002, attempts: 1, kind: "wxbot_contact_gone", says: /do not send to this contact/ },
    { cost: true, retCode: 1004, attempts: 1, kind: "wxbot_no_balance", says: /top up the WXBot account/ },
    {
      cost: false,
      retCode: 1000,
      attempts: MAX_RETRIES + 1,
      kind: "wxbot_busy",
      says: /an internal error .*after 4 tries.*try again in a minute/,
    },
    { cost: false, retCode: 1003, attempts: MAX_RETRIES + 1, kind: "wxbot_busy", says: /was busy .*after 4 tries/ },
    { cost: false, retCode: 1001, attempts: 1, kind: "wxbot_bad_request", says: /check the account's Token/ },
    { cost: false, retCode: 1002, attempts: 1, kind: "wxbot_contact_gone", says: /deleted or banned/ },
    { cost: false, retCode: 1004, attempts: 1, kind: "wxbot_no_balance", says: /balance or permission/ },
    { cost: false, retCode: 1099, attempts: 1, kind: "wxbot_refused", says: /did not retry/ },
  ];
  for (const row of rows) {
    const before = p.sim.sent.length;
    p.sim.failAll(row.retCode, row.cost);
    const log = new MemoryLog();
    await assert.rejects(
      api(p.apiBase, log).call(TEXT_PATH, body, "the test reply"),
      (e: unknown) =>
        e instanceof KefuError && e.kind === row.kind && row.says.test(e.message) &&
        e.data?.retCode === row.retCode && e.data?.attempts === row.attempts,
      JSON.stringify(row),
    );
    assert.equal(p.sim.sent.length - before, row.attempts, `calls the platform saw for ${JSON.stringify(row)}`);
    assert.equal(log.of("wxbot_api_retry").length, row.attempts - 1);
  }
  p.sim.failAll(undefined);
});

Deno.test("wxbot api: a retried call that then goes through is sent, once", async () => {
  await using p = startSim();
  p.sim.failNext(2, 1003);
  const a = await api(p.apiBase).call(TEXT_PATH, body, "the test reply");
  assert.deepEqual([a.ok, a.cost, a.retCode], [true, true, 0]);
  assert.deepEqual(p.sim.sent.map((s) => s.answer.retCode), [1003, 1003, 0]);
  // cost=true with ok=false after a retry: not tried again.
  p.sim.failNext(1, 1000);
  p.sim.failNext(1, 1000, true);
  await assert.rejects(api(p.apiBase).call(TEXT_PATH, body, "x"), /cost=true/);
  assert.equal(p.sim.sent.length, 5);
  // ok=true with cost=false is sent too (nothing to retry).
  p.sim.answerNext(1, { ok: true, retCode: 0, cost: false });
  assert.equal((await api(p.apiBase).call(TEXT_PATH, body, "x")).ok, true);
  assert.equal(p.sim.sent.length, 6);
});

Deno.test("wxbot api: the key goes in the query, the body as JSON; the platform's own checks answer 1001/1002", async () => {
  await using p = startSim();
  await api(p.apiBase).call(TEXT_PATH, body, "x");
  assert.deepEqual([p.sim.sent[0].op, p.sim.sent[0].key, p.sim.sent[0].body], ["sendText", KEY, body]);
  await assert.rejects(api(p.apiBase, new MemoryLog(), { key: "nope" }).call(TEXT_PATH, body, "x"), {
    name: "KefuError",
    kind: "wxbot_bad_request",
  });
  await assert.rejects(api(p.apiBase).call(TEXT_PATH, { ...body, Token: "unknown" }, "x"), {
    kind: "wxbot_contact_gone",
  });
});

Deno.test("wxbot api: a timeout is never retried and says the message may have gone out", async () => {
  let calls = 0;
  const { promise: release, resolve } = Promise.withResolvers<void>();
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, async () => {
    calls++;
    await release;
    return Response.json({ ok: true, retCode: 0, cost: true });
  });
  try {
    await assert.rejects(
      api(`http://127.0.0.1:${server.addr.port}`, new MemoryLog(), { timeoutMs: 100 }).call(TEXT_PATH, body, "x"),
      (e: unknown) =>
        e instanceof KefuError && e.kind === "wxbot_timeout" && /may or may not have been sent/.test(e.message),
    );
    assert.equal(calls, 1);
  } finally {
    resolve();
    await server.shutdown();
  }
});

Deno.test("wxbot api: an API that is not there, or answers something else, is said so and not retried", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  await assert.rejects(api(`http://127.0.0.1:${port}`).call(TEXT_PATH, body, "x"), {
    kind: "wxbot_unreachable",
  });
  let calls = 0;
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, () => {
    calls++;
    return new Response("<html>502 Bad Gateway</html>", { status: 502 });
  });
  try {
    await assert.rejects(
      api(`http://127.0.0.1:${server.addr.port}`).call(TEXT_PATH, body, "x"),
      (e: unknown) => e instanceof KefuError && e.kind === "wxbot_refused" && /HTTP 502/.test(e.message),
    );
    assert.equal(calls, 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("wxbot api: close() ends a wait between retries at once", async () => {
  await using p = startSim();
  p.sim.failAll(1003);
  const slow = new WxbotApi({
    base: p.apiBase,
    key: KEY,
    timeoutMs: 2000,
    maxRetries: 3,
    retryMinMs: 60_000,
    retryMaxMs: 60_000,
    log: new MemoryLog(),
  });
  const call = slow.call(TEXT_PATH, body, "the test reply");
  while (p.sim.sent.length === 0) await new Promise((r) => setTimeout(r, 5));
  slow.close();
  await assert.rejects(call, /kefu stopped before the test reply went out/);
});
