/**
 * The reports' SQL at scale (issue 22): 1,000,000 messages over 30 days, 50 agents, 20,000 users, seeded straight
 * into a store's tables (SQLite: one transaction of prepared inserts; PostgreSQL: batched `INSERT … SELECT unnest`),
 * then each report statement timed (median of `--runs`) for a 30-day and a 1-day range, and the whole
 * `Store.report` as the API calls it (SQLite: on the store's background connection).
 *
 *     deno task bench:reports [--messages 1000000] [--runs 5] [--engines sqlite,postgres] [--seconds 900]
 *
 * PostgreSQL is a real server started here (as the tests start it: fsync off, which only speeds up the seeding).
 * Every loop is bounded in count, and the whole run in time (`--seconds`).
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import process from "node:process";
import postgres from "postgres";
import { hourCalendar } from "../src/reports/calendar.ts";
import { openPostgresStore } from "../src/store/postgres_store.ts";
import { POSTGRES_REPORTS } from "../src/store/postgres_reports.ts";
import { factsSql, messagesSql } from "../src/store/reports_sql.ts";
import { SQLITE_REPORTS } from "../src/store/sqlite_reports.ts";
import { reportDays } from "../src/store/report_days.ts";
import { SqliteStore } from "../src/store/sqlite_store.ts";
import type { Store } from "../src/store/store.ts";
import { startPostgres } from "../tests/support/postgres.ts";
import { nowMs, parseFlags, round } from "./lib.ts";

const flags = parseFlags(Deno.args, new Set(["explain"]));
const MESSAGES = Number(flags.get("messages") ?? 1_000_000);
const RUNS = Number(flags.get("runs") ?? 5);
const SECONDS = Number(flags.get("seconds") ?? 900);
const ENGINES = (flags.get("engines") ?? "sqlite,postgres").split(",");
const AGENTS = 50;
const USERS = 20_000;
const DAYS = 30;
const deadline = Date.now() + SECONDS * 1000;

// The 30 days are 2026-03-01..30 (Asia/Shanghai); the 1-day range is one in the middle.
const FROM = "2026-03-01";
const TO = "2026-03-30";
const START = Date.UTC(2026, 2, 1) / 1000 - 8 * 3600;

/** A small deterministic generator (mulberry32), so that both engines get the same rows. */
function random(seed: number): () => number {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const CHANNELS = [
  ["wx_official_account", "wx1"],
  ["wx_official_account", "wx1"],
  ["wx_official_account", "wx1"],
  ["http_push", ""],
  ["pc_hook", "wxid_shop"],
  ["wxbot", "bot1"],
] as const;

/** A message row in the tables' column order (MESSAGE_COLUMNS). */
type Row = [string, string, string, string, string, string, string, string, number, string | null, string, number];
const MESSAGE_COLUMNS = "id, direction, channel, account, contact, agent, type, content, send_time, extra, state, " +
  "stored_at";
type ContactRow = [string, string, string, string, string, string, number, number];
const CONTACT_COLUMNS = "id, channel, account, user_id, agent, status, created_at, queued_at";

/**
 * The rows, user by user: conversations of 1–4 user messages answered by the user's agent, ~10 messages each, most
 * resolved (a `resolved` line), one in ten waiting in the queue first (its first messages with no agent, then a
 * `taken` line); each user's conversations spread over the 30 days in time order.
 */
function* generate(total: number): Generator<{ contact?: ContactRow; messages: Row[] }> {
  const rnd = random(22);
  const perUser = Math.max(1, Math.round(total / USERS));
  let made = 0;
  let id = 0;
  for (let u = 0; u < USERS && made < total; u++) {
    const [channel, account] = CHANNELS[u % CHANNELS.length];
    const user = `o${u}`;
    const agent = `agent${u % AGENTS}`;
    const want = Math.min(perUser, total - made);
    const rows: Row[] = [];
    // About ten messages a conversation, its start at a random time of its share of the 30 days.
    const conversations = Math.max(1, Math.round(want / 10));
    let k = 0;
    let t = START;
    const row = (dir: string, who: string, type: string, extra: string | null) => {
      rows.push([
        `m${++id}`,
        dir,
        channel,
        account,
        user,
        who,
        type,
        "您好，请问订单什么时候发货？",
        t,
        extra,
        dir === "in" ? "acked" : "sent",
        t * 1000,
      ]);
    };
    while (rows.length < want) {
      t = Math.max(t, START + Math.floor((k + rnd()) * (DAYS * 86400 / conversations)));
      k++;
      const waits = rnd() < 0.1;
      const asks = 1 + Math.floor(rnd() * 4);
      for (let i = 0; i < asks && rows.length < want; i++) {
        row("in", waits ? "" : agent, "text", null);
        t += 5 + Math.floor(rnd() * 60);
      }
      if (waits && rows.length < want) {
        t += 30 + Math.floor(rnd() * 600);
        row("out", agent, "system", `{"action":"taken","by":"${agent}"}`);
      }
      for (let turn = 0; turn < 4 && rows.length < want; turn++) {
        t += 10 + Math.floor(rnd() * 300);
        row("out", agent, "text", null);
        t += 10 + Math.floor(rnd() * 600);
        if (rows.length < want && rnd() < 0.7) row("in", agent, "text", null);
      }
      if (rows.length < want && rnd() < 0.8) {
        t += 60;
        row("out", agent, "system", `{"action":"resolved","by":"${agent}"}`);
      }
    }
    made += rows.length;
    const contact: ContactRow = [user, channel, account, user, agent, "open", rows[0][8], 0];
    yield { contact, messages: rows };
  }
}

function seedSqlite(path: string): number {
  try {
    // `--keep DIR` a second time: the file seeded before.
    const db = new DatabaseSync(path, { readOnly: true });
    const { n } = db.prepare("SELECT count(*) AS n FROM messages").get() as { n: number };
    db.close();
    if (n === MESSAGES) {
      console.log(`sqlite: ${n} messages seeded before`);
      return n;
    }
  } catch {
    // not seeded yet
  }
  new SqliteStore({ path, checkpointMs: 0 }).close();
  const db = new DatabaseSync(path);
  const t0 = nowMs();
  db.exec("BEGIN");
  const m = db.prepare(
    `INSERT INTO messages (${MESSAGE_COLUMNS}, company, media, name, avatar) ` +
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', '', '', '')",
  );
  const c = db.prepare(
    `INSERT INTO contacts (${CONTACT_COLUMNS}, name, avatar, company) VALUES (?, ?, ?, ?, ?, ?, ?, ?, '', '', '')`,
  );
  let n = 0;
  for (const { contact, messages } of generate(MESSAGES)) {
    if (Date.now() > deadline) throw new Error("out of time while seeding SQLite");
    if (contact) c.run(...contact);
    for (const r of messages) m.run(...r);
    n += messages.length;
  }
  db.exec("COMMIT");
  db.exec("ANALYZE");
  const ms = nowMs() - t0;
  db.close();
  console.log(`sqlite: seeded ${n} messages in ${round(ms / 1000, 1)} s (${Math.round(n / (ms / 1000))}/s)`);
  return n;
}

async function seedPostgres(url: string): Promise<number> {
  await (await openPostgresStore({ url })).close();
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const t0 = nowMs();
  let n = 0;
  let batch: Row[] = [];
  let contacts: ContactRow[] = [];
  const col = <T>(rows: T[][], i: number) => rows.map((r) => r[i]);
  const flush = async () => {
    if (contacts.length > 0) {
      await sql.unsafe(
        `INSERT INTO contacts (${CONTACT_COLUMNS}, name, avatar, company) SELECT *, '', '', '' FROM unnest(` +
          "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[])",
        [0, 1, 2, 3, 4, 5, 6, 7].map((i) => col(contacts, i)) as never[],
      );
    }
    if (batch.length > 0) {
      await sql.unsafe(
        `INSERT INTO messages (${MESSAGE_COLUMNS}, company, media, name, avatar) SELECT *, '', '', '', '' FROM ` +
          "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], " +
          "$9::bigint[], $10::text[], $11::text[], $12::bigint[])",
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].map((i) => col(batch, i)) as never[],
      );
    }
    n += batch.length;
    batch = [];
    contacts = [];
  };
  for (const { contact, messages } of generate(MESSAGES)) {
    if (Date.now() > deadline) throw new Error("out of time while seeding PostgreSQL");
    if (contact) contacts.push(contact);
    batch.push(...messages);
    if (batch.length >= 20_000) await flush();
  }
  await flush();
  await sql.unsafe("VACUUM ANALYZE messages");
  await sql.unsafe("VACUUM ANALYZE contacts");
  const ms = nowMs() - t0;
  await sql.end();
  console.log(`postgres: seeded ${n} messages in ${round(ms / 1000, 1)} s (${Math.round(n / (ms / 1000))}/s)`);
  return n;
}

