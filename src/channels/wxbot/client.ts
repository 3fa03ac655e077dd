/**
 * The WXBot socket's life: connect, send the auth packet, read
 * `AuthCheckResult`, then hand every frame on, in order. As the seed's loop:
 *
 * - retCode 0: synced; a dropped socket is connected again after the
 *   reconnect delay (10 s, plus up to 20% so that many kefus do not come back
 *   at once), forever;
 * - any other retCode (1000: the key is refused): stop and never retry (the
 *   seed: "鉴权失败直接退出，不要重试"); an error line, and `health()` says
 *   down and why, until kefu is restarted with a good key;
 * - no `AuthCheckResult` within the auth timeout (the server ignores sockets
 *   that have not signed in): dropped, and connected again.
 *
 * The platform has no heartbeat, ack or replay that the seed documents: what
 * it pushes while the socket is down is not known to come back.
 *
 * @module
 */

import { KefuError, quote } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { type Frame, frameType, parseFrame, readAuthResult } from "./codec.ts";

/** Where the socket is. */
export type ClientState =
  | "idle"
  | "connecting"
  | "authenticating"
  | "synced"
  | "reconnecting"
  | "auth_failed"
  | "failed"
  | "stopped";

/** Options for {@link WxbotClient}. */
export interface WxbotClientOptions {
  url: string;
  /** The platform account key (a secret: never logged). */
  key: string;
  reconnectMs: number;
  authTimeoutMs: number;
  log: Logger;
  /** Each frame after the auth result, in order: the next waits until this one has been handled. */
  onFrame(frame: Frame, text: string): Promise<void>;
  random?: () => number;
}

/** What `/healthz` shows of the socket. */
export interface ClientHealth {
  state: ClientState;
  /** Synced: messages flow. */
  up: boolean;
  url: string;
  /** Why it is not up (the last drop, or the platform's refusal). */
  reason?: string;
  /** When the state last changed (ISO). */
  since: string;
  /** Sockets opened so far. */
  connects: number;
  /** Sockets lost, or that could not be opened or signed in (the auth refusal aside). */
  drops: number;
  /** When the next attempt is due (ISO), while reconnecting. */
  next_attempt?: string;
}

