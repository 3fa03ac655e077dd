/**
 * The store's background worker, main side: a second connection to the store's file in a worker thread, which runs
 * the WAL checkpoints and searches. A checkpoint copies the WAL back into the database file and syncs it: on the
 * event loop that was a stall of several milliseconds a few times a second under load — the accept path's p99.
 * PASSIVE checkpoints on another connection never block the writer. The main connection keeps a backstop of its
 * own at a higher threshold (see `sqlite_store.ts`), since only a checkpoint that finds the WAL fully copied lets
 * the next write start it over.
 *
 * The two checkpointers take turns, and this side decides: a checkpoint that finds another running gives up at once,
 * so when the worker checkpointed all the time (a short interval, a slow disk) the writer's backstop kept finding
 * it busy and the WAL grew on (a CI run saw 38 MB). The worker checkpoints when asked, one at a time; once it
 * reports the WAL past the backstop, it is not asked again before the writer has committed — and so copied the
 * rest and let the WAL start over.
 *
 * Should the worker fail to start or die, the store is told ({@link BackgroundOptions.failed}) and turns SQLite's
 * automatic checkpoints back on, so that the WAL stays bounded either way.
 *
 * @module
 */

import type { ReportData, ReportQuery } from "./reports_sql.ts";
import type { Row } from "./search.ts";

/** What the main side asks of the worker. */
export type WorkerRequest =
  | { kind: "open"; path: string; busyTimeoutMs: number }
  | { kind: "checkpoint" }
  | { kind: "search"; id: number; agent: string; text: string; limit: number }
  | { kind: "report"; id: number; query: ReportQuery }
  | { kind: "close" };

/** What the worker answers. */
export type WorkerReply =
  | { kind: "opened"; error?: string }
  | { kind: "checkpoint"; log?: number; checkpointed?: number; busy?: boolean; error?: string }
  | { kind: "search"; id: number; rows?: Row[]; error?: string }
  | { kind: "report"; id: number; data?: ReportData; error?: string }
  | { kind: "closed" };

/** Options for {@link Background}. */
export interface BackgroundOptions {
  /** The store's file. */
  path: string;
  busyTimeoutMs: number;
  /** How often to checkpoint the WAL. */
  checkpointMs: number;
  /** The writer's own checkpoint threshold (frames): past it, the writer's turn comes first. */
  backstopPages: number;
  /** The worker cannot do its work (it failed to start, or died): the store checkpoints by itself again. */
  failed(reason: string): void;
}

/** Counters of the worker's checkpoints (read by tests). */
export interface BackgroundStats {
  checkpoints: number;
  /** Frames in the WAL at the last checkpoint, and how many of them it had copied. */
  walFrames: number;
  walCheckpointed: number;
}

interface Pending {
  // deno-lint-ignore no-explicit-any
  resolve(value: any): void;
  reject(e: Error): void;
}

// How many checkpoint ticks the writer has to take its turn (see Background's writersTurn).
const WRITERS_TURN_TICKS = 10;
// How long close() waits for the worker to close its connection before it is terminated.
const CLOSE_WAIT_MS = 2000;

/** The worker of one store file; see the module documentation. */
export class Background {
  readonly #worker: Worker;
  readonly #options: BackgroundOptions;
  readonly #pending = new Map<number, Pending>();
  #next = 0;
  #dead: string | undefined;
  #onClosed: (() => void) | undefined;
  readonly #stats: BackgroundStats = { checkpoints: 0, walFrames: 0, walCheckpointed: 0 };
  readonly #timer: ReturnType<typeof setInterval>;
  /** A checkpoint was asked for and not yet answered. */
  #checkpointing = false;
  /**
   * Ticks left for the writer to commit (and checkpoint) before the worker is asked again: the last checkpoint
   * left the WAL past the writer's backstop. Bounded, so that a store that stopped writing is still checkpointed.
   */
  #writersTurn = 0;

