/**
 * The cluster benchmark's setups and knobs (environment variables), read and checked.
 *
 * @module
 */

/** One setup: how many nodes on which store, and whether Redis and nginx are in front. */
export interface Setup {
  id: string;
  store: "sqlite" | "postgres";
  nodes: number;
  redis: boolean;
  nginx: boolean;
}

/** `sqlite-1`, `pg-1` or `cluster-N` (1 ≤ N ≤ 8). */
export function parseSetup(id: string): Setup {
  if (id === "sqlite-1") return { id, store: "sqlite", nodes: 1, redis: false, nginx: false };
  if (id === "pg-1") return { id, store: "postgres", nodes: 1, redis: false, nginx: false };
  const m = id.match(/^cluster-(\d)$/);
  if (m && Number(m[1]) >= 1 && Number(m[1]) <= 8) {
    return { id, store: "postgres", nodes: Number(m[1]), redis: true, nginx: true };
  }
  throw new Error(`SETUPS: unknown setup ${JSON.stringify(id)}; known: sqlite-1, pg-1, cluster-1 … cluster-8`);
}

/** The knobs, all environment variables. */
export interface Settings {
  setups: string[];
  reps: number;
  agents: number;
  users: number;
  conc: number;
  requests: number;
  duration: number;
  rate: number;
  rateSecs: number;
  drain: number;
  /** Pin every server process to serverCpu and the loader to loadCpu (taskset), as the harness does. */
  pin: boolean;
  serverCpu: number;
  loadCpu: number;
  nginxWorkers: number;
  /** Seconds of doing nothing after the start, to read what the setup costs idle (presence, heartbeats). */
  idleSecs: number;
  /** A closed loop before the measured ones, not measured: JIT warm-up and the users' assignments done. */
  warmupSecs: number;
  /** nginx's choice of a node per request. */
  balance: "random" | "round-robin";
  /** PostgreSQL's synchronous_commit (fsync stays on). */
  pgSync: "on" | "off";
  /** Load pg_stat_statements and list the statements of each setup's open loop. */
  pgStatements: boolean;
  serverEnv: Record<string, string>;
  /** Extra flags of each node's `deno run`, e.g. `--cpu-prof --cpu-prof-dir=DIR`. */
  serverFlags: string[];
  loadgen: string;
  res: string;
}

const NUMBERS: [keyof Settings, string, number][] = [
  ["reps", "REPS", 1],
  ["agents", "AGENTS", 200],
  ["users", "USERS", 10_000],
  ["conc", "CONC", 64],
  ["requests", "REQUESTS", 200_000],
  ["duration", "DURATION", 5],
  ["rate", "RATE", 2000],
  ["rateSecs", "RATE_SECS", 5],
  ["drain", "DRAIN", 3],
  ["serverCpu", "SERVER_CPU", 0],
  ["loadCpu", "LOAD_CPU", 1],
  ["nginxWorkers", "NGINX_WORKERS", 1],
  ["idleSecs", "IDLE_SECS", 3],
  ["warmupSecs", "WARMUP_SECS", 0],
];

