/**
 * A WXBot platform that follows seed 002, for tests and the two-window
 * walkthrough: one listener serves both the sync socket (WebSocket upgrade on
 * any path) and the HTTP send API (`POST /wxapi/pc/message/<op>?key=…`).
 *
 * - Socket: frames before the auth packet `{"app":"wxbot","version":"1.0","key"}`
 *   get no answer (the seed: "否则服务器不会响应你的操作"); the right key is
 *   answered `{"type":"AuthCheckResult",…,"retCode":0}`, a wrong one
 *   `{"eventType":"AuthCheckResult","msg":"鉴权失败，无效key","retCode":1000}`,
 *   each as the seed writes it. AddMsg frames go to every signed-in socket,
 *   `NewMsgId` a raw JSON number of any size.
 * - API: `{"ok":true,"result":{…},"retCode":0,"cost":true}`; a wrong key or
 *   missing field 1001, an unknown Token 1002, a video over 3 MB 1001; and a
 *   switch to answer 1000/1003/1004 (or anything) with the `cost` asked for.
 *   Every call is recorded, as received.
 * - Controls over HTTP for a person (`/sim/…`, see {@link createWxbotSim}).
 *
 * @module
 */

import { Hono } from "hono";
import { LosslessNumber, stringify } from "lossless-json";
import { ConfigError, readInt, readLogLevel } from "../config/config.ts";
import type { Logger, LogLevel } from "../core/log.ts";

/** One API call as the platform received it. */
export interface WxbotSent {
  /** The endpoint, e.g. `sendText`. */
  op: string;
  key: string;
  body: Record<string, unknown>;
  /** How it was answered. */
  answer: WxbotAnswer;
}

/** An answer of the API. */
export interface WxbotAnswer {
  ok: boolean;
  retCode: number;
  cost: boolean;
  result?: unknown;
  error?: string;
}

/** A user's message to push as AddMsg. */
export interface AddMsgInput {
  /** The account it comes to (`userInfo.wxid`). */
  wxid: string;
  nickname?: string;
  /** FromUserName: the user, or a group `…@chatroom`. */
  from: string;
  /** ToUserName; default the account. */
  to?: string;
  /** MsgType; default 1 (text). */
  msgType?: number;
  /** Content as WeChat has it (for a group: `wxid:\n…`). */
  content: string;
  /** NewMsgId, as digits (written as a bare JSON number of any size); default a random 19-digit one. */
  newMsgId?: string;
  msgId?: number;
  /** Epoch seconds; default now. */
  createTime?: number;
  /** Write the strings plainly instead of WeChat's `{"string":…}`. */
  plainStrings?: boolean;
}

/** Options for {@link createWxbotSim}. */
export interface WxbotSimOptions {
  /** The platform account key that signs in. */
  key: string;
  /** Token per account wxid: the Tokens the API takes. */
  tokens: Record<string, string>;
  log?: Logger;
}

/** The simulated platform and its controls. */
export interface WxbotSim {
  /** The handler to serve (`Deno.serve(sim.fetch)`). */
  fetch(req: Request): Response | Promise<Response>;
  /** Push an AddMsg (or any raw frame) to every signed-in socket; answers the frame and how many got it. */
  push(input: AddMsgInput | string): { frame: string; sockets: number };
  /** API calls so far, oldest first. */
  readonly sent: WxbotSent[];
  /** The next `n` API calls answer `ok:false` with this retCode and cost (default cost false). */
  failNext(n: number, retCode: number, cost?: boolean): void;
  /** Every API call answers this retCode (and cost) until cleared with undefined. */
  failAll(retCode: number | undefined, cost?: boolean): void;
  /** The next `n` API calls answer this exact answer (e.g. `{ok:true, retCode:0, cost:false}`). */
  answerNext(n: number, answer: WxbotAnswer): void;
  /** Close every socket as a network drop would (code 1011). */
  drop(): void;
  /**
   * Sockets connected, signed in, and auth packets seen (with whether the key was right); `peakSynced`: the most
   * sockets signed in at once since the start or {@link resetPeak} (several kefu nodes: one connects per key).
   */
  stats(): { connected: number; synced: number; peakSynced: number; auths: { ok: number; refused: number } };
  /** Start counting `peakSynced` again from the sockets signed in now. */
  resetPeak(): void;
  /** Close every socket (shutdown). */
  close(): void;
}