/** CPU milliseconds so far of the processes that do the work: this one (SQLite), or the PostgreSQL server's. */
let cpuOf: () => number = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** The ticks of every process whose parent is `pid`, and its own, in ms (Linux /proc). */
function treeCpuMs(pid: number): number {
  const tick = 10; // USER_HZ = 100 on Linux
  let ms = 0;
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${e.name}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(e.name) === pid || Number(f[1]) === pid) ms += (Number(f[11]) + Number(f[12])) * tick;
    } catch {
      // gone meanwhile
    }
  }
  return ms;
}

/** The median wall time and CPU time of `RUNS` runs (the machine may be shared: CPU time is the work done). */
async function median(what: string, run: () => Promise<unknown> | unknown): Promise<{ ms: number; cpu: number }> {
  const times: number[] = [];
  const cpus: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    if (Date.now() > deadline) throw new Error(`out of time while timing ${what}`);
    const t0 = nowMs();
    const c0 = cpuOf();
    await run();
    times.push(nowMs() - t0);
    cpus.push(cpuOf() - c0);
  }
  const mid = (xs: number[]) => round(xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)], 0);
  return { ms: mid(times), cpu: mid(cpus) };
}

const RANGES = { "30 days": [FROM, TO], "1 day": ["2026-03-15", "2026-03-15"] } as const;

