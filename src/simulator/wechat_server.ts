/**
 * The simulator's WeChat API side: the Official Account endpoints kefu calls
 * (tokens, customer-service messages, typing, temporary media) with WeChat's
 * request and answer shapes, errcodes and customer-service rules, plus the
 * controls tests and the phone page use to drive it.
 *
 * Every answer is HTTP 200 with `{"errcode":N,"errmsg":"…"}` on error, as WeChat's.
 *
 * @module
 */

import { type Context, Hono } from "hono";

/** What a user did that opens a customer-service window. */
export type InteractionKind = "message" | "follow" | "click" | "scan";

/** Types of temporary media. */
export type SimMediaType = "image" | "voice" | "video" | "thumb";

/** A stored temporary media file. */
export interface SimMedia {
  id: string;
  type: SimMediaType;
  bytes: Uint8Array;
  filename: string;
  contentType: string;
  /** ms */
  createdAt: number;
}

/** Options for {@link createWechatServer}. */
export interface WechatServerOptions {
  appId: string;
  appSecret: string;
  /** Life of a new access_token; default 7200. */
  tokenTtlSeconds?: number;
  /** Clock in ms; tests move it. */
  now?: () => number;
  /** Called with each delivered customer-service message, as received. */
  onCustomMessage?: (openid: string, body: Record<string, unknown>) => void;
  /** Called when "typing…" is shown (true) or cancelled (false); it lapses by itself after 15 s. */
  onTyping?: (openid: string, typing: boolean) => void;
  /** false: the account lacks the customer-service API (48001); default true. */
  customerService?: boolean;
  /** Media files kept (oldest dropped); default 100. */
  maxMedia?: number;
  /** Bytes of media kept (oldest dropped); default 32 MiB. */
  maxMediaBytes?: number;
  /** Messages kept per user inbox (oldest dropped); default 200. */
  maxInbox?: number;
}

/** The simulated API and its controls. */
export interface WechatServer {
  /** Mount with `Deno.serve(app.fetch)` or `parent.route("/", app)`. */
  readonly app: Hono;
  /** Calls to /cgi-bin/token and /cgi-bin/stable_token. */
  readonly tokenFetches: number;
  /** Requests to one path (e.g. `/cgi-bin/message/custom/send`), failed ones included. */
  calls(path: string): number;
  /** The user did something that opens a reply window; a "follow" (re)subscribes them. */
  recordInteraction(openid: string, kind: InteractionKind, atMs?: number): void;
  /** The user unfollowed: sends answer 45015 until they follow again. */
  unfollow(openid: string): void;
  /** Customer-service messages delivered to the user, oldest first, as received. */
  inbox(openid: string): Record<string, unknown>[];
  /** Whether "typing…" shows in the user's chat now. */
  isTyping(openid: string): boolean;
  /** Make every access_token issued so far expired (42001). */
  expireTokens(): void;
  /**
   * Make every access_token issued so far invalid (40001 "invalid credential, access_token is invalid or not
   * latest"), as when the AppSecret is reset or another holder forced a refresh; the next fetch issues a new one.
   */
  invalidateTokens(): void;
  /** The next `n` requests to /cgi-bin/ answer -1 "system error". */
  busyNext(n: number): void;
  /** The next `n` requests to /cgi-bin/ answer this errcode. */
  failNext(n: number, errcode: number, errmsg: string): void;
  /** Store a file a user sent (it gets a MediaId, as WeChat gives the account); answers the id. */
  addMedia(type: SimMediaType, bytes: Uint8Array, filename: string, contentType?: string): string;
  /** A stored, unexpired media file. */
  media(mediaId: string): SimMedia | undefined;
}

const HOUR = 3600_000;
const MESSAGE_WINDOW = { ms: 48 * HOUR, quota: 5 };
const EVENT_WINDOW = { ms: 60_000, quota: 3 };
const TYPING_AFTER_MS = 30_000;
const TYPING_SHOWS_MS = 15_000;
const MEDIA_LIFE_MS = 72 * HOUR;
// Old tokens stay valid this long after a new one is issued (WeChat's hand-over).
const OVERLAP_MS = 300_000;
const MAX_TOKENS = 1000;
const TEXT_MAX_BYTES = 2048;

