/**
 * The WeChat simulator as one Hono app: the WeChat API kefu calls (at `/`,
 * from {@link createWechatServer}), the phone page (`/phone/`), and the phone
 * API the page uses to act as WeChat users, with a live socket that shows each
 * user what the account sends back.
 *
 * @module
 */

import { Hono } from "hono";
import { KefuError, quote } from "../core/errors.ts";
import { readAtMost } from "../core/body.ts";
import type { Logger } from "../core/log.ts";
import { createLiveFeed, type LiveFeed } from "./live_feed.ts";
import { createWechatServer, type InteractionKind, type WechatServer } from "./wechat_server.ts";
import {
  createWebhookSender,
  isEvent,
  newMsgId,
  type SendResult,
  type UserInput,
  type WebhookMode,
  type WebhookSender,
} from "./webhook_sender.ts";

/** Options for {@link createSimulator}. */
export interface SimulatorOptions {
  appId: string;
  appSecret: string;
  token: string;
  /** "" or absent: plaintext mode. */
  encodingAesKey?: string;
  /** Default: safe with an EncodingAESKey, plaintext without. */
  mode?: WebhookMode;
  /** The gateway's webhook (kefu: `http://127.0.0.1:1234/wechat`). */
  webhookUrl: string;
  /** The account's original id (`gh_…`). */
  accountId: string;
  /** WeChat's wait for an answer before it retries; default 5000. */
  timeoutMs?: number;
  /** The directory holding `phone/` (index.html, phone.js, phone.css). */
  staticDir: string;
  log?: Logger;
  /** Largest image a user may send; default 5 MiB. */
  maxImageBytes?: number;
  /** Largest voice note a user may send; default 2 MiB (WeChat's own limit for voice). */
  maxVoiceBytes?: number;
  /** Sends waiting for the webhook at once; past it 503. Default 64. */
  maxInFlight?: number;
  /** Phone-page sockets open at once; default 16. */
  maxSockets?: number;
}

/** A phone-API send's answer: the webhook result, the message's ids, and what was sent (a scan may become a subscribe). */
export type PhoneSendResult = SendResult & { id: string; openid: string; input: UserInput };

/** The simulator and its parts. */
export interface Simulator {
  /** Serve with `Deno.serve(app.fetch)`. */
  readonly app: Hono;
  /** The WeChat API side and its controls. */
  readonly wechat: WechatServer;
  readonly sender: WebhookSender;
  readonly feed: LiveFeed;
  /** Act as a user, as the phone page does: record the interaction, post to the webhook, show it live. */
  send(openid: string, input: UserInput, id?: string): Promise<PhoneSendResult>;
  /** Cancel sends in flight and close phone-page sockets. */
  close(): void;
}

type Json = Record<string, unknown>;

const PAGE_FILES: Record<string, string> = {
  "index.html": "text/html; charset=utf-8",
  "phone.js": "text/javascript; charset=utf-8",
  "phone.css": "text/css; charset=utf-8",
  // The page's voice button sends this real AMR-NB note (a copy of tests/fixtures/media/voice.amr, 2 s, made by
  // tests/fixtures/media/make_amr.ts): browsers cannot record AMR, WeChat's voice format.
  "sample-voice.amr": "audio/amr",
};
const IMAGE_TYPES: Record<string, string> = { "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif" };
// AMR-NB's file header and the bytes of one frame after its table-of-contents byte, by frame type (RFC 4867 §5).
const AMR_MAGIC = "#!AMR\n";
const AMR_FRAME_BYTES = [12, 13, 15, 17, 19, 20, 26, 31, 5, 6, 5, 5, -1, -1, -1, 0];
const OPENID_RE = /^[A-Za-z0-9_-]{1,64}$/;
const ID_RE = /^[A-Za-z0-9_:.-]{1,64}$/;
const COORD_RE = /^-?\d{1,3}(?:\.\d{1,10})?$/;
const MAX_JSON_BYTES = 64 * 1024;
const MAX_TEXT = 4096;
const MAX_USERS = 1000;

function bad(detail: string): KefuError {
  return new KefuError("wrong_type", detail, 400);
}

function field(b: Json, key: string, options: { required?: boolean; max?: number; re?: RegExp } = {}): string {
  const v = b[key];
  if (v === undefined || v === null || v === "") {
    if (options.required) throw new KefuError("missing_field", `cannot send: "${key}" is required`, 400);
    return "";
  }
  const s = typeof v === "number" && Number.isFinite(v) ? String(v) : v;
  if (typeof s !== "string") throw bad(`cannot send: "${key}" must be a string, got ${quote(v)}`);
  if (s.length > (options.max ?? 1024)) throw bad(`cannot send: "${key}" is over ${options.max ?? 1024} characters`);
  if (options.re && !options.re.test(s)) throw bad(`cannot send: "${key}" has an unusable value ${quote(s)}`);
  return s;
}

