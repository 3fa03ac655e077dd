/**
 * `deno task bench`: kefu's own end-to-end benchmark. Starts the real service
 * (`main.ts`) as a child process pinned to one core, drives it over HTTP and
 * WebSockets from `load.ts`, another process pinned to the other core, and
 * prints one Markdown table on stdout (progress goes to stderr).
 *
 * For each store setting (`STORE=sqlite` as shipped, the same with
 * `GROUP_COMMIT_MS=0`, `STORE=memory`), on a fresh server: a closed loop
 * (maximum throughput), an open loop at a fixed rate (end-to-end latency), and
 * lost/duplicated messages over both. Then, on one more fresh server, idle agent
 * sockets and the server's RSS per socket.
 *
 *   deno task bench                         # defaults, about a minute
 *   deno task bench --quick                 # about 20 s
 *   deno task bench --json new.json --compare old.json
 *
 * Every child is bounded in time and killed on exit, on Ctrl-C and on SIGTERM;
 * the temporary directory (logs, DATA_DIR) is removed unless `--keep`.
 *
 * @module
 */

import type { ConnsResult, LoadResult, PhaseResult } from "./load.ts";
import { openFilesLimit, parseFlags, round, sleep } from "./lib.ts";
import { answers, Children, freePort, tail } from "./processes.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const LOAD_SCRIPT = new URL("./load.ts", import.meta.url).pathname;

/** The knobs of a run; each is an environment variable and a flag (`RATE_SECS`, `--rate-secs`). */
export interface Settings {
  /** Cap of the closed loop, seconds. */
  duration: number;
  /** Cap of the closed loop, requests. */
  requests: number;
  /** Keep-alive HTTP connections. */
  conc: number;
  agents: number;
  users: number;
  /** Open loop: requests per second, and for how long. */
  rate: number;
  rateSecs: number;
  /** Longest wait for outstanding deliveries after a phase, seconds. */
  drain: number;
  /** Idle agent sockets; 0 skips that phase. */
  conns: number;
  /** Handshakes in flight while opening them. */
  inflight: number;
  /** Wait between the last handshake and the RSS reading, seconds. */
  idleWait: number;
  /** HEARTBEAT_SECONDS of the idle-socket server, so that the wait sees at least one heartbeat. */
  idleHeartbeat: number;
  serverCpu: number;
  loadCpu: number;
  /** Rounds: each store setting runs this many times on fresh servers, interleaved; the table shows medians. */
  reps: number;
  /** Which store settings to run, by id. */
  stores: string[];
  /** Permission flags of `deno run main.ts`. */
  serverPerms: string[];
  /** Extra environment of the server (`SERVER_ENV="K=V K2=V2"`), for experiments. */
  serverEnv: Record<string, string>;
}

interface Knob {
  key: keyof Settings;
  env: string;
  def: number | string;
  quick?: number | string;
  help: string;
}

const KNOBS: Knob[] = [
  { key: "duration", env: "DURATION", def: 5, quick: 2, help: "closed loop: seconds (cap)" },
  { key: "requests", env: "REQUESTS", def: 200_000, help: "closed loop: requests (cap)" },
  { key: "conc", env: "CONC", def: 64, help: "keep-alive HTTP connections" },
  { key: "agents", env: "AGENTS", def: 50, help: "agent sockets during the load phases" },
  { key: "users", env: "USERS", def: 5000, help: "WeChat users, round-robin" },
  { key: "rate", env: "RATE", def: 2000, quick: 1000, help: "open loop: requests per second" },
  { key: "rateSecs", env: "RATE_SECS", def: 5, quick: 2, help: "open loop: seconds" },
  { key: "drain", env: "DRAIN", def: 3, quick: 2, help: "longest wait for deliveries after a phase, s" },
  { key: "conns", env: "CONNS", def: 10_000, quick: 2000, help: "idle agent sockets (0 skips the phase)" },
  { key: "inflight", env: "CONNECT_INFLIGHT", def: 200, help: "handshakes in flight when opening them" },
  { key: "idleWait", env: "IDLE_WAIT", def: 3, help: "seconds between the last handshake and the RSS reading" },
  { key: "idleHeartbeat", env: "IDLE_HEARTBEAT", def: 2, help: "HEARTBEAT_SECONDS of the idle-socket server" },
  { key: "reps", env: "REPS", def: 1, help: "rounds per store setting (medians in the table)" },
  { key: "serverCpu", env: "SERVER_CPU", def: 0, help: "core of the server (taskset)" },
  { key: "loadCpu", env: "LOAD_CPU", def: 1, help: "core of the load generator (taskset)" },
  { key: "stores", env: "STORES", def: "sqlite,sqlite-gc0,memory", help: "store settings to run" },
  {
    key: "serverPerms",
    env: "SERVER_PERMS",
    // The V8 flag is the one `deno task start` and the compiled binary ship with.
    def: "--allow-net --allow-env --allow-read --allow-write --v8-flags=--max-semi-space-size=32",
    help: "flags of deno run main.ts (permissions, V8)",
  },
  { key: "serverEnv", env: "SERVER_ENV", def: "", help: 'extra server environment, "K=V K2=V2"' },
];