/** The WebSocket client of one platform key. */
export class WxbotClient {
  readonly #o: WxbotClientOptions;
  #state: ClientState = "idle";
  #since = Date.now();
  #reason: string | undefined;
  #connects = 0;
  #drops = 0;
  #ws: WebSocket | undefined;
  #closed: Promise<void> = Promise.resolve();
  #retry: ReturnType<typeof setTimeout> | undefined;
  #nextAt: number | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(options: WxbotClientOptions) {
    this.#o = options;
  }

  /** The socket's state. */
  get state(): ClientState {
    return this.#state;
  }

  /** Start connecting; resolves at once (kefu serves while the platform is away). Idempotent. */
  start(): void {
    if (this.#state === "idle") this.#connect();
  }

  /** Close the socket and cancel the reconnect; waits at most `ms` for frames being handled and the close. */
  async stop(ms: number): Promise<void> {
    if (this.#state === "stopped") return;
    this.#set("stopped");
    clearTimeout(this.#retry);
    this.#retry = undefined;
    const ws = this.#ws;
    if (ws !== undefined && ws.readyState !== WebSocket.CLOSED) {
      try {
        ws.close(1000, "kefu stopping");
      } catch { /* closing already */ }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([this.#closed, this.#chain]),
      new Promise((resolve) => timer = setTimeout(resolve, ms)),
    ]);
    clearTimeout(timer);
  }

  /** What `/healthz` shows. */
  health(): ClientHealth {
    const h: ClientHealth = {
      state: this.#state,
      up: this.#state === "synced",
      url: this.#o.url,
      since: new Date(this.#since).toISOString(),
      connects: this.#connects,
      drops: this.#drops,
    };
    if (this.#reason !== undefined && this.#state !== "synced") h.reason = this.#reason;
    if (this.#state === "reconnecting" && this.#nextAt !== undefined) {
      h.next_attempt = new Date(this.#nextAt).toISOString();
    }
    return h;
  }

  #set(state: ClientState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#since = Date.now();
  }

  #connect(): void {
    const { log, url } = this.#o;
    this.#set("connecting");
    let ws: WebSocket;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      // A URL WebSocket refuses outright cannot get better by waiting; config checks it, so this is a last guard.
      this.#reason = `cannot open ${quote(url)}: ${(e as Error).message}; fix WXBOT_WS_URL and restart kefu`;
      this.#set("failed");
      log.error("wxbot_connect_failed", { url, error: (e as Error).message });
      return;
    }
    this.#connects++;
    this.#ws = ws;
    let authed = false;
    let lastError = "";
    const authTimer = setTimeout(() => {
      lastError = `no AuthCheckResult within ${this.#o.authTimeoutMs} ms`;
      ws.close(4000, "no auth result");
    }, this.#o.authTimeoutMs);
    let closed!: () => void;
    this.#closed = new Promise((resolve) => closed = resolve);

    ws.onopen = () => {
      if (this.#state === "stopped") return;
      this.#set("authenticating");
      ws.send(JSON.stringify({ app: "wxbot", version: "1.0", key: this.#o.key }));
    };
    ws.onerror = (ev) => {
      lastError = (ev as ErrorEvent).message || "socket error";
    };
    ws.onmessage = (ev) => {
      if (this.#state === "stopped" || this.#state === "auth_failed") return;
      if (typeof ev.data !== "string") {
        log.warn("wxbot_binary_frame", { detail: "the platform sends JSON text frames: a binary frame was skipped" });
        return;
      }
      const text = ev.data;
      if (authed) {
        // In order, one at a time: each is committed before the next is looked at.
        this.#chain = this.#chain.then(() => this.#handle(text));
        return;
      }
      let f: Frame;
      try {
        f = parseFrame(text);
      } catch (e) {
        log.warn("wxbot_frame_before_auth", { error: (e as Error).message });
        return;
      }
      if (frameType(f) !== "AuthCheckResult") {
        log.warn("wxbot_frame_before_auth", { type: frameType(f), detail: "expected AuthCheckResult first; skipped" });
        return;
      }
      clearTimeout(authTimer);
      let auth;
      try {
        auth = readAuthResult(f);
      } catch (e) {
        // As the seed's loop does with an answer it cannot read: drop, wait, connect again.
        lastError = (e as Error).message;
        ws.close(4000, "unreadable auth result");
        return;
      }
      if (auth.retCode === 0) {
        authed = true;
        this.#reason = undefined;
        this.#set("synced");
        log.info("wxbot_synced", { url, msg: auth.msg });
        return;
      }
      this.#reason = `the platform refused WXBOT_KEY (AuthCheckResult retCode ${auth.retCode}, ${quote(auth.msg)}): ` +
        "kefu does not retry (the platform says not to); fix WXBOT_KEY and restart kefu";
      this.#set("auth_failed");
      log.error("wxbot_auth_failed", { url, retCode: auth.retCode, msg: auth.msg, detail: this.#reason });
      ws.close(1000, "auth failed");
    };
    ws.onclose = (ev) => {
      clearTimeout(authTimer);
      if (this.#ws === ws) this.#ws = undefined;
      closed();
      if (this.#state === "stopped" || this.#state === "auth_failed") return;
      this.#drops++;
      const why = lastError || `closed by the platform (code ${ev.code}${ev.reason ? `, ${quote(ev.reason)}` : ""})`;
      this.#reason = authed ? `the socket dropped: ${why}` : `cannot sign in at ${quote(url)}: ${why}`;
      this.#schedule();
    };
  }

  #schedule(): void {
    const base = this.#o.reconnectMs;
    const wait = Math.round(base + (this.#o.random ?? Math.random)() * base * 0.2);
    this.#nextAt = Date.now() + wait;
    this.#set("reconnecting");
    this.#o.log.warn("wxbot_reconnecting", { url: this.#o.url, reason: this.#reason, wait_ms: wait });
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (this.#state === "reconnecting") this.#connect();
    }, wait);
  }

  async #handle(text: string): Promise<void> {
    try {
      await this.#o.onFrame(parseFrame(text), text);
    } catch (e) {
      const fields = { error: (e as Error).message, frame: text.slice(0, 300) };
      if (e instanceof KefuError) this.#o.log.warn("wxbot_frame_dropped", { kind: e.kind, ...fields });
      else this.#o.log.error("wxbot_frame_dropped", fields);
    }
  }
}
