/**
 * A fake PC hook (seed 000) for tests and `kefu simulate`: the hook's HTTP API
 * (`POST /api/` with `{"type":N}`: 1001 add, 1002 remove, 1003 list callbacks
 * with cookies, 28 who is logged in, 10009/10010/10012 send) and, for each
 * WebSocket callback registered, the hook's side of the socket: dial, say
 * `hello`, push frames one at a time and wait for `ok` before the next,
 * reconnect when dropped and push again what had no `ok`. Send calls are
 * recorded. `goAway()`/`comeBack()` play WeChat being closed and started
 * again: the API stops answering, and the callbacks are forgotten.
 *
 * Controls for a person: `POST /sim/text {"from","content","room"?}` pushes a
 * message, `POST /sim/frame` pushes its body as it is, `GET /sim/state` shows
 * callbacks, sockets and what kefu sent.
 *
 * @module
 */

import { Hono } from "hono";
import { ConfigError, readChoice, readInt, readLogLevel } from "../config/config.ts";
import { createLogger, type Logger, type LogLevel, silentLogger } from "../core/log.ts";

/** Options of {@link startPcHookSimulator}. */
export interface PcHookSimOptions {
  /** Port of the API; 0 picks a free one. */
  port?: number;
  host?: string;
  /** The logged-in account (`robot.userName`, type 28). */
  wxid?: string;
  nickName?: string;
  /** `seed`: answers as the seed writes them (`{"data":…}`); `wrapped`: with `error_code`/`description`. */
  answers?: "seed" | "wrapped";
  /** The first reconnect wait; doubles up to 5 s. */
  reconnectMs?: number;
  /** A frame with no `ok` within this long is pushed again on a new socket. */
  ackTimeoutMs?: number;
  log?: Logger;
}

/** One API call as the hook received it. */
export interface SimHookCall {
  type: number;
  body: Record<string, unknown>;
}

/** A running fake hook. */
export interface PcHookSimulator {
  /** `http://host:port/api/`, for kefu's HOOK_API_URL. */
  readonly apiUrl: string;
  readonly port: number;
  /** Every API call answered, in order. */
  readonly calls: SimHookCall[];
  /** The bodies of send calls (type ≥ 10000), in order. */
  readonly sent: Record<string, unknown>[];
  /** Answer send calls with this error (`{"error_code","description"}` or `{"status","desc"}`) while set. */
  failSends?: { error_code?: number; description?: string; status?: number; desc?: string };
  /** The callbacks registered. */
  callbacks(): { cookie: string; url: string; protocol: number }[];
  /** Register a callback as another program (or an earlier kefu) would have; answers its cookie. */
  addCallback(url: string, protocol?: number): string;
  /** Sockets past the handshake. */
  connected(): number;
  /**
   * Callbacks registered now, registrations (type 1001) so far, and the most callbacks registered at once since the
   * start or {@link resetPeak} (several kefu nodes: one registers per hook).
   */
  stats(): { callbacks: number; registrations: number; peakCallbacks: number; connected: number };
  /** Start counting `peakCallbacks` again from the callbacks registered now. */
  resetPeak(): void;
  /** Wait until `n` sockets are past the handshake. */
  waitConnected(n?: number, timeoutMs?: number): Promise<void>;
  /**
   * Push a frame (an object is sent as JSON) to every callback; resolves when each answered `ok` (true), or
   * when a callback was removed before it did (false).
   */
  push(frame: string | object): Promise<boolean>;
  /** Push a text message from `from` (in group `room` when given); resolves at `ok`. Answers the frame sent. */
  text(from: string, content: string, options?: ChatOptions): Promise<string>;
  /** WeChat closed: the API stops answering, sockets drop, callbacks are forgotten. */
  goAway(): Promise<void>;
  /** WeChat started again on the same port, with no callbacks. */
  comeBack(): void;
  /** Stop everything (timers, sockets, server). Idempotent. */
  shutdown(): Promise<void>;
}