/** The store settings compared; the first is what ships. */
export const STORES: Record<string, { label: string; env: Record<string, string> }> = {
  "sqlite": { label: "sqlite (shipped)", env: { STORE: "sqlite" } },
  "sqlite-gc0": { label: "sqlite, GROUP_COMMIT_MS=0", env: { STORE: "sqlite", GROUP_COMMIT_MS: "0" } },
  "memory": { label: "memory", env: { STORE: "memory" } },
};

// kefu's configuration variables: never inherited from the caller's shell, so a stray
// LOG_LEVEL=debug or CONFIG_FILE cannot change what is measured.
const SERVER_VARS =
  /^(PORT|HOST|HEARTBEAT_SECONDS|IDLE_TIMEOUT_SECONDS|MAX_\w+|DEDUPE_WINDOW|LOG_LEVEL|CONFIG_FILE|STORE|DATA_DIR|GROUP_COMMIT_MS|WECHAT_\w+)$/;

/** Where the numbers were taken. */
export interface Machine {
  cpu: string;
  cores: number;
  os: string;
  deno: string;
  v8: string;
  commit: string;
  /** Tracked files differ from the commit. */
  dirty: boolean;
  date: string;
  /** Whether server and load were pinned to separate cores. */
  pinned: boolean;
  openFiles: number | null;
}

/** One store setting's run. */
export type StoreRun = LoadResult & { label: string; cpus?: string };

/** Everything `--json` writes. */
export interface BenchResult {
  version: 1;
  machine: Machine;
  settings: Settings;
  /** Per store setting, one entry per round. */
  runs: Record<string, StoreRun[]>;
  idle: (ConnsResult & { heartbeatSeconds: number }) | null;
  notes: string[];
  ok: boolean;
  elapsedS: number;
}

// ---------------------------------------------------------------- settings

