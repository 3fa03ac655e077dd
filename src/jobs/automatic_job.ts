/**
 * The job of automatic messages' timed work (please-wait, auto-resolve: `src/automation/automatic.ts`): a pass every
 * few seconds on the one process holding the lease `job:automatic`, so that with several nodes one node does it (the
 * store's records keep even two passes at once from sending anything twice). Old records go with the retention.
 *
 * @module
 */

import type { Logger } from "../core/log.ts";
import type { Store } from "../store/store.ts";

/** How often a pass runs by default. */
export const AUTOMATIC_EVERY_MS = 5_000;
/**
 * How often a pass also looks for idle conversations to resolve: their idle times are minutes, and the look reads
 * every open conversation's newest message (about 120 ms on SQLite's event loop at 20,000 open conversations,
 * bench/automatic_bench.ts).
 */
export const RESOLVE_EVERY_MS = 60_000;
/** The lease's key: one per job. */
export const AUTOMATIC_LEASE = "job:automatic";

/** Options of {@link startAutomaticJob}. */
export interface AutomaticJobOptions {
  /** One pass of the work. */
  automatic: { tick(options: { resolve?: boolean }): Promise<{ pleaseWait: number; resolved: number }> };
  store: Pick<Store, "lease" | "release" | "forgetAutomatic">;
  /** This process, as the lease's holder (NODE_ID). */
  holder: string;
  log: Logger;
  /** Records older than this are forgotten (RETENTION_DAYS). */
  retentionDays: number;
  /** Default {@link AUTOMATIC_EVERY_MS}. */
  everyMs?: number;
  /** How often a pass also looks for idle conversations; default {@link RESOLVE_EVERY_MS}. */
  resolveEveryMs?: number;
  /** Clock in epoch ms (tests move it). */
  now?: () => number;
}

/** A running job. */
export interface AutomaticJob {
  /** Run one pass now (if this process holds or takes the lease); resolves to whether it ran. */
  run(): Promise<boolean>;
  /** Stop the timer, wait for a pass under way and give the lease back. Idempotent. */
  stop(): Promise<void>;
}

/** Start the job: a pass now, then every `everyMs`. */
export function startAutomaticJob(options: AutomaticJobOptions): AutomaticJob {
  const { automatic, store, holder, log } = options;
  const every = options.everyMs ?? AUTOMATIC_EVERY_MS;
  const now = options.now ?? Date.now;
  let running: Promise<boolean> | undefined;
  let stopped = false;
  let lastForget = -Infinity;
  let lastResolve = -Infinity;
  const run = (): Promise<boolean> => {
    // One pass at a time: a slow one is not overtaken by the next tick.
    running ??= (async () => {
      try {
        // Held a little past two ticks: a node that stops or dies leaves it to another within seconds.
        if (stopped || !await store.lease(AUTOMATIC_LEASE, holder, now() + 2 * every + 1000)) return false;
        const resolve = now() - lastResolve >= (options.resolveEveryMs ?? RESOLVE_EVERY_MS);
        if (resolve) lastResolve = now();
        const done = await automatic.tick({ resolve });
        if (done.pleaseWait > 0 || done.resolved > 0) {
          log.info("automatic_pass", { please_wait: done.pleaseWait, resolved: done.resolved });
        }
        if (now() - lastForget > 3_600_000) {
          lastForget = now();
          await store.forgetAutomatic(now() - options.retentionDays * 86_400_000);
        }
        return true;
      } catch (e) {
        log.warn("automatic_pass_failed", { error: String(e) });
        return false;
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  const timer = setInterval(run, every);
  void run();
  return {
    run,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await running;
      await store.release(AUTOMATIC_LEASE, holder).catch(() => {});
    },
  };
}