  constructor(options: BackgroundOptions) {
    this.#options = options;
    this.#worker = new Worker(new URL("./background_worker.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (e: MessageEvent<WorkerReply>) => this.#receive(e.data);
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#die(`the store's background worker failed: ${e.message}`);
    };
    this.#post({
      kind: "open",
      path: options.path,
      busyTimeoutMs: options.busyTimeoutMs,
    });
    this.#timer = setInterval(() => this.#checkpoint(), options.checkpointMs);
  }

  /** The writer committed: its backstop has had its turn. */
  committed(): void {
    this.#writersTurn = 0;
  }

  #checkpoint(): void {
    if (this.#writersTurn > 0) this.#writersTurn--;
    else if (!this.#checkpointing && this.#dead === undefined) {
      this.#checkpointing = true;
      this.#post({ kind: "checkpoint" });
    }
  }

  /** Run a search on the worker's connection. */
  search(agent: string, text: string, limit: number): Promise<Row[]> {
    if (this.#dead !== undefined) return Promise.reject(new Error(`cannot search the store: ${this.#dead}`));
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#post({ kind: "search", id, agent, text, limit });
    });
  }

  /** Compute a report on the worker's connection (issue 22). */
  report(query: ReportQuery): Promise<ReportData> {
    if (this.#dead !== undefined) return Promise.reject(new Error(`cannot compute a report: ${this.#dead}`));
    const id = ++this.#next;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#post({ kind: "report", id, query });
    });
  }

  /** Whether the worker still works (it failed to start or died: the store does its work itself). */
  get alive(): boolean {
    return this.#dead === undefined;
  }

  stats(): BackgroundStats {
    return { ...this.#stats };
  }

  /** Let the worker close its connection, then end it; searches under way are refused. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    if (this.#dead === undefined) {
      const closed = new Promise<void>((resolve) => this.#onClosed = resolve);
      let timer: ReturnType<typeof setTimeout> | undefined;
      this.#post({ kind: "close" });
      await Promise.race([closed, new Promise((r) => timer = setTimeout(r, CLOSE_WAIT_MS))]);
      clearTimeout(timer);
    }
    this.#worker.terminate();
    this.#reject("the store was closed");
    this.#dead ??= "the store was closed";
  }

  #post(request: WorkerRequest): void {
    this.#worker.postMessage(request);
  }

  #receive(m: WorkerReply): void {
    switch (m.kind) {
      case "opened":
        if (m.error !== undefined) this.#die(`the store's background worker cannot open the file: ${m.error}`);
        return;
      case "checkpoint":
        this.#checkpointing = false;
        if (m.error === undefined && !m.busy) {
          this.#stats.checkpoints++;
          this.#stats.walFrames = m.log!;
          this.#stats.walCheckpointed = m.checkpointed!;
          if (m.log! >= this.#options.backstopPages) this.#writersTurn = WRITERS_TURN_TICKS;
        }
        return;
      case "search": {
        const p = this.#pending.get(m.id);
        if (p === undefined) return;
        this.#pending.delete(m.id);
        if (m.error !== undefined) p.reject(new Error(`cannot search the store: ${m.error}`));
        else p.resolve(m.rows!);
        return;
      }
      case "report": {
        const p = this.#pending.get(m.id);
        if (p === undefined) return;
        this.#pending.delete(m.id);
        if (m.error !== undefined) p.reject(new Error(`cannot compute a report: ${m.error}`));
        else p.resolve(m.data!);
        return;
      }
      case "closed":
        this.#onClosed?.();
        return;
    }
  }

  #die(reason: string): void {
    if (this.#dead !== undefined) return;
    this.#dead = reason;
    clearInterval(this.#timer);
    this.#worker.terminate();
    this.#reject(reason);
    this.#onClosed?.();
    this.#options.failed(reason);
  }

  #reject(reason: string): void {
    for (const p of this.#pending.values()) p.reject(new Error(`cannot search the store: ${reason}`));
    this.#pending.clear();
  }
}
