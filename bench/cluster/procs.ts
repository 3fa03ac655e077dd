/**
 * `/proc` readings for the cluster benchmark: the CPU time of whole process trees (a kefu node, PostgreSQL's
 * postmaster and its backends, Redis, nginx's master and workers), the machine's own busy time per core (to see the
 * other work on a shared machine), the load average, and pinning a running tree to a core with `taskset`.
 *
 * @module
 */

// USER_HZ is 100 on every Linux build Deno runs on.
const TICKS_PER_S = 100;

/** One process: its parent and its CPU time in clock ticks, its own and that of its children it has reaped. */
interface ProcRow {
  ppid: number;
  ticks: number;
}

/** Every process now: pid → parent and CPU ticks (utime + stime + cutime + cstime). */
export function processTable(): Map<number, ProcRow> {
  const table = new Map<number, ProcRow>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      // The command name may hold spaces and parentheses: fields are counted from the last ")".
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // f[1] is ppid; f[11..14] are utime, stime, cutime, cstime. A backend that exited and was reaped by the
      // postmaster is in the postmaster's cutime/cstime, so short-lived children are not lost between samples.
      table.set(Number(entry.name), {
        ppid: Number(f[1]),
        ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]),
      });
    } catch { /* gone meanwhile */ }
  }
  return table;
}

/** `root` and all its live descendants. */
export function descendants(root: number, table: Map<number, ProcRow> = processTable()): number[] {
  const out = [root];
  for (let i = 0; i < out.length && i < 10_000; i++) {
    for (const [pid, row] of table) if (row.ppid === out[i]) out.push(pid);
  }
  return out.filter((pid) => table.has(pid));
}

/** CPU seconds used so far by each named group of process trees. */
export type CpuSnapshot = Record<string, number>;

/** CPU seconds of each group (its roots and their descendants) at this moment. */
export function sampleCpu(groups: Record<string, number[]>): CpuSnapshot {
  const table = processTable();
  const out: CpuSnapshot = {};
  for (const [name, roots] of Object.entries(groups)) {
    let ticks = 0;
    for (const root of roots) for (const pid of descendants(root, table)) ticks += table.get(pid)?.ticks ?? 0;
    out[name] = ticks / TICKS_PER_S;
  }
  return out;
}

/** Each group's roots and their descendants now (to sample often without reading all of /proc). */
export function groupPids(groups: Record<string, number[]>): Record<string, number[]> {
  const table = processTable();
  return Object.fromEntries(
    Object.entries(groups).map(([k, roots]) => [k, roots.flatMap((r) => descendants(r, table))]),
  );
}

/** CPU seconds of each group's known processes (from {@link groupPids}): a few small reads, cheap every 100 ms. */
export function sampleKnown(pids: Record<string, number[]>): CpuSnapshot {
  const out: CpuSnapshot = {};
  for (const [name, list] of Object.entries(pids)) {
    let ticks = 0;
    for (const pid of list) {
      try {
        const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      } catch { /* exited: its time is in its parent's cutime from now on */ }
    }
    out[name] = ticks / TICKS_PER_S;
  }
  return out;
}

/** `after − before` per group, in CPU seconds. */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuSnapshot {
  return Object.fromEntries(Object.keys(after).map((k) => [k, Math.max(0, after[k] - (before[k] ?? 0))]));
}

/** Busy and total jiffies of the whole machine and of each core, from `/proc/stat`. */
export interface MachineStat {
  all: { busy: number; total: number };
  cores: { busy: number; total: number }[];
}

/** Read `/proc/stat`: busy = everything but idle and iowait. */
export function machineStat(): MachineStat {
  const lines = Deno.readTextFileSync("/proc/stat").split("\n").filter((l) => /^cpu\d* /.test(l));
  const parse = (line: string) => {
    const n = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - n[3] - n[4], total };
  };
  return { all: parse(lines[0]), cores: lines.slice(1).map(parse) };
}

/** Per core and overall: the share of the time between two readings that the core was busy, in percent. */
export function busyPercent(a: MachineStat, b: MachineStat): { all: number; cores: number[] } {
  const pct = (x: { busy: number; total: number }, y: { busy: number; total: number }) =>
    y.total > x.total ? Math.round((y.busy - x.busy) / (y.total - x.total) * 1000) / 10 : 0;
  return { all: pct(a.all, b.all), cores: b.cores.map((c, i) => pct(a.cores[i] ?? c, c)) };
}

/** CPU seconds the machine spent busy between two readings (all cores). */
export function busySeconds(a: MachineStat, b: MachineStat): number {
  return (b.all.busy - a.all.busy) / TICKS_PER_S;
}

/** The 1-, 5- and 15-minute load averages. */
export function loadAverage(): [number, number, number] {
  const [a, b, c] = Deno.readTextFileSync("/proc/loadavg").split(" ").map(Number);
  return [a, b, c];
}

/** Pin `root`, every thread of it and every process below it to `cpu` (children forked later inherit it). */
export async function pinTree(root: number, cpu: number): Promise<void> {
  for (const pid of descendants(root)) {
    const out = await new Deno.Command("taskset", {
      args: ["-a", "-p", "-c", String(cpu), String(pid)],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    // A process that exited meanwhile is not an error; anything else is.
    const err = new TextDecoder().decode(out.stderr);
    if (!out.success && !/No such process/i.test(err)) {
      throw new Error(`cannot pin pid ${pid} to cpu ${cpu} with taskset: ${JSON.stringify(err.trim())}`);
    }
  }
}