interface Line {
  engine: string;
  range: string;
  messages: { ms: number; cpu: number };
  facts: { ms: number; cpu: number };
  /** The first report of a store (no day kept yet), then the next ones (the days over kept). */
  cold: { ms: number; cpu: number };
  report: { ms: number; cpu: number };
  /** The next report after a message came in for the range's last day (as today's do): that day computed again. */
  changed: { ms: number; cpu: number };
}

async function timeEngine(
  engine: string,
  run: (sql: string, params: unknown[]) => Promise<unknown>,
  open: () => Promise<Store>,
  lines: Line[],
): Promise<void> {
  const d = engine === "sqlite" ? SQLITE_REPORTS : POSTGRES_REPORTS;
  for (const [range, [from, to]] of Object.entries(RANGES)) {
    const hours = hourCalendar(from, to);
    const cal = JSON.stringify(hours);
    const s = hours[0].s;
    const e = hours[hours.length - 1].e;
    if (flags.has("explain") && engine === "postgres") {
      for (const [name, text] of [["messages", messagesSql(d)], ["facts", factsSql(d, reportDays(hours))]]) {
        const plan = await run(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, [cal, s, e]) as { "QUERY PLAN": string }[];
        console.log(`-- ${engine} ${range} ${name}\n${plan.map((r) => r["QUERY PLAN"]).join("\n")}`);
      }
    }
    const messages = await median("messages", () => run(messagesSql(d), [cal, s, e]));
    const facts = await median("facts", () => run(factsSql(d, reportDays(hours)), []));
    // A store of its own: its cache of days starts empty.
    const store = await open();
    try {
      // Started first (SQLite: its background worker) by a report of a day with no message.
      await store.report({ hours: hourCalendar("2020-01-01", "2020-01-01") });
      const runs = RUNS;
      const cold = await (async () => {
        const t0 = nowMs();
        const c0 = cpuOf();
        await store.report({ hours });
        return { ms: round(nowMs() - t0, 0), cpu: round(cpuOf() - c0, 0) };
      })();
      const report = await median(`report ×${runs}`, () => store.report({ hours }));
      const r = await store.report({ hours });
      // A late message in the range's last day (then taken out again, so that `--keep` finds the file as seeded).
      const late = hours[hours.length - 1].s + 60;
      await run(
        `INSERT INTO messages (${MESSAGE_COLUMNS}, company, media, name, avatar) VALUES ('bench-late', 'in', ` +
          `'wxbot', 'bot1', 'o5', 'agent5', 'text', '迟到的消息', ${late}, NULL, 'acked', 0, '', '', '', '')`,
        [],
      );
      let changed: { ms: number; cpu: number };
      try {
        const t0 = nowMs();
        const c0 = cpuOf();
        await store.report({ hours });
        changed = { ms: round(nowMs() - t0, 0), cpu: round(cpuOf() - c0, 0) };
      } finally {
        await run("DELETE FROM messages WHERE id = 'bench-late'", []);
      }
      const inRange = r.messages.filter((m) => m.bucket === "day").reduce((a, m) => a + m.n, 0);
      const t = (x: { ms: number; cpu: number }) => `${x.ms} ms (CPU ${x.cpu} ms)`;
      console.log(
        `${engine} ${range}: ${inRange} messages in range; messages ${t(messages)}, facts ${t(facts)}, ` +
          `Store.report first ${t(cold)}, then ${t(report)}, after a late message in its last day ${t(changed)}`,
      );
      lines.push({ engine, range, messages, facts, cold, report, changed });
    } finally {
      await store.close();
    }
  }
}

