/**
 * Which npm PostgreSQL client kefu uses, by measurement: `postgres` (Postgres.js, v4 and v3) against `pg`
 * (node-postgres, with named prepared statements and without) on a real PostgreSQL that this script starts
 * (tests/support/postgres.ts: Debian's package, a temp dir, 127.0.0.1, fsync off unless --durable).
 *
 *   deno task bench:pg                        # about a minute
 *   deno task bench:pg --ops 2000 --rounds 2  # --json out.json writes the rows; --durable keeps fsync on
 *
 * Scenarios, each on a fresh database per client, after a warm-up, bounded in count (--ops) and time (--max-secs):
 * - insert: one `INSERT … ON CONFLICT DO NOTHING RETURNING id` (kefu's de-duplicating inbound insert; one in ten is
 *   a duplicate), one at a time and 16 at once;
 * - accept: `BEGIN; SELECT … FOR UPDATE; INSERT; UPDATE; COMMIT` on one of 1,000 contacts (the shape of kefu's
 *   accept step: the SELECT's answer decides what follows, so its round trips are sequential), 1 and 16 at once;
 * - accept 1 stmt: the same decision as one statement (data-modifying CTEs), 1 and 16 at once;
 * - pipelined: 16 inserts at once on a pool of ONE connection: a client that pipelines sends them together, one
 *   that does not queues them.
 * Per scenario: ops/s, latency p50/p99 (ms), and CPU per op (µs) of this process (the client) and of the server's
 * processes. Client and server share the machine's cores, so ops/s is a comparison, not a capacity.
 *
 * With --permissions: which Deno permissions each client needs to connect and query (child processes).
 *
 * @module
 */

import postgres4 from "postgres";
// deno-lint-ignore no-import-prefix -- compared only here: not a dependency of kefu
import postgres3 from "npm:postgres@3.4.10";
// deno-lint-ignore no-import-prefix -- compared only here: not a dependency of kefu
import pg from "npm:pg@8.23.1";
import { cpuUsage } from "node:process";
import { parseFlags, round, summarize } from "./lib.ts";
import { type PostgresServer, startPostgres } from "../tests/support/postgres.ts";

const flags = parseFlags(Deno.args, new Set(["durable", "permissions"]));
const OPS = Number(flags.get("ops") ?? 3000);
const MAX_SECS = Number(flags.get("max-secs") ?? 10);
const ROUNDS = Number(flags.get("rounds") ?? 1);
const CONC = 16;
const POOL = 16;
const CONTACTS = 1000;
const WARMUP = 300;

/** What a client must do for the scenarios. */
interface Client {
  insert(key: string, body: string): Promise<unknown>;
  accept(contact: number, body: string): Promise<void>;
  /** The same decision as one statement (data-modifying CTEs): one round trip, which a client may pipeline. */
  acceptOne(contact: number, body: string): Promise<unknown>;
  close(): Promise<void>;
}

type ClientFactory = (url: string, pool: number) => Client;

const INSERT = "INSERT INTO inbound (msg_key, body) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id";
const LOCK = "SELECT owner, version FROM contacts WHERE id = $1 FOR UPDATE";
const ADD = "INSERT INTO messages (contact_id, body) VALUES ($1, $2)";
const BUMP = "UPDATE contacts SET unread = unread + 1, version = version + 1 WHERE id = $1";
const ONE = `WITH c AS (SELECT id FROM contacts WHERE id = $1 FOR UPDATE),
  m AS (INSERT INTO messages (contact_id, body) SELECT id, $2 FROM c RETURNING contact_id)
  UPDATE contacts SET unread = unread + 1, version = version + 1 WHERE id IN (SELECT contact_id FROM m)
  RETURNING owner, version`;

// Postgres.js, either major: tagged templates, statements prepared automatically, queries pipelined.
function porsager(lib: typeof postgres4 | typeof postgres3): ClientFactory {
  return (url, pool) => {
    const sql = (lib as typeof postgres4)(url, { max: pool, onnotice: () => {} });
    return {
      insert: (key, body) =>
        sql`INSERT INTO inbound (msg_key, body) VALUES (${key}, ${body}) ON CONFLICT DO NOTHING RETURNING id`,
      async accept(contact, body) {
        await sql.begin(async (tx) => {
          const [row] = await tx`SELECT owner, version FROM contacts WHERE id = ${contact} FOR UPDATE`;
          if (!row) throw new Error(`no contact ${contact}`);
          await tx`INSERT INTO messages (contact_id, body) VALUES (${contact}, ${body})`;
          await tx`UPDATE contacts SET unread = unread + 1, version = version + 1 WHERE id = ${contact}`;
        });
      },
      acceptOne: (contact, body) => sql.unsafe(ONE, [contact, body], { prepare: true }),
      close: () => sql.end({ timeout: 5 }),
    };
  };
}

