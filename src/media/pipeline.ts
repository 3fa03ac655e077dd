/**
 * Seed 004 §3, "the system first re-stores and converts the user's media file,
 * then gives the agent a URL": a user's image, voice or video is committed and
 * answered at once (WeChat waits 5 s at most), kept back from the agent while
 * its file is fetched from the channel, stored content-addressed, and converted
 * when a browser cannot play it; then it is delivered with `media_path` = a kefu
 * URL (or with `media_error` saying why there is none). The waiting messages are
 * the store's state `media`, so a restart resumes them and nothing is delivered
 * twice.
 *
 * Among several nodes (issue 19) each file is worked on by one: the node that
 * starts on a message holds the lease `media:<contact>/<id>` in the store for
 * the work's timeout and a margin; a node that finds it taken leaves the
 * message to its holder. Waiting messages are looked for again every minute
 * (src/jobs/jobs.ts), so that a node that died mid-work is taken over once its
 * leases ran out.
 *
 * @module
 */

import type { ChannelAdapter } from "../channels/channel.ts";
import type { Logger } from "../core/log.ts";
import { isMediaType, type Message } from "../core/message.ts";
import type { AcceptOptions, Hub, InboundResult } from "../hub/hub.ts";
import { type Converter, needsConversion } from "./convert.ts";
import type { MediaFiles } from "./files.ts";
import { observeMedia, observeMediaFailed } from "../metrics/metrics.ts";
import type { Store } from "../store/store.ts";

/** Where stored media are served: `MEDIA_PATH/<sha256>.<ext>`. */
export const MEDIA_PATH = "/media";

/** Options for {@link MediaPipeline}. */
export interface MediaPipelineOptions {
  hub: Hub;
  files: MediaFiles;
  converter: Converter;
  log: Logger;
  /** Longest the whole work on one file may take (`MEDIA_TIMEOUT_SECONDS`); then it is delivered without. */
  timeoutMs: number;
  /** Largest file per message type (WeChat's own: image 10 MB, voice 2 MB, video 10 MB). */
  maxBytes: (type: string) => number;
  /** Files worked on at once. */
  concurrency?: number;
  /** `PUBLIC_URL`: agents get absolute URLs (`https://kefu.example.com/media/…`) instead of paths. */
  publicUrl?: string;
  /** Several processes over one store: each file is claimed by a lease there, held by `holder` (NODE_ID). */
  leases?: { store: Pick<Store, "lease" | "release">; holder: string };
}

/** How much longer than the work's timeout a file's lease lasts (the release and its commit come after the work). */
export const MEDIA_LEASE_MARGIN_MS = 30_000;

/** What a channel fetches for a message: the file's bytes and its type. */
export interface FetchedMedia {
  bytes: Uint8Array;
  contentType: string;
}

interface Job {
  channel: ChannelAdapter;
  message: Message;
}

/** The media work queue, between the accept path and delivery. */
export class MediaPipeline {
  readonly #o: MediaPipelineOptions;
  readonly #queue: Job[] = [];
  readonly #running = new Set<Promise<void>>();
  /** The messages queued or being worked on here (`contact/id`): one job each, however often they are resumed. */
  readonly #known = new Set<string>();
  #stopped = false;

  constructor(options: MediaPipelineOptions) {
    this.#o = options;
  }