/** A chat message to build a push from. */
export interface ChatOptions {
  /** WeChat type; default 1 (text). */
  type?: number;
  /** The group it is said in: the push comes `from` the room, the member in `chatroomMemberInfo`. */
  room?: string;
  /** The group's name (the room's `talkerInfo.nickName`); default its id, as for a group WeChat has not named. */
  roomName?: string;
  nickName?: string;
  /** msgSvrID as digits (written as a JSON number, possibly beyond 2^53); default a fresh one. */
  id?: string;
  /** 1: the account sent it itself. */
  isSender?: number;
  createtime?: number;
}

let nextId = 7_300_000_000_000_000_001n;

/** A pushed chat message as the hook writes it, `msgSvrID` a JSON number as large as it is. */
export function chatFrame(robot: string, from: string, content: string, o: ChatOptions = {}): string {
  const id = o.id ?? String(nextId++);
  const member = o.room === undefined ? undefined : {
    alias: "",
    nickName: o.nickName ?? from,
    smallHeadImgUrl: "",
    userName: from,
  };
  const frame = {
    pushType: 1,
    pushTime: Math.floor(Date.now() / 1000),
    robot: { userName: robot, nickName: "kefu simulator", isLogin: true, port: 8888 },
    data: {
      content: o.room === undefined ? content : `${from}:\n${content}`,
      createtime: o.createtime ?? Math.floor(Date.now() / 1000),
      from: o.room ?? from,
      isChatroomMsg: o.room === undefined ? 0 : 1,
      isSender: o.isSender ?? 0,
      msgSvrID: "@ID@",
      szMsgSvrID: id,
      reversed1: "<msgsource></msgsource>\n",
      syncFromMobile: false,
      talkerInfo: {
        alias: "",
        nickName: o.room === undefined ? o.nickName ?? from : o.roomName ?? o.room,
        smallHeadImgUrl: "",
        userName: o.room ?? from,
      },
      ...(member ? { chatroomMemberInfo: member } : {}),
      to: robot,
      type: o.type ?? 1,
    },
  };
  return JSON.stringify(frame).replace('"@ID@"', id);
}

// One callback's socket, the hook's side.
class Dialer {
  #socket: WebSocket | undefined;
  #ready = false;
  #stopped = false;
  #failures = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  #hellos = 0;
  readonly queue: { frame: string; done: (ok: boolean) => void }[] = [];
  #inflight = false;

  constructor(
    readonly url: string,
    readonly options: Required<Pick<PcHookSimOptions, "reconnectMs" | "ackTimeoutMs">> & { log: Logger },
  ) {
    this.#connect();
  }

  get ready(): boolean {
    return this.#ready;
  }

  push(frame: string): Promise<boolean> {
    return new Promise((resolve) => {
      this.queue.push({ frame, done: resolve });
      this.#next();
    });
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#ackTimer);
    this.#ready = false;
    try {
      this.#socket?.close(1000, "callback removed");
    } catch { /* closing */ }
    // Nothing will be pushed any more: whoever waits is let go.
    for (const q of this.queue.splice(0)) q.done(false);
  }

