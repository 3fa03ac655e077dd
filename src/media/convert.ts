/**
 * Conversion of what a browser cannot play, with ffmpeg (never a codec of our
 * own): WeChat voice (AMR-NB, Speex) becomes Opus in Ogg, which Chromium and
 * Firefox play, at 24 kbit/s mono (speech; a 60 s note is ~180 KB); video in
 * another container than MP4 becomes H.264/AAC MP4 (WeChat's own videos are
 * MP4 already and are kept as they are). ffmpeg runs
 * on input it did not make, so: `-nostdin`, only the `file` protocol, a
 * temporary directory of its own, a time limit (killed past it) and an output
 * size limit (`-fs`).
 *
 * @module
 */

import { observeMedia } from "../metrics/metrics.ts";

/** Options for {@link Converter}. */
export interface ConverterOptions {
  /** The ffmpeg binary (`FFMPEG_PATH`, else `ffmpeg` on PATH). */
  ffmpeg: string;
  /** Longest a conversion may run. */
  timeoutMs: number;
  /** Largest output. */
  maxOutputBytes: number;
  /** Where ffmpeg's scratch directories go (under DATA_DIR, the one place kefu writes); default the system's. */
  tmpDir?: string;
}

/** What a conversion gives. */
export interface Converted {
  bytes: Uint8Array;
  contentType: string;
}

/** Content types browsers play as they are; anything else in audio is converted. */
const PLAYABLE_AUDIO = new Set(["audio/ogg", "audio/mpeg", "audio/mp4", "audio/aac", "audio/wav", "audio/webm"]);

/** Whether a file of this type needs converting before a browser can play it. */
export function needsConversion(contentType: string): boolean {
  if (contentType.startsWith("audio/")) return !PLAYABLE_AUDIO.has(contentType);
  return contentType.startsWith("video/") && contentType !== "video/mp4";
}

/** Runs ffmpeg, or says why it cannot. */
export class Converter {
  readonly #o: ConverterOptions;
  #available: Promise<boolean> | undefined;

  constructor(options: ConverterOptions) {
    this.#o = options;
  }

  /** Whether ffmpeg can be run here (checked once). */
  available(): Promise<boolean> {
    // Not installed, or not allowed to run (no --allow-run): either way there is no conversion.
    this.#available ??= (async () => {
      try {
        const r = await new Deno.Command(this.#o.ffmpeg, { args: ["-version"], stdout: "null", stderr: "null" })
          .output();
        return r.success;
      } catch {
        return false;
      }
    })();
    return this.#available;
  }

  /** Convert a file `needsConversion` named: audio to Opus in Ogg, video to H.264/AAC MP4. */
  convert(bytes: Uint8Array, contentType: string): Promise<Converted> {
    const video = contentType.startsWith("video/");
    return observeMedia("convert", video ? "video" : "voice", video ? this.toMp4(bytes) : this.toOpus(bytes));
  }

  /** Voice → Opus in Ogg. Throws an Error saying what went wrong (ffmpeg's last line, or the limit hit). */
  toOpus(bytes: Uint8Array): Promise<Converted> {
    return this.#run(bytes, "out.ogg", "audio/ogg", "the voice note", [
      "-vn",
      "-ac",
      "1",
      "-c:a",
      "libopus",
      "-b:a",
      "24k",
      "-f",
      "ogg",
    ]);
  }

  /** Video → H.264/AAC in MP4, the moov atom first so that a browser starts playing before the end arrives. */
  toMp4(bytes: Uint8Array): Promise<Converted> {
    return this.#run(bytes, "out.mp4", "video/mp4", "the video", [
      "-c:v",
      "libx264",
      "-preset",
      "veryfast",
      "-crf",
      "28",
      "-pix_fmt",
      "yuv420p",
      "-c:a",
      "aac",
      "-b:a",
      "96k",
      "-movflags",
      "+faststart",
      "-f",
      "mp4",
    ]);
  }

  async #run(bytes: Uint8Array, outName: string, contentType: string, what: string, codec: string[]) {
    if (this.#o.tmpDir !== undefined) await Deno.mkdir(this.#o.tmpDir, { recursive: true });
    const dir = await Deno.makeTempDir({ prefix: "kefu-media-", dir: this.#o.tmpDir });
    try {
      // ffmpeg runs in `dir` and is given names relative to it: `dir` itself may be relative to kefu's working
      // directory (DATA_DIR=./data), which is not ffmpeg's.
      const input = "in";
      const output = outName;
      await Deno.writeFile(`${dir}/${input}`, bytes);
      const child = new Deno.Command(this.#o.ffmpeg, {
        args: [
          "-nostdin",
          "-hide_banner",
          "-v",
          "error",
          "-protocol_whitelist",
          "file",
          "-i",
          input,
          ...codec,
          "-fs",
          String(this.#o.maxOutputBytes),
          output,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
        cwd: dir,
      }).spawn();
      const timer = setTimeout(() => child.kill("SIGKILL"), this.#o.timeoutMs);
      const result = await child.output().finally(() => clearTimeout(timer));
      if (!result.success) {
        const why = new TextDecoder().decode(result.stderr).trim().split("\n").at(-1) ||
          (result.signal ? `killed after ${this.#o.timeoutMs} ms` : `exit code ${result.code}`);
        throw new Error(`ffmpeg could not convert ${what}: ${why}`);
      }
      return { bytes: await Deno.readFile(`${dir}/${output}`), contentType };
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => undefined);
    }
  }
}