const OK_MSG = "鉴权成功，本账号下所有已登录微信号的消息均会同步";
const REFUSED_MSG = "鉴权失败，无效key";
const MAX_VIDEO_BYTES = 3 * 1024 * 1024;
const OPS = ["sendText", "sendImage", "sendVoice", "sendVideo"] as const;

// What each endpoint needs, as the seed's tables list it.
const REQUIRED: Record<(typeof OPS)[number], string[]> = {
  sendText: ["UserName", "Content", "Token"],
  sendImage: ["UserName", "Base64Image", "Token"],
  sendVoice: ["Type", "UserName", "DataFileBase64", "VoiceTime", "Token"],
  sendVideo: ["UserName", "VideoFileBase64", "ImageFileBase64", "VideoTime", "Token"],
};

/** The AddMsg frame of `input`, as the platform writes it (`NewMsgId` a bare JSON number). */
export function addMsgFrame(input: AddMsgInput): string {
  const s = (v: string) => input.plainStrings ? v : { string: v };
  const digits = input.newMsgId ?? randomDigits(19);
  if (!/^\d{1,20}$/.test(digits)) throw new Error(`newMsgId must be digits, got ${JSON.stringify(digits)}`);
  return stringify({
    userInfo: { wxid: input.wxid, nickname: input.nickname ?? input.wxid },
    eventType: "AddMsg",
    event: {
      MsgId: input.msgId ?? Math.floor(Math.random() * 2 ** 31),
      FromUserName: s(input.from),
      ToUserName: s(input.to ?? input.wxid),
      MsgType: input.msgType ?? 1,
      Content: s(input.content),
      Status: 3,
      ImgStatus: 1,
      CreateTime: input.createTime ?? Math.floor(Date.now() / 1000),
      MsgSource: "<msgsource></msgsource>",
      PushContent: input.msgType === 1 || input.msgType === undefined ? `${input.from} : ${input.content}` : "",
      NewMsgId: new LosslessNumber(digits),
    },
  })!;
}

function randomDigits(n: number): string {
  let s = String(1 + Math.floor(Math.random() * 8));
  while (s.length < n) s += String(Math.floor(Math.random() * 10));
  return s;
}

/**
 * A simulated platform. Besides the seed's socket and API it answers, for a person driving it with curl:
 * `POST /sim/addmsg` `{"from","content"|"text","wxid"?,"to"?,"msg_type"?,"new_msg_id"?}`, `GET /sim/sent`,
 * `POST /sim/fail` `{"retCode","count"?,"cost"?}` (count omitted: every call until `{"retCode":null}`),
 * `POST /sim/drop`.
 */
