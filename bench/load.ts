/**
 * Load generator and agent simulator for `deno task bench`. `run.ts` starts it
 * as its own process, pinned to its own core, against a kefu it started.
 *
 * - `--mode load`: connect `--agents` agent sockets, check that a bad signature
 *   is refused, then a closed loop (`--conc` keep-alive connections, at most
 *   `--requests` POSTs or `--duration` s) and an open loop (`--rate` POSTs per
 *   second for `--rate-secs` s), with every agent connected throughout so that
 *   no user's messages are held. Counts lost and duplicated messages over both.
 * - `--mode conns`: open `--conns` idle agent sockets and report the growth of
 *   the server's RSS (`--server-pid`).
 *
 * Prints one JSON object on stdout, progress on stderr. Only 127.0.0.1 is ever
 * contacted, and every loop is bounded by a count and by a hard time cap. It
 * needs `--allow-all` only because Deno grants reads of `/proc` (the server's
 * RSS and CPU time) to nothing less.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { Auth } from "../src/agents/auth/auth.ts";
import { msgSignature, WechatCipher } from "../src/channels/wx_official/crypto.ts";

// With sign-in on, each agent connects with a token signed with the server's AGENT_SECRET (as a sign-in would give).
const AGENT_SECRET = Deno.env.get("BENCH_AGENT_SECRET") || undefined;
const signer = AGENT_SECRET && new Auth({ secret: AGENT_SECRET, tokenSeconds: 86400, maxSkewSeconds: 300 });

function agentQuery(agent: string): string {
  return signer ? `?token=${signer.issue(agent).token}` : `?userid=${agent}`;
}
import {
  cpuPercent,
  type CpuSample,
  type LatencySummary,
  nowMs,
  parseFlags,
  procCpu,
  type ProcMem,
  procMem,
  round,
  sleep,
  summarize,
} from "./lib.ts";

/** Options of one load run; flags are the kebab-case names (`--rate-secs`). */
export interface LoadOptions {
  mode: "load" | "conns";
  port: number;
  serverPid: number;
  agents: number;
  users: number;
  conc: number;
  requests: number;
  duration: number;
  rate: number;
  rateSecs: number;
  drain: number;
  conns: number;
  inflight: number;
  idleWait: number;
  token: string;
  /** Safe mode: the EncodingAESKey (and `appid`) to encrypt each message with, as WeChat does; "" for plaintext. */
  aesKey: string;
  appid: string;
  path: string;
  wsPath: string;
}

const DEFAULTS: LoadOptions = {
  mode: "load",
  port: 0,
  serverPid: 0,
  agents: 50,
  users: 5000,
  conc: 64,
  requests: 200_000,
  duration: 5,
  rate: 2000,
  rateSecs: 5,
  drain: 3,
  conns: 10_000,
  inflight: 200,
  idleWait: 3,
  token: "bench",
  aesKey: "",
  appid: "",
  path: "/wechat",
  wsPath: "/im_component/wx_official_account/msg",
};

/** One measured phase of `--mode load`. */
export interface PhaseResult {
  name: "max" | "rate";
  sent: number;
  /** Answers that were 2xx with the body `success`. */
  accepted: number;
  /** Answers that were anything else. */
  notSuccess: number;
  /** Requests that got no answer (connection error). */
  failed: number;
  statuses: Record<string, number>;
  elapsedS: number;
  /** Accepted answers per second, first send to last answer. */
  reqPerS: number;
  /** Unique valid envelopes of this phase received by agents. */
  delivered: number;
  /** Delivered per second, first send to last delivery. */
  deliveredPerS: number;
  /** Accepted but not delivered once the phase's drain ended (the run's total is in `totals.lost`). */
  undeliveredAfterDrain: number;
  drainMs: number;
  httpMs: LatencySummary;
  /** Agent receipt − the send time written into the message. */
  e2eMs: LatencySummary;
  serverCpuPct: number | null;
  loaderCpuPct: number | null;
  /** Open loop only. */
  targetRate?: number;
  achievedRate?: number;
  /** Agent receipt − the moment the request was due (includes the loader's own lateness). */
  e2eFromScheduleMs?: LatencySummary;
  /** How late requests went out. */
  sendLagMs?: LatencySummary;
  maxBacklog?: number;
}