const MSG_TYPES = new Set(
  "text image voice video music news mpnews mpnewsarticle msgmenu wxcard miniprogrampage".split(" "),
);

// Formats and sizes of temporary media, as the media/upload documentation lists them.
const MEDIA_RULES: Record<SimMediaType, { formats: string[]; maxBytes: number }> = {
  image: { formats: ["jpg", "jpeg", "png", "gif"], maxBytes: 10 << 20 },
  voice: { formats: ["amr", "mp3", "mpeg"], maxBytes: 2 << 20 },
  video: { formats: ["mp4"], maxBytes: 10 << 20 },
  thumb: { formats: ["jpg", "jpeg"], maxBytes: 64 << 10 },
};

interface User {
  followed: boolean;
  lastMessage?: number;
  messageUsed: number;
  lastEvent?: number;
  eventUsed: number;
  /** Last message either way, for typing's 30 s rule. */
  lastExchange: number;
  typingUntil: number;
  inbox: Record<string, unknown>[];
}

type Json = Record<string, unknown>;

/** A WeChat JSON answer; errors get a `rid` as WeChat's do, so clients must not match errmsg exactly. */
function wx(errcode: number, errmsg: string, extra?: Json): Response {
  const body = errcode === 0 && extra ? extra : { errcode, errmsg: errcode === 0 ? errmsg : `${errmsg} rid: ${rid()}` };
  return new Response(JSON.stringify(body), { headers: { "content-type": "application/json; encoding=utf-8" } });
}

function rid(): string {
  return Array.from(crypto.getRandomValues(new Uint32Array(3)), (n) => n.toString(16).padStart(8, "0")).join("-");
}

function randomId(bytes: number): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(bytes))))
    .replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** Create a simulated WeChat API for one account. */