/** `--help`: the flags and every knob with its default. */
export const USAGE = `usage: deno task bench:cluster [--json FILE] [--keep] [--help]

knobs (environment variables, defaults):
  SETUPS        sqlite-1,pg-1,cluster-1,cluster-2,cluster-3   (sqlite-1, pg-1, cluster-N with 1 ≤ N ≤ 8)
  REPS          1       rounds; setups interleaved, medians in the table (lost and the like: sums)
  AGENTS        200     agent sockets (through nginx in cluster-N)
  USERS         10000   WeChat users, round-robin
  CONC          64      keep-alive HTTP connections of the loader
  REQUESTS      200000  closed loop: requests (cap)
  DURATION      5       closed loop: seconds (cap)
  RATE          2000    open loop: messages per second
  RATE_SECS     5       open loop: seconds
  DRAIN         3       longest wait for deliveries after a phase, s
  PIN           1       1: every server process on SERVER_CPU, the loader on LOAD_CPU (taskset); 0: no pinning
  SERVER_CPU    0
  LOAD_CPU      1
  NGINX_WORKERS 1       nginx worker_processes
  NGINX_BALANCE random  random or round-robin (per request, no stickiness either way)
  IDLE_SECS     3       after the start, seconds of no load: the setup's idle CPU (cores)
  WARMUP_SECS   0       a closed loop of this many seconds before the measured phases (JIT, users assigned)
  PG_SYNC       off     PostgreSQL synchronous_commit (fsync stays on); on: every commit waits for its flush
  PG_STATEMENTS 0       1: pg_stat_statements on; the open loop's statements per message are listed under the table
  SERVER_ENV            extra kefu environment, "K=V K2=V2"
  SERVER_FLAGS          extra flags of each node's deno run, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  LOADGEN               path of the harness's loadgen.mjs (default ../shared/bench/load/loadgen.mjs)
  RES                   results directory (default $TMPDIR/kefu-cluster-bench/<time>)`;

/** Settings from the environment, checked. */
export function readSettings(env: Record<string, string | undefined>): Settings {
  const out: Record<string, unknown> = {};
  for (const [key, name, def] of NUMBERS) {
    const raw = env[name] ?? String(def);
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`${name} must be a whole number ≥ 0, got ${JSON.stringify(raw)}`);
    }
    out[key] = n;
  }
  const s = out as unknown as Settings;
  s.setups = (env.SETUPS ?? "sqlite-1,pg-1,cluster-1,cluster-2,cluster-3").split(",").map((x) => x.trim())
    .filter((x) => x !== "");
  for (const id of s.setups) parseSetup(id);
  if (s.setups.length === 0) throw new Error("SETUPS is empty");
  const pin = env.PIN ?? "1";
  if (pin !== "0" && pin !== "1") throw new Error(`PIN must be 0 or 1, got ${JSON.stringify(pin)}`);
  s.pin = pin === "1";
  const balance = env.NGINX_BALANCE ?? "random";
  if (balance !== "random" && balance !== "round-robin") {
    throw new Error(`NGINX_BALANCE must be random or round-robin, got ${JSON.stringify(balance)}`);
  }
  s.balance = balance;
  const sync = env.PG_SYNC ?? "off";
  if (sync !== "on" && sync !== "off") throw new Error(`PG_SYNC must be on or off, got ${JSON.stringify(sync)}`);
  s.pgSync = sync;
  const statements = env.PG_STATEMENTS ?? "0";
  if (statements !== "0" && statements !== "1") {
    throw new Error(`PG_STATEMENTS must be 0 or 1, got ${JSON.stringify(statements)}`);
  }
  s.pgStatements = statements === "1";
  s.serverEnv = Object.fromEntries(
    (env.SERVER_ENV ?? "").split(/\s+/).filter((p) => p !== "").map((p) => {
      const eq = p.indexOf("=");
      if (eq < 1) throw new Error(`SERVER_ENV: expected K=V, got ${JSON.stringify(p)}`);
      return [p.slice(0, eq), p.slice(eq + 1)];
    }),
  );
  s.serverFlags = (env.SERVER_FLAGS ?? "").split(/\s+/).filter((f) => f !== "");
  for (const f of s.serverFlags) {
    if (!f.startsWith("--")) throw new Error(`SERVER_FLAGS: expected --flags, got ${JSON.stringify(f)}`);
  }
  s.loadgen = env.LOADGEN ?? "";
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "-");
  s.res = env.RES ?? `${env.TMPDIR ?? "/tmp"}/kefu-cluster-bench/${stamp}`;
  if (s.reps < 1 || s.agents < 1 || s.users < 1 || s.conc < 1 || s.nginxWorkers < 1) {
    throw new Error("REPS, AGENTS, USERS, CONC and NGINX_WORKERS must be at least 1");
  }
  return s;
}