/** Counts over the whole run of `--mode load`. */
export interface Totals {
  accepted: number;
  delivered: number;
  /** Accepted and never received by any agent after the final drain. */
  lost: number;
  /** An id received a second time. */
  duplicated: number;
  /** Text envelopes that failed validation (fields, id, content). */
  invalid: number;
  /** Valid envelopes with an id this run never sent. */
  unknown: number;
  /** Delivered although the POST got no `success` (failed or refused, yet taken). */
  unacked: number;
  /** A user's message reaching another agent than its first one. */
  moved: number;
  heartbeats: number;
  /** Other envelopes (system, error). */
  other: number;
}

/** The output of `--mode load`. */
export interface LoadResult {
  mode: "load";
  error?: string;
  check: { badSignatureStatus: number; badSignatureRefused: boolean };
  agents: { requested: number; opened: number; openAtEnd: number };
  users: number;
  conc: number;
  phases: PhaseResult[];
  totals: Totals;
  usersPerAgent: { min: number; max: number };
  serverMem: ProcMem | null;
}

/** The output of `--mode conns`. */
export interface ConnsResult {
  mode: "conns";
  error?: string;
  requested: number;
  opened: number;
  failed: number;
  errors: Record<string, number>;
  stillOpen: number;
  /** Sockets that received at least one heartbeat during the wait (they are live and written to). */
  gotHeartbeat: number;
  openMs: number;
  idleWaitS: number;
  rssBeforeKb: number | null;
  rssAfterKb: number | null;
  kbPerConn: number | null;
  serverMem: ProcMem | null;
}

/** Read `LoadOptions` from command-line flags. */
export function parseLoadOptions(argv: string[]): LoadOptions {
  const options: LoadOptions = { ...DEFAULTS };
  const record = options as unknown as Record<string, string | number>;
  for (const [flag, value] of parseFlags(argv)) {
    const key = flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!(key in DEFAULTS)) throw new Error(`unknown option --${flag}`);
    if (typeof record[key] === "number") {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`--${flag} must be a number ≥ 0, got ${value}`);
      record[key] = n;
    } else {
      record[key] = value;
    }
  }
  if (options.mode !== "load" && options.mode !== "conns") throw new Error(`unknown mode ${options.mode}`);
  if (!options.port) throw new Error("--port is required");
  return options;
}

// ---------------------------------------------------------------- HTTP/1.1

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An HTTP answer: status and body text. */
export interface HttpAnswer {
  status: number;
  body: string;
  close: boolean;
}

/**
 * A keep-alive HTTP/1.1 connection on a raw TCP socket. `fetch` would do, but
 * its per-request cost on the loader's one core would cap what we can measure.
 */
