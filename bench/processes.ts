/**
 * The benchmarks' child processes (servers, loaders, nginx): started, stopped with SIGTERM then SIGKILL after a
 * grace, all stopped on exit; free ports, log tails and the /healthz probe they are started with.
 *
 * @module
 */

import { sleep } from "./lib.ts";

/** The children a benchmark started and has not stopped yet. */
export class Children {
  readonly #live = new Set<Deno.ChildProcess>();

  /** Keep `child` to be stopped on exit. */
  add(child: Deno.ChildProcess): Deno.ChildProcess {
    this.#live.add(child);
    return child;
  }

  /** `child` has exited by itself: no longer to be stopped. */
  delete(child: Deno.ChildProcess): void {
    this.#live.delete(child);
  }

  /** SIGTERM, then SIGKILL if `child` is still there after `graceMs`. */
  async stop(child: Deno.ChildProcess, graceMs: number): Promise<void> {
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
    this.#live.delete(child);
  }

  /** Stop every child at once. */
  async stopAll(graceMs: number): Promise<void> {
    await Promise.all([...this.#live].map((c) => this.stop(c, graceMs)));
  }
}

/** A port nobody listens on right now (the server gets it as PORT, so readiness does not depend on its log). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** The last `lines` of a log file, to say why a child did not start. */
export function tail(path: string, lines = 15): string {
  try {
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Whether a kefu on `port` answers /healthz with 2xx within a second. */
export async function answers(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}
