/**
 * The PostgreSQL store measured on its own: acceptInbound one at a time and with 32 callers at once (a mix of new and
 * known users), saveReply under WeChat's message window, and a connecting agent's backlog of 100,000 waiting
 * messages paged by cursor (time, and this process's RSS while it pages). The server is a real one, started here
 * from Debian's package with PostgreSQL's durable defaults (fsync, synchronous commit), or `--url` / `DATABASE_URL`.
 *
 *     deno task bench:store-pg [--backlog 100000] [--accepts 5000] [--fast] [--url postgres://…]
 *
 * `--fast` starts the server as the tests do (fsync and synchronous commit off). Every loop is bounded in count and
 * in time (`--seconds` per phase, default 300).
 *
 * @module
 */

import type { Message } from "../src/core/message.ts";
import { openPostgresStore, type PostgresStore } from "../src/store/postgres_store.ts";
import type { InboundInput, WindowRule } from "../src/store/store.ts";
import { startPostgres } from "../tests/support/postgres.ts";
import { type CpuSample, nowMs, parseFlags, procCpu, procMem, round, summarize } from "./lib.ts";

const flags = parseFlags(Deno.args, new Set(["fast"]));
const ACCEPTS = Number(flags.get("accepts") ?? 5000);
const BACKLOG = Number(flags.get("backlog") ?? 100_000);
const PAGE = Number(flags.get("page") ?? 500);
const SECONDS = Number(flags.get("seconds") ?? 300);
const CALLERS = 32;
// One message in five is from a user the store has not seen.
const NEW_EVERY = 5;
const MESSAGE: WindowRule = { name: "message", opens: ["*"], ms: 48 * 3_600_000, quota: 5 };
const nobody = new Set<string>();

let msgId = 0;
let users = 0;

function message(user: string): Message {
  return {
    id: String(1_000_000_000_000_000n + BigInt(++msgId)),
    direction: "in",
    channel: "wx_official_account",
    account: "wx1",
    contact: user,
    agent: "",
    company: "",
    type: "text",
    content: "您好，请问我上周下的订单什么时候发货？单号 20240601",
    media: "",
    sendTime: Math.floor(Date.now() / 1000),
    name: user,
    avatar: "",
  };
}

/** A user for the next message: a new one every NEW_EVERY messages, else one seen before. */
function nextUser(): string {
  if (users === 0 || msgId % NEW_EVERY === 0) return `o${++users}`;
  return `o${1 + (msgId * 7919) % users}`;
}

// The server's processes (the postmaster and its children), when it runs here: their CPU counts with ours.
let serverPid: number | undefined;

function serverCpu(): CpuSample | null {
  if (serverPid === undefined) return null;
  let ticks = procCpu(serverPid)?.ticks ?? 0;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === serverPid) ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Gone meanwhile.
    }
  }
  return { ticks, at: nowMs() };
}

// CPU milliseconds per call between two samples (ticks are 10 ms).
function cpuPerCall(a: CpuSample | null, b: CpuSample | null, calls: number): number | null {
  return a && b && calls > 0 ? round((b.ticks - a.ticks) * 10 / calls, 3) : null;
}

/** Run `total` calls of `call` with `callers` at once; throughput and latency. Stops early past the time bound. */
async function load(name: string, total: number, callers: number, call: (i: number) => Promise<unknown>) {
  const latencies = new Float64Array(total);
  let next = 0;
  let done = 0;
  const deadline = nowMs() + SECONDS * 1000;
  const [cpu0, server0] = [procCpu("self"), serverCpu()];
  const start = nowMs();
  await Promise.all(Array.from({ length: callers }, async () => {
    while (next < total && nowMs() < deadline) {
      const i = next++;
      const t = nowMs();
      await call(i);
      latencies[done++] = nowMs() - t;
    }
  }));
  const seconds = (nowMs() - start) / 1000;
  const lat = summarize(latencies, done);
  const row = {
    name,
    calls: done,
    perSecond: Math.round(done / seconds),
    p50ms: lat.p50,
    p99ms: lat.p99,
    // CPU per call: this process (the store and its client) and the server's processes.
    kefuCpuMs: cpuPerCall(cpu0, procCpu("self"), done),
    serverCpuMs: cpuPerCall(server0, serverCpu(), done),
  };
  console.log(JSON.stringify(row));
  return row;
}

