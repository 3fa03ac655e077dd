/**
 * The outbound side of the Official Account API: the access_token manager
 * (cached, refreshed ahead of expiry, one fetch in flight — among all kefu nodes
 * when they share a {@link SharedTokens} on Redis) and the calls kefu makes —
 * customer-service messages, typing state, temporary media.
 *
 * Errors: an answer from WeChat with a non-zero errcode is a
 * {@link WechatApiError}; not reaching WeChat at all (network, timeout, a
 * non-200 or non-JSON answer) is a plain `Error`, since there is no errcode to
 * act on and the call may be tried again later. Messages never carry the app
 * secret or an access token.
 *
 * @module
 */

import { readAtMost } from "../../core/body.ts";
import { observeTokenRefresh, observeWechatCall, observeWechatError } from "../../metrics/metrics.ts";
import { MemorySharedState } from "../../cluster/shared_state.ts";
import { type SharedToken, SharedTokens } from "../../cluster/shared_tokens.ts";

/** Options for {@link WechatApi}. */
export interface WechatApiOptions {
  appId: string;
  appSecret: string;
  /** e.g. `https://api.weixin.qq.com`, no trailing slash. */
  apiBase: string;
  /** `token`: GET /cgi-bin/token; `stable_token`: POST /cgi-bin/stable_token (isolated from other token users). */
  tokenMode: "token" | "stable_token";
  /** Refresh this long before expiry (at most half the token's life); default 300. */
  refreshAheadSeconds?: number;
  /** Retries of a call WeChat answers -1 (busy); default 3. */
  maxBusyRetries?: number;
  /** First back-off after -1, doubling each retry; default 200. */
  backoffMs?: number;
  /** Longest wait for one HTTP exchange, body included; default 15000. */
  timeoutMs?: number;
  /** Largest answer read (media/get answers files); past it the call fails. Default 32 MiB. */
  maxBodyBytes?: number;
  fetch?: typeof fetch;
  /** Clock in ms; tests move it. */
  now?: () => number;
  /** Where the token is kept and refreshed once for all (several nodes: on Redis); default this client's own. */
  tokens?: SharedTokens;
}

/** Media types of the temporary media API. */
export type MediaType = "image" | "voice" | "video" | "thumb";

/** A customer-service message body, as POSTed to message/custom/send. */
export interface CustomMessage {
  touser: string;
  msgtype: string;
  [field: string]: unknown;
}

/** What media/get answers: the file, or for a video a URL to fetch it from. */
export type MediaFile = { bytes: Uint8Array; filename: string; contentType: string } | { videoUrl: string };

// What to do about common errcodes; -1 and the token codes are worded in WechatApiError.
const ADVICE: Record<number, string> = {
  40002: "invalid grant_type (client_credential expected)",
  40003: "invalid openid: the user does not follow this account, or the openid belongs to another AppID",
  40007: "invalid media_id: it is unknown or expired (temporary media last 3 days); upload the file again",
  40008: "invalid message type: msgtype must be text, image, voice, video, music, news, mpnews, msgmenu, …",
  40013: "invalid AppID: check the configured AppID",
  40125: "invalid AppSecret: check the configured AppSecret (reset it on the Official Account platform if lost)",
  40164: "this server's IP is not whitelisted: add it to the account's IP whitelist (Settings → Basic configuration)",
  41001: "the access_token is missing from the request",
  43004: "the user has unfollowed the account",
  44002: "the request body is empty",
  44004: "the text content is empty",
  45002: "content too long: a text message takes at most 2048 bytes",
  45009: "daily API quota reached: wait until tomorrow, or reset it with /cgi-bin/clear_quota",
  45015: "reply time limit exceeded: the user has not written in the last 48 hours",
  45047: "too many replies: wait for the user to write again",
  45072: "invalid command: Typing or CancelTyping expected",
  45080: "typing needs a message exchanged with the user in the last 30 seconds",
  45081: "already typing: wait 15 seconds or send the message",
  47001: "WeChat could not read the request body (malformed JSON or form data)",
  48001: "this account has no customer-service API permission (unverified subscription accounts)",
};

const TOKEN_REJECTED = new Set([40001, 40014, 42001]);

/** WeChat answered a call with a non-zero errcode. */
export class WechatApiError extends Error {
  readonly errcode: number;
  readonly errmsg: string;
  /** The API called, e.g. `message/custom/send`. */
  readonly action: string;

