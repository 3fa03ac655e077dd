/**
 * Files an agent uploads to send to a user (image, voice, video). They are
 * kept in memory, bounded in count, bytes and age, until the reply that names
 * them is sent: kefu then uploads them to WeChat (media/upload) and remembers
 * the media_id per account, since WeChat keeps temporary media for 3 days.
 *
 * @module
 */

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
  /** How long a file is kept; default 1 hour. */
  ttlMs?: number;
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

  constructor(options: UploadsOptions = {}) {
    this.maxFileBytes = options.maxFileBytes ?? 10 << 20;
    this.#maxTotal = options.maxTotalBytes ?? 64 << 20;
    this.#ttl = options.ttlMs ?? 3_600_000;
    this.#now = options.now ?? Date.now;
  }

  /** Keep a file; the oldest files make room. Answers its id. */
  add(bytes: Uint8Array, filename: string, contentType: string): Upload {
    const id = crypto.randomUUID();
    const u: Upload = { id, bytes, filename, contentType, createdAt: this.#now(), wechat: new Map() };
    this.#files.set(id, u);
    this.#bytes += bytes.length;
    this.#evict();
    return u;
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

  /** Remember the media_id WeChat gave this file. */
  setMediaId(u: Upload, account: string, mediaId: string): void {
    u.wechat.set(account, { mediaId, at: this.#now() });
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
