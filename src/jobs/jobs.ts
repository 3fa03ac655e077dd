/**
 * kefu's background work, apart from the accept path: what runs once at start on what the store kept (replies
 * that were under way, media work to resume) and what runs on a timer (the retention sweep). `main.ts` composes
 * it; nothing here holds state of the hub's.
 *
 * @module
 */

import type { ChannelAdapter } from "../channels/channel.ts";
import type { Logger } from "../core/log.ts";
import type { Message } from "../core/message.ts";
import type { MessageRef, OutboundState, Store } from "../store/store.ts";

/** How often the retention sweep runs. */
export const SWEEP_EVERY_MS = 3_600_000;

/** What the recovery at start needs of the hub. */
export interface ReplyStates {
  replyState(message: MessageRef, state: OutboundState, detail?: string): Promise<boolean>;
}

/**
 * Replies that were on their way when kefu stopped may or may not have reached WeChat: say so (each is marked
 * failed, its agents see why), never resend. Returns how many there were.
 */
export async function recoverOutbox(hub: ReplyStates, outbox: readonly MessageRef[]): Promise<number> {
  for (const m of outbox) await hub.replyState(m, "failed", "kefu restarted before WeChat confirmed this reply");
  return outbox.length;
}

/** What the media resume needs of the pipeline. */
export interface MediaWork {
  resume(messages: readonly Message[], channelOf: (name: string) => ChannelAdapter | undefined): void;
}

/** Media messages whose file was being fetched or converted when kefu stopped: the work starts again. */
export function resumeMedia(
  media: MediaWork,
  messages: readonly Message[],
  channels: readonly ChannelAdapter[],
): void {
  media.resume(messages, (name) => channels.find((ch) => ch.name === name));
}

/** Options of {@link startJobs}. */
export interface JobsOptions {
  store: Pick<Store, "sweep" | "mediaInUse">;
  /** The media files no message uses any more are swept after the messages. */
  media: { sweepFiles(cutoffMs: number, inUse: ReadonlySet<string>): Promise<number> };
  /** Reply windows, swept of the expired ones at the same time. */
  windows?: { sweep(): void };
  log: Logger;
  /** Messages older than this go (unread ones stay): `RETENTION_DAYS`. */
  retentionDays: number;
  /** Default {@link SWEEP_EVERY_MS}. */
  sweepEveryMs?: number;
  /** Clock in ms (tests move it). */
  now?: () => number;
}

/** Timed jobs that run until stopped. */
export interface Jobs {
  /** Run the retention sweep now (it also runs at start and every hour); resolves with messages deleted. */
  sweep(): Promise<number>;
  /** Stop the timers and wait for a sweep under way (so the store can close after it). Idempotent. */
  stop(): Promise<void>;
}

/** Start the retention sweep: once now, then every hour. */
export function startJobs(options: JobsOptions): Jobs {
  const { store, media, windows, log, retentionDays } = options;
  const now = options.now ?? Date.now;
  let running: Promise<number> | undefined;
  const sweep = (): Promise<number> => {
    // One at a time: a slow sweep is not overtaken by the next hour's.
    running ??= (async () => {
      windows?.sweep();
      const cutoff = now() - retentionDays * 86_400_000;
      try {
        const n = await store.sweep(cutoff);
        const files = await media.sweepFiles(cutoff, await store.mediaInUse());
        if (n > 0 || files > 0) {
          log.info("retention_sweep", { deleted: n, media_files_deleted: files, days: retentionDays });
        }
        return n;
      } catch (e) {
        log.warn("retention_sweep_failed", { error: String(e) });
        return 0;
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  void sweep();
  const timer = setInterval(sweep, options.sweepEveryMs ?? SWEEP_EVERY_MS);
  return {
    sweep,
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