  #connect(): void {
    if (this.#stopped) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch {
      return this.#retry();
    }
    this.#socket = ws;
    this.#hellos = 0;
    ws.onopen = () => {
      this.#hellos++;
      ws.send("hello");
    };
    ws.onmessage = (e) => this.#answer(ws, String(e.data));
    ws.onerror = () => {};
    ws.onclose = () => {
      if (this.#socket !== ws) return;
      this.#ready = false;
      this.#inflight = false;
      clearTimeout(this.#ackTimer);
      this.#retry();
    };
  }

  #answer(ws: WebSocket, text: string): void {
    if (!this.#ready) {
      if (text === "hello") {
        this.#ready = true;
        this.#failures = 0;
        this.options.log.info("sim_hook_connected", { url: this.url });
        return this.#next();
      }
      // "connected fail": say hello again, a few times.
      if (this.#hellos < 3) {
        this.#hellos++;
        ws.send("hello");
      } else ws.close(1002, "handshake refused");
      return;
    }
    if (text === "ok" && this.#inflight) {
      clearTimeout(this.#ackTimer);
      this.#inflight = false;
      this.queue.shift()?.done(true);
      this.#next();
    }
  }

  #next(): void {
    if (!this.#ready || this.#inflight || this.queue.length === 0) return;
    this.#inflight = true;
    this.#socket!.send(this.queue[0].frame);
    // No "ok" in time: drop the socket; the frame goes again on the next one.
    this.#ackTimer = setTimeout(() => this.#socket?.close(1000, "no ok"), this.options.ackTimeoutMs);
  }

  #retry(): void {
    if (this.#stopped) return;
    const ms = Math.min(5000, this.options.reconnectMs * 2 ** Math.min(10, this.#failures++));
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connect(), ms);
  }
}

/** Start a fake hook. */
export function startPcHookSimulator(options: PcHookSimOptions = {}): PcHookSimulator {
  const wxid = options.wxid ?? "wxid_kefu_sim_hook";
  const log = options.log ?? silentLogger;
  const dialerOptions = { reconnectMs: options.reconnectMs ?? 500, ackTimeoutMs: options.ackTimeoutMs ?? 10_000, log };
  const calls: SimHookCall[] = [];
  const sent: Record<string, unknown>[] = [];
  const callbacks = new Map<string, { url: string; protocol: number; dialer?: Dialer }>();
  const wrap = (data: Record<string, unknown>, error_code = 10000, description = "") =>
    options.answers === "wrapped"
      ? { error_code, description, data }
      : error_code === 10000
      ? { data }
      : { error_code, description, data };
  const ok = (more: Record<string, unknown> = {}) => wrap({ status: 0, desc: "", ...more });

  let registrations = 0;
  let peakCallbacks = 0;
  const add = (url: string, protocol = 3): string => {
    const cookie = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    callbacks.set(cookie, { url, protocol, dialer: protocol === 3 ? new Dialer(url, dialerOptions) : undefined });
    peakCallbacks = Math.max(peakCallbacks, callbacks.size);
    return cookie;
  };
  const app = new Hono();
  app.post("/api/", async (c) => {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      return c.json(wrap({}, 10001, "无效的json串"));
    }
    const type = Number(body.type);
    calls.push({ type, body });
    switch (type) {
      case 1001: {
        if (typeof body.url !== "string" || body.url === "") return c.json(wrap({}, 10002, "缺少必要的参数"));
        registrations++;
        const cookie = add(body.url, Number(body.protocol));
        log.info("sim_hook_callback_added", { url: body.url, protocol: Number(body.protocol), cookie });
        return c.json(ok({ cookie }));
      }
      case 1002: {
        const cb = callbacks.get(String(body.cookie));
        if (cb === undefined) return c.json(wrap({ status: -1, desc: "cookie not found", cookie: "" }));
        cb.dialer?.stop();
        callbacks.delete(String(body.cookie));
        log.info("sim_hook_callback_removed", { url: cb.url, cookie: String(body.cookie) });
        return c.json(ok({ cookie: "" }));
      }
      case 1003:
        return c.json(
          ok({ data: [...callbacks].map(([cookie, cb]) => ({ cookie, protocol: cb.protocol, url: cb.url })) }),
        );
      case 28:
        return c.json(ok({ data: { userName: wxid, nickName: options.nickName ?? "kefu simulator", alias: "" } }));
    }
    if (type >= 10000) {
      sent.push(body);
      log.info("sim_hook_send_call", body);
      const f = sim.failSends;
      if (f !== undefined) {
        return c.json(wrap({ status: f.status ?? 0, desc: f.desc ?? "" }, f.error_code ?? 10000, f.description ?? ""));
      }
      const id = String(nextId++);
      return c.json(ok({ msgSvrID: id, szMsgSvrID: id }));
    }
    return c.json(wrap({}, 10003, "不支持的接口编号"));
  });
  app.post("/sim/text", async (c) => {
    const { from, content, room, nickName, type } = await c.req.json();
    const frame = await sim.text(String(from), String(content), { room, nickName, type });
    // The frame as sent: JSON.parse would round its msgSvrID.
    return c.body(`{"ok":true,"frame":${frame}}`, 200, { "content-type": "application/json" });
  });
  app.post("/sim/frame", async (c) => {
    await sim.push(await c.req.text());
    return c.json({ ok: true });
  });
  app.get("/sim/state", (c) => c.json({ wxid, callbacks: sim.callbacks(), connected: sim.connected(), sent }));

  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  const serve = (port: number) =>
    server = Deno.serve({ port, hostname: options.host ?? "127.0.0.1", onListen() {} }, app.fetch);
  serve(options.port ?? 0);
  const port = server!.addr.port;
  const forget = () => {
    for (const cb of callbacks.values()) cb.dialer?.stop();
    callbacks.clear();
  };
  let stopping: Promise<void> | undefined;
  const sim: PcHookSimulator = {
    apiUrl: `http://${options.host ?? "127.0.0.1"}:${port}/api/`,
    port,
    calls,
    sent,
    callbacks: () => [...callbacks].map(([cookie, cb]) => ({ cookie, url: cb.url, protocol: cb.protocol })),
    addCallback: add,
    connected: () => [...callbacks.values()].filter((cb) => cb.dialer?.ready).length,
    stats: () => ({ callbacks: callbacks.size, registrations, peakCallbacks, connected: sim.connected() }),
    resetPeak() {
      peakCallbacks = callbacks.size;
    },
    async waitConnected(n = 1, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (sim.connected() < n) {
        if (Date.now() > deadline) {
          throw new Error(`the fake hook has ${sim.connected()} of ${n} sockets after ${timeoutMs} ms`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    push(frame) {
      const text = typeof frame === "string" ? frame : JSON.stringify(frame);
      const all = [...callbacks.values()].flatMap((cb) => cb.dialer ? [cb.dialer.push(text)] : []);
      return Promise.all(all).then((oks) => oks.length > 0 && oks.every(Boolean));
    },
    async text(from, content, o = {}) {
      const frame = chatFrame(wxid, from, content, o);
      await sim.push(frame);
      return frame;
    },
    async goAway() {
      forget();
      await server?.shutdown();
      server = undefined;
    },
    comeBack() {
      if (server === undefined) serve(port);
    },
    shutdown() {
      stopping ??= (async () => {
        forget();
        await server?.shutdown();
        server = undefined;
      })();
      return stopping;
    },
  };
  return sim;
}

/** Settings of the fake hook under `kefu simulate`. */
export interface PcHookSimConfig {
  port: number;
  host: string;
  wxid: string;
  answers: "seed" | "wrapped";
  logLevel: LogLevel;
}

/** The fake hook's settings from the environment: SIM_HOOK_PORT (8888), SIM_HOOK_HOST, SIM_HOOK_WXID, SIM_HOOK_ANSWERS. */
export function parsePcHookSimConfig(env: Record<string, string | undefined>): PcHookSimConfig {
  const wxid = env.SIM_HOOK_WXID?.trim() || "wxid_kefu_sim_hook";
  if (!/^[\w@.-]{1,64}$/.test(wxid)) {
    throw new ConfigError(`cannot read SIM_HOOK_WXID=${JSON.stringify(wxid)}: expected 1–64 letters, digits, _ - . @`);
  }
  return {
    port: readInt(env, "SIM_HOOK_PORT", 8888, 0, 65535),
    host: env.SIM_HOOK_HOST?.trim() || "127.0.0.1",
    wxid,
    answers: readChoice(env.SIM_HOOK_ANSWERS, "SIM_HOOK_ANSWERS", ["seed", "wrapped"] as const, "seed"),
    logLevel: readLogLevel(env),
  };
}

/** Serve the fake hook with these settings, logging where its API and its controls are. */
export function servePcHookSimulator(config: PcHookSimConfig, log: Logger): PcHookSimulator {
  const { port, host, wxid, answers } = config;
  const sim = startPcHookSimulator({ port, host, wxid, answers, log });
  const base = `http://${host.includes(":") ? `[${host}]` : host}:${sim.port}`;
  log.info("sim_hook_listening", { api: sim.apiUrl, wxid, push: `${base}/sim/text`, state: `${base}/sim/state` });
  return sim;
}

// `deno run --allow-net --allow-env src/simulator/pc_hook.ts`: the fake hook alone (SIM_HOOK_* settings).
if (import.meta.main) {
  const config = parsePcHookSimConfig(Deno.env.toObject());
  const sim = servePcHookSimulator(config, createLogger({ level: config.logLevel }));
  const stop = () => sim.shutdown().then(() => Deno.exit(0));
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