const lines: Line[] = [];
// `--keep DIR`: the SQLite file is seeded there and kept (to look at its query plans).
const keep = flags.get("keep");
const dir = keep ?? await Deno.makeTempDir({ prefix: "kefu-reports-bench-" });
try {
  if (ENGINES.includes("sqlite")) {
    const path = `${dir}/kefu.db`;
    seedSqlite(path);
    const db = new DatabaseSync(path);
    // As the store's background connection, which runs the reports.
    db.exec("PRAGMA mmap_size = 268435456");
    try {
      await timeEngine(
        "sqlite",
        (sql, p) => {
          return Promise.resolve(db.prepare(sql).all(...p as never[]));
        },
        () => Promise.resolve(new SqliteStore({ path })),
        lines,
      );
    } finally {
      db.close();
    }
    console.log(`sqlite: file ${round(Deno.statSync(path).size / 2 ** 20, 0)} MiB`);
  }
  if (ENGINES.includes("postgres")) {
    await using server = await startPostgres({ settings: { shared_buffers: "256MB", work_mem: "64MB" } });
    await using db = await server.createDatabase();
    await seedPostgres(db.url);
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    // The work is the server's: its postmaster's processes (each connection's backend, parallel workers).
    const postmaster = Number(Deno.readTextFileSync(`${server.dataDir}/postmaster.pid`).split("\n")[0]);
    cpuOf = () => treeCpuMs(postmaster);
    try {
      // As the store runs them (postgres_reports.ts): without JIT.
      await sql.unsafe("SET jit = off");
      await timeEngine(
        "postgres",
        (text, p) => sql.unsafe(text, p as never[]),
        () => openPostgresStore({ url: db.url }),
        lines,
      );
    } finally {
      await sql.end();
    }
  }
  console.log(JSON.stringify({ messages: MESSAGES, runs: RUNS, lines }));
} finally {
  if (keep === undefined) await Deno.remove(dir, { recursive: true });
}
