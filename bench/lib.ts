/**
 * Helpers shared by the benchmark's orchestrator (`run.ts`) and load generator
 * (`load.ts`): flag parsing, `/proc` readings and latency summaries.
 *
 * @module
 */

/** Flags as `--name value`, `--name=value` or a bare `--name` (true); positional arguments are refused. */
export function parseFlags(argv: string[], booleans: ReadonlySet<string> = new Set()): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${JSON.stringify(arg)}: options are --name value`);
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    if (eq >= 0) flags.set(name, arg.slice(eq + 1));
    else if (booleans.has(name)) flags.set(name, "true");
    else if (i + 1 < argv.length) flags.set(name, argv[++i]);
    else throw new Error(`--${name} needs a value`);
  }
  return flags;
}

/** Wall clock in epoch milliseconds with sub-millisecond resolution (one clock for send and receive). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Memory of a process from `/proc/PID/status`, in KiB; null when the process is gone. */
export interface ProcMem {
  rssKb: number;
  hwmKb: number;
  threads: number;
}

/** Read `VmRSS`, `VmHWM` and `Threads` of `pid` (`"self"` for this process). */
export function procMem(pid: number | "self"): ProcMem | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  const field = (key: string) => Number(text.match(new RegExp(`^${key}:\\s+(\\d+)`, "m"))?.[1] ?? 0);
  return { rssKb: field("VmRSS"), hwmKb: field("VmHWM"), threads: field("Threads") };
}

/** CPU time (user + system, in clock ticks) of a process at a moment. */
export interface CpuSample {
  ticks: number;
  at: number;
}

/** Sample the CPU time of `pid` from `/proc/PID/stat`; null when unreadable. */
export function procCpu(pid: number | "self"): CpuSample | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name may hold spaces and parentheses: fields are counted from the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { ticks: Number(fields[11]) + Number(fields[12]), at: nowMs() };
  } catch {
    return null;
  }
}

// USER_HZ is 100 on every Linux build Deno runs on.
const CLOCK_TICKS_PER_S = 100;

/** CPU use between two samples, in percent of one core; null when either is missing. */
export function cpuPercent(a: CpuSample | null, b: CpuSample | null): number | null {
  if (a === null || b === null || b.at <= a.at) return null;
  return round((b.ticks - a.ticks) / CLOCK_TICKS_PER_S / ((b.at - a.at) / 1000) * 100, 1);
}

/** The soft and hard limits on open files of `pid`, from `/proc/PID/limits`. */
export function openFilesLimit(pid: number | "self"): { soft: number; hard: number } | null {
  try {
    const line = Deno.readTextFileSync(`/proc/${pid}/limits`).split("\n").find((l) => l.startsWith("Max open files"));
    const m = line?.match(/^Max open files\s+(\S+)\s+(\S+)/);
    if (!m) return null;
    const num = (s: string) => s === "unlimited" ? Infinity : Number(s);
    return { soft: num(m[1]), hard: num(m[2]) };
  } catch {
    return null;
  }
}

/** Percentiles of a set of latencies, in milliseconds. */
export interface LatencySummary {
  n: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

/** Summarize the first `n` values of `samples` (sorted in place). */
export function summarize(samples: Float64Array, n: number): LatencySummary {
  const sorted = samples.subarray(0, n).sort();
  // Nearest rank: the value below which p % of the samples lie.
  const at = (p: number) => n === 0 ? null : round(sorted[Math.min(n - 1, Math.ceil(p / 100 * n) - 1)], 3);
  return { n, p50: at(50), p90: at(90), p99: at(99), max: n === 0 ? null : round(sorted[n - 1], 3) };
}

/** Round to `digits` decimals. */
export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