  constructor(action: string, errcode: number, errmsg: string, retries = 0) {
    super(`WeChat ${action} failed with errcode ${errcode} (${errmsg}): ${advice(errcode, retries)}`);
    this.name = "WechatApiError";
    this.action = action;
    this.errcode = errcode;
    this.errmsg = errmsg;
  }
}

function advice(errcode: number, retries: number): string {
  if (errcode === -1) return `WeChat busy, retried ${retries} times with back-off; try again later`;
  if (TOKEN_REJECTED.has(errcode)) {
    return `access_token ${errcode === 42001 ? "expired" : "invalid"} although it was refreshed and the call retried ` +
      "once already: is another server refreshing this account's token? (use stable_token mode or one token holder)";
  }
  return ADVICE[errcode] ?? "see WeChat's global return codes";
}

/** A text message for {@link WechatApi.sendCustom}. */
export function customText(openid: string, content: string): CustomMessage {
  return { touser: openid, msgtype: "text", text: { content } };
}

/** An image, voice or video message for {@link WechatApi.sendCustom}; `video` adds thumb_media_id, title, description. */
export function customMedia(
  openid: string,
  type: "image" | "voice" | "video",
  mediaId: string,
  video: { thumb_media_id?: string; title?: string; description?: string } = {},
): CustomMessage {
  return {
    touser: openid,
    msgtype: type,
    [type]: type === "video" ? { media_id: mediaId, ...video } : { media_id: mediaId },
  };
}

type Answer<T> = { ok: true; value: T } | { ok: false; errcode: number; errmsg: string };

interface Reply {
  action: string;
  headers: Headers;
  bytes: Uint8Array;
}

const EXT_TYPES: Record<string, string> = {
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  mp3: "audio/mpeg",
  amr: "audio/amr",
  mp4: "video/mp4",
};

/** The Official Account API client of one account. */
export class WechatApi {
  readonly #o: Required<Omit<WechatApiOptions, "fetch" | "now" | "tokens">>;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #tokens: SharedTokens;
  #token?: SharedToken;
  #loading?: Promise<string>;

  constructor(options: WechatApiOptions) {
    this.#o = {
      refreshAheadSeconds: 300,
      maxBusyRetries: 3,
      backoffMs: 200,
      timeoutMs: 15_000,
      maxBodyBytes: 32 << 20,
      ...options,
    };
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#now = options.now ?? Date.now;
    this.#tokens = options.tokens ??
      new SharedTokens({ state: new MemorySharedState({ now: this.#now }), now: this.#now });
  }

  /** A valid access_token: the cached one, or one fetch shared by every caller waiting. */
  accessToken(): Promise<string> {
    const t = this.#token;
    if (t && this.#now() < t.refreshAt) return Promise.resolve(t.value);
    return this.#load();
  }

  /** Send a customer-service message (see {@link customText}, {@link customMedia}). */
  async sendCustom(message: object): Promise<void> {
    await this.#call("message/custom/send", "/cgi-bin/message/custom/send", "", () => jsonInit(message), readOk);
  }

  /** Show or cancel "typing…" in the user's chat. */
  async typing(openid: string, command: "Typing" | "CancelTyping"): Promise<void> {
    const body = { touser: openid, command };
    await this.#call("message/custom/typing", "/cgi-bin/message/custom/typing", "", () => jsonInit(body), readOk);
  }

  /** Upload a temporary media file (kept 3 days by WeChat). */
  uploadMedia(
    type: MediaType,
    bytes: Uint8Array,
    filename: string,
    contentType?: string,
  ): Promise<{ media_id: string; created_at: number }> {
    const ext = filename.slice(filename.lastIndexOf(".") + 1).toLowerCase();
    const file = new File([bytes as Uint8Array<ArrayBuffer>], filename, {
      type: contentType ?? EXT_TYPES[ext] ?? "application/octet-stream",
    });
    const init = (): RequestInit => {
      const form = new FormData();
      form.append("media", file);
      return { method: "POST", body: form };
    };
    return this.#call(
      "media/upload",
      "/cgi-bin/media/upload",
      `&type=${encodeURIComponent(type)}`,
      init,
      (r) =>
        readJson(r, (j) => ({
          // A thumb's id comes back as thumb_media_id.
          media_id: String(j.media_id ?? j.thumb_media_id),
          created_at: Number(j.created_at),
        })),
    );
  }

  /** Download a temporary media file; a video answers with its URL instead. */
  getMedia(mediaId: string): Promise<MediaFile> {
    return this.#call(
      "media/get",
      "/cgi-bin/media/get",
      `&media_id=${encodeURIComponent(mediaId)}`,
      () => ({ method: "GET" }),
      readMedia,
    );
  }

  // One token fetch at a time: later callers share the promise, failures included. Among nodes the shared tokens
  // make it one fetch (or none: another node's fresh token).
  #load(rejected?: string): Promise<string> {
    if (!this.#loading) {
      const p = this.#tokens.get(this.#o.appId, () => this.#fetchToken(rejected), rejected).then((t) => {
        this.#token = t;
        return t.value;
      }).finally(() => {
        if (this.#loading === p) this.#loading = undefined;
      });
      this.#loading = p;
    }
    return this.#loading;
  }

