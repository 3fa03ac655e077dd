/**
 * `deno task bench:cluster`: kefu as a cluster behind a real load balancer, measured with the shared harness's load
 * generator (`../shared/bench/load/loadgen.mjs`). For each setup, on fresh servers (a fresh DATA_DIR per node and a
 * fresh database per start):
 *
 * - `sqlite-1`: one node on SQLite, no nginx (the shipped single process);
 * - `pg-1`: one node on PostgreSQL without Redis, no nginx;
 * - `cluster-N`: N nodes on one PostgreSQL and one redis-server, behind nginx (round robin, WebSocket upgrade, no
 *   stickiness); the load generator's webhooks and agents both go through nginx.
 *
 * Each setup runs the harness's `check` (first round), `max` (closed loop: delivered/s) and `rate` (open loop at
 * RATE msg/s: end-to-end p50/p99), and the CPU time of every server process (kefu nodes, PostgreSQL's postmaster and
 * backends, Redis, nginx) is read from /proc before and after each phase: CPU per message. One table on stdout
 * (progress on stderr), the results as JSON in RES (and --json FILE).
 *
 *   deno task bench:cluster                               # all five setups, one round, about 3 min
 *   SETUPS=sqlite-1,cluster-3 REPS=3 deno task bench:cluster --json out.json
 *
 * Every child is capped in time and stopped on exit, on failure, on Ctrl-C and on SIGTERM.
 *
 * @module
 */

import { type PostgresDatabase, type PostgresServer, startPostgres } from "../tests/support/postgres.ts";
import { type RedisServer, startRedis } from "../tests/support/redis.ts";
import { parseFlags, round, sleep } from "./lib.ts";
import { loadgenCandidates, type LoadgenResult, prepareLoadgen, startLoadgen } from "./cluster/loadgen.ts";
import { findNginx, nginxCommand } from "./cluster/nginx.ts";
import {
  busyPercent,
  busySeconds,
  cpuDelta,
  descendants,
  groupPids,
  loadAverage,
  type MachineStat,
  machineStat,
  pinTree,
  processTable,
  sampleCpu,
  sampleKnown,
} from "./cluster/procs.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

// ---------------------------------------------------------------- settings

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