/**
 * The length in seconds of an AMR-NB file (20 ms a frame), or undefined when the bytes are not a whole AMR-NB file:
 * the simulator refuses what WeChat would never send as a voice note.
 */
export function amrSeconds(bytes: Uint8Array): number | undefined {
  if (new TextDecoder().decode(bytes.subarray(0, AMR_MAGIC.length)) !== AMR_MAGIC) return undefined;
  let frames = 0;
  let i = AMR_MAGIC.length;
  while (i < bytes.length) {
    const size = AMR_FRAME_BYTES[(bytes[i] >> 3) & 0x0f];
    if (size < 0) return undefined;
    i += 1 + size;
    frames++;
  }
  return i === bytes.length && frames > 0 ? frames / 50 : undefined;
}

function newTicket(): string {
  return `gQ${crypto.randomUUID().replaceAll("-", "")}`;
}

// The phone API's JSON body as what WeChat would post; a scan by a user who does not follow is a subscribe.
function inputFrom(b: Json, following: boolean): UserInput {
  const type = field(b, "type", { required: true, max: 32 });
  const key = (name: string) => field(b, name, { required: true, max: 128 });
  switch (type) {
    case "text":
      return { type, content: field(b, "content", { required: true, max: MAX_TEXT }) };
    case "location":
      return {
        type,
        latitude: field(b, "latitude", { required: true, re: COORD_RE }),
        longitude: field(b, "longitude", { required: true, re: COORD_RE }),
        scale: field(b, "scale", { re: /^\d{1,2}$/ }) || "15",
        label: field(b, "label", { max: 256 }),
      };
    case "link":
      return { type, title: key("title"), description: field(b, "description"), url: key("url") };
    case "subscribe": {
      const scene = field(b, "scene", { max: 64 });
      return scene === "" ? { type } : { type, scene, ticket: field(b, "ticket", { max: 128 }) || newTicket() };
    }
    case "scan": {
      const scene = field(b, "scene", { required: true, max: 64 });
      const ticket = field(b, "ticket", { max: 128 }) || newTicket();
      return following ? { type, scene, ticket } : { type: "subscribe", scene, ticket };
    }
    case "unsubscribe":
      return { type };
    case "click":
      return { type, eventKey: key("eventKey") };
    case "view":
      return { type, url: key("url") };
    case "report_location":
      return {
        type,
        latitude: field(b, "latitude", { required: true, re: COORD_RE }),
        longitude: field(b, "longitude", { required: true, re: COORD_RE }),
        precision: field(b, "precision", { re: /^\d{1,6}(?:\.\d{1,6})?$/ }) || "30.0",
      };
  }
  throw bad(
    `cannot send: "type" ${
      quote(type)
    } is not one of text, location, link, subscribe, unsubscribe, scan, click, view, report_location (images: POST /phone/api/image, voice notes: POST /phone/api/voice)`,
  );
}

// What opens the customer-service window: messages, follows, scans and menu clicks (VIEW and LOCATION do not).
const INTERACTION: Partial<Record<UserInput["type"], InteractionKind>> = {
  text: "message",
  image: "message",
  voice: "message",
  location: "message",
  link: "message",
  subscribe: "follow",
  scan: "scan",
  click: "click",
};

