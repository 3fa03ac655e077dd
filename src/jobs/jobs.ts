/**
 * kefu's background work, apart from the accept path: what runs once at start on what the store kept (media work to
 * resume) and what runs on a timer (replies left under way, the retention sweep). `main.ts` composes it; nothing here
 * holds state of the hub's. Several kefu processes may share the store: a reply under way is another process's until
 * its lease runs out; the retention sweep and the look for replies left under way run on one process at a time (a
 * lease in the store each); media work waiting in the store is looked for every minute by every process, and each
 * file is claimed by one (the pipeline's lease per message), so that a process that died mid-work is taken over.
 *
 * @module
 */

import type { ChannelAdapter } from "../channels/channel.ts";
import type { Logger } from "../core/log.ts";
import type { Message } from "../core/message.ts";
import type { MessageRef, OutboundState, Store, StoredMessage } from "../store/store.ts";

/** How often the retention sweep runs. */
export const SWEEP_EVERY_MS = 3_600_000;

/**
 * How long a reply being sent belongs to the process that kept it: longer than any channel's send takes (WeChat's API
 * calls time out within seconds). A reply still `queued` after that was left by a process that stopped or died.
 */
export const REPLY_LEASE_MS = 120_000;

/** How often replies left under way are looked for. */
export const OUTBOX_EVERY_MS = 60_000;

/** What the recovery at start needs of the hub. */
export interface ReplyStates {
  replyState(message: MessageRef, state: OutboundState, detail?: string): Promise<boolean>;
}

/**
 * Replies that were on their way when a kefu stopped may or may not have reached WeChat: say so (each is marked
 * failed, its agents see why), never resend. Only replies whose lease ran out (kept longer than `leaseMs` ago): a
 * younger one is another process's send under way, never failed from here. Returns how many were marked.
 */
export async function recoverOutbox(
  hub: ReplyStates,
  outbox: readonly (MessageRef & Pick<StoredMessage, "storedAt">)[],
  now = Date.now(),
  leaseMs = REPLY_LEASE_MS,
): Promise<number> {
  let n = 0;
  for (const m of outbox) {
    if (now - m.storedAt < leaseMs) continue;
    await hub.replyState(m, "failed", "kefu stopped before the channel confirmed this reply; it was not sent again");
    n++;
  }
  return n;
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

/** How often media work waiting in the store (state `media`) is looked for, among several processes. */
export const MEDIA_EVERY_MS = 60_000;

/** Options of {@link startJobs}. */
export interface JobsOptions {
  store:
    & Pick<Store, "sweep" | "mediaInUse" | "outbox" | "setOutboundState" | "lease">
    & Partial<Pick<Store, "waitingMedia">>;
  /** This process, as the holder of the retention sweep's lease (NODE_ID). */
  holder?: string;
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
  /**
   * Several processes share the store: media work waiting there (another process's that died) is resumed every
   * `MEDIA_EVERY_MS` through the pipeline, which claims each file by a lease. Undefined: only at start (main.ts).
   */
  waitingMedia?: { work: MediaWork; channels: readonly ChannelAdapter[]; everyMs?: number };
}

/** Timed jobs that run until stopped. */
export interface Jobs {
  /** Run the retention sweep now (it also runs at start and every hour); resolves with messages deleted. */
  sweep(): Promise<number>;
  /** Stop the timers and wait for a sweep under way (so the store can close after it). Idempotent. */
  stop(): Promise<void>;
}

/** Start the jobs: the retention sweep (now, then every hour) and replies left under way (every minute). */
export function startJobs(options: JobsOptions): Jobs {
  const { store, media, windows, log, retentionDays } = options;
  const now = options.now ?? Date.now;
  const every = options.sweepEveryMs ?? SWEEP_EVERY_MS;
  const holder = options.holder ?? "kefu";
  let running: Promise<number> | undefined;
  const sweep = (): Promise<number> => {
    // One at a time: a slow sweep is not overtaken by the next hour's.
    running ??= (async () => {
      windows?.sweep();
      const cutoff = now() - retentionDays * 86_400_000;
      try {
        // One process of those sharing the store sweeps each period; the others find the lease taken.
        if (!await store.lease("job:retention", holder, now() + every - 1000)) return 0;
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
  let checking: Promise<unknown> | undefined;
  const outbox = () => {
    // One process of those sharing the store looks each minute; the others find the lease taken.
    checking ??= store.lease("job:outbox", holder, now() + OUTBOX_EVERY_MS - 1000)
      .then((mine) => mine ? store.outbox() : [])
      .then((left) => recoverOutbox({ replyState: (m, s, d) => store.setOutboundState(m, s, d) }, left, now()))
      .then((n) => n > 0 && log.warn("replies_left_under_way", { failed: n }))
      .catch((e) => log.warn("outbox_check_failed", { error: String(e) }))
      .finally(() => checking = undefined);
    return checking;
  };
  let looking: Promise<unknown> | undefined;
  const waiting = options.waitingMedia;
  const lookForMedia = () => {
    if (waiting === undefined || store.waitingMedia === undefined) return;
    looking ??= store.waitingMedia()
      .then((messages) => resumeMedia(waiting.work, messages, waiting.channels))
      .catch((e) => log.warn("media_check_failed", { error: String(e) }))
      .finally(() => looking = undefined);
  };
  void sweep();
  void outbox();
  const timer = setInterval(sweep, every);
  const outboxTimer = setInterval(outbox, OUTBOX_EVERY_MS);
  const mediaTimer = waiting && setInterval(lookForMedia, waiting.everyMs ?? MEDIA_EVERY_MS);
  return {
    sweep,
    async stop() {
      clearInterval(timer);
      clearInterval(outboxTimer);
      clearInterval(mediaTimer);
      await Promise.all([running, checking, looking]);
    },
  };
}