  async #fetchToken(rejected?: string): Promise<SharedToken> {
    observeTokenRefresh(this.#o.appId, rejected === undefined ? "scheduled" : "rejected");
    const stable = this.#o.tokenMode === "stable_token";
    let got = await this.#requestToken(false);
    // Force mode is capped at 20 a day, so it is kept for when the normal answer is the token just rejected.
    if (stable && rejected !== undefined && got.value === rejected) got = await this.#requestToken(true);
    return got;
  }

  async #requestToken(force: boolean): Promise<SharedToken> {
    const { appId, appSecret, apiBase } = this.#o;
    const stable = this.#o.tokenMode === "stable_token";
    const action = stable ? "stable_token" : "token";
    const url = stable
      ? `${apiBase}/cgi-bin/stable_token`
      : `${apiBase}/cgi-bin/token?grant_type=client_credential&appid=${encodeURIComponent(appId)}&secret=${
        encodeURIComponent(appSecret)
      }`;
    const body = { grant_type: "client_credential", appid: appId, secret: appSecret, force_refresh: force };
    const init = () => stable ? jsonInit(body) : { method: "GET" };
    return await this.#retryBusy(action, async () => {
      const started = this.#now();
      return readJson(await this.#send(action, url, init()), (j) => {
        if (typeof j.access_token !== "string" || j.access_token === "") {
          throw new Error(`WeChat ${action}: the answer has no access_token`);
        }
        const life = Number(j.expires_in) > 0 ? Number(j.expires_in) : 7200;
        const ahead = Math.min(this.#o.refreshAheadSeconds, life / 2);
        return { value: j.access_token, refreshAt: started + (life - ahead) * 1000, expiresAt: started + life * 1000 };
      });
    });
  }

  // The rejected token is dropped unless another caller already replaced it.
  async #renew(rejected: string): Promise<void> {
    if (this.#token && this.#token.value !== rejected) return;
    this.#token = undefined;
    // A load already under way did not know this token was refused, and may answer it: then once more, knowing.
    if (await this.#load(rejected) === rejected) await this.#load(rejected);
  }

  async #call<T>(
    action: string,
    path: string,
    query: string,
    init: () => RequestInit,
    read: (r: Reply) => Answer<T>,
  ): Promise<T> {
    let renewed = false;
    return await this.#retryBusy(action, async () => {
      for (;;) {
        const token = await this.accessToken();
        const url = `${this.#o.apiBase}${path}?access_token=${encodeURIComponent(token)}${query}`;
        const answer = read(await this.#send(action, url, init()));
        if (answer.ok || renewed || !TOKEN_REJECTED.has(answer.errcode)) return answer;
        renewed = true;
        await this.#renew(token);
      }
    });
  }

  async #retryBusy<T>(action: string, attempt: () => Promise<Answer<T>>): Promise<T> {
    for (let retries = 0;; retries++) {
      const answer = await attempt();
      if (answer.ok) return answer.value;
      observeWechatError(this.#o.appId, action, answer.errcode);
      if (answer.errcode !== -1 || retries >= this.#o.maxBusyRetries) {
        throw new WechatApiError(action, answer.errcode, this.#redact(answer.errmsg), retries);
      }
      await new Promise((resolve) => setTimeout(resolve, this.#o.backoffMs * 2 ** retries));
    }
  }

  // The whole body is read here, so no response is left unconsumed whatever the caller does.
  async #send(action: string, url: string, init: RequestInit): Promise<Reply> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.#o.timeoutMs);
    let res: Response;
    let bytes: Uint8Array;
    const t0 = performance.now();
    const observed = (outcome: string) =>
      observeWechatCall(this.#o.appId, action, outcome, (performance.now() - t0) / 1000);
    try {
      // Never followed: WeChat's API does not redirect, and a redirect would reach a host off the allow-list.
      res = await this.#fetch(url, { ...init, redirect: "manual", signal: abort.signal });
      const max = this.#o.maxBodyBytes;
      const read = await readAtMost(res.body, max);
      if (read === undefined) throw new TooLarge(`the answer is over the limit of ${max} bytes`);
      bytes = read;
    } catch (err) {
      observed("unreachable");
      if (err instanceof TooLarge) throw new Error(`WeChat ${action}: ${err.message}`);
      const cause = abort.signal.aborted ? `no answer within ${this.#o.timeoutMs} ms` : this.#redact(describe(err));
      throw new Error(`WeChat ${action}: cannot reach WeChat API at ${this.#o.apiBase}: ${cause}`);
    } finally {
      clearTimeout(timer);
    }
    // WeChat answers everything, errors included, with 200: anything else is a proxy or an outage.
    observed(res.status === 200 ? "ok" : "http_error");
    if (res.status >= 300 && res.status < 400) {
      const to = URL.parse(res.headers.get("location") ?? "", url)?.host ?? "nowhere";
      throw new Error(
        `WeChat ${action}: ${this.#o.apiBase} answered a redirect (HTTP ${res.status} to ${to}): not followed`,
      );
    }
    if (res.status !== 200) throw new Error(`WeChat ${action}: ${this.#o.apiBase} answered HTTP ${res.status}`);
    return { action, headers: res.headers, bytes };
  }

  // Transport errors quote the URL, which carries the secret or the token.
  #redact(text: string): string {
    let s = text.replace(/((?:secret|access_token)=)[^&\s)"']*/gi, "$1***");
    for (const v of [this.#o.appSecret, this.#token?.value]) {
      if (v) s = s.split(v).join("***");
    }
    return s;
  }
}

class TooLarge extends Error {}

// Deno's fetch says only "fetch failed"; the reason is in `cause`.
function describe(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  return cause === undefined ? String(err) : `${err} (${cause})`;
}

function jsonInit(body: unknown): RequestInit {
  return { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

// deno-lint-ignore no-explicit-any
function parseJson(r: Reply): any {
  try {
    return JSON.parse(new TextDecoder().decode(r.bytes));
  } catch {
    throw new Error(`WeChat ${r.action}: the answer is not JSON (${r.bytes.length} bytes)`);
  }
}

// deno-lint-ignore no-explicit-any
function readJson<T>(r: Reply, value: (json: any) => T): Answer<T> {
  const j = parseJson(r);
  const errcode = Number(j?.errcode ?? 0);
  if (errcode !== 0) return { ok: false, errcode, errmsg: String(j.errmsg ?? "") };
  return { ok: true, value: value(j) };
}

function readOk(r: Reply): Answer<void> {
  return readJson(r, () => undefined);
}

// A file comes as an attachment; JSON (an error, or a video's URL) otherwise.
function readMedia(r: Reply): Answer<MediaFile> {
  const type = r.headers.get("content-type") ?? "";
  const disposition = r.headers.get("content-disposition") ?? "";
  if (!/attachment/i.test(disposition) && /json|text\/plain/i.test(type)) {
    return readJson(r, (j) => {
      if (typeof j.video_url !== "string") {
        throw new Error("WeChat media/get: the JSON answer has neither errcode nor video_url");
      }
      return { videoUrl: j.video_url };
    });
  }
  return { ok: true, value: { bytes: r.bytes, filename: filenameOf(disposition), contentType: type } };
}

/** The filename of a Content-Disposition header (`filename*=UTF-8''…` preferred); "" when none. */
export function filenameOf(disposition: string): string {
  const star = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[1].trim());
    } catch { /* fall back to the plain parameter */ }
  }
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))/.exec(disposition);
  if (!plain) return "";
  return plain[1] !== undefined ? plain[1].replace(/\\(.)/g, "$1") : plain[2].trim();
}
