/**
 * Agents' replies on their way to WXBot: the body of each send endpoint from
 * a reply (text, image, voice, video; files from kefu's uploads, in base64),
 * the Token of the account the contact writes to, one reply at a time per
 * contact in the order the agent sent them.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { KefuError, quote } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { Message } from "../../core/message.ts";
import { UPLOAD_PATH } from "../../envelope/protocol.ts";
import type { Upload, Uploads } from "../../media/uploads.ts";
import type { ContactRecord } from "../../store/store.ts";
import type { WxbotApi } from "./api.ts";
import { IMAGE_PATH, type ImageFormat, TEXT_PATH, type WxbotAccount } from "./config.ts";

/** The seed: "请限制视频大小在3M内" (keep videos within 3 MB). */
export const MAX_VIDEO_BYTES = 3 * 1024 * 1024;

/** The seed's voice `Type` codes: AMR = 0, SPEEX = 1, MP3 = 2, WAVE = 3, SILK = 4. */
export const VOICE_TYPES: Readonly<Record<string, number>> = { amr: 0, speex: 1, mp3: 2, wav: 3, silk: 4 };

const VOICE_ALIASES: Readonly<Record<string, string>> = {
  amr: "amr",
  "x-amr": "amr",
  speex: "speex",
  spx: "speex",
  "x-speex": "speex",
  ogg: "speex",
  mp3: "mp3",
  mpeg: "mp3",
  "x-mpeg": "mp3",
  wav: "wav",
  wave: "wav",
  "x-wav": "wav",
  silk: "silk",
  slk: "silk",
  "x-silk": "silk",
};

/** The seed's voice `Type` of an upload, from its content type or file name; undefined when it is none of the five. */
export function voiceType(file: Pick<Upload, "contentType" | "filename">): number | undefined {
  const sub = file.contentType.toLowerCase().split(";")[0].trim().replace(/^audio\//, "");
  const ext = file.filename.toLowerCase().match(/\.([a-z0-9]+)$/)?.[1] ?? "";
  const name = VOICE_ALIASES[sub] ?? VOICE_ALIASES[ext];
  return name === undefined ? undefined : VOICE_TYPES[name];
}

// An AMR-NB file recorded at 12.2 kbit/s (WeChat's own voice notes) is "#!AMR\n" and 32-byte frames of 20 ms.
const AMR_HEADER = 6;
const AMR_FRAME_BYTES = 32;
const AMR_FRAME_MS = 20;

/**
 * The length in ms that kefu can tell without decoding: an AMR voice note's, from its size (exact at 12.2 kbit/s,
 * the rate WeChat records at). Undefined for anything else.
 */
export function knownLengthMs(file: Upload, kind: "voice" | "video"): number | undefined {
  if (kind !== "voice" || voiceType(file) !== VOICE_TYPES.amr || file.bytes.length <= AMR_HEADER) return undefined;
  return Math.round((file.bytes.length - AMR_HEADER) / AMR_FRAME_BYTES) * AMR_FRAME_MS;
}

/** Tells the length of a voice or video file in ms (e.g. with ffprobe); undefined when it cannot. */
export type LengthProbe = (file: Upload, kind: "voice" | "video") => Promise<number | undefined>;

/**
 * A thumbnail for videos: kefu cannot take a frame out of a video (it has no decoder), and the seed's video body
 * has `ImageFileBase64`. A 16×8 grey PNG (made once with ffmpeg's `color` source).
 */
const PLACEHOLDER_THUMB = {
  bytes: Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAICAAAAADVHSBLAAAACXBIWXMAAAABAAAAAQBPJcTWAAAAD0lEQVR4nGNoQAMMAyMAAAGHQAHVQa2vAAAAAElFTkSuQmCC",
    "base64",
  ),
  contentType: "image/png",
};

/** A picture in the configured form: the seed's `data:base64;image/png,…`, the standard data URI, or base64 alone. */
export function imageBase64(bytes: Uint8Array, contentType: string, format: ImageFormat): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  const type = contentType.split(";")[0].trim() || "image/png";
  if (format === "seed") return `data:base64;${type},${b64}`;
  if (format === "data_uri") return `data:${type};base64,${b64}`;
  return b64;
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Options for {@link WxbotSender}. */
export interface WxbotSenderOptions {
  api: WxbotApi;
  accounts: WxbotAccount[];
  uploads: Uploads;
  log: Logger;
  voicePath: string;
  videoPath: string;
  imageFormat: ImageFormat;
  /** Lengths kefu cannot tell itself (default: none; an unknown length is sent as 0 with a warning). */
  probe?: LengthProbe;
}

