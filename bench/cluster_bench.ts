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
import { answers, Children, freePort, tail } from "./processes.ts";
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
import { type BenchResult, type PhaseRun, renderTable, type SetupRun, type Statement } from "./cluster/report.ts";
import { parseSetup, readSettings, type Settings, type Setup, USAGE } from "./cluster/settings.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

// ---------------------------------------------------------------- processes

const children = new Children();
/** Daemons (PostgreSQL, Redis) and databases: closed on exit like the children. */
const closers = new Set<() => Promise<void>>();
let tmpRoot = "";
let keepTmp = false;
let stopping = false;

function progress(text: string): void {
  if (!stopping) console.error(`bench:cluster: ${text}`);
}

async function cleanup(): Promise<void> {
  stopping = true;
  await children.stopAll(3000);
  for (const close of [...closers].reverse()) await close().catch(() => {});
  closers.clear();
  if (tmpRoot && !keepTmp) await Deno.remove(tmpRoot, { recursive: true }).catch(() => {});
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
  await children.stop(child, 2000);
  throw new Error(
    `${what} did not start (${exited ? "it exited" : "no answer on /healthz in 60 s"}):\n${tail(log, 12)}`,
  );
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
    if (setup.redis) await Deno.mkdir(`${dir}/media`, { recursive: true });
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
        // Several nodes share one media directory (MEDIA_DIR is required with REDIS_URL).
        ...(redis ? { REDIS_URL: redis.url, MEDIA_DIR: `${dir}/media` } : {}),
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
    if (nginx) await children.stop(nginx, 3000);
    // SIGTERM: each node drains (closes its sockets, commits, leaves the presence) and exits.
    await Promise.all(nodes.map((n) => children.stop(n, 8000)));
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

// ---------------------------------------------------------------- main

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