export function createWechatServer(options: WechatServerOptions): WechatServer {
  const now = options.now ?? Date.now;
  const ttl = (options.tokenTtlSeconds ?? 7200) * 1000;
  const maxMedia = options.maxMedia ?? 100;
  const maxMediaBytes = options.maxMediaBytes ?? 32 << 20;
  const maxInbox = options.maxInbox ?? 200;
  const tokens = new Map<string, { expiresAt: number }>();
  let plainToken: string | undefined;
  let stableToken: string | undefined;
  let lastForce = -Infinity;
  let forceDay = -1;
  let forcesToday = 0;
  const users = new Map<string, User>();
  const media = new Map<string, SimMedia>();
  let mediaBytes = 0;
  const failures: { errcode: number; errmsg: string }[] = [];
  const callCounts = new Map<string, number>();
  let tokenFetches = 0;

  function issue(): string {
    const value = randomId(96);
    tokens.set(value, { expiresAt: now() + ttl });
    // Past the cap the oldest tokens are forgotten and answer 40001, as very old ones do.
    for (const old of tokens.keys()) {
      if (tokens.size <= MAX_TOKENS) break;
      tokens.delete(old);
    }
    return value;
  }

  function tokenAnswer(value: string): Response {
    const left = Math.max(0, tokens.get(value)!.expiresAt - now());
    return wx(0, "ok", { access_token: value, expires_in: Math.floor(left / 1000) });
  }

  function checkCredentials(grant: unknown, appid: unknown, secret: unknown): Response | undefined {
    if (grant !== "client_credential") return wx(40002, "invalid grant_type");
    if (!appid) return wx(41002, "appid missing");
    if (appid !== options.appId) return wx(40013, "invalid appid");
    if (!secret) return wx(41004, "appsecret missing");
    if (secret !== options.appSecret) return wx(40125, "invalid appsecret");
  }

  // A refused request's body is cancelled, not left unread.
  async function authorize(c: Context): Promise<Response | undefined> {
    const token = c.req.query("access_token");
    const t = token ? tokens.get(token) : undefined;
    const refusal = !token
      ? wx(41001, "access_token missing")
      : !t
      ? wx(40001, "invalid credential, access_token is invalid or not latest")
      : now() >= t.expiresAt
      ? wx(42001, "access_token expired")
      : undefined;
    if (refusal) await c.req.raw.body?.cancel();
    return refusal;
  }

  // An empty body is 44002, unreadable JSON 47001, as WeChat answers them.
  async function jsonBody(c: Context): Promise<Json | Response> {
    const text = await c.req.text();
    if (text.trim() === "") return wx(44002, "empty post data");
    try {
      const j = JSON.parse(text);
      if (j !== null && typeof j === "object" && !Array.isArray(j)) return j;
    } catch { /* answered below */ }
    return wx(47001, "data format error");
  }

  function user(openid: string): User {
    let u = users.get(openid);
    if (!u) {
      u = { followed: true, messageUsed: 0, eventUsed: 0, lastExchange: -Infinity, typingUntil: 0, inbox: [] };
      users.set(openid, u);
    }
    return u;
  }

  function windowsOpen(u: User): { message: boolean; event: boolean } {
    const t = now();
    return {
      message: u.followed && u.lastMessage !== undefined && t - u.lastMessage < MESSAGE_WINDOW.ms,
      event: u.followed && u.lastEvent !== undefined && t - u.lastEvent < EVENT_WINDOW.ms,
    };
  }

  function liveMedia(id: unknown): SimMedia | undefined {
    const m = typeof id === "string" ? media.get(id) : undefined;
    return m && now() - m.createdAt < MEDIA_LIFE_MS ? m : undefined;
  }

  function store(type: SimMediaType, bytes: Uint8Array, filename: string, contentType: string): SimMedia {
    const m: SimMedia = { id: randomId(48), type, bytes, filename, contentType, createdAt: now() };
    media.set(m.id, m);
    mediaBytes += bytes.length;
    for (const [id, old] of media) {
      if (media.size <= maxMedia && mediaBytes <= maxMediaBytes && now() - old.createdAt < MEDIA_LIFE_MS) break;
      if (id === m.id) break;
      media.delete(id);
      mediaBytes -= old.bytes.length;
    }
    return m;
  }

  // Checks one message body; undefined when it may be sent.
  function invalidMessage(body: Json): Response | undefined {
    const type = body.msgtype;
    if (typeof type !== "string" || !MSG_TYPES.has(type)) return wx(40008, "invalid message type");
    const part = body[type];
    if (part === null || typeof part !== "object") return wx(44002, "empty post data");
    const p = part as Json;
    if (type === "text") {
      if (typeof p.content !== "string" || p.content === "") return wx(44004, "empty content");
      if (new TextEncoder().encode(p.content).length > TEXT_MAX_BYTES) return wx(45002, "content size out of limit");
    }
    if (type === "image" || type === "voice" || type === "video") {
      if (liveMedia(p.media_id)?.type !== type) return wx(40007, "invalid media_id");
      if (type === "video" && p.thumb_media_id !== undefined && !liveMedia(p.thumb_media_id)) {
        return wx(40007, "invalid media_id");
      }
    }
  }

  function recipient(body: Json): User | Response {
    if (options.customerService === false) return wx(48001, "api unauthorized");
    const openid = body.touser;
    const u = typeof openid === "string" ? users.get(openid) : undefined;
    return u ?? wx(40003, "invalid openid");
  }

  const app = new Hono();

  app.use("/cgi-bin/*", async (c, next) => {
    // Bounded: stray paths stop being counted once 64 are known.
    if (callCounts.size < 64 || callCounts.has(c.req.path)) {
      callCounts.set(c.req.path, (callCounts.get(c.req.path) ?? 0) + 1);
    }
    if (c.req.path === "/cgi-bin/token" || c.req.path === "/cgi-bin/stable_token") tokenFetches++;
    const fail = failures.shift();
    if (fail) {
      await c.req.raw.body?.cancel();
      return wx(fail.errcode, fail.errmsg);
    }
    await next();
  });

  app.get("/cgi-bin/token", (c) => {
    const q = c.req.query();
    const bad = checkCredentials(q.grant_type, q.appid, q.secret);
    if (bad) return bad;
    // Each call issues a new token; the previous one keeps working a few minutes.
    if (plainToken && tokens.has(plainToken)) {
      const old = tokens.get(plainToken)!;
      old.expiresAt = Math.min(old.expiresAt, now() + OVERLAP_MS);
    }
    plainToken = issue();
    return tokenAnswer(plainToken);
  });

  app.post("/cgi-bin/stable_token", async (c) => {
    const body = await jsonBody(c);
    if (body instanceof Response) return body;
    const bad = checkCredentials(body.grant_type, body.appid, body.secret);
    if (bad) return bad;
    const current = stableToken ? tokens.get(stableToken) : undefined;
    const valid = current !== undefined && now() < current.expiresAt;
    if (body.force_refresh === true) {
      // Forced refreshes less than 30 s apart do not refresh; at most 20 a day.
      if (valid && now() - lastForce < 30_000) return tokenAnswer(stableToken!);
      const day = Math.floor(now() / (24 * HOUR));
      if (day !== forceDay) [forceDay, forcesToday] = [day, 0];
      if (forcesToday >= 20) return wx(45009, "reach max api daily quota limit");
      forcesToday++;
      lastForce = now();
      if (stableToken) tokens.delete(stableToken);
      stableToken = issue();
    } else if (!valid || current.expiresAt - now() <= OVERLAP_MS) {
      // Normal mode hands out the same token until its last 5 minutes.
      stableToken = issue();
    }
    return tokenAnswer(stableToken!);
  });

  // The checks every per-user call starts with: token, JSON body, known openid.
  async function userRequest(c: Context) {
    const denied = await authorize(c);
    if (denied) return denied;
    const body = await jsonBody(c);
    if (body instanceof Response) return body;
    const u = recipient(body);
    if (u instanceof Response) return u;
    return { body, u };
  }

  app.post("/cgi-bin/message/custom/send", async (c) => {
    const req = await userRequest(c);
    if (req instanceof Response) return req;
    const { body, u } = req;
    const invalid = invalidMessage(body);
    if (invalid) return invalid;
    const open = windowsOpen(u);
    // The short event quota is spent first, so the 48-hour one lasts.
    if (open.event && u.eventUsed < EVENT_WINDOW.quota) u.eventUsed++;
    else if (open.message && u.messageUsed < MESSAGE_WINDOW.quota) u.messageUsed++;
    else if (open.event || open.message) return wx(45047, "out of response count limit");
    else return wx(45015, "response out of time limit or subscription is canceled");
    const openid = body.touser as string;
    u.lastExchange = now();
    if (u.typingUntil > now()) {
      u.typingUntil = 0;
      options.onTyping?.(openid, false);
    }
    u.inbox.push(body);
    if (u.inbox.length > maxInbox) u.inbox.splice(0, u.inbox.length - maxInbox);
    options.onCustomMessage?.(openid, body);
    return wx(0, "ok");
  });

  app.post("/cgi-bin/message/custom/typing", async (c) => {
    const req = await userRequest(c);
    if (req instanceof Response) return req;
    const { body, u } = req;
    const openid = body.touser as string;
    if (body.command === "CancelTyping") {
      if (u.typingUntil > now()) options.onTyping?.(openid, false);
      u.typingUntil = 0;
      return wx(0, "ok");
    }
    if (body.command !== "Typing") return wx(45072, "command invalid");
    const open = windowsOpen(u);
    if (!open.event && !open.message) return wx(45015, "response out of time limit or subscription is canceled");
    if (now() - u.lastExchange > TYPING_AFTER_MS) {
      return wx(45080, "typing needs a message exchanged with the user in the last 30 seconds");
    }
    if (u.typingUntil > now()) return wx(45081, "already typing");
    u.typingUntil = now() + TYPING_SHOWS_MS;
    options.onTyping?.(openid, true);
    return wx(0, "ok");
  });

  app.post("/cgi-bin/media/upload", async (c) => {
    const denied = await authorize(c);
    if (denied) return denied;
    const type = c.req.query("type") as SimMediaType;
    if (!Object.hasOwn(MEDIA_RULES, type ?? "")) {
      await c.req.raw.body?.cancel();
      return wx(40004, "invalid media type");
    }
    let file: FormDataEntryValue | null = null;
    try {
      file = (await c.req.raw.formData()).get("media");
    } catch { /* answered below */ }
    if (!(file instanceof File)) return wx(41005, "media data missing");
    const rule = MEDIA_RULES[type];
    const ext = file.name.includes(".") ? file.name.slice(file.name.lastIndexOf(".") + 1) : file.type.split("/")[1];
    if (!rule.formats.includes((ext ?? "").toLowerCase())) return wx(40005, "invalid file type");
    if (file.size === 0 || file.size > rule.maxBytes) return wx(40006, "invalid media size");
    const m = store(type, new Uint8Array(await file.arrayBuffer()), file.name, file.type || "application/octet-stream");
    const created_at = Math.floor(m.createdAt / 1000);
    // A thumb's id comes back as thumb_media_id, unlike the other types.
    return wx(
      0,
      "ok",
      type === "thumb" ? { type, thumb_media_id: m.id, created_at } : { type, media_id: m.id, created_at },
    );
  });

  app.get("/cgi-bin/media/get", async (c) => {
    const denied = await authorize(c);
    if (denied) return denied;
    const id = c.req.query("media_id");
    const m = liveMedia(id);
    if (!m) return wx(40007, "invalid media_id");
    if (m.type === "video") {
      // Wherever this app is mounted, the video is served next to it.
      const href = new URL(c.req.url).href;
      return wx(0, "ok", { video_url: `${href.slice(0, href.indexOf("/cgi-bin/"))}/sim/video/${m.id}` });
    }
    return fileResponse(m);
  });

  app.get("/sim/video/:id", (c) => {
    const m = liveMedia(c.req.param("id"));
    return m ? fileResponse(m) : c.text("not found", 404);
  });

  // The wrong method gets WeChat's answer rather than a 404.
  for (const path of ["/cgi-bin/token", "/cgi-bin/media/get"]) app.all(path, () => wx(43001, "require GET method"));
  for (const path of ["/cgi-bin/stable_token", "/cgi-bin/message/custom/send", "/cgi-bin/message/custom/typing"]) {
    app.all(path, () => wx(43002, "require POST method"));
  }
  app.all("/cgi-bin/media/upload", () => wx(43002, "require POST method"));

  return {
    app,
    get tokenFetches() {
      return tokenFetches;
    },
    calls: (path) => callCounts.get(path) ?? 0,
    recordInteraction(openid, kind, atMs = now()) {
      const u = user(openid);
      u.followed = true;
      if (kind === "message") {
        u.lastMessage = atMs;
        u.messageUsed = 0;
      } else {
        u.lastEvent = atMs;
        u.eventUsed = 0;
      }
      u.lastExchange = Math.max(u.lastExchange, atMs);
    },
    unfollow(openid) {
      const u = user(openid);
      u.followed = false;
      u.lastMessage = u.lastEvent = undefined;
    },
    inbox: (openid) => [...(users.get(openid)?.inbox ?? [])],
    isTyping: (openid) => (users.get(openid)?.typingUntil ?? 0) > now(),
    expireTokens() {
      for (const t of tokens.values()) t.expiresAt = Math.min(t.expiresAt, now());
    },
    invalidateTokens() {
      tokens.clear();
    },
    busyNext(n) {
      for (let i = 0; i < n; i++) failures.push({ errcode: -1, errmsg: "system error" });
    },
    failNext(n, errcode, errmsg) {
      for (let i = 0; i < n; i++) failures.push({ errcode, errmsg });
    },
    addMedia: (type, bytes, filename, contentType = "application/octet-stream") =>
      store(type, bytes, filename, contentType).id,
    media: liveMedia,
  };
}

function fileResponse(m: SimMedia): Response {
  const ascii = m.filename.replace(/[^\x20-\x7e]|["\\]/g, "_");
  const disposition = ascii === m.filename
    ? `attachment; filename="${ascii}"`
    : `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(m.filename)}`;
  return new Response(m.bytes as Uint8Array<ArrayBuffer>, {
    headers: {
      "content-type": m.contentType,
      "content-disposition": disposition,
      "content-length": `${m.bytes.length}`,
    },
  });
}
