/**
 * Media files, content-addressed: a file's name is the SHA-256 of its bytes
 * (with an extension for its type), under `DATA_DIR/media/<first two hex>/`, so
 * the same file sent twice is kept once. Written to a temporary name and renamed,
 * so a crash never leaves half a file under a real name. `STORE=memory` keeps
 * them in a Map instead.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { KefuError, quote } from "../core/errors.ts";

/** A stored file. */
export interface MediaFile {
  /** `<sha256>.<ext>`: the last part of its URL. */
  name: string;
  contentType: string;
  size: number;
}

/** Extension of each content type kefu stores; anything else is `bin`. */
const EXTENSIONS: Record<string, string> = {
  "image/jpeg": "jpg",
  "image/png": "png",
  "image/gif": "gif",
  "image/webp": "webp",
  "audio/amr": "amr",
  "audio/speex": "spx",
  "audio/ogg": "ogg",
  "audio/mpeg": "mp3",
  "video/mp4": "mp4",
  "video/quicktime": "mov",
  "video/3gpp": "3gp",
  "video/webm": "webm",
};

const TYPES: Record<string, string> = Object.fromEntries(Object.entries(EXTENSIONS).map(([t, e]) => [e, t]));

const NAME_RE = /^([0-9a-f]{64})\.([a-z0-9]{1,5})$/;

/** The content type of a stored file's name, or undefined when the name is not one kefu gives. */
export function typeOfName(name: string): string | undefined {
  const m = NAME_RE.exec(name);
  if (m === null) return undefined;
  return TYPES[m[2]] ?? (m[2] === "bin" ? "application/octet-stream" : undefined);
}

/** The store of media files. */
export class MediaFiles {
  readonly #dir: string | undefined;
  readonly #memory = new Map<string, Uint8Array>();
  #files = 0;
  #bytes = 0;

  /** `dir` (DATA_DIR/media) on disk, or undefined to keep files in memory. */
  constructor(dir: string | undefined) {
    this.#dir = dir;
  }

  /** Keep `bytes`; answers its name. The same bytes give the same name and are written once. */
  async put(bytes: Uint8Array, contentType: string): Promise<MediaFile> {
    const hash = createHash("sha256").update(bytes).digest("hex");
    const name = `${hash}.${EXTENSIONS[contentType] ?? "bin"}`;
    const file = { name, contentType: typeOfName(name)!, size: bytes.length };
    if (this.#dir === undefined) {
      if (!this.#memory.has(name)) this.#count(1, bytes.length);
      this.#memory.set(name, bytes);
      return file;
    }
    const dir = `${this.#dir}/${hash.slice(0, 2)}`;
    const path = `${dir}/${name}`;
    try {
      await Deno.stat(path);
      return file;
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    await Deno.mkdir(dir, { recursive: true });
    const tmp = `${path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, path);
    this.#count(1, bytes.length);
    return file;
  }

  /** Files kept and their bytes (counted at start by {@link scan}, then kept up to date). */
  usage(): { media_files: number; media_bytes: number } {
    return { media_files: this.#files, media_bytes: this.#bytes };
  }

  /** Count what is on disk (at start). */
  async scan(): Promise<void> {
    this.#files = 0;
    this.#bytes = 0;
    for await (const f of this.#walk()) this.#count(1, f.size);
  }

  /**
   * Retention: delete the files older than `cutoffMs` (epoch ms) that no message uses any more (`inUse` holds the
   * names still used). Answers how many were deleted.
   */
  async sweep(cutoffMs: number, inUse: ReadonlySet<string>): Promise<number> {
    let n = 0;
    for await (const f of this.#walk()) {
      if (f.mtime >= cutoffMs || inUse.has(f.name)) continue;
      try {
        await Deno.remove(f.path);
        this.#count(-1, -f.size);
        n++;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
    return n;
  }

  #count(files: number, bytes: number): void {
    this.#files += files;
    this.#bytes += bytes;
  }

  // Every stored file (not the scratch directory or a half-written one), with its size and time.
  async *#walk(): AsyncGenerator<{ name: string; path: string; size: number; mtime: number }> {
    if (this.#dir === undefined) return;
    let dirs: Deno.DirEntry[];
    try {
      dirs = await Array.fromAsync(Deno.readDir(this.#dir));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    for (const d of dirs) {
      if (!d.isDirectory || !/^[0-9a-f]{2}$/.test(d.name)) continue;
      for await (const f of Deno.readDir(`${this.#dir}/${d.name}`)) {
        if (!f.isFile || typeOfName(f.name) === undefined) continue;
        const path = `${this.#dir}/${d.name}/${f.name}`;
        const st = await Deno.stat(path);
        yield { name: f.name, path, size: st.size, mtime: st.mtime?.getTime() ?? 0 };
      }
    }
  }

  /** The bytes of a stored file; throws `KefuError` 404 when there is none by that name. */
  async read(name: string): Promise<Uint8Array> {
    if (typeOfName(name) === undefined) throw notFound(name);
    if (this.#dir === undefined) {
      const bytes = this.#memory.get(name);
      if (bytes === undefined) throw notFound(name);
      return bytes;
    }
    try {
      return await Deno.readFile(`${this.#dir}/${name.slice(0, 2)}/${name}`);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) throw notFound(name);
      throw e;
    }
  }
}

function notFound(name: string): KefuError {
  return new KefuError("media_not_found", `no media file ${quote(name)}`, 404);
}