function accept(store: PostgresStore, input: Partial<InboundInput> = {}) {
  return store.acceptInbound({ message: message(nextUser()), online: ["a1", "a2", "a3"], away: nobody, ...input });
}

async function main(): Promise<void> {
  const given = flags.get("url") ?? Deno.env.get("DATABASE_URL");
  await using server = given ? undefined : await startPostgres({ durable: !flags.has("fast") });
  await using db = server ? await server.createDatabase() : undefined;
  const url = given ?? db!.url;
  if (server) serverPid = Number(Deno.readTextFileSync(`${server.dataDir}/postmaster.pid`).split("\n")[0]);
  const store = await openPostgresStore({ url });
  try {
    console.log(JSON.stringify({
      server: server ? `PostgreSQL ${server.version}, ${flags.has("fast") ? "fsync off" : "durable defaults"}` : url,
      cpus: navigator.hardwareConcurrency,
      loadAverage: Deno.loadavg(),
    }));
    await load("acceptInbound, 1 caller", ACCEPTS, 1, () => accept(store));
    await load(`acceptInbound, ${CALLERS} callers`, ACCEPTS * 4, CALLERS, () => accept(store));
    // One reply to each of the users seen, under the message window (the contact locked, the window counted).
    const replyTo = (i: number) => `o${1 + (i % users)}`;
    const reply = (i: number) =>
      store.saveReply({ ...message(replyTo(i)), id: `r${i}`, direction: "out", agent: "a1", name: "" }, [MESSAGE]);
    await load("saveReply, 1 caller", Math.min(ACCEPTS, users), 1, reply);
    await load(`saveReply, ${CALLERS} callers`, Math.min(ACCEPTS, users), CALLERS, (i) => reply(i + users));

    // The backlog: users write while nobody is online; then an agent pages through what waits.
    const before = (await store.stats()).unread;
    const backlogUsers = Math.max(1, Math.floor(BACKLOG / 10));
    let k = 0;
    await load(`acceptInbound into the backlog, ${CALLERS} callers`, BACKLOG, CALLERS, () =>
      store.acceptInbound({
        message: message(`w${1 + (k++ % backlogUsers)}`),
        online: [],
        away: nobody,
      }));
    const waiting = (await store.stats()).unread - before;
    const rssBefore = procMem("self")?.rssKb ?? 0;
    let peak = rssBefore;
    let cursor = 0;
    let paged = 0;
    let pages = 0;
    const pageLatencies = new Float64Array(Math.ceil(waiting / PAGE) + 1);
    const t0 = nowMs();
    const deadline = t0 + SECONDS * 1000;
    while (nowMs() < deadline) {
      const t = nowMs();
      const page = await store.unacked("", PAGE, cursor);
      pageLatencies[pages++] = nowMs() - t;
      if (page.length === 0) break;
      paged += page.length;
      cursor = page[page.length - 1].seq;
      peak = Math.max(peak, procMem("self")?.rssKb ?? 0);
    }
    const pageStats = summarize(pageLatencies, pages);
    console.log(JSON.stringify({
      name: `unacked paging of the waiting backlog, ${PAGE} per page`,
      waiting,
      paged,
      seconds: round((nowMs() - t0) / 1000, 2),
      pageP50ms: pageStats.p50,
      pageP99ms: pageStats.p99,
      rssBeforeMiB: round(rssBefore / 1024, 1),
      rssPeakMiB: round(peak / 1024, 1),
    }));
    const stats = await store.stats();
    console.log(JSON.stringify({ name: "stats", ...stats, path: undefined }));
  } finally {
    await store.close();
  }
}

await main();
