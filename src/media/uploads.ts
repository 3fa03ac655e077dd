/**
 * Files an agent uploads to send to a user (image, voice, video). With a
 * {@link MediaFiles} store (the service's, under DATA_DIR/media) they are kept
 * there like users' media, content-addressed: an upload's id is its file name
 * (`<sha256>.<ext>`), the same file uploaded twice is one upload, and it
 * outlives restarts and the in-memory copy. A small in-memory cache (bounded in
 * bytes and age) holds recent ones and the media_id each got on each account
 * (media/upload once per account and file; WeChat keeps temporary media 3 days).
 * Without a store (tests) the memory is all there is. Several nodes share the
 * media_ids (the shared state on Redis, by file id and account): a file one node
 * uploaded to WeChat is not uploaded again by another.
 *
 * @module
 */

import { type MediaFiles, typeOfName } from "./files.ts";
import type { SharedState } from "../cluster/shared_state.ts";

/** One uploaded file. */
export interface Upload {
  id: string;
  bytes: Uint8Array;
  filename: string;
  contentType: string;
  /** Epoch ms. */
  createdAt: number;
  /** WeChat media_id per account, with the ms it was uploaded. */
  readonly wechat: Map<string, { mediaId: string; at: number }>;
}

/** Limits of {@link Uploads}. */
export interface UploadsOptions {
  /** Largest file; default 10 MiB (WeChat's limit for images and videos). */
  maxFileBytes?: number;
  /** All files together; default 64 MiB. */
  maxTotalBytes?: number;
  /** How long a file is kept in memory; default 1 hour (with a store it stays there). */
  ttlMs?: number;
  /** Where uploads are kept for good; without it only in memory. */
  files?: MediaFiles;
  /** Where every node finds the media_ids files got (several nodes: on Redis); without it this process's only. */
  shared?: SharedState;
  now?: () => number;
}

/** WeChat keeps temporary media 3 days; re-upload a little before. */
const WECHAT_MEDIA_LIFE_MS = 71 * 3_600_000;

/** The upload cache. */
export class Uploads {
  readonly #files = new Map<string, Upload>();
  #bytes = 0;
  readonly maxFileBytes: number;
  readonly #maxTotal: number;
  readonly #ttl: number;
  readonly #now: () => number;
  readonly #store: MediaFiles | undefined;
  readonly #shared: SharedState | undefined;

  constructor(options: UploadsOptions = {}) {
    this.#store = options.files;
    this.#shared = options.shared;
    this.maxFileBytes = options.maxFileBytes ?? 10 << 20;
    this.#maxTotal = options.maxTotalBytes ?? 64 << 20;
    this.#ttl = options.ttlMs ?? 3_600_000;
    this.#now = options.now ?? Date.now;
  }

  /** Keep a file; the oldest in memory make room. Answers the upload (the same one for the same bytes). */
  async add(bytes: Uint8Array, filename: string, contentType: string): Promise<Upload> {
    let id: string = crypto.randomUUID();
    if (this.#store !== undefined) {
      const f = await this.#store.put(bytes, contentType);
      id = f.name;
      const known = this.#files.get(id);
      if (known !== undefined) {
        // Fresh again, with the media_ids WeChat gave it still known.
        this.#files.delete(id);
        this.#files.set(id, known);
        known.createdAt = this.#now();
        return known;
      }
    }
    const u: Upload = { id, bytes, filename, contentType, createdAt: this.#now(), wechat: new Map() };
    this.#files.set(id, u);
    this.#bytes += bytes.length;
    this.#evict();
    return u;
  }

  /** An upload by id: from memory, else (with a store) read back from it; undefined when there is none. */
  async load(id: string): Promise<Upload | undefined> {
    const u = this.get(id);
    if (u !== undefined || this.#store === undefined) return u;
    const contentType = typeOfName(id);
    if (contentType === undefined) return undefined;
    let bytes: Uint8Array;
    try {
      bytes = await this.#store.read(id);
    } catch {
      return undefined;
    }
    const back: Upload = { id, bytes, filename: id, contentType, createdAt: this.#now(), wechat: new Map() };
    this.#files.set(id, back);
    this.#bytes += bytes.length;
    this.#evict();
    return back;
  }

  /** A kept, unexpired file. */
  get(id: string): Upload | undefined {
    const u = this.#files.get(id);
    if (u === undefined) return undefined;
    if (this.#now() - u.createdAt >= this.#ttl) {
      this.#drop(u);
      return undefined;
    }
    return u;
  }

  /** The media_id this file already has on an account, while WeChat still keeps it. */
  mediaIdFor(u: Upload, account: string): string | undefined {
    const w = u.wechat.get(account);
    return w && this.#now() - w.at < WECHAT_MEDIA_LIFE_MS ? w.mediaId : undefined;
  }

  /**
   * The media_id the file `id` already has on an account, while WeChat still keeps it: known here, or (shared) given
   * to another node. A shared state that cannot be read answers none: the file is uploaded again.
   */
  async mediaIdOf(id: string, account: string): Promise<string | undefined> {
    const u = this.get(id);
    const local = u && this.mediaIdFor(u, account);
    if (local !== undefined || this.#shared === undefined) return local;
    let known: { mediaId?: unknown; at?: unknown };
    try {
      known = JSON.parse(await this.#shared.get(mediaKey(id, account)) ?? "null") ?? {};
    } catch {
      return undefined;
    }
    if (typeof known.mediaId !== "string" || typeof known.at !== "number") return undefined;
    if (this.#now() - known.at >= WECHAT_MEDIA_LIFE_MS) return undefined;
    u?.wechat.set(account, { mediaId: known.mediaId, at: known.at });
    return known.mediaId;
  }

  /** Remember the media_id WeChat gave this file (shared: for every node, as long as WeChat keeps it). */
  async setMediaId(u: Upload, account: string, mediaId: string): Promise<void> {
    const at = this.#now();
    u.wechat.set(account, { mediaId, at });
    // Not shared: another node uploads it once more, which costs an upload, not a reply.
    await this.#shared?.set(mediaKey(u.id, account), JSON.stringify({ mediaId, at }), WECHAT_MEDIA_LIFE_MS)
      .catch(() => {});
  }

  #drop(u: Upload): void {
    if (this.#files.delete(u.id)) this.#bytes -= u.bytes.length;
  }

  // Map order is insertion order: the first entries are the oldest.
  #evict(): void {
    const t = this.#now();
    for (const u of this.#files.values()) {
      if (this.#bytes <= this.#maxTotal && t - u.createdAt < this.#ttl) break;
      this.#drop(u);
    }
  }
}

function mediaKey(id: string, account: string): string {
  return `wx_media:${account}\u0000${id}`;
}