// node-postgres: a Pool; `prepared` names each statement (parsed once per connection), else the unnamed statement.
function nodePostgres(prepared: boolean): ClientFactory {
  return (url, pool) => {
    const p = new pg.Pool({ connectionString: url, max: pool });
    const q = (c: pg.Pool | pg.PoolClient, name: string, text: string, values: unknown[]) =>
      c.query(prepared ? { name, text, values } : { text, values });
    return {
      insert: (key, body) => q(p, "insert", INSERT, [key, body]),
      async accept(contact, body) {
        const c = await p.connect();
        try {
          await c.query("BEGIN");
          const { rows } = await q(c, "lock", LOCK, [contact]);
          if (!rows[0]) throw new Error(`no contact ${contact}`);
          await q(c, "add", ADD, [contact, body]);
          await q(c, "bump", BUMP, [contact]);
          await c.query("COMMIT");
        } catch (e) {
          await c.query("ROLLBACK").catch(() => {});
          throw e;
        } finally {
          c.release();
        }
      },
      acceptOne: (contact, body) => q(p, "one", ONE, [contact, body]),
      close: () => p.end(),
    };
  };
}

const CLIENTS: Record<string, ClientFactory> = {
  "postgres@4.2.0": porsager(postgres4),
  "postgres@3.4.10": porsager(postgres3),
  "pg@8.23.1 (named)": nodePostgres(true),
  "pg@8.23.1 (unnamed)": nodePostgres(false),
};

const SCHEMA = `
  CREATE TABLE inbound (id bigserial PRIMARY KEY, msg_key text NOT NULL UNIQUE, body text NOT NULL);
  CREATE TABLE contacts (id bigint PRIMARY KEY, owner text, version int NOT NULL DEFAULT 0, unread int NOT NULL DEFAULT 0);
  CREATE TABLE messages (id bigserial PRIMARY KEY, contact_id bigint NOT NULL REFERENCES contacts, body text NOT NULL);
  INSERT INTO contacts (id, owner) SELECT i, 'agent' || (i % 10) FROM generate_series(1, ${CONTACTS}) i;
`;

/** One measured scenario. */
interface Row {
  client: string;
  scenario: string;
  ops: number;
  opsPerSec: number;
  p50: number | null;
  p99: number | null;
  clientCpuUs: number;
  serverCpuUs: number;
}

/** CPU seconds of the server: the postmaster, its live backends and those it reaped (/proc: hence --allow-all). */
function serverCpuSecs(server: PostgresServer): number {
  const postmaster = Number(Deno.readTextFileSync(`${server.dataDir}/postmaster.pid`).split("\n")[0]);
  let ticks = 0;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const pid = Number(entry.name);
      // f[1] ppid; f[11], f[12] utime, stime; f[13], f[14] the same of reaped children.
      if (pid === postmaster) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      else if (Number(f[1]) === postmaster) ticks += Number(f[11]) + Number(f[12]);
    } catch { /* gone meanwhile */ }
  }
  return ticks / 100; // USER_HZ
}