  /** The accept path for `channel`: a media message it can fetch is held for its file; anything else goes straight on. */
  accept(channel: ChannelAdapter, m: Message, options: AcceptOptions = {}): Promise<InboundResult> {
    // Not async: a text message takes the hub's own promise, not one more turn of the event loop.
    if (!isMediaType(m.type) || channel.fetchMedia === undefined) return this.#o.hub.accept(m, options);
    return this.#o.hub.accept(m, { ...options, holdForMedia: true }).then((r) => {
      if (r.status === "pending") this.#enqueue({ channel, message: m });
      return r;
    });
  }

  /** Work that was under way when kefu stopped (the store's messages in state `media`). */
  resume(messages: readonly Message[], channelOf: (name: string) => ChannelAdapter | undefined): void {
    for (const message of messages) {
      const channel = channelOf(message.channel);
      if (channel === undefined) {
        this.#fail(message, `its channel ${JSON.stringify(message.channel)} is not configured`);
        this.#release(message);
      } else this.#enqueue({ channel, message });
    }
  }

  /** An agent asks to try a failed file again (throws `KefuError` when it cannot be); the message comes again. */
  async retry(
    agent: string,
    ref: { contact: string; id: string },
    channelOf: (name: string) => ChannelAdapter | undefined,
  ) {
    const m = await this.#o.hub.reopenMedia(agent, ref);
    const extra = m.extra ??= {};
    // Where the file came from, as the channel gave it (the failure cleared `media`).
    m.media = extra.media_source ?? m.media;
    delete extra.media_error;
    this.resume([m], channelOf);
  }

  /** Stop taking work; wait up to `ms` for what runs (the rest resumes at the next start). */
  async stop(ms: number): Promise<void> {
    this.#stopped = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.allSettled([...this.#running]),
      new Promise((resolve) => timer = setTimeout(resolve, ms)),
    ]);
    clearTimeout(timer);
  }

  /** Files being worked on and waiting, and what is kept on disk (for `/healthz`). */
  stats(): { media_running: number; media_waiting: number; media_files: number; media_bytes: number } {
    return { media_running: this.#running.size, media_waiting: this.#queue.length, ...this.#o.files.usage() };
  }

  /** Retention: delete stored files older than `cutoffMs` that no message uses (`inUse`). */
  sweepFiles(cutoffMs: number, inUse: ReadonlySet<string>): Promise<number> {
    return this.#o.files.sweep(cutoffMs, inUse);
  }

  #enqueue(job: Job): void {
    const key = jobKey(job.message);
    if (this.#known.has(key)) return;
    this.#known.add(key);
    this.#queue.push(job);
    this.#next();
  }

  #next(): void {
    while (!this.#stopped && this.#running.size < (this.#o.concurrency ?? 2) && this.#queue.length > 0) {
      const job = this.#queue.shift()!;
      const run = this.#claimed(job).finally(() => {
        this.#known.delete(jobKey(job.message));
        this.#running.delete(run);
        this.#next();
      });
      this.#running.add(run);
    }
  }

  // The work, when this node gets the message's lease (or no lease is needed); the lease is given back after.
  async #claimed(job: Job): Promise<void> {
    const leases = this.#o.leases;
    if (leases === undefined) return this.#work(job);
    const key = `media:${jobKey(job.message)}`;
    try {
      const until = Date.now() + this.#o.timeoutMs + MEDIA_LEASE_MARGIN_MS;
      if (!await leases.store.lease(key, leases.holder, until)) {
        this.#o.log.debug("media_elsewhere", { id: job.message.id, detail: "another node works on this file" });
        return;
      }
    } catch (e) {
      // Not claimed: the message stays in state `media`, and the next look for waiting work tries again.
      this.#o.log.warn("media_claim_failed", { id: job.message.id, error: String(e) });
      return;
    }
    await this.#work(job);
    await leases.store.release(key, leases.holder).catch((e) =>
      this.#o.log.warn("media_lease_release_failed", { id: job.message.id, error: String(e) })
    );
  }

  async #work({ channel, message: m }: Job): Promise<void> {
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the file was not ready within ${this.#o.timeoutMs / 1000} s`)),
        this.#o.timeoutMs,
      );
    });
    try {
      await Promise.race([this.#keep(channel, m), timeout]);
    } catch (e) {
      this.#fail(m, (e as Error).message);
      observeMediaFailed(m.type);
      this.#o.log.warn("media_failed", { channel: m.channel, id: m.id, type: m.type, error: (e as Error).message });
    } finally {
      clearTimeout(timer);
    }
    this.#o.log.debug("media_ready", { id: m.id, ms: Math.round(performance.now() - started) });
    await this.#release(m);
  }

  // Fetch, keep the original, convert what a browser cannot play; `m.media` becomes the kefu path.
  async #keep(channel: ChannelAdapter, m: Message): Promise<void> {
    const { files, converter } = this.#o;
    const fetched = await observeMedia("fetch", m.type, channel.fetchMedia!(m, this.#o.maxBytes(m.type)));
    const extra = m.extra ??= {};
    const original = await files.put(fetched.bytes, fetched.contentType);
    let shown = original;
    if (needsConversion(original.contentType)) {
      if (await converter.available()) {
        const converted = await converter.convert(fetched.bytes, original.contentType);
        shown = await files.put(converted.bytes, converted.contentType);
        extra.media_original = `${this.#o.publicUrl ?? ""}${MEDIA_PATH}/${original.name}`;
      } else {
        extra.media_error = "conversion unavailable (ffmpeg not found): the original file is kept as it came";
      }
    }
    m.media = `${this.#o.publicUrl ?? ""}${MEDIA_PATH}/${shown.name}`;
    extra.media_type = shown.contentType;
    extra.media_size = String(shown.size);
  }

  #fail(m: Message, why: string): void {
    const extra = m.extra ??= {};
    extra.media_error = why;
    // No kefu file: the agent keeps nothing that would need WeChat's token to open (a retry needs the source).
    if (!m.media.startsWith(`${this.#o.publicUrl ?? ""}${MEDIA_PATH}/`)) {
      if (m.media !== "") extra.media_source = m.media;
      m.media = "";
    }
  }

  async #release(m: Message): Promise<void> {
    try {
      await this.#o.hub.release(m);
    } catch (e) {
      // Still in state `media` in the store: it is worked on again at the next start.
      this.#o.log.error("media_release_failed", { id: m.id, error: String(e) });
    }
  }
}

function jobKey(m: Message): string {
  return `${m.contact}/${m.id}`;
}