/** Create the simulator: WeChat API, phone page and phone API in one app. */
export function createSimulator(options: SimulatorOptions): Simulator {
  const log = options.log;
  const maxImageBytes = options.maxImageBytes ?? 5 << 20;
  const maxVoiceBytes = options.maxVoiceBytes ?? 2 << 20;
  const maxInFlight = options.maxInFlight ?? 64;
  const stop = new AbortController();
  // Who follows the account now, so a scan becomes SCAN or subscribe; bounded, oldest forgotten.
  const following = new Set<string>();
  let inFlight = 0;

  const wechat = createWechatServer({
    appId: options.appId,
    appSecret: options.appSecret,
    onCustomMessage: (openid, body) => feed.publish({ kind: "custom", openid, message: body, ...mediaOf(body) }),
    onTyping: (openid, typing) => feed.publish({ kind: "typing", openid, typing }),
  });
  const sender = createWebhookSender({
    url: options.webhookUrl,
    token: options.token,
    accountId: options.accountId,
    appId: options.appId,
    encodingAesKey: options.encodingAesKey,
    mode: options.mode,
    timeoutMs: options.timeoutMs,
  });
  // What the page shows of the setup: no secrets.
  const run = crypto.randomUUID();
  const settings = () => ({
    // A page that outlives a restart starts over: event numbers begin again.
    run,
    account: options.accountId,
    appId: options.appId,
    webhook: options.webhookUrl,
    mode: sender.mode,
    timeoutMs: options.timeoutMs ?? 5000,
    maxAttempts: sender.maxAttempts,
  });
  const feed = createLiveFeed({ maxSockets: options.maxSockets, hello: settings });

  function mediaUrl(mediaId: unknown): string {
    return typeof mediaId === "string" && wechat.media(mediaId) ? `/phone/media/${encodeURIComponent(mediaId)}` : "";
  }

  // A customer-service message's media, as URLs the page can load.
  function mediaOf(body: Json): Json {
    const part = body[body.msgtype as string] as Json | undefined;
    if (part === null || typeof part !== "object") return {};
    const url = mediaUrl(part.media_id);
    const thumb = mediaUrl(part.thumb_media_id);
    return { ...(url ? { mediaUrl: url } : {}), ...(thumb ? { thumbUrl: thumb } : {}) };
  }

  function record(openid: string, input: UserInput): void {
    if (input.type === "unsubscribe") {
      wechat.unfollow(openid);
      following.delete(openid);
      return;
    }
    const kind = INTERACTION[input.type];
    if (kind === undefined) return;
    wechat.recordInteraction(openid, kind);
    // Re-added, so the set's order is least recently active first.
    following.delete(openid);
    following.add(openid);
    for (const old of following) {
      if (following.size <= MAX_USERS) break;
      following.delete(old);
    }
  }

  async function send(openid: string, input: UserInput, id: string = crypto.randomUUID()): Promise<PhoneSendResult> {
    if (inFlight >= maxInFlight) {
      throw new KefuError(
        "queue_full",
        `cannot send: ${maxInFlight} messages are already waiting for the webhook`,
        503,
      );
    }
    inFlight++;
    try {
      const msgId = isEvent(input) ? "" : newMsgId();
      // WeChat opens the reply window as the message arrives, before the server has answered.
      record(openid, input);
      feed.publish({ kind: "user", openid, id, msgId, input });
      const result = await sender.send(openid, input, {
        msgId,
        signal: stop.signal,
        onAttempt: (attempt, of) => feed.publish({ kind: "attempt", openid, id, attempt, of }),
      });
      const url = mediaUrl(result.reply?.mediaId);
      if (url) Object.assign(result.reply!, { mediaUrl: url });
      feed.publish({ kind: "result", openid, id, result });
      log?.info("sim_sent", {
        openid,
        type: input.type,
        msg_id: result.msgId,
        attempts: result.attempts,
        status: result.status,
        http_status: result.httpStatus,
        error: result.error,
      });
      return { id, openid, input, ...result };
    } finally {
      inFlight--;
    }
  }

  async function jsonBody(req: Request): Promise<Json> {
    const bytes = await readAtMost(req.body, MAX_JSON_BYTES);
    if (bytes === undefined) throw new KefuError("body_too_large", `the body is over ${MAX_JSON_BYTES} bytes`, 413);
    let b: unknown;
    try {
      b = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw new KefuError("invalid_json", "cannot read the body: expected a JSON object", 400);
    }
    if (b === null || typeof b !== "object" || Array.isArray(b)) {
      throw new KefuError("invalid_json", `cannot read the body: expected a JSON object, got ${quote(b)}`, 400);
    }
    return b as Json;
  }

  async function pageFile(name: string): Promise<Response> {
    const body = await Deno.readFile(`${options.staticDir}/phone/${name}`);
    return new Response(body, { headers: { "content-type": PAGE_FILES[name], "cache-control": "no-cache" } });
  }

  const app = new Hono();

  app.use(async (c, next) => {
    const t0 = performance.now();
    await next();
    // The path only: queries carry access tokens and signatures.
    log?.debug("sim_http", {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round(performance.now() - t0),
    });
  });

  app.get("/", (c) => c.redirect("/phone/"));
  app.get("/phone", (c) => c.redirect("/phone/"));
  app.get("/phone/", () => pageFile("index.html"));
  app.get("/phone/:file{phone\\.(?:js|css)|sample-voice\\.amr}", (c) => pageFile(c.req.param("file")));

  app.get("/phone/api/config", (c) => c.json(settings()));

  app.get("/phone/api/history", (c) => {
    const openid = field({ openid: c.req.query("openid") }, "openid", { required: true, re: OPENID_RE });
    return c.json({ openid, events: feed.history(openid) });
  });

  app.get("/phone/api/live", (c) => {
    if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
      throw new KefuError("upgrade_required", "/phone/api/live is a WebSocket endpoint: connect with ws://", 426);
    }
    return feed.upgrade(c.req.raw);
  });

  app.post("/phone/api/send", async (c) => {
    const b = await jsonBody(c.req.raw);
    const openid = field(b, "openid", { required: true, re: OPENID_RE });
    const id = field(b, "id", { re: ID_RE }) || undefined;
    return c.json(await send(openid, inputFrom(b, following.has(openid)), id));
  });

  app.post("/phone/api/image", async (c) => {
    const q = { openid: c.req.query("openid"), id: c.req.query("id"), name: c.req.query("name") };
    const openid = field(q, "openid", { required: true, re: OPENID_RE });
    const id = field(q, "id", { re: ID_RE }) || undefined;
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    const ext = IMAGE_TYPES[type];
    if (ext === undefined) {
      await c.req.raw.body?.cancel();
      throw new KefuError(
        "unsupported_body",
        `cannot send image: Content-Type ${quote(type)} is not PNG, JPEG or GIF`,
        415,
      );
    }
    const bytes = await readAtMost(c.req.raw.body, maxImageBytes);
    if (bytes === undefined) throw new KefuError("body_too_large", `the image is over ${maxImageBytes} bytes`, 413);
    if (bytes.length === 0) throw new KefuError("empty_body", "cannot send image: the body is empty", 400);
    const name = field(q, "name", { max: 128 }).replace(/[^\w.-]/g, "_") || `image.${ext}`;
    const mediaId = wechat.addMedia("image", bytes, name, type);
    // PicUrl must be absolute: the gateway (and its agents) fetch it from here.
    const picUrl = `${new URL(c.req.url).origin}/phone/media/${encodeURIComponent(mediaId)}`;
    return c.json(await send(openid, { type: "image", picUrl, mediaId }, id));
  });

  // A voice note is AMR-NB, as WeChat's app records it: kept with a MediaId, then posted as a voice message with
  // <MediaId> and <Format>amr</Format>; kefu fetches it with media/get.
  app.post("/phone/api/voice", async (c) => {
    const q = { openid: c.req.query("openid"), id: c.req.query("id"), name: c.req.query("name") };
    const openid = field(q, "openid", { required: true, re: OPENID_RE });
    const id = field(q, "id", { re: ID_RE }) || undefined;
    const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "audio/amr") {
      await c.req.raw.body?.cancel();
      throw new KefuError("unsupported_body", `cannot send voice: Content-Type ${quote(type)} is not audio/amr`, 415);
    }
    const bytes = await readAtMost(c.req.raw.body, maxVoiceBytes);
    if (bytes === undefined) {
      throw new KefuError("body_too_large", `the voice note is over ${maxVoiceBytes} bytes`, 413);
    }
    if (bytes.length === 0) throw new KefuError("empty_body", "cannot send voice: the body is empty", 400);
    const seconds = amrSeconds(bytes);
    if (seconds === undefined) {
      throw new KefuError(
        "unsupported_body",
        "cannot send voice: the body is not an AMR-NB file (#!AMR header, whole frames)",
        415,
      );
    }
    const name = field(q, "name", { max: 128 }).replace(/[^\w.-]/g, "_") || "voice.amr";
    const mediaId = wechat.addMedia("voice", bytes, name, "audio/amr");
    return c.json(await send(openid, { type: "voice", mediaId, format: "amr", seconds }, id));
  });

  app.get("/phone/media/:id", (c) => {
    const m = wechat.media(c.req.param("id"));
    if (!m) throw new KefuError("not_found", `no media ${quote(c.req.param("id"))}`, 404);
    // Only media types are served as such: an upload must not become a page of this origin.
    const type = /^(?:image|audio|video)\/[\w.+-]+$/.test(m.contentType) ? m.contentType : "application/octet-stream";
    return new Response(m.bytes as Uint8Array<ArrayBuffer>, {
      headers: { "content-type": type, "x-content-type-options": "nosniff", "cache-control": "private, max-age=3600" },
    });
  });

  app.route("/", wechat.app);

  app.notFound((c) => c.json({ error: "not_found", detail: `no route for ${c.req.method} ${c.req.path}` }, 404));
  app.onError((err, c) => {
    if (err instanceof KefuError) return c.json({ error: err.kind, detail: err.message }, err.status as 400);
    if (err instanceof Deno.errors.NotFound) return c.json({ error: "not_found", detail: "no such page file" }, 404);
    log?.error("sim_http_failed", { method: c.req.method, path: c.req.path, error: String(err) });
    return c.json({ error: "internal", detail: "the request could not be handled" }, 500);
  });

  return {
    app,
    wechat,
    sender,
    feed,
    send,
    close() {
      stop.abort();
      feed.close();
    },
  };
}