/** The outbound side of the channel. */
export class WxbotSender {
  readonly #o: WxbotSenderOptions;
  readonly #tokens = new Map<string, string>();

  constructor(options: WxbotSenderOptions) {
    this.#o = options;
    for (const a of options.accounts) this.#tokens.set(a.wxid, a.token);
  }

  /** Send one reply to `contact` (`contact.user` is the wxid or group id, `contact.account` our account's wxid). */
  send(m: Message, contact: ContactRecord): Promise<string> {
    const token = this.#tokens.get(contact.account);
    if (token === undefined) return Promise.reject(noToken(contact));
    // The reply router sends a contact's replies one at a time, in order.
    return this.#send(m, contact.user, token);
  }

  async #send(m: Message, user: string, token: string): Promise<string> {
    const o = this.#o;
    const to = `${m.type} reply ${quote(m.id)} to ${quote(user)}`;
    switch (m.type) {
      case "text":
        await o.api.call(TEXT_PATH, { UserName: user, Content: m.content, Token: token }, `the ${to}`);
        return "sent";
      case "image": {
        const file = await this.#file(m);
        const Base64Image = imageBase64(file.bytes, file.contentType, o.imageFormat);
        await o.api.call(IMAGE_PATH, { UserName: user, Base64Image, Token: token }, `the ${to}`);
        return "sent";
      }
      case "voice": {
        const file = await this.#file(m);
        const type = voiceType(file);
        if (type === undefined) {
          throw new KefuError(
            "reply_not_supported",
            `cannot send ${quote(file.filename)} (${quote(file.contentType)}) as a WXBot voice message: ` +
              "the platform takes AMR, SPEEX, MP3, WAV or SILK; upload one of those",
          );
        }
        const VoiceTime = await this.#length(file, "voice", m);
        const body = { Type: type, UserName: user, DataFileBase64: base64(file.bytes), VoiceTime, Token: token };
        await o.api.call(o.voicePath, body, `the ${to}`);
        return "sent";
      }
      case "video": {
        const file = await this.#file(m);
        if (file.bytes.length > MAX_VIDEO_BYTES) {
          throw new KefuError(
            "media_too_large",
            `cannot send ${quote(file.filename)} through WXBot: it is ${file.bytes.length} bytes and the platform ` +
              `takes videos up to 3 MB (${MAX_VIDEO_BYTES} bytes); send a shorter or smaller video`,
            413,
          );
        }
        const VideoTime = await this.#length(file, "video", m);
        const body = {
          UserName: user,
          VideoFileBase64: base64(file.bytes),
          ImageFileBase64: imageBase64(PLACEHOLDER_THUMB.bytes, PLACEHOLDER_THUMB.contentType, o.imageFormat),
          VideoTime,
          Token: token,
        };
        await o.api.call(o.videoPath, body, `the ${to}`);
        return "sent";
      }
      default:
        throw new KefuError(
          "reply_not_supported",
          `cannot send a reply of type ${quote(m.type)} through WXBot: kefu sends text, image, voice and video`,
        );
    }
  }

  // media_path must be a file the agent uploaded to kefu: the platform takes the bytes, not a link.
  async #file(m: Message): Promise<Upload> {
    const path = m.media;
    const prefix = `${UPLOAD_PATH}/`;
    if (!path.startsWith(prefix)) {
      throw new KefuError(
        "reply_not_supported",
        `cannot send ${quote(path)} through WXBot: it takes the file itself; upload it to kefu (POST ${UPLOAD_PATH}) ` +
          "and send the media_path kefu answers",
      );
    }
    const file = await this.#o.uploads.load(path.slice(prefix.length));
    if (file === undefined) {
      throw new KefuError("media_not_found", `cannot send ${quote(path)}: no such upload; upload the file again`, 404);
    }
    return file;
  }

  async #length(file: Upload, kind: "voice" | "video", m: Message): Promise<number> {
    const known = knownLengthMs(file, kind) ?? await this.#o.probe?.(file, kind).catch(() => undefined);
    if (known !== undefined) return known;
    this.#o.log.warn("wxbot_length_unknown", {
      id: m.id,
      kind,
      content_type: file.contentType,
      detail: `kefu cannot tell this ${kind}'s length: sent as 0, so WeChat may show a wrong length`,
    });
    return 0;
  }
}

function noToken(contact: ContactRecord): KefuError {
  return new KefuError(
    "no_route",
    `cannot send the reply to contact ${quote(contact.id)}: no WXBot Token is configured for the account ` +
      `${quote(contact.account)}; add it (CONFIG_FILE wxbot.accounts, or WXBOT_WXID and WXBOT_TOKEN); ` +
      "the reply was kept, not sent",
    409,
    { channel: contact.channel, account: contact.account },
  );
}
