/**
 * Who may open or send a stored file. Users' media and agents' uploads share one content-addressed store
 * (`<sha256>.<ext>`), so knowing a name is not owning it: an agent owns a file when a message of one of its
 * contacts uses it (as `/media/<name>` or, for a reply, as its upload path) or when it uploaded the file itself.
 * Every media route asks {@link MediaOwnership.owns}; a reply's `media_path` goes through
 * {@link MediaOwnership.checkReply}, so that a path another agent's user sent can neither be read nor sent on.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import { UPLOAD_PATH } from "../envelope/protocol.ts";
import { MEDIA_PATH } from "./pipeline.ts";

/** What {@link MediaOwnership} asks the store through the hub. */
export interface OwnerLookup {
  /** Whether a message of one of `agent`'s contacts uses the file named by either of `paths`. */
  mediaOwnedBy(paths: readonly [string, string], agent: string): Promise<boolean>;
}

/** Who uploaded what, shared by several nodes (an upload made through one node is sent from another). */
export interface SharedUploads {
  add(agent: string, name: string): Promise<void>;
  has(agent: string, name: string): Promise<boolean>;
}

/** Options for {@link MediaOwnership}. */
export interface MediaOwnershipOptions {
  hub: OwnerLookup;
  /** Several nodes: uploads known to every node; undefined: this process's memory only. */
  shared?: SharedUploads;
  /** `PUBLIC_URL`: files stored while it was set are named by their absolute URL. */
  publicUrl?: string;
  /** Most (agent, upload) pairs remembered; the oldest go first (they are still owned once a reply used them). */
  maxUploads?: number;
}

/** The ownership check of every media route and of replies. */
export class MediaOwnership {
  readonly #hub: OwnerLookup;
  readonly #publicUrl: string;
  readonly #uploads = new Set<string>();
  readonly #maxUploads: number;
  readonly #shared: SharedUploads | undefined;

  constructor(options: MediaOwnershipOptions) {
    this.#hub = options.hub;
    this.#shared = options.shared;
    this.#publicUrl = options.publicUrl ?? "";
    this.#maxUploads = options.maxUploads ?? 100_000;
  }

  /**
   * `agent` uploaded the file `name` (an upload's id): it may open and send it. Among several nodes, resolves once
   * every node knows (the agent's socket, which sends it, may be on another).
   */
  async uploaded(agent: string, name: string): Promise<void> {
    const key = `${agent}\u0000${name}`;
    this.#uploads.delete(key);
    this.#uploads.add(key);
    for (const k of this.#uploads) {
      if (this.#uploads.size <= this.#maxUploads) break;
      this.#uploads.delete(k);
    }
    // The broker away: the upload is kept all the same; sent from another node it is refused (media_not_found) and
    // the agent uploads it again.
    await this.#shared?.add(agent, name).catch(() => {});
  }

  /** Whether `agent` uploaded `name` (known to this process). */
  uploadedBy(agent: string, name: string): boolean {
    return this.#uploads.has(`${agent}\u0000${name}`);
  }

  /** Whether `agent` owns the stored file `name`: its upload, or used by a message of one of its contacts. */
  async owns(agent: string, name: string): Promise<boolean> {
    if (this.uploadedBy(agent, name)) return true;
    if (await this.#shared?.has(agent, name).catch(() => false)) return true;
    const media = `${MEDIA_PATH}/${name}`;
    const upload = `${UPLOAD_PATH}/${name}`;
    return await this.#hub.mediaOwnedBy([media, `${this.#publicUrl}${media}`], agent) ||
      await this.#hub.mediaOwnedBy([upload, `${this.#publicUrl}${upload}`], agent);
  }

  /**
   * Refuse a reply's `media` when it names one of kefu's stored files the agent does not own. Anything else (a
   * WeChat media_id, a path on a PC hook) is the channel's to judge. Synchronous when the agent uploaded the file
   * itself (the common case, and replies keep their order); otherwise a Promise that rejects with `media_not_found`
   * (404) — the same answer as for a file that does not exist, so that the check tells nothing about other agents'.
   */
  checkReply(agent: string, media: string): void | Promise<void> {
    const name = this.#storedName(media);
    if (name === undefined || this.uploadedBy(agent, name)) return;
    return this.owns(agent, name).then((ok) => {
      if (!ok) {
        throw new KefuError(
          "media_not_found",
          `cannot send ${quote(media)}: no upload of yours and no file of your contacts has that name; upload the file`,
          404,
        );
      }
    });
  }

  // The stored file a media path names (`/media/<name>` or an upload path, with or without PUBLIC_URL).
  #storedName(media: string): string | undefined {
    const path = this.#publicUrl !== "" && media.startsWith(this.#publicUrl)
      ? media.slice(this.#publicUrl.length)
      : media;
    for (const prefix of [`${UPLOAD_PATH}/`, `${MEDIA_PATH}/`]) {
      if (path.startsWith(prefix)) return path.slice(prefix.length).split(/[?#]/)[0];
    }
    return undefined;
  }
}