export class HttpConn {
  readonly #conn: Deno.TcpConn;
  #buf = new Uint8Array(4096);
  #len = 0;
  closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connect to 127.0.0.1:`port`. */
  static async open(port: number): Promise<HttpConn> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    return new HttpConn(conn);
  }

  /** Write one request and read its answer; throws when the connection ends first. */
  async request(bytes: Uint8Array): Promise<HttpAnswer> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    for (;;) {
      const answer = this.#parse();
      if (answer !== null) return answer;
      if (this.#len === this.#buf.length) {
        const bigger = new Uint8Array(this.#buf.length * 2);
        bigger.set(this.#buf);
        this.#buf = bigger;
      }
      const n = await this.#conn.read(this.#buf.subarray(this.#len));
      if (n === null) throw new Error("connection closed by the server");
      this.#len += n;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  #parse(): HttpAnswer | null {
    const b = this.#buf;
    let headEnd = -1;
    for (let i = 3; i < this.#len; i++) {
      if (b[i] === 10 && b[i - 1] === 13 && b[i - 2] === 10 && b[i - 3] === 13) {
        headEnd = i + 1;
        break;
      }
    }
    if (headEnd < 0) return null;
    const head = decoder.decode(b.subarray(0, headEnd)).toLowerCase();
    const status = Number(head.slice(9, 12));
    const close = /\r\nconnection:\s*close/.test(head);
    const length = head.match(/\r\ncontent-length:\s*(\d+)/);
    let body: string;
    let end: number;
    if (length) {
      end = headEnd + Number(length[1]);
      if (this.#len < end) return null;
      body = decoder.decode(b.subarray(headEnd, end));
    } else if (/\r\ntransfer-encoding:\s*chunked/.test(head)) {
      const parts: string[] = [];
      let pos = headEnd;
      for (;;) {
        let lineEnd = -1;
        for (let i = pos + 1; i < this.#len; i++) {
          if (b[i] === 10 && b[i - 1] === 13) {
            lineEnd = i - 1;
            break;
          }
        }
        if (lineEnd < 0) return null;
        const size = parseInt(decoder.decode(b.subarray(pos, lineEnd)), 16);
        const dataStart = lineEnd + 2;
        if (this.#len < dataStart + size + 2) return null;
        if (size === 0) {
          end = dataStart + 2;
          break;
        }
        parts.push(decoder.decode(b.subarray(dataStart, dataStart + size)));
        pos = dataStart + size + 2;
      }
      body = parts.join("");
    } else {
      // No framing: HTTP/1.1 says the body runs to the end of the connection; kefu never does that.
      throw new Error(`answer without Content-Length or chunked encoding (status ${status})`);
    }
    b.copyWithin(0, end, this.#len);
    this.#len -= end;
    return { status, body, close };
  }
}

// ---------------------------------------------------------------- the workload

/** The WeChat text message the bench posts; `t` is the send time in epoch ms. */
export function messageXml(user: string, createTime: number, t: number, msgId: string): string {
  return `<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[${user}]]></FromUserName>` +
    `<CreateTime>${createTime}</CreateTime><MsgType><![CDATA[text]]></MsgType>` +
    `<Content><![CDATA[t=${t.toFixed(3)} hello]]></Content><MsgId>${msgId}</MsgId></xml>`;
}

/** WeChat's signature: sha1 hex of the sorted token, timestamp and nonce. */
export function wechatSignature(token: string, timestamp: string, nonce: string): string {
  return createHash("sha1").update([token, timestamp, nonce].sort().join("")).digest("hex");
}

/** A 17-digit MsgId for sequence number `seq` (kept as a string end to end, as WeChat's 64-bit ids are). */
export function msgIdOf(seq: number): string {
  return `23${String(seq + 1).padStart(15, "0")}`;
}

function seqOfMsgId(id: string): number {
  return id.length === 17 && id.startsWith("23") ? Number(id.slice(2)) - 1 : -1;
}

function userName(u: number): string {
  return `oUSER_${String(u).padStart(5, "0")}`;
}

// Every request signed with a nonce of its own, as WeChat does: kefu takes a (timestamp, nonce) pair once. Signing
// is the client's cost (the other core); verifying stays the server's.
const RUN_NONCE = Math.floor(Math.random() * 1e9);
let signed = 0;
function signedTarget(options: LoadOptions): string {
  const ts = String(Math.floor(Date.now() / 1000));
  const nonce = `${RUN_NONCE}${++signed}`;
  return `${options.path}?signature=${wechatSignature(options.token, ts, nonce)}&timestamp=${ts}&nonce=${nonce}`;
}

interface Workload {
  options: LoadOptions;
  cipher?: WechatCipher;
  users: string[];
  createTime: number;
  head: string;
}

function request(w: Workload, seq: number, t: number, target = signedTarget(w.options)): Uint8Array {
  let body = messageXml(w.users[seq % w.users.length], w.createTime, t, msgIdOf(seq));
  if (w.cipher !== undefined) {
    // Safe mode, as WeChat posts it: the message encrypted, msg_signature over the ciphertext (the loader's cost).
    const encrypt = w.cipher.encrypt(body);
    const q = new URLSearchParams(target.slice(target.indexOf("?") + 1));
    const sig = msgSignature(w.options.token, q.get("timestamp")!, q.get("nonce")!, encrypt);
    target = `${target}&encrypt_type=aes&msg_signature=${sig}`;
    body = `<xml><ToUserName><![CDATA[gh_test]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`;
  }
  // The body is ASCII, so its length in characters is its length in bytes.
  return encoder.encode(`POST ${target}${w.head}${body.length}\r\n\r\n${body}`);
}

// ---------------------------------------------------------------- agents

interface OpenedSockets {
  sockets: WebSocket[];
  opened: number;
  failed: number;
  errors: Record<string, number>;
  ms: number;
}

/** Open `n` WebSockets with at most `inflight` handshakes at once; bounded by `deadlineMs` (epoch ms). */
async function openSockets(
  options: LoadOptions,
  n: number,
  idOf: (k: number) => string,
  onMessage: (k: number, data: unknown) => void,
  deadlineMs: number,
): Promise<OpenedSockets> {
  const sockets: WebSocket[] = [];
  const errors: Record<string, number> = {};
  let next = 0;
  let opened = 0;
  let failed = 0;
  const t0 = nowMs();
  const fail = (why: string) => {
    failed++;
    errors[why] = (errors[why] ?? 0) + 1;
  };
  const worker = async () => {
    while (next < n && nowMs() < deadlineMs) {
      const k = next++;
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${options.port}${options.wsPath}${agentQuery(idOf(k))}`);
        let settled = false;
        const settle = (ok: boolean, why = "") => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (ok) opened++;
          else fail(why);
          resolve();
        };
        const timer = setTimeout(() => {
          settle(false, "handshake timeout");
          ws.close();
        }, 15_000);
        ws.onopen = () => settle(true);
        ws.onerror = (e) => settle(false, (e as ErrorEvent).message || "error");
        ws.onclose = () => settle(false, "closed during handshake");
        ws.onmessage = (e) => onMessage(k, e.data);
        sockets[k] = ws;
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.inflight, n) }, worker));
  return { sockets, opened, failed, errors, ms: Math.round(nowMs() - t0) };
}

function countOpen(sockets: WebSocket[]): number {
  return sockets.filter((ws) => ws?.readyState === WebSocket.OPEN).length;
}

function closeAll(sockets: WebSocket[]): void {
  for (const ws of sockets) {
    try {
      ws?.close();
    } catch { /* already closing */ }
  }
}

// ---------------------------------------------------------------- mode load

interface PhaseState {
  name: "max" | "rate";
  start: number;
  end: number;
  accepted: number;
  delivered: number;
  lastDelivery: number;
  t0: number;
  httpLat: Float64Array;
  nHttp: number;
  e2eLat: Float64Array;
  nE2e: number;
  schedLat?: Float64Array;
  nSched: number;
  interval: number;
}

function newPhase(name: "max" | "rate", start: number, size: number): PhaseState {
  return {
    name,
    start,
    end: start + size,
    accepted: 0,
    delivered: 0,
    lastDelivery: 0,
    t0: 0,
    httpLat: new Float64Array(size),
    nHttp: 0,
    e2eLat: new Float64Array(size),
    nE2e: 0,
    schedLat: name === "rate" ? new Float64Array(size) : undefined,
    nSched: 0,
    interval: 0,
  };
}

/** Run `--mode load` and return its result. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const maxSize = options.requests;
  const rateSize = Math.floor(options.rate * options.rateSecs);
  const capacity = maxSize + rateSize;
  const w: Workload = {
    options,
    cipher: options.aesKey === "" ? undefined : await WechatCipher.create(options.aesKey, options.appid),
    users: Array.from({ length: Math.max(1, options.users) }, (_, u) => userName(u)),
    createTime: Math.floor(Date.now() / 1000),
    head:
      ` HTTP/1.1\r\nHost: 127.0.0.1:${options.port}\r\nUser-Agent: kefu-bench\r\nContent-Type: text/xml\r\nContent-Length: `,
  };
  const accepted = new Uint8Array(capacity);
  const seen = new Uint8Array(capacity);
  const userOf = new Int32Array(w.users.length).fill(-1);
  const totals: Totals = {
    accepted: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    invalid: 0,
    unknown: 0,
    unacked: 0,
    moved: 0,
    heartbeats: 0,
    other: 0,
  };
  const phases = [newPhase("max", 0, maxSize), newPhase("rate", maxSize, rateSize)];
  const phaseOf = (seq: number) => seq < maxSize ? phases[0] : phases[1];

  const onAgentMessage = (agent: number, data: unknown) => {
    const at = nowMs();
    if (typeof data !== "string") return void totals.invalid++;
    // deno-lint-ignore no-explicit-any
    let m: any;
    try {
      m = JSON.parse(data);
    } catch {
      return void totals.invalid++;
    }
    const code = m?.result?.code;
    if (code === 101) return void totals.heartbeats++;
    if (code !== 1001) return void totals.other++;
    const d = m.data;
    const seq = typeof d?.id === "string" ? seqOfMsgId(d.id) : -1;
    if (seq < 0) return void totals.invalid++;
    if (seq >= capacity) return void totals.unknown++;
    const user = w.users[seq % w.users.length];
    const content = d.msg?.content;
    if (
      d.name !== user || d.contact_id !== user || d.avatar !== "" || d.msg_type !== "text" ||
      d.company_id !== "" || d.send_time !== w.createTime || m.result.message !== "common" ||
      typeof content !== "string" || !content.startsWith("t=") || !content.endsWith(" hello")
    ) return void totals.invalid++;
    if (seen[seq]) return void totals.duplicated++;
    seen[seq] = 1;
    totals.delivered++;
    const u = seq % w.users.length;
    if (userOf[u] < 0) userOf[u] = agent;
    else if (userOf[u] !== agent) totals.moved++;
    const phase = phaseOf(seq);
    phase.delivered++;
    phase.lastDelivery = at;
    phase.e2eLat[phase.nE2e++] = at - parseFloat(content.slice(2));
    if (phase.schedLat) phase.schedLat[phase.nSched++] = at - (phase.t0 + (seq - phase.start) * phase.interval);
  };

  const ag = await openSockets(
    options,
    options.agents,
    (k) => `agent${String(k).padStart(5, "0")}`,
    onAgentMessage,
    nowMs() + 30_000,
  );
  const base = {
    mode: "load" as const,
    agents: { requested: options.agents, opened: ag.opened, openAtEnd: 0 },
    users: w.users.length,
    conc: options.conc,
    totals,
    usersPerAgent: { min: 0, max: 0 },
  };
  const failEarly = (error: string): LoadResult => {
    closeAll(ag.sockets);
    return {
      ...base,
      error,
      check: { badSignatureStatus: 0, badSignatureRefused: false },
      phases: [],
      serverMem: procMem(options.serverPid),
    };
  };
  if (ag.opened < options.agents) {
    return failEarly(`only ${ag.opened} of ${options.agents} agents connected: ${JSON.stringify(ag.errors)}`);
  }
  console.error(`load: ${ag.opened} agents connected in ${ag.ms} ms`);
  // Let the server register the last sockets before the first user is assigned.
  await sleep(300);

  const conns: HttpConn[] = [];
  try {
    for (let i = 0; i < options.conc; i++) conns.push(await HttpConn.open(options.port));
  } catch (e) {
    for (const c of conns) c.close();
    return failEarly(`cannot open HTTP connections: ${(e as Error).message}`);
  }

  // The contract's first rule: a bad signature is refused. Its id lies outside every phase.
  let badSignatureStatus = 0;
  try {
    const bad = await conns[0].request(
      request(w, capacity, nowMs(), `${options.path}?signature=${"0".repeat(40)}&timestamp=1&nonce=2`),
    );
    badSignatureStatus = bad.status;
    if (bad.close) conns[0] = await HttpConn.open(options.port);
  } catch (e) {
    return failEarly(`bad-signature probe failed: ${(e as Error).message}`);
  }
  const check = {
    badSignatureStatus,
    badSignatureRefused: badSignatureStatus !== 0 && !(badSignatureStatus < 300),
  };

  const statusCounts = new Map<PhaseState, Record<string, number>>();
  const counts = new Map<PhaseState, { sent: number; notSuccess: number; failed: number }>();
  for (const p of phases) {
    statusCounts.set(p, {});
    counts.set(p, { sent: 0, notSuccess: 0, failed: 0 });
  }

  // One request on `slot`: answers false when the connection is gone for good.
  const reconnects = new Array(conns.length).fill(0);
  const send = async (slot: number, seq: number, phase: PhaseState): Promise<boolean> => {
    const c = counts.get(phase)!;
    const t = nowMs();
    c.sent++;
    try {
      const answer = await conns[slot].request(request(w, seq, t));
      const done = nowMs();
      const st = statusCounts.get(phase)!;
      st[answer.status] = (st[answer.status] ?? 0) + 1;
      if (answer.status >= 200 && answer.status < 300 && answer.body === "success") {
        accepted[seq] = 1;
        phase.accepted++;
        totals.accepted++;
      } else {
        c.notSuccess++;
      }
      phase.httpLat[phase.nHttp++] = done - t;
      if (answer.close) conns[slot] = await HttpConn.open(options.port);
      return true;
    } catch {
      c.failed++;
      conns[slot].close();
      // A few reconnects per connection, then give up: a dead server must not spin the loader.
      while (reconnects[slot]++ < 20) {
        await sleep(20);
        try {
          conns[slot] = await HttpConn.open(options.port);
          return true;
        } catch { /* retry */ }
      }
      return false;
    }
  };

  const drain = async (upTo: number): Promise<number> => {
    const t0 = nowMs();
    while (nowMs() - t0 < options.drain * 1000) {
      let pending = 0;
      for (let s = 0; s < upTo; s++) if (accepted[s] && !seen[s]) pending++;
      if (pending === 0) break;
      await sleep(20);
    }
    return Math.round(nowMs() - t0);
  };

  const finish = async (
    phase: PhaseState,
    next: number,
    t1: number,
    cpu0: [CpuSample | null, CpuSample | null],
    extra: Partial<PhaseResult>,
  ): Promise<PhaseResult> => {
    const cpu1 = [procCpu(options.serverPid), procCpu("self")];
    const drainMs = await drain(next);
    let undelivered = 0;
    for (let s = phase.start; s < next; s++) if (accepted[s] && !seen[s]) undelivered++;
    const elapsedS = (t1 - phase.t0) / 1000;
    const span = phase.delivered ? (phase.lastDelivery - phase.t0) / 1000 : 0;
    const c = counts.get(phase)!;
    return {
      name: phase.name,
      sent: c.sent,
      accepted: phase.accepted,
      notSuccess: c.notSuccess,
      failed: c.failed,
      statuses: statusCounts.get(phase)!,
      elapsedS: round(elapsedS, 3),
      reqPerS: elapsedS > 0 ? Math.round(phase.accepted / elapsedS) : 0,
      delivered: phase.delivered,
      deliveredPerS: span > 0 ? Math.round(phase.delivered / span) : 0,
      undeliveredAfterDrain: undelivered,
      drainMs,
      httpMs: summarize(phase.httpLat, phase.nHttp),
      e2eMs: summarize(phase.e2eLat, phase.nE2e),
      serverCpuPct: cpuPercent(cpu0[0], cpu1[0]),
      loaderCpuPct: cpuPercent(cpu0[1], cpu1[1]),
      ...extra,
    };
  };

  const results: PhaseResult[] = [];

  // Closed loop: every connection sends its next request as soon as the answer is in.
  {
    const phase = phases[0];
    let next = phase.start;
    const cpu0: [CpuSample | null, CpuSample | null] = [procCpu(options.serverPid), procCpu("self")];
    phase.t0 = nowMs();
    const capEnd = phase.t0 + options.duration * 1000;
    await Promise.all(conns.map(async (_, slot) => {
      while (next < phase.end && nowMs() < capEnd) {
        if (!await send(slot, next++, phase)) return;
      }
    }));
    const r = await finish(phase, next, nowMs(), cpu0, {});
    results.push(r);
    console.error(
      `load: closed loop ${r.reqPerS} req/s, ${r.accepted} accepted, ${r.undeliveredAfterDrain} undelivered`,
    );
  }

  // Open loop: a 1 ms timer releases the requests that are due; `t=` is when each is written.
  if (rateSize > 0) {
    const phase = phases[1];
    phase.interval = 1000 / options.rate;
    let next = phase.start;
    let inflight = 0;
    let maxBacklog = 0;
    const lag = new Float64Array(rateSize);
    let nLag = 0;
    const idle = conns.map((_, slot) => slot);
    const cpu0: [CpuSample | null, CpuSample | null] = [procCpu(options.serverPid), procCpu("self")];
    phase.t0 = nowMs();
    // The schedule ends after rate-secs; a server that cannot keep up gets 5 s more, then the loop stops.
    const capEnd = phase.t0 + (options.rateSecs + 5) * 1000;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => done = resolve);
    const pump = () => {
      const now = nowMs();
      const due = Math.min(phase.end, phase.start + Math.floor((now - phase.t0) / phase.interval) + 1);
      if (due - next > maxBacklog) maxBacklog = due - next;
      while (next < due && idle.length > 0 && now < capEnd) {
        const slot = idle.pop()!;
        const seq = next++;
        lag[nLag++] = nowMs() - (phase.t0 + (seq - phase.start) * phase.interval);
        inflight++;
        send(slot, seq, phase).then((alive) => {
          inflight--;
          if (alive) idle.push(slot);
          pump();
        });
      }
      if ((next >= phase.end || nowMs() >= capEnd || idle.length + inflight === 0) && inflight === 0) done();
    };
    const timer = setInterval(pump, 1);
    pump();
    await finished;
    clearInterval(timer);
    const t1 = nowMs();
    const r = await finish(phase, next, t1, cpu0, {
      targetRate: options.rate,
      achievedRate: Math.round(phase.accepted / ((t1 - phase.t0) / 1000)),
      e2eFromScheduleMs: summarize(phase.schedLat!, phase.nSched),
      sendLagMs: summarize(lag, nLag),
      maxBacklog,
    });
    results.push(r);
    console.error(`load: open loop ${r.achievedRate}/s, e2e p50 ${r.e2eMs.p50} p99 ${r.e2eMs.p99} ms`);
  }

  // Counted once, after the last drain, over every phase: an envelope often arrives before its HTTP answer.
  for (let s = 0; s < capacity; s++) {
    if (accepted[s] && !seen[s]) totals.lost++;
    else if (seen[s] && !accepted[s]) totals.unacked++;
  }
  for (const c of conns) c.close();
  const perAgent = new Int32Array(options.agents);
  for (const a of userOf) if (a >= 0) perAgent[a]++;
  const openAtEnd = countOpen(ag.sockets);
  closeAll(ag.sockets);
  return {
    ...base,
    agents: { ...base.agents, openAtEnd },
    check,
    phases: results,
    usersPerAgent: { min: Math.min(...perAgent), max: Math.max(...perAgent) },
    serverMem: procMem(options.serverPid),
  };
}

// ---------------------------------------------------------------- mode conns

/** Run `--mode conns` and return its result. */
export async function runConns(options: LoadOptions): Promise<ConnsResult> {
  const before = procMem(options.serverPid);
  const heartbeat = new Uint8Array(options.conns);
  const r = await openSockets(
    options,
    options.conns,
    (k) => `idle${String(k).padStart(6, "0")}`,
    (k, data) => {
      if (typeof data === "string" && data.includes('"code":101')) heartbeat[k] = 1;
    },
    nowMs() + 90_000,
  );
  console.error(
    `load: ${r.opened} idle sockets open in ${r.ms} ms (${r.failed} failed); waiting ${options.idleWait} s`,
  );
  await sleep(options.idleWait * 1000);
  const after = procMem(options.serverPid);
  const stillOpen = countOpen(r.sockets);
  const gotHeartbeat = heartbeat.reduce((n, x) => n + x, 0);
  closeAll(r.sockets);
  const growth = before && after ? after.rssKb - before.rssKb : null;
  return {
    mode: "conns",
    error: r.opened < options.conns ? `only ${r.opened} of ${options.conns} sockets opened` : undefined,
    requested: options.conns,
    opened: r.opened,
    failed: r.failed,
    errors: r.errors,
    stillOpen,
    gotHeartbeat,
    openMs: r.ms,
    idleWaitS: options.idleWait,
    rssBeforeKb: before?.rssKb ?? null,
    rssAfterKb: after?.rssKb ?? null,
    kbPerConn: growth !== null && r.opened > 0 ? round(growth / r.opened, 2) : null,
    serverMem: after,
  };
}

if (import.meta.main) {
  const options = parseLoadOptions(Deno.args);
  const capS = options.mode === "conns"
    ? 150 + options.idleWait
    : options.duration + options.rateSecs + 2 * options.drain + 90;
  // Whatever happens, this process ends: a hung server must not keep the loader alive.
  const cap = setTimeout(() => {
    console.log(JSON.stringify({ mode: options.mode, error: `hard cap of ${capS} s hit` }));
    Deno.exit(3);
  }, capS * 1000);
  Deno.unrefTimer(cap);
  const result = options.mode === "load" ? await runLoad(options) : await runConns(options);
  console.log(JSON.stringify(result));
  // Exit at once rather than wait for thousands of closing handshakes.
  Deno.exit(result.error ? 1 : 0);
}