/** Run `op` `ops` times with `conc` workers (or until `MAX_SECS`); latencies per op. */
async function measure(
  label: { client: string; scenario: string },
  server: PostgresServer,
  conc: number,
  ops: number,
  op: (i: number) => Promise<unknown>,
): Promise<Row> {
  const lat = new Float64Array(ops);
  let next = 0;
  let done = 0;
  const deadline = performance.now() + MAX_SECS * 1000;
  const cpu0 = cpuUsage();
  const srv0 = serverCpuSecs(server);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, async () => {
    while (next < ops && performance.now() < deadline) {
      const i = next++;
      const s = performance.now();
      await op(i);
      lat[done++] = performance.now() - s;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  const cpu = cpuUsage(cpu0);
  const srv = serverCpuSecs(server) - srv0;
  const lats = summarize(lat, done);
  return {
    ...label,
    ops: done,
    opsPerSec: Math.round(done / secs),
    p50: lats.p50,
    p99: lats.p99,
    clientCpuUs: Math.round((cpu.user + cpu.system) / done),
    serverCpuUs: Math.round(srv * 1e6 / done),
  };
}

async function benchClient(server: PostgresServer, name: string, make: ClientFactory, round_: number): Promise<Row[]> {
  const rows: Row[] = [];
  await using db = await server.createDatabase();
  await server.sql(SCHEMA, db.name);
  const body = "你好，我想问一下订单的事情。".repeat(4);
  const contact = (i: number) => 1 + ((i * 7919 + round_ * 31) % CONTACTS);
  let keys = 0;
  // One in ten keys repeats the one before it: ON CONFLICT DO NOTHING returns no row for it.
  const key = () => `${round_}-${keys % 10 === 9 ? keys++ - 1 : keys++}`;
  const client = make(db.url, POOL);
  try {
    for (let i = 0; i < WARMUP; i++) {
      await Promise.all([
        client.insert(key(), body),
        client.accept(contact(i), body),
        client.acceptOne(contact(i), body),
      ]);
    }
    const scenarios: Array<[string, number, number, (i: number) => Promise<unknown>]> = [
      ["insert, 1", 1, OPS, () => client.insert(key(), body)],
      ["insert, 16", CONC, OPS * 4, () => client.insert(key(), body)],
      ["accept tx, 1", 1, OPS, (i) => client.accept(contact(i), body)],
      ["accept tx, 16", CONC, OPS * 2, (i) => client.accept(contact(i), body)],
      ["accept 1 stmt, 1", 1, OPS, (i) => client.acceptOne(contact(i), body)],
      ["accept 1 stmt, 16", CONC, OPS * 4, (i) => client.acceptOne(contact(i), body)],
    ];
    for (const [scenario, conc, ops, op] of scenarios) {
      rows.push(await measure({ client: name, scenario }, server, conc, ops, op));
    }
  } finally {
    await client.close();
  }
  const single = make(db.url, 1);
  try {
    for (let i = 0; i < WARMUP; i++) await single.insert(key(), body);
    rows.push(
      await measure(
        { client: name, scenario: "insert, 16 on 1 conn" },
        server,
        CONC,
        OPS * 2,
        () => single.insert(key(), body),
      ),
    );
  } finally {
    await single.close();
  }
  const [messages, unread] =
    (await server.sql("SELECT (SELECT count(*) FROM messages), (SELECT sum(unread) FROM contacts)", db.name))
      .split("\t").map(Number);
  if (messages !== unread) {
    throw new Error(`${name}: ${messages} messages but ${unread} unread: a transaction was torn`);
  }
  return rows;
}

// Which permissions a client needs: connect and query in a child with fewer and fewer grants.
async function permissions(server: PostgresServer): Promise<void> {
  const scripts: Record<string, string> = {
    "postgres@4.2.0":
      `import postgres from "postgres"; const sql = postgres(URL); await sql\`select 1\`; await sql.end();`,
    "pg@8.23.1":
      `import pg from "npm:pg@8.23.1"; const c = new pg.Client(URL); await c.connect(); await c.query("select 1"); await c.end();`,
  };
  const grants = [["--allow-net=127.0.0.1"], ["--allow-net=127.0.0.1", "--allow-env"], [
    "--allow-net=127.0.0.1",
    "--allow-env",
    "--allow-read",
  ], ["--allow-net=127.0.0.1", "--allow-env", "--allow-read", "--allow-sys"]];
  for (const [name, code] of Object.entries(scripts)) {
    for (const grant of grants) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--no-prompt", ...grant, code.replaceAll("URL", JSON.stringify(server.url))],
        cwd: new URL("..", import.meta.url).pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(out.stderr).split("\n").find((l) => /NotCapable|Requires/.test(l)) ?? "";
      console.log(`${name.padEnd(16)} ${grant.join(" ").padEnd(58)} ${out.success ? "works" : `fails: ${err.trim()}`}`);
      if (out.success) break;
    }
  }
}

const server = await startPostgres({ durable: flags.has("durable") });
try {
  const version = await server.sql("SHOW server_version");
  console.log(
    `PostgreSQL ${version} (${flags.has("durable") ? "durable defaults" : "fsync off"}), Deno ${Deno.version.deno}`,
  );
  if (flags.has("permissions")) {
    await permissions(server);
  } else {
    const rows: Row[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      // Rounds in a rotated order, so that no client always runs first (cold caches) or last.
      const names = Object.keys(CLIENTS);
      for (let k = 0; k < names.length; k++) {
        const name = names[(k + r) % names.length];
        rows.push(...await benchClient(server, name, CLIENTS[name], r));
      }
    }
    print(rows);
    if (flags.has("json")) await Deno.writeTextFile(flags.get("json")!, JSON.stringify(rows, null, 2));
  }
} finally {
  await server.close();
}

// Medians over the rounds, one line per client and scenario.
function print(rows: Row[]): void {
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const groups = Map.groupBy(rows, (r) => `${r.scenario}\t${r.client}`);
  console.log(
    `\n| scenario | client | ops/s | p50 ms | p99 ms | client CPU µs/op | server CPU µs/op |\n| --- | --- | --: | --: | --: | --: | --: |`,
  );
  for (const [k, g] of groups) {
    const [scenario, client] = k.split("\t");
    const m = (f: (r: Row) => number | null) => median(g.map((r) => f(r) ?? NaN));
    console.log(
      `| ${scenario} | ${client} | ${m((r) => r.opsPerSec)} | ${round(m((r) => r.p50), 2)} | ${
        round(m((r) => r.p99), 2)
      } | ${m((r) => r.clientCpuUs)} | ${m((r) => r.serverCpuUs)} |`,
    );
  }
}