export function createWxbotSim(options: WxbotSimOptions): WxbotSim {
  const sockets = new Set<WebSocket>();
  const synced = new Set<WebSocket>();
  const sent: WxbotSent[] = [];
  const auths = { ok: 0, refused: 0 };
  let peakSynced = 0;
  const queued: WxbotAnswer[] = [];
  let always: WxbotAnswer | undefined;
  const log = options.log;

  const failure = (retCode: number, cost: boolean): WxbotAnswer => ({ ok: false, retCode, cost });

  function onSocket(ws: WebSocket): void {
    sockets.add(ws);
    ws.onmessage = (ev) => {
      if (synced.has(ws) || typeof ev.data !== "string") return;
      let packet: Record<string, unknown>;
      try {
        packet = JSON.parse(ev.data);
      } catch {
        return; // Not an auth packet: the server does not answer.
      }
      if (packet?.app !== "wxbot" || packet.version !== "1.0" || typeof packet.key !== "string") return;
      if (packet.key === options.key) {
        auths.ok++;
        synced.add(ws);
        peakSynced = Math.max(peakSynced, synced.size);
        ws.send(JSON.stringify({ type: "AuthCheckResult", msg: OK_MSG, retCode: 0 }));
      } else {
        auths.refused++;
        ws.send(JSON.stringify({ eventType: "AuthCheckResult", msg: REFUSED_MSG, retCode: 1000 }));
      }
      log?.info("wxbot_sim_auth", { ok: packet.key === options.key });
    };
    ws.onclose = () => {
      sockets.delete(ws);
      synced.delete(ws);
    };
  }

  function answerFor(op: (typeof OPS)[number], key: string, body: Record<string, unknown>): WxbotAnswer {
    const next = queued.shift() ?? always;
    if (next) return next;
    if (key !== options.key) return { ...failure(1001, false), error: "invalid key" };
    const missing = REQUIRED[op].filter((f) => body[f] === undefined || body[f] === "");
    if (missing.length > 0) return { ...failure(1001, false), error: `missing ${missing.join(", ")}` };
    const token = String(body.Token);
    const wxid = Object.keys(options.tokens).find((w) => options.tokens[w] === token);
    if (wxid === undefined) return { ...failure(1002, false), error: "token not found" };
    if (op === "sendVideo" && typeof body.VideoFileBase64 === "string") {
      if (body.VideoFileBase64.length * 3 / 4 > MAX_VIDEO_BYTES) return { ...failure(1001, true), error: "video > 3M" };
    }
    return { ok: true, result: { msgId: Math.floor(Math.random() * 2 ** 31), from: wxid }, retCode: 0, cost: true };
  }

  const app = new Hono();
  app.post("/wxapi/pc/message/:op", async (c) => {
    const op = c.req.param("op") as (typeof OPS)[number];
    if (!OPS.includes(op)) return c.json(failure(1001, false), 404);
    let body: Record<string, unknown>;
    try {
      body = await c.req.json();
    } catch {
      return c.json({ ...failure(1001, false), error: "body is not JSON" });
    }
    const key = c.req.query("key") ?? "";
    const answer = answerFor(op, key, body);
    sent.push({ op, key, body, answer });
    log?.info("wxbot_sim_api", { op, to: body.UserName, retCode: answer.retCode, cost: answer.cost });
    return c.json(answer);
  });

  const sim: WxbotSim = {
    fetch(req) {
      if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
        const { socket, response } = Deno.upgradeWebSocket(req);
        onSocket(socket);
        return response;
      }
      return app.fetch(req);
    },
    push(input) {
      const frame = typeof input === "string" ? input : addMsgFrame(input);
      for (const ws of synced) ws.send(frame);
      return { frame, sockets: synced.size };
    },
    sent,
    failNext(n, retCode, cost = false) {
      for (let i = 0; i < n; i++) queued.push(failure(retCode, cost));
    },
    failAll(retCode, cost = false) {
      always = retCode === undefined ? undefined : failure(retCode, cost);
    },
    answerNext(n, answer) {
      for (let i = 0; i < n; i++) queued.push(answer);
    },
    drop() {
      for (const ws of sockets) ws.close(1011, "simulated drop");
    },
    stats: () => ({ connected: sockets.size, synced: synced.size, peakSynced, auths: { ...auths } }),
    resetPeak() {
      peakSynced = synced.size;
    },
    close() {
      for (const ws of sockets) ws.close(1001, "simulator stopping");
    },
  };

  // Controls for a person: push a user's message, see what kefu sent, make the API fail, drop the sockets.
  app.post("/sim/addmsg", async (c) => {
    const b = await c.req.json().catch(() => ({}));
    const wxid = String(b.wxid ?? Object.keys(options.tokens)[0] ?? "wxid_kefu_bot");
    if (typeof b.from !== "string" || b.from === "") return c.json({ error: "from is required" }, 400);
    const r = sim.push({
      wxid,
      from: b.from,
      to: typeof b.to === "string" ? b.to : undefined,
      msgType: typeof b.msg_type === "number" ? b.msg_type : 1,
      content: String(b.content ?? b.text ?? ""),
      newMsgId: typeof b.new_msg_id === "string" ? b.new_msg_id : undefined,
    });
    return c.json({ sockets: r.sockets, frame: r.frame });
  });
  app.get("/sim/sent", (c) => c.json(sent.map((s) => ({ ...s, key: s.key === options.key ? "(right key)" : s.key }))));
  app.post("/sim/fail", async (c) => {
    const b = await c.req.json().catch(() => ({}));
    const code = "retCode" in b ? b.retCode : b.ret_code;
    if (code === null) sim.failAll(undefined);
    else if (typeof code !== "number") return c.json({ error: "retCode is required (1000, 1003, 1004, …)" }, 400);
    else if (typeof b.count === "number") sim.failNext(b.count, code, b.cost === true);
    else sim.failAll(code, b.cost === true);
    return c.json({ ok: true });
  });
  app.post("/sim/drop", (c) => {
    const n = sockets.size;
    sim.drop();
    return c.json({ dropped: n });
  });
  return sim;
}

