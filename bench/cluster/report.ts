/**
 * The cluster benchmark's results: what each setup's phases measured, and the Markdown table of them.
 *
 * @module
 */

import type { LoadgenResult } from "./loadgen.ts";
import type { Settings } from "./settings.ts";

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

/** The process groups whose CPU is read: every node, PostgreSQL, Redis and nginx. */
export const GROUPS = ["kefu", "postgres", "redis", "nginx"] as const;

/** One row of pg_stat_statements. */
export interface Statement {
  calls: number;
  totalMs: number;
  rows: number;
  query: string;
}

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