const USAGE = `usage: deno task bench:cluster [--json FILE] [--keep] [--help]

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

// ---------------------------------------------------------------- processes

const children = new Set<Deno.ChildProcess>();
/** Daemons (PostgreSQL, Redis) and databases: closed on exit like the children. */
const closers = new Set<() => Promise<void>>();
let tmpRoot = "";
let keepTmp = false;
let stopping = false;

function progress(text: string): void {
  if (!stopping) console.error(`bench:cluster: ${text}`);
}

async function stopChild(child: Deno.ChildProcess, graceMs: number): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* already gone */ }
  const gone = await Promise.race([child.status.then(() => true), sleep(graceMs).then(() => false)]);
  if (!gone) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
  }
  children.delete(child);
}

async function cleanup(): Promise<void> {
  stopping = true;
  await Promise.all([...children].map((c) => stopChild(c, 3000)));
  for (const close of [...closers].reverse()) await close().catch(() => {});
  closers.clear();
  if (tmpRoot && !keepTmp) await Deno.remove(tmpRoot, { recursive: true }).catch(() => {});
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

function tail(path: string, lines = 12): string {
  try {
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function answers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

/** A child started with its output in `log`, up once `port` answers /healthz (60 s at most). */
async function startServing(argv: string[], env: Record<string, string>, log: string, port: number, what: string) {
  if (stopping) throw new Error("stopping");
  // sh: open files up to the hard limit (10k sockets), then exec, so that the pid is the program's own.
  const child = new Deno.Command("sh", {
    args: ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; log=$1; shift; exec "$@" >"$log" 2>&1', "sh", log, ...argv],
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  children.add(child);
  let exited = false;
  child.status.then(() => exited = true);
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !exited && !stopping) {
    if (await answers(port)) return child;
    await sleep(50);
  }
  await stopChild(child, 2000);
  throw new Error(`${what} did not start (${exited ? "it exited" : "no answer on /healthz in 60 s"}):\n${tail(log)}`);
}

// Only what Deno itself needs from the caller's environment: kefu's settings never leak in from the shell.
const PASSED_VARS =
  /^(PATH|HOME|USER|LANG|LC_\w+|TZ|TMPDIR|XDG_\w+|DENO_\w+|NPM_CONFIG_\w+|https?_proxy|HTTPS?_PROXY)$/;

function baseEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(Deno.env.toObject()).filter(([k]) => PASSED_VARS.test(k)));
}

const SERVER_PERMS = ["--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-sys"];
const V8_FLAGS = "--v8-flags=--max-semi-space-size=32"; // as `deno task start` and the compiled binary ship

// ---------------------------------------------------------------- one setup

/** What one phase measured. */
export interface PhaseRun {
  loadgen: LoadgenResult;
  wallS: number;
  /** CPU seconds per group of server processes (kefu, postgres, redis, nginx) over the phase. */
  cpuS: Record<string, number>;
  /** CPU µs per accepted message, per group and in total. */
  cpuUsPerMsg: Record<string, number>;
  /** The loader's CPU seconds from its first request to its last answer (its own loader_cpu_pct). */
  loaderCpuS: number;
  /** CPU seconds of everything else on the machine meanwhile (other people's work): busy − ours. */
  othersCpuS: number;
  /**
   * Share of the accepted messages that came from a user the store had not seen (each costs an assignment): the
   * loader sends its users round-robin from the first, so the closed loop's first USERS messages are all new users
   * and the open loop's are new until it passes the users the closed loop reached.
   */
  newUserShare: number;
  /** Busy % of each core over the phase. */
  coreBusyPct: number[];
  loadAvg: [number, number, number];
}

/** One start of one setup. */
export interface SetupRun {
  setup: string;
  round: number;
  check?: LoadgenResult;
  /** CPU of each process group while nothing was sent, in cores (CPU seconds per second). */
  idleCores?: Record<string, number>;
  warmup?: PhaseRun;
  max?: PhaseRun;
  rate?: PhaseRun;
  /** With PG_STATEMENTS=1: the open loop's statements, most execution time first. */
  statements?: Statement[];
  /** Pids of each group, to see what was measured. */
  processes: Record<string, number[]>;
  error?: string;
}

const GROUPS = ["kefu", "postgres", "redis", "nginx"] as const;

/** One row of pg_stat_statements. */
export interface Statement {
  calls: number;
  totalMs: number;
  rows: number;
  query: string;
}

const STATEMENTS_SQL = `SELECT calls, round(total_exec_time::numeric, 1), rows,
  left(regexp_replace(query, '\\s+', ' ', 'g'), 200)
  FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
  ORDER BY total_exec_time DESC LIMIT 15`;

async function readStatements(pg: PostgresServer, db: string): Promise<Statement[]> {
  const text = await pg.sql(STATEMENTS_SQL, db);
  return text.split("\n").filter((l) => l !== "").map((line) => {
    const [calls, totalMs, rows, query] = line.split("\t");
    return { calls: Number(calls), totalMs: Number(totalMs), rows: Number(rows), query };
  });
}

function selfTicks(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** One reading during a phase. */
interface Sample {
  t: number;
  cpu: Record<string, number>;
  machine: MachineStat;
  self: number;
}

// How often the server processes' CPU is read while the loader runs: the phase's window is cut from these.
const SAMPLE_MS = 100;

/**
 * One loadgen invocation, with the servers' CPU time read every 100 ms. The window charged to the messages is the
 * loader's own: from its first request to its exit (its elapsed_s, then its drain), so the agents' handshakes
 * before it and the idle time around it are not divided by the messages.
 */
async function phase(
  s: Settings,
  script: string,
  groups: Record<string, number[]>,
  args: string[],
  capS: number,
  knownUsers: number,
): Promise<PhaseRun> {
  const loadAvg = loadAverage();
  const pids = groupPids(groups);
  const samples: Sample[] = [];
  const take = () =>
    samples.push({ t: performance.now(), cpu: sampleKnown(pids), machine: machineStat(), self: selfTicks() });
  take();
  const timer = setInterval(take, SAMPLE_MS);
  const run = startLoadgen(script, s.pin ? ["taskset", "-c", String(s.loadCpu)] : [], args, capS);
  children.add(run.child);
  let loadgen: LoadgenResult;
  try {
    loadgen = await run.result;
  } finally {
    clearInterval(timer);
    children.delete(run.child);
  }
  // The last reading scans /proc again, so that a backend started during the phase is counted too.
  const end: Sample = { t: performance.now(), cpu: sampleCpu(groups), machine: machineStat(), self: selfTicks() };
  const elapsedS = Number(loadgen.elapsed_s ?? 0);
  const drainS = Number(loadgen.drain_ms ?? 0) / 1000;
  // + 0.1 s: the loader closes its sockets and exits 50 ms after printing.
  const startAt = end.t - (elapsedS + drainS + 0.1) * 1000;
  const first = samples.findLast((x) => x.t <= startAt) ?? samples[0];
  const wallS = (end.t - first.t) / 1000;
  const cpuS = cpuDelta(first.cpu, end.cpu);
  const loaderCpuS = Number(loadgen.loader_cpu_pct ?? 0) / 100 * elapsedS;
  const oursS = Object.values(cpuS).reduce((a, b) => a + b, 0) + loaderCpuS + (end.self - first.self);
  const accepted = Number(loadgen.accepted ?? 0);
  const cpuUsPerMsg: Record<string, number> = {};
  if (accepted > 0) {
    let total = 0;
    for (const [k, v] of Object.entries(cpuS)) {
      cpuUsPerMsg[k] = round(v / accepted * 1e6, 1);
      total += v;
    }
    cpuUsPerMsg.total = round(total / accepted * 1e6, 1);
  }
  return {
    loadgen,
    wallS: round(wallS, 2),
    cpuS: Object.fromEntries(Object.entries(cpuS).map(([k, v]) => [k, round(v, 2)])),
    cpuUsPerMsg,
    loaderCpuS: round(loaderCpuS, 2),
    newUserShare: accepted > 0 ? round(Math.max(0, Math.min(accepted, s.users) - knownUsers) / accepted, 3) : 0,
    othersCpuS: round(Math.max(0, busySeconds(first.machine, end.machine) - oursS), 2),
    coreBusyPct: busyPercent(first.machine, end.machine).cores,
    loadAvg,
  };
}

function postmasterPid(pg: PostgresServer): number {
  const pid = Number(Deno.readTextFileSync(`${pg.dataDir}/postmaster.pid`).split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`cannot read the postmaster's pid in ${pg.dataDir}`);
  return pid;
}