/** Settings of `kefu simulate`'s WXBot platform. */
export interface WxbotSimConfig {
  port: number;
  host: string;
  key: string;
  tokens: Record<string, string>;
  logLevel: LogLevel;
}

/**
 * The WXBot platform's settings for `kefu simulate`, from the same variables kefu reads (WXBOT_KEY, WXBOT_WXID,
 * WXBOT_TOKEN) and SIM_WXBOT_PORT (default 19095, the seed's port) / SIM_HOST. Undefined when WXBOT_KEY is not set:
 * no platform is played. Throws `ConfigError` naming the variable.
 */
export function parseWxbotSimConfig(env: Record<string, string | undefined>): WxbotSimConfig | undefined {
  const key = env.WXBOT_KEY?.trim() ?? "";
  if (key === "") return undefined;
  const wxid = env.WXBOT_WXID?.trim() || "wxid_kefu_bot";
  const token = env.WXBOT_TOKEN?.trim() ?? "";
  if (token === "") {
    throw new ConfigError("cannot play the WXBot platform: WXBOT_TOKEN is required (the Token its API takes)");
  }
  return {
    port: readInt(env, "SIM_WXBOT_PORT", 19095, 0, 65535),
    host: env.SIM_HOST?.trim() || "127.0.0.1",
    key,
    tokens: { [wxid]: token },
    logLevel: readLogLevel(env),
  };
}

/** A running simulated platform. */
export interface RunningWxbotSim {
  port: number;
  /** What to set WXBOT_WS_URL to. */
  wsUrl: string;
  /** What to set WXBOT_API_BASE to. */
  apiBase: string;
  sim: WxbotSim;
  /** Close the sockets and stop listening. Idempotent. */
  shutdown(): Promise<void>;
}

/** Serve a simulated platform. */
export function startWxbotSim(config: WxbotSimConfig, log?: Logger): RunningWxbotSim {
  const sim = createWxbotSim({ key: config.key, tokens: config.tokens, log });
  const server = Deno.serve({ port: config.port, hostname: config.host, onListen: () => {} }, sim.fetch);
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  const port = server.addr.port;
  let stopping: Promise<void> | undefined;
  const running: RunningWxbotSim = {
    port,
    wsUrl: `ws://${host}:${port}`,
    apiBase: `http://${host}:${port}`,
    sim,
    shutdown() {
      stopping ??= (async () => {
        sim.close();
        // Let the close frames go out before Deno.serve closes what is left.
        await new Promise((resolve) => setTimeout(resolve, 0));
        await server.shutdown();
        log?.info("wxbot_sim_stopped", {});
      })();
      return stopping;
    },
  };
  log?.info("wxbot_sim_listening", {
    WXBOT_WS_URL: running.wsUrl,
    WXBOT_API_BASE: running.apiBase,
    accounts: Object.keys(config.tokens),
    controls: `${running.apiBase}/sim/addmsg, /sim/sent, /sim/fail, /sim/drop`,
  });
  return running;
}