function usage(): string {
  const lines = KNOBS.map((k) =>
    `  ${k.env.padEnd(17)} --${kebab(k.key).padEnd(15)} ${String(k.def).padEnd(10)}${
      k.quick !== undefined ? ` (quick: ${k.quick})` : ""
    }  ${k.help}`
  );
  return [
    "usage: deno task bench [--quick] [--json FILE] [--compare OLD.json] [--keep] [--KNOB VALUE …]",
    "",
    "knobs (environment variable, flag, default):",
    ...lines,
  ].join("\n");
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Settings from flags, then the environment, then the defaults (or `--quick`'s). */
export function readSettings(flags: Map<string, string>, env: Record<string, string | undefined>): Settings {
  const quick = flags.get("quick") === "true";
  const out: Record<string, unknown> = {};
  for (const k of KNOBS) {
    const raw = flags.get(kebab(k.key)) ?? env[k.env] ?? String(quick && k.quick !== undefined ? k.quick : k.def);
    if (typeof k.def === "number") {
      const n = Number(raw);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${k.env} must be a number ≥ 0, got ${JSON.stringify(raw)}`);
      out[k.key] = n;
    } else if (k.key === "stores") {
      const ids = raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
      for (const id of ids) {
        if (!(id in STORES)) throw new Error(`STORES: unknown ${id}; known: ${Object.keys(STORES).join(", ")}`);
      }
      out[k.key] = ids;
    } else if (k.key === "serverPerms") {
      out[k.key] = raw.split(/\s+/).filter((s) => s !== "");
    } else {
      const pairs = raw.split(/\s+/).filter((s) => s !== "").map((p) => {
        const eq = p.indexOf("=");
        if (eq < 1) throw new Error(`SERVER_ENV: expected K=V, got ${JSON.stringify(p)}`);
        return [p.slice(0, eq), p.slice(eq + 1)];
      });
      out[k.key] = Object.fromEntries(pairs);
    }
  }
  const s = out as unknown as Settings;
  if (s.conc < 1 || s.agents < 1 || s.users < 1 || s.reps < 1) {
    throw new Error("CONC, AGENTS, USERS and REPS must be at least 1");
  }
  if (s.duration <= 0 && s.rate * s.rateSecs <= 0) throw new Error("nothing to measure: DURATION and RATE are 0");
  return s;
}

// ---------------------------------------------------------------- processes

const children = new Children();
let tmpRoot: string | undefined;
let keepTmp = false;
// Set on Ctrl-C or SIGTERM: from then on nothing new is started while the children are stopped.
let stopping = false;

function spawn(command: Deno.Command): Deno.ChildProcess {
  if (stopping) throw new Error("stopping");
  const child = command.spawn();
  children.add(child);
  return child;
}

function onPath(cmd: string): boolean {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      if (Deno.statSync(`${dir}/${cmd}`).isFile) return true;
    } catch { /* not here */ }
  }
  return false;
}

let pinning = false;

function pin(cpu: number): string[] {
  return pinning ? ["taskset", "-c", String(cpu)] : [];
}

// Raise the soft limit on open files to the hard one in the child itself (Deno does too, but
// the 10,000-socket phase must not depend on that), then exec, so the PID is the program's own.
const EXEC_WITH_FILES = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; log=$1; shift; exec "$@" >"$log" 2>&1';
const EXEC_PLAIN = 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"';

async function cleanup(): Promise<void> {
  stopping = true;
  await children.stopAll(2000);
  if (tmpRoot && !keepTmp) await Deno.remove(tmpRoot, { recursive: true }).catch(() => {});
}

function progress(text: string): void {
  if (!stopping) console.error(`bench: ${text}`);
}

interface Server {
  child: Deno.ChildProcess;
  pid: number;
  port: number;
  log: string;
  dataDir: string;
}

function serverEnvironment(settings: Settings, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) if (!SERVER_VARS.test(k)) env[k] = v;
  return { ...env, HOST: "127.0.0.1", WECHAT_TOKEN: "bench", ...settings.serverEnv, ...extra };
}

async function startServer(settings: Settings, id: string, env: Record<string, string>): Promise<Server> {
  const dataDir = await Deno.makeTempDir({ dir: tmpRoot, prefix: `data-${id}-` });
  const log = `${tmpRoot}/server-${id}.log`;
  const port = freePort();
  const argv = [...pin(settings.serverCpu), Deno.execPath(), "run", ...settings.serverPerms, "main.ts"];
  const child = spawn(
    new Deno.Command("sh", {
      args: ["-c", EXEC_WITH_FILES, "sh", log, ...argv],
      cwd: ROOT,
      env: serverEnvironment(settings, { ...env, DATA_DIR: dataDir, PORT: String(port) }),
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }),
  );
  let exited = false;
  child.status.then(() => exited = true);
  // 60 s allows a first download of the npm packages.
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !exited) {
    if (await answers(port)) return { child, pid: child.pid, port, log, dataDir };
    await sleep(50);
  }
  const why = exited ? "it exited" : "no answer on /healthz in 60 s";
  await children.stop(child, 2000);
  await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  throw new Error(`kefu did not start (${why}):\n${tail(log)}`);
}

async function stopServer(server: Server): Promise<void> {
  await children.stop(server.child, 5000);
  await Deno.remove(server.dataDir, { recursive: true }).catch(() => {});
}

async function runLoader<T>(settings: Settings, args: string[], capS: number): Promise<T> {
  // --allow-all: Deno grants reads of /proc (the server's RSS and CPU time) to nothing less.
  const argv = [...pin(settings.loadCpu), Deno.execPath(), "run", "--allow-all", LOAD_SCRIPT, ...args];
  const child = spawn(
    new Deno.Command("sh", {
      args: ["-c", EXEC_PLAIN, "sh", ...argv],
      cwd: ROOT,
      // With sign-in on (SERVER_ENV="AGENT_SECRET=…"), the loader's agents sign their own tokens.
      env: { BENCH_AGENT_SECRET: settings.serverEnv.AGENT_SECRET ?? "" },
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }),
  );
  const timer = setTimeout(() => {
    progress(`load generator over its ${capS} s cap: killed`);
    child.kill("SIGKILL");
  }, capS * 1000);
  try {
    const out = await child.output();
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
    try {
      return JSON.parse(line) as T;
    } catch {
      return { error: `load generator exited with ${out.code} and no result` } as T;
    }
  } finally {
    clearTimeout(timer);
    children.delete(child);
  }
}

function cpusAllowed(pid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/status`).match(/^Cpus_allowed_list:\s*(\S+)/m)?.[1];
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------- machine

async function git(args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command("git", { args, cwd: ROOT, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

async function describeMachine(): Promise<Machine> {
  let cpu = "unknown";
  try {
    cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.+)$/m)?.[1].trim() ?? cpu;
  } catch { /* not Linux */ }
  const status = await git(["status", "--porcelain", "--untracked-files=no"]);
  return {
    cpu,
    cores: navigator.hardwareConcurrency,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    commit: await git(["rev-parse", "--short=12", "HEAD"]) ?? "unknown",
    dirty: status !== null && status !== "",
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    pinned: pinning,
    openFiles: openFilesLimit("self")?.soft ?? null,
  };
}

// ---------------------------------------------------------------- the run

async function runStore(settings: Settings, id: string): Promise<StoreRun> {
  const { label, env } = STORES[id];
  progress(`${label}: starting kefu`);
  const server = await startServer(settings, id, env);
  try {
    const cpus = cpusAllowed(server.pid);
    progress(`${label}: kefu pid ${server.pid} on port ${server.port} (cpus ${cpus ?? "?"}); load running`);
    const args = [
      "--mode=load",
      `--port=${server.port}`,
      `--server-pid=${server.pid}`,
      `--agents=${settings.agents}`,
      `--users=${settings.users}`,
      `--conc=${settings.conc}`,
      `--requests=${settings.duration > 0 ? settings.requests : 0}`,
      `--duration=${settings.duration}`,
      `--rate=${settings.rate}`,
      `--rate-secs=${settings.rateSecs}`,
      `--drain=${settings.drain}`,
    ];
    const capS = settings.duration + settings.rateSecs + 2 * settings.drain + 120;
    const r = await runLoader<LoadResult>(settings, args, capS);
    if (r.error) progress(`${label}: ${r.error}\n${tail(server.log)}`);
    return { ...r, label, cpus };
  } finally {
    await stopServer(server);
  }
}

async function runIdle(settings: Settings, notes: string[]): Promise<BenchResult["idle"]> {
  progress(`idle sockets: starting kefu (HEARTBEAT_SECONDS=${settings.idleHeartbeat})`);
  const server = await startServer(settings, "idle", {
    ...STORES.sqlite.env,
    HEARTBEAT_SECONDS: String(settings.idleHeartbeat),
  });
  try {
    let conns = settings.conns;
    const limit = openFilesLimit(server.pid);
    // The server holds one descriptor per socket plus its own few dozen.
    if (limit !== null && limit.soft < conns + 256) {
      conns = Math.max(0, limit.soft - 256);
      notes.push(
        `open-files limit of the server is ${limit.soft}: idle sockets cut from ${settings.conns} to ${conns} ` +
          `(raise the hard limit, e.g. ulimit -Hn ${settings.conns + 1024}, before running)`,
      );
    }
    progress(`idle sockets: opening ${conns}`);
    const args = [
      "--mode=conns",
      `--port=${server.port}`,
      `--server-pid=${server.pid}`,
      `--conns=${conns}`,
      `--inflight=${settings.inflight}`,
      `--idle-wait=${settings.idleWait}`,
    ];
    const r = await runLoader<ConnsResult>(settings, args, 180 + settings.idleWait);
    if (r.error) progress(`idle sockets: ${r.error}`);
    return { ...r, heartbeatSeconds: settings.idleHeartbeat };
  } finally {
    await stopServer(server);
  }
}

// Only to word a note: a store column means nothing while the service ignores the variable.
function readsGroupCommit(): boolean {
  try {
    return Deno.readTextFileSync(`${ROOT}/src/config.ts`).includes("GROUP_COMMIT_MS");
  } catch {
    return true;
  }
}

function isOk(result: BenchResult): boolean {
  for (const r of Object.values(result.runs).flat()) {
    if (r.error || !r.totals || r.totals.lost !== 0 || r.totals.duplicated !== 0) return false;
    if (r.totals.invalid !== 0 || r.totals.moved !== 0 || !r.check?.badSignatureRefused) return false;
  }
  const idle = result.idle;
  return idle === null || (!idle.error && idle.stillOpen === idle.opened);
}

// ---------------------------------------------------------------- the table

const dash = "—";

function int(n: number | null | undefined): string {
  return n === null || n === undefined ? dash : Math.round(n).toLocaleString("en-US");
}

function ms(n: number | null | undefined): string {
  return n === null || n === undefined ? dash : n < 10 ? n.toFixed(2) : n.toFixed(1);
}

function phase(r: StoreRun | undefined, name: "max" | "rate"): PhaseResult | undefined {
  return r?.phases?.find((p) => p.name === name);
}

/** A number the table shows and `--compare` follows; `better` says which way is an improvement. */
interface Metric {
  key: string;
  get: (r: StoreRun | undefined) => number | null | undefined;
  fmt: (n: number | null | undefined) => string;
  better: "higher" | "lower";
  /** Over rounds: the median, or the sum for counts that must be 0. */
  agg: "median" | "sum";
  /** Whether `--compare` lists it: the loader's own numbers say nothing about a commit. */
  compare: boolean;
}

interface Row {
  label: string;
  metrics: Metric[];
}

function metric(
  key: string,
  get: Metric["get"],
  fmt: Metric["fmt"],
  better: Metric["better"],
  agg: Metric["agg"] = "median",
  compare = true,
): Metric {
  return { key, get, fmt, better, agg, compare };
}

/** A metric over the rounds of one store setting; null when no round has it. */
export function aggregate(mt: Metric, runs: StoreRun[]): number | null {
  const values = runs.map(mt.get).filter((v): v is number => typeof v === "number").sort((a, b) => a - b);
  if (values.length === 0) return null;
  if (mt.agg === "sum") return values.reduce((a, b) => a + b, 0);
  const mid = values.length >> 1;
  return values.length % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

function rows(s: Settings): Row[] {
  const max = (r: StoreRun | undefined) => phase(r, "max");
  const rate = (r: StoreRun | undefined) => phase(r, "rate");
  return [
    {
      label: `closed loop: req/s (${s.conc} connections, ≤ ${s.duration} s)`,
      metrics: [metric("max.reqPerS", (r) => max(r)?.reqPerS, int, "higher")],
    },
    {
      label: "closed loop: delivered/s",
      metrics: [metric("max.deliveredPerS", (r) => max(r)?.deliveredPerS, int, "higher")],
    },
    {
      label: "closed loop: HTTP p50 / p99 ms",
      metrics: [
        metric("max.http.p50", (r) => max(r)?.httpMs.p50, ms, "lower"),
        metric("max.http.p99", (r) => max(r)?.httpMs.p99, ms, "lower"),
      ],
    },
    {
      label: "closed loop: end to end p50 / p99 ms (queueing)",
      metrics: [
        metric("max.e2e.p50", (r) => max(r)?.e2eMs.p50, ms, "lower"),
        metric("max.e2e.p99", (r) => max(r)?.e2eMs.p99, ms, "lower"),
      ],
    },
    {
      label: `open loop ${int(s.rate)}/s × ${s.rateSecs} s: end to end p50 / p99 / max ms`,
      metrics: [
        metric("rate.e2e.p50", (r) => rate(r)?.e2eMs.p50, ms, "lower"),
        metric("rate.e2e.p99", (r) => rate(r)?.e2eMs.p99, ms, "lower"),
        metric("rate.e2e.max", (r) => rate(r)?.e2eMs.max, ms, "lower"),
      ],
    },
    {
      label: "open loop: HTTP p50 / p99 ms",
      metrics: [
        metric("rate.http.p50", (r) => rate(r)?.httpMs.p50, ms, "lower"),
        metric("rate.http.p99", (r) => rate(r)?.httpMs.p99, ms, "lower"),
      ],
    },
    {
      label: "open loop: achieved req/s, send lag p99 ms",
      metrics: [
        metric("rate.achieved", (r) => rate(r)?.achievedRate, int, "higher", "median", false),
        metric("rate.sendLag.p99", (r) => rate(r)?.sendLagMs?.p99, ms, "lower", "median", false),
      ],
    },
    {
      label: "**lost / duplicated** (both loops, must be 0)",
      metrics: [
        metric("lost", (r) => r?.totals?.lost, int, "lower", "sum"),
        metric("duplicated", (r) => r?.totals?.duplicated, int, "lower", "sum"),
      ],
    },
    {
      label: "invalid / moved / not success / no answer",
      metrics: [
        metric("invalid", (r) => r?.totals?.invalid, int, "lower", "sum"),
        metric("moved", (r) => r?.totals?.moved, int, "lower", "sum"),
        metric("notSuccess", (r) => r?.phases?.reduce((n, p) => n + p.notSuccess, 0), int, "lower", "sum"),
        metric("failed", (r) => r?.phases?.reduce((n, p) => n + p.failed, 0), int, "lower", "sum"),
      ],
    },
    {
      label: "closed loop: server / load CPU %",
      metrics: [
        metric("max.serverCpu", (r) => max(r)?.serverCpuPct, int, "lower", "median", false),
        metric("max.loaderCpu", (r) => max(r)?.loaderCpuPct, int, "lower", "median", false),
      ],
    },
    {
      label: "server RSS at the end / peak MB",
      metrics: [
        metric("rssMb", (r) => kbToMb(r?.serverMem?.rssKb), mb, "lower"),
        metric("hwmMb", (r) => kbToMb(r?.serverMem?.hwmKb), mb, "lower"),
      ],
    },
  ];
}

function kbToMb(kb: number | null | undefined): number | null {
  return kb === null || kb === undefined ? null : round(kb / 1024, 1);
}

function mb(n: number | null | undefined): string {
  return n === null || n === undefined ? dash : n.toFixed(1);
}

function idleCell(idle: NonNullable<BenchResult["idle"]>): string {
  if (idle.kbPerConn === null || idle.kbPerConn === undefined) return `failed: ${idle.error ?? "no reading"}`;
  return `**${idle.kbPerConn.toFixed(1)} KB** (${int(idle.stillOpen)} of ${int(idle.requested)} open, ` +
    `${int(idle.gotHeartbeat)} heard a heartbeat; RSS ${mb(kbToMb(idle.rssBeforeKb))} → ${
      mb(kbToMb(idle.rssAfterKb))
    } MB)`;
}

/** The Markdown report: a header line on the machine, then one table. */
export function renderTable(result: BenchResult): string {
  const { machine: m, settings: s } = result;
  const ids = s.stores.filter((id) => id in result.runs);
  const header = [
    `kefu ${m.commit}${m.dirty ? " + uncommitted changes" : ""} · ${m.date} · ${m.cpu}, ${m.cores} cores · ${m.os} · ` +
    `Deno ${m.deno} · ${
      m.pinned ? `server on core ${s.serverCpu}, load on core ${s.loadCpu}` : "not pinned (no taskset or 1 core)"
    }`,
    `${s.agents} agents, ${int(s.users)} users; a fresh server per column${
      s.reps > 1 ? ` and round, medians of ${s.reps} rounds (lost and the like: sums)` : ""
    }; ${result.elapsedS.toFixed(0)} s in all`,
    "",
  ];
  const cols = ids.map((id) => STORES[id].label);
  const lines = [`| | ${cols.join(" | ")} |`, `|---|${cols.map(() => "---:").join("|")}|`];
  for (const row of rows(s)) {
    const cells = ids.map((id) => row.metrics.map((mt) => mt.fmt(aggregate(mt, result.runs[id]))).join(" / "));
    lines.push(`| ${row.label} | ${cells.join(" | ")} |`);
    // With rounds, the spread of throughput says how far a difference between commits can be trusted.
    if (s.reps > 1 && row.metrics[0].key === "max.reqPerS") {
      const spread = ids.map((id) => {
        const v = result.runs[id].map((r) => phase(r, "max")?.reqPerS).filter((x): x is number => x !== undefined);
        return v.length ? `${int(Math.min(...v))}–${int(Math.max(...v))}` : dash;
      });
      lines.push(`| closed loop: req/s, lowest–highest round | ${spread.join(" | ")} |`);
    }
  }
  const check = ids.map((id) => {
    const failed = result.runs[id].find((r) => r.error);
    if (failed) return `**failed**: ${failed.error!.replaceAll("|", "\\|")}`;
    const rs = result.runs[id];
    const pass = rs.every((r) => r.check?.badSignatureRefused);
    const statuses = [...new Set(rs.map((r) => r.check?.badSignatureStatus))].join(", ");
    const min = Math.min(...rs.map((r) => r.usersPerAgent?.min ?? 0));
    const max = Math.max(...rs.map((r) => r.usersPerAgent?.max ?? 0));
    return `${pass ? "pass" : "**FAIL**"} (${statuses}); ${min}–${max}`;
  });
  lines.push(`| bad signature refused (status); users per agent | ${check.join(" | ")} |`);
  if (result.idle) {
    const others = ids.slice(1).map(() => dash);
    lines.push(
      `| idle agent socket: server RSS per socket, HEARTBEAT_SECONDS=${result.idle.heartbeatSeconds} ` +
        `(fresh sqlite server, ${result.idle.idleWaitS} s after the last of ${int(result.idle.requested)}) | ${
          [idleCell(result.idle), ...others].join(" | ")
        } |`,
    );
  }
  const notes = result.notes.map((n) => `- ${n}`);
  return [...header, ...lines, ...(notes.length ? ["", ...notes] : [])].join("\n");
}

interface Compared {
  value: number;
  text: string;
  metric: Metric;
  label: string;
}

function flatten(result: BenchResult): Map<string, Compared> {
  const out = new Map<string, Compared>();
  for (const [id, runs] of Object.entries(result.runs)) {
    for (const row of rows(result.settings)) {
      for (const mt of row.metrics) {
        const v = aggregate(mt, runs);
        if (v !== null && mt.compare) {
          out.set(`${id} ${mt.key}`, { value: v, text: mt.fmt(v), metric: mt, label: STORES[id]?.label ?? id });
        }
      }
    }
  }
  const kb = result.idle?.kbPerConn;
  if (typeof kb === "number") {
    const mt = metric("idle.kbPerSocket", () => kb, (n) => n?.toFixed(1) ?? dash, "lower");
    out.set("idle kbPerSocket", { value: kb, text: mt.fmt(kb), metric: mt, label: "idle sockets" });
  }
  return out;
}

// Single rounds on this kind of VM move by about 15 % (throughput) and 50 % (p99) with no change at all.
const MARK_PERCENT = 10;

/** A second table: each number of `old` next to the new one, and the change. */
export function renderComparison(old: BenchResult, now: BenchResult): string {
  const a = flatten(old);
  const b = flatten(now);
  const differ = (Object.keys(now.settings) as (keyof Settings)[])
    .filter((k) => JSON.stringify(old.settings?.[k]) !== JSON.stringify(now.settings[k]))
    .map((k) =>
      `${KNOBS.find((x) => x.key === k)?.env ?? k} ${JSON.stringify(old.settings?.[k])} → ${
        JSON.stringify(now.settings[k])
      }`
    );
  const lines = [
    `Compared with ${old.machine.commit}${old.machine.dirty ? " + uncommitted changes" : ""} (${old.machine.date}, ` +
    `${old.settings?.reps ?? 1} round(s)); changes over ${MARK_PERCENT} % are marked. ` +
    `Single rounds vary by about 15 % (req/s) and 50 % (p99) on their own: compare REPS=3 runs.`,
  ];
  if (differ.length) lines.push(`**Settings differ**, so the numbers are not comparable: ${differ.join(", ")}.`);
  if (old.machine.cpu !== now.machine.cpu || old.machine.deno !== now.machine.deno) {
    lines.push(`**Machine differs**: ${old.machine.cpu}, Deno ${old.machine.deno} then.`);
  }
  lines.push("", "| setting | metric | old | new | change |", "|---|---|---:|---:|---:|");
  for (const [key, n] of b) {
    const o = a.get(key);
    if (!o) continue;
    // Counts that must be 0 are only listed when they are not.
    if (n.metric.agg === "sum" && o.value === 0 && n.value === 0) continue;
    const change = o.value === 0 ? (n.value === 0 ? 0 : Infinity) : (n.value - o.value) / Math.abs(o.value) * 100;
    const up = n.metric.better === "higher";
    const improved = up ? change > MARK_PERCENT : change < -MARK_PERCENT;
    const worse = up ? change < -MARK_PERCENT : change > MARK_PERCENT;
    const pct = Number.isFinite(change) ? `${change >= 0 ? "+" : ""}${change.toFixed(1)} %` : "was 0";
    const mark = improved ? " better" : worse ? " **worse**" : "";
    lines.push(`| ${n.label} | ${n.metric.key} | ${o.text} | ${n.text} | ${pct}${mark} |`);
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const t0 = Date.now();
  const flags = parseFlags(Deno.args, new Set(["quick", "keep", "help"]));
  if (flags.get("help") === "true") {
    console.log(usage());
    return 0;
  }
  const jsonOut = flags.get("json");
  const compareWith = flags.get("compare");
  keepTmp = flags.get("keep") === "true";
  for (const f of ["json", "compare", "keep"]) flags.delete(f);
  const known = new Set([...KNOBS.map((k) => kebab(k.key)), "quick"]);
  for (const f of flags.keys()) if (!known.has(f)) throw new Error(`unknown option --${f}\n${usage()}`);
  const settings = readSettings(flags, Deno.env.toObject());
  const old = compareWith ? JSON.parse(await Deno.readTextFile(compareWith)) as BenchResult : undefined;

  const cores = navigator.hardwareConcurrency;
  pinning = onPath("taskset") && cores >= 2 && settings.serverCpu < cores && settings.loadCpu < cores &&
    settings.serverCpu !== settings.loadCpu;
  const notes: string[] = [];
  if (!pinning) notes.push("server and load were not pinned to separate cores: their numbers share the CPU");

  const limit = openFilesLimit("self");
  if (settings.conns > 0 && limit !== null && limit.hard < settings.conns + 256) {
    const cut = Math.max(0, limit.hard - 256);
    notes.push(
      `open-files hard limit is ${limit.hard}: idle sockets cut from ${settings.conns} to ${cut} ` +
        `(run with a higher ulimit -Hn to measure ${settings.conns})`,
    );
    settings.conns = cut;
  }

  tmpRoot = await Deno.makeTempDir({ prefix: "kefu-bench-" });
  const perStoreS = settings.duration + settings.rateSecs + 2 * settings.drain + 60 + 120;
  const capS = settings.reps * settings.stores.length * perStoreS + (settings.conns > 0 ? 300 : 0) + 60;
  const cap = setTimeout(async () => {
    progress(`over the whole run's cap of ${capS} s: stopping`);
    await cleanup();
    Deno.exit(3);
  }, capS * 1000);
  Deno.unrefTimer(cap);

  const machine = await describeMachine();
  const runs: Record<string, StoreRun[]> = Object.fromEntries(settings.stores.map((id) => [id, []]));
  // Rounds interleave the settings, so that a slow spell of the machine does not land on one of them.
  // Each round also starts with another setting: the shared side-by-side harness found the first
  // server of a round measuring 8–10 % low.
  for (let rep = 1; rep <= settings.reps; rep++) {
    const n = settings.stores.length;
    const order = settings.stores.map((_, i) => settings.stores[(i + rep - 1) % n]);
    if (settings.reps > 1) progress(`round ${rep} of ${settings.reps}`);
    for (const id of order) {
      if (stopping) break;
      try {
        runs[id].push(await runStore(settings, id));
      } catch (e) {
        progress(`${STORES[id].label}: ${(e as Error).message}`);
        runs[id].push({ error: (e as Error).message.split("\n")[0], label: STORES[id].label } as StoreRun);
      }
    }
  }
  let idle: BenchResult["idle"] = null;
  if (settings.conns > 0 && !stopping) {
    try {
      idle = await runIdle(settings, notes);
    } catch (e) {
      progress(`idle sockets: ${(e as Error).message}`);
      notes.push(`idle sockets failed: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  // Interrupted: the signal handler exits; a partial table would read as a result.
  if (stopping) return 130;
  if (settings.stores.length > 1 && !readsGroupCommit()) {
    notes.push("this kefu does not read STORE / GROUP_COMMIT_MS yet: every column runs the same code");
  }
  if (keepTmp) notes.push(`server logs kept in ${tmpRoot}`);

  const result: BenchResult = {
    version: 1,
    machine,
    settings,
    runs,
    idle,
    notes,
    ok: false,
    elapsedS: (Date.now() - t0) / 1000,
  };
  result.ok = isOk(result);
  console.log(renderTable(result));
  if (old) console.log(`\n${renderComparison(old, result)}`);
  if (jsonOut) await Deno.writeTextFile(jsonOut, `${JSON.stringify(result, null, 2)}\n`);
  clearTimeout(cap);
  return result.ok ? 0 : 1;
}

if (import.meta.main) {
  const onSignal = async () => {
    progress("interrupted: stopping children");
    await cleanup();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    code = 2;
  } finally {
    await cleanup();
  }
  Deno.exit(code);
}