function redisPid(redis: RedisServer): number {
  return Number(Deno.readTextFileSync(`${redis.dir}/redis.pid`).trim());
}

async function runSetup(s: Settings, setup: Setup, roundNo: number, pg: PostgresServer | undefined, script: string) {
  const out: SetupRun = { setup: setup.id, round: roundNo, processes: {} };
  const pinArgs = s.pin ? ["taskset", "-c", String(s.serverCpu)] : [];
  const nodes: Deno.ChildProcess[] = [];
  let nginx: Deno.ChildProcess | undefined;
  let db: PostgresDatabase | undefined;
  let redis: RedisServer | undefined;
  const dropDb = () => db?.drop() ?? Promise.resolve();
  const closeRedis = () => redis?.close() ?? Promise.resolve();
  const dir = await Deno.makeTempDir({ dir: tmpRoot, prefix: `${setup.id}-r${roundNo}-` });
  await Deno.chmod(dir, 0o755); // nginx's workers run as nobody
  try {
    if (setup.store === "postgres") {
      if (!pg) throw new Error("no PostgreSQL");
      db = await pg.createDatabase();
      closers.add(dropDb);
      if (s.pgStatements) await pg.sql("CREATE EXTENSION pg_stat_statements", db.name);
    }
    if (setup.redis) {
      redis = await startRedis();
      closers.add(closeRedis);
      if (s.pin) await pinTree(redisPid(redis), s.serverCpu);
      progress(`${setup.id}: Redis on port ${redis.port}, pid ${redisPid(redis)}`);
    }
    const ports = Array.from({ length: setup.nodes }, () => freePort());
    progress(`${setup.id} (round ${roundNo}): starting ${setup.nodes} node(s)`);
    // In parallel: the PostgreSQL store migrates under an advisory lock, so nodes may start at once.
    const started = await Promise.all(ports.map(async (port, i) => {
      const dataDir = `${dir}/data-n${i + 1}`;
      await Deno.mkdir(dataDir);
      const env: Record<string, string> = {
        ...baseEnv(),
        HOST: "127.0.0.1",
        PORT: String(port),
        DATA_DIR: dataDir,
        WECHAT_TOKEN: "bench",
        // The harness's routing contract: a user whose agent is gone goes to an online one at once.
        REASSIGN_AFTER_SECONDS: "0",
        STORE: setup.store,
        NODE_ID: `n${i + 1}`,
        ...(db ? { DATABASE_URL: db.url } : {}),
        ...(redis ? { REDIS_URL: redis.url } : {}),
        ...s.serverEnv,
      };
      const argv = [...pinArgs, Deno.execPath(), "run", ...SERVER_PERMS, V8_FLAGS, ...s.serverFlags, "main.ts"];
      return await startServing(argv, env, `${dir}/node-n${i + 1}.log`, port, `kefu node n${i + 1}`);
    }));
    nodes.push(...started);
    let port = ports[0];
    if (setup.nginx) {
      port = freePort();
      const ndir = `${dir}/nginx`;
      await Deno.mkdir(ndir, { mode: 0o755 });
      const argv = await nginxCommand({
        dir: ndir,
        port,
        upstreams: ports,
        workers: s.nginxWorkers,
        balance: s.balance,
        maxConnections: 4 * (s.agents + s.conc) + 1024,
      });
      nginx = await startServing([...pinArgs, ...argv], baseEnv(), `${ndir}/stderr.log`, port, "nginx");
    }
    const groups: Record<string, number[]> = {
      kefu: nodes.map((n) => n.pid),
      postgres: pg && db ? [postmasterPid(pg)] : [],
      redis: redis ? [redisPid(redis)] : [],
      nginx: nginx ? [nginx.pid] : [],
    };
    const table = processTable();
    out.processes = Object.fromEntries(
      Object.entries(groups).map(([k, roots]) => [k, roots.flatMap((r) => descendants(r, table))]),
    );
    const common = [
      `--port=${port}`,
      `--label=${setup.id}`,
      `--agents=${s.agents}`,
      `--users=${s.users}`,
      `--concurrency=${s.conc}`,
      `--drain=${s.drain}`,
      "--deflate=1",
    ];
    if (s.idleSecs > 0) {
      await sleep(500); // the start's own work (migrations, the first presence) is not idle
      const t0 = performance.now();
      const c0 = sampleCpu(groups);
      await sleep(s.idleSecs * 1000);
      const wall = (performance.now() - t0) / 1000;
      const d = cpuDelta(c0, sampleCpu(groups));
      out.idleCores = Object.fromEntries(Object.entries(d).map(([k, v]) => [k, round(v / wall, 3)]));
    }
    if (roundNo === 1) {
      progress(`${setup.id}: contract check`);
      const check = startLoadgen(script, s.pin ? ["taskset", "-c", String(s.loadCpu)] : [], [
        "--mode=check",
        `--port=${port}`,
      ], 40);
      children.add(check.child);
      out.check = await check.result;
      children.delete(check.child);
    }
    let known = 0;
    if (s.warmupSecs > 0) {
      progress(`${setup.id}: warm-up (≤ ${s.warmupSecs} s, not in the table)`);
      out.warmup = await phase(
        s,
        script,
        groups,
        [
          "--mode=max",
          ...common,
          `--requests=${s.requests}`,
          `--duration=${s.warmupSecs}`,
          "--id-base=2000000000",
        ],
        s.warmupSecs + s.drain + 90,
        0,
      );
      known = Math.min(s.users, Number(out.warmup.loadgen.requests_sent ?? 0));
    }
    if (s.duration > 0) {
      progress(`${setup.id}: closed loop (≤ ${s.duration} s)`);
      out.max = await phase(
        s,
        script,
        groups,
        [
          "--mode=max",
          ...common,
          `--requests=${s.requests}`,
          `--duration=${s.duration}`,
        ],
        s.duration + s.drain + 90,
        known,
      );
    }
    if (s.rate > 0 && s.rateSecs > 0) {
      progress(`${setup.id}: open loop ${s.rate}/s × ${s.rateSecs} s`);
      if (pg && db && s.pgStatements) await pg.sql("SELECT pg_stat_statements_reset()", db.name);
      // Message ids of their own: the store rightly answers a repeated MsgId as a duplicate and delivers nothing.
      out.rate = await phase(
        s,
        script,
        groups,
        [
          "--mode=rate",
          ...common,
          `--rate=${s.rate}`,
          `--rate-secs=${s.rateSecs}`,
          "--id-base=1000000000",
        ],
        s.rateSecs + s.drain + 90,
        Math.min(s.users, Math.max(known, Number(out.max?.loadgen.requests_sent ?? 0))),
      );
      if (pg && db && s.pgStatements) out.statements = await readStatements(pg, db.name);
    }
  } catch (e) {
    out.error = (e as Error).message;
    progress(`${setup.id}: ${out.error}`);
  } finally {
    if (nginx) await stopChild(nginx, 3000);
    // SIGTERM: each node drains (closes its sockets, commits, leaves the presence) and exits.
    await Promise.all(nodes.map((n) => stopChild(n, 8000)));
    await closeRedis().catch(() => {});
    closers.delete(closeRedis);
    await dropDb().catch((e) => progress(`cannot drop the database: ${e.message}`));
    closers.delete(dropDb);
    if (!keepTmp) {
      // Node logs are small; keep them only when asked, like the data directories.
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
  return out;
}

// ---------------------------------------------------------------- the table

const dash = "—";

function median(values: (number | null | undefined)[]): number | null {
  const v = values.filter((x): x is number => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

function sum(values: (number | null | undefined)[]): number {
  return values.reduce<number>((a, b) => a + (typeof b === "number" ? b : 0), 0);
}

function int(n: number | null | undefined): string {
  return n === null || n === undefined ? dash : Math.round(n).toLocaleString("en-US");
}

function ms(n: number | null | undefined): string {
  return n === null || n === undefined ? dash : n < 10 ? n.toFixed(2) : n.toFixed(1);
}

function cpuCell(runs: SetupRun[], key: "max" | "rate"): string {
  const m = (g: string) => median(runs.map((r) => r[key]?.cpuUsPerMsg[g]));
  const total = m("total");
  if (total === null) return dash;
  const parts = GROUPS.filter((g) => (m(g) ?? 0) > 0).map((g) => `${g === "postgres" ? "PG" : g} ${int(m(g))}`);
  return `**${int(total)}** (${parts.join(" + ")})`;
}

/** The Markdown table: one row per setup. */
export function renderTable(result: BenchResult): string {
  const s = result.settings;
  const lines = [
    `kefu ${result.machine.commit} · ${result.machine.date} · ${result.machine.cpu}, ${result.machine.cores} cores · ` +
    `Deno ${result.machine.deno} · ${
      s.pin ? `all servers on core ${s.serverCpu}, loader on core ${s.loadCpu}` : "not pinned"
    } · PostgreSQL synchronous_commit=${s.pgSync} · nginx ${s.nginxWorkers} worker(s), ${s.balance}`,
    `${s.agents} agents, ${int(s.users)} users, ${s.conc} connections; ${
      s.warmupSecs > 0 ? `a warm-up closed loop of ≤ ${s.warmupSecs} s first (not shown); ` : ""
    }closed loop ≤ ${s.duration} s, open loop ` +
    `${int(s.rate)}/s × ${s.rateSecs} s; ${s.reps} round(s)${
      s.reps > 1 ? " (medians; lost and the like: sums)" : ""
    }; ` +
    `load average ${result.loadAvg.map((x) => x.toFixed(2)).join(" – ")} (lowest – highest at phase starts); ` +
    `${result.elapsedS.toFixed(0)} s in all`,
    "",
  ];
  const fixed = (n: number | null, digits: number) => n === null ? dash : n.toFixed(digits);
  const columns: [string, string, (id: string, runs: SetupRun[]) => string][] = [
    ["setup", "---", (id, runs) => {
      const failed = runs.find((r) => r.error);
      return `${id}${failed ? ` (**failed**: ${failed.error!.split("\n")[0].replaceAll("|", "\\|")})` : ""}`;
    }],
    ["delivered/s, closed loop", "---:", (_, ok) => {
      const del = ok.map((r) => r.max?.loadgen.delivered_per_s).filter((x): x is number => typeof x === "number");
      const range = del.length > 1 ? ` (${int(Math.min(...del))}–${int(Math.max(...del))})` : "";
      return `**${int(median(del))}**${range}`;
    }],
    [
      `e2e p50 / p99 ms at ${int(s.rate)}/s (achieved/s)`,
      "---:",
      (_, ok) =>
        `${ms(median(ok.map((r) => r.rate?.loadgen.e2e_ms?.p50)))} / **${
          ms(median(ok.map((r) => r.rate?.loadgen.e2e_ms?.p99)))
        }** (${int(median(ok.map((r) => r.rate?.loadgen.req_per_s)))})`,
    ],
    ["lost / dup / moved", "---:", (_, ok) => {
      const phases = ok.flatMap((r) => [r.warmup, r.max, r.rate]).filter((p): p is PhaseRun => p !== undefined);
      return ["lost", "dup", "moved"].map((k) => int(sum(phases.map((p) => p.loadgen[k])))).join(" / ");
    }],
    ["CPU µs/msg, closed loop", "---", (_, ok) => cpuCell(ok, "max")],
    [`CPU µs/msg at ${int(s.rate)}/s`, "---", (_, ok) => cpuCell(ok, "rate")],
    [
      "new users % closed / open",
      "---:",
      (_, ok) =>
        `${int(median(ok.map((r) => r.max ? r.max.newUserShare * 100 : null)))} / ${
          int(median(ok.map((r) => r.rate ? r.rate.newUserShare * 100 : null)))
        }`,
    ],
    [
      "servers' CPU, closed loop / idle (cores)",
      "---:",
      (_, ok) =>
        `${fixed(median(ok.map((r) => r.max ? sum(Object.values(r.max.cpuS)) / r.max.wallS : null)), 2)} / ${
          fixed(median(ok.map((r) => r.idleCores ? sum(Object.values(r.idleCores)) : null)), 3)
        }`,
    ],
    [
      "core 0 / 1 busy %",
      "---:",
      (_, ok) =>
        `${int(median(ok.map((r) => r.max?.coreBusyPct[0])))} / ${int(median(ok.map((r) => r.max?.coreBusyPct[1])))}`,
    ],
    ["others' CPU s", "---:", (_, ok) => fixed(median(ok.map((r) => r.max?.othersCpuS)), 1)],
    ["check", "---", (_, ok) => {
      const check = ok.find((r) => r.check)?.check;
      return check ? (check.pass ? "pass" : "**FAIL**") : dash;
    }],
  ];
  lines.push(`| ${columns.map((c) => c[0]).join(" | ")} |`, `|${columns.map((c) => c[1]).join("|")}|`);
  for (const id of s.setups) {
    const runs = result.runs[id] ?? [];
    const ok = runs.filter((r) => !r.error);
    lines.push(`| ${columns.map(([, , cell], i) => cell(id, i === 0 ? runs : ok)).join(" | ")} |`);
  }
  for (const id of s.setups) {
    const run = (result.runs[id] ?? []).find((r) => r.statements && r.rate);
    if (!run?.statements || !run.rate) continue;
    const accepted = Number(run.rate.loadgen.accepted ?? 0) || 1;
    const calls = sum(run.statements.map((x) => x.calls));
    lines.push(
      "",
      `${id}, open loop, PostgreSQL statements (pg_stat_statements, top ${run.statements.length}): ` +
        `${(calls / accepted).toFixed(1)} per message`,
      "",
      "| per message | µs each | total ms | statement |",
      "|---:|---:|---:|---|",
      ...run.statements.map((x) =>
        `| ${(x.calls / accepted).toFixed(2)} | ${x.calls ? (x.totalMs / x.calls * 1000).toFixed(0) : dash} | ${
          x.totalMs.toFixed(0)
        } | \`${x.query.replaceAll("|", "\\|").replaceAll("`", "'")}\` |`
      ),
    );
  }
  const notes = result.notes.map((n) => `- ${n}`);
  return [...lines, ...(notes.length ? ["", ...notes] : [])].join("\n");
}

// ---------------------------------------------------------------- main

/** Everything the results JSON holds. */
export interface BenchResult {
  version: 1;
  machine: { cpu: string; cores: number; os: string; deno: string; commit: string; date: string; node: string };
  settings: Settings;
  runs: Record<string, SetupRun[]>;
  /** Lowest and highest 1-minute load average at the starts of the phases. */
  loadAvg: [number, number];
  notes: string[];
  ok: boolean;
  elapsedS: number;
}

async function output(cmd: string, args: string[], cwd = ROOT): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : "unknown";
  } catch {
    return "unknown";
  }
}

async function main(): Promise<number> {
  const t0 = Date.now();
  const flags = parseFlags(Deno.args, new Set(["keep", "help"]));
  if (flags.get("help") === "true") {
    console.log(USAGE);
    return 0;
  }
  for (const f of flags.keys()) if (!["json", "keep"].includes(f)) throw new Error(`unknown option --${f}\n${USAGE}`);
  keepTmp = flags.get("keep") === "true";
  const s = readSettings(Deno.env.toObject());
  const setups = s.setups.map(parseSetup);
  const cores = navigator.hardwareConcurrency;
  const notes: string[] = [];
  if (s.pin && (cores < 2 || s.serverCpu >= cores || s.loadCpu >= cores || s.serverCpu === s.loadCpu)) {
    s.pin = false;
    notes.push(`not pinned: ${cores} core(s), SERVER_CPU=${s.serverCpu}, LOAD_CPU=${s.loadCpu}`);
  }
  if (setups.some((x) => x.nginx)) findNginx();
  const candidates = s.loadgen ? [s.loadgen] : loadgenCandidates(ROOT);
  let found = candidates[0];
  for (const c of candidates) {
    try {
      Deno.statSync(c);
      found = c;
      break;
    } catch { /* next */ }
  }
  const cache = `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`}/kefu-cluster-bench`;
  const script = await prepareLoadgen(found, `${cache}/loadgen`);
  await Deno.mkdir(s.res, { recursive: true });
  tmpRoot = await Deno.makeTempDir({ prefix: "kefu-cluster-bench-" });
  await Deno.chmod(tmpRoot, 0o755); // nginx's workers run as nobody

  // A cap on the whole run: startups, the phases with their drains and grace, teardown; then everything is stopped.
  const perSetupS = 60 + 40 + s.idleSecs + (s.warmupSecs > 0 ? s.warmupSecs + s.drain + 90 : 0) +
    (s.duration + s.drain + 90) + (s.rateSecs + s.drain + 90) + 30;
  const capS = 120 + s.reps * setups.length * perSetupS;
  const cap = setTimeout(async () => {
    progress(`over the whole run's cap of ${capS} s: stopping`);
    await cleanup();
    Deno.exit(3);
  }, capS * 1000);
  Deno.unrefTimer(cap);

  let pg: PostgresServer | undefined;
  if (setups.some((x) => x.store === "postgres")) {
    progress(`starting PostgreSQL (synchronous_commit=${s.pgSync}, fsync on)`);
    // max_connections: each node's pool holds 10.
    pg = await startPostgres({
      durable: true,
      settings: {
        synchronous_commit: s.pgSync,
        max_connections: "200",
        ...(s.pgStatements ? { shared_preload_libraries: "'pg_stat_statements'" } : {}),
      },
    });
    const server = pg;
    closers.add(() => server.close());
    progress(`PostgreSQL ${pg.version} on port ${pg.port}, postmaster pid ${postmasterPid(pg)}, in ${pg.dir}`);
    if (s.pin) await pinTree(postmasterPid(pg), s.serverCpu);
  }

  const runs: Record<string, SetupRun[]> = Object.fromEntries(s.setups.map((id) => [id, []]));
  for (let rep = 1; rep <= s.reps && !stopping; rep++) {
    // Rotate which setup goes first: the harness found the first server of a round measuring 8–10 % low.
    const order = setups.map((_, i) => setups[(i + rep - 1) % setups.length]);
    for (const setup of order) {
      if (stopping) break;
      runs[setup.id].push(await runSetup(s, setup, rep, pg, script));
    }
  }
  if (stopping) return 130;

  const phases = Object.values(runs).flat().flatMap((r) => [r.max, r.rate]).filter((p): p is PhaseRun => !!p);
  const la = phases.map((p) => p.loadAvg[0]);
  const result: BenchResult = {
    version: 1,
    machine: {
      cpu: Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? "unknown",
      cores,
      os: `${Deno.build.os} ${Deno.osRelease()}`,
      deno: Deno.version.deno,
      node: await output("node", ["--version"]),
      commit: await output("git", ["rev-parse", "--short=12", "HEAD"]),
      date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    },
    settings: s,
    runs,
    loadAvg: la.length ? [Math.min(...la), Math.max(...la)] : [0, 0],
    notes,
    ok: false,
    elapsedS: (Date.now() - t0) / 1000,
  };
  result.ok = Object.values(runs).flat().every((r) =>
    !r.error && (!r.check || r.check.pass) &&
    [r.warmup, r.max, r.rate].every((p) => !p || (!p.loadgen.error && p.loadgen.lost === 0 && p.loadgen.dup === 0))
  );
  if (keepTmp) notes.push(`logs kept in ${tmpRoot}`);
  const table = renderTable(result);
  console.log(table);
  const json = `${JSON.stringify(result, null, 2)}\n`;
  await Deno.writeTextFile(`${s.res}/results.json`, json);
  await Deno.writeTextFile(`${s.res}/table.md`, `${table}\n`);
  const jsonOut = flags.get("json");
  if (jsonOut) await Deno.writeTextFile(jsonOut, json);
  progress(`results in ${s.res}/results.json`);
  clearTimeout(cap);
  return result.ok ? 0 : 1;
}

if (import.meta.main) {
  const onSignal = async () => {
    progress("interrupted: stopping everything");
    await cleanup();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`bench:cluster: ${(e as Error).message}`);
    code = 2;
  } finally {
    await cleanup();
  }
  Deno.exit(code);
}
