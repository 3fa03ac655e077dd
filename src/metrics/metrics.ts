/**
 * kefu's metrics, in Prometheus' text format through prom-client: one registry for the process and its named
 * instruments. Hot paths call the small functions below (a labelled child is looked up once per label set and
 * kept, so a message costs a Map lookup and an addition); what the hub and the channels already count (messages
 * waiting, agents online, sockets, channel states) is read from them at scrape time — zero cost per message.
 *
 * Names: `kefu_*`, seconds and bytes as units, `_total` for counters. Labels are bounded: channel, account (the
 * configured ones), error code, API action, media type — never a contact or a message id.
 *
 * @module
 */

import client from "prom-client";
import type { Message } from "../core/message.ts";
import { VERSION } from "../version.ts";

/** The registry `/metrics` answers with. */
export const registry = new client.Registry();

// Latency buckets in seconds: from a fraction of a millisecond (a local socket) to the minute (a backlog).
const FAST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const SLOW_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60];

const accepted = new client.Counter({
  name: "kefu_messages_accepted_total",
  help: "Users' messages kept by kefu, by channel, account and what became of them (delivered, queued, pending media)",
  labelNames: ["channel", "account", "status"] as const,
  registers: [registry],
});
const refused = new client.Counter({
  name: "kefu_messages_refused_total",
  help: "Users' messages not kept (the channel answered an error, so the sender may retry), by error code",
  labelNames: ["channel", "account", "code"] as const,
  registers: [registry],
});
const duplicates = new client.Counter({
  name: "kefu_messages_duplicate_total",
  help: "Users' messages received again (a retry of one already kept): answered, not kept twice",
  labelNames: ["channel", "account"] as const,
  registers: [registry],
});
const delivered = new client.Counter({
  name: "kefu_messages_delivered_total",
  help: "Users' messages written to an agent's sockets: live (as they came) or backlog (when the agent connected)",
  labelNames: ["channel", "how"] as const,
  registers: [registry],
});
const deliveryLatency = new client.Histogram({
  name: "kefu_delivery_latency_seconds",
  help: "From accept to an agent's socket (the wait for an offline agent included)",
  labelNames: ["channel"] as const,
  buckets: FAST_BUCKETS,
  registers: [registry],
});
const repliesSent = new client.Counter({
  name: "kefu_replies_sent_total",
  help: "Agents' replies a channel took (sent, or passive: in WeChat's answer)",
  labelNames: ["channel", "account"] as const,
  registers: [registry],
});
const repliesFailed = new client.Counter({
  name: "kefu_replies_failed_total",
  help: "Agents' replies that did not go out, by channel and error code (each is also a reply_failed warn line)",
  labelNames: ["channel", "account", "code"] as const,
  registers: [registry],
});
const wechatCalls = new client.Counter({
  name: "kefu_wechat_api_calls_total",
  help: "Calls to WeChat's API by account, action and outcome (ok: HTTP 200; unreachable; http_error)",
  labelNames: ["account", "action", "outcome"] as const,
  registers: [registry],
});
const wechatLatency = new client.Histogram({
  name: "kefu_wechat_api_seconds",
  help: "Time of one call to WeChat's API (the answer read)",
  labelNames: ["action"] as const,
  buckets: SLOW_BUCKETS,
  registers: [registry],
});
const wechatErrors = new client.Counter({
  name: "kefu_wechat_api_errors_total",
  help: "WeChat's non-zero errcodes, by account, action and errcode",
  labelNames: ["account", "action", "errcode"] as const,
  registers: [registry],
});
const tokenRefreshes = new client.Counter({
  name: "kefu_wechat_token_refreshes_total",
  help: "access_token fetches by account and why: scheduled (the first, or ahead of expiry) or rejected (40001/42001)",
  labelNames: ["account", "reason"] as const,
  registers: [registry],
});
const mediaSeconds = new client.Histogram({
  name: "kefu_media_seconds",
  help: "Work on users' files by stage (fetch from the channel, convert with ffmpeg) and media type",
  labelNames: ["stage", "type"] as const,
  buckets: SLOW_BUCKETS,
  registers: [registry],
});
const mediaFailures = new client.Counter({
  name: "kefu_media_failures_total",
  help: "Work on users' files that failed, by stage (fetch, convert, or the whole: timeout and the rest) and type",
  labelNames: ["stage", "type"] as const,
  registers: [registry],
});
const commitSeconds = new client.Histogram({
  name: "kefu_store_commit_seconds",
  help: "Time of one store commit (a group of writes)",
  buckets: FAST_BUCKETS,
  registers: [registry],
});

/** What the gauges read at scrape time: set by the running service. */
export interface GaugeSource {
  hub(): Promise<{ agents_online: number; sockets: number; contacts: number; held: number }>;
  /** Each channel's states: one entry per part that connects (a hook, a WXBot key), `up` 1 or 0. */
  channels(): ChannelState[];
}

/** The state of one part of a channel. */
export interface ChannelState {
  channel: string;
  /** Which part: the hook's name, the WXBot key's accounts, "" for the channel as a whole. */
  name: string;
  /** Its state word (registered, away, synced, reconnecting, auth_failed, …). */
  state: string;
  up: boolean;
}

let source: GaugeSource | undefined;

/** The running service's counters are what the gauges read (the last started). */
export function setGaugeSource(s: GaugeSource): void {
  source = s;
}

/** A service that stops: the gauges no longer read it (unless another started since). */
export function clearGaugeSource(s: GaugeSource): void {
  if (source === s) source = undefined;
}

/** The source the gauges read now (readiness uses the channels' states too). */
export function gaugeSource(): GaugeSource | undefined {
  return source;
}

new client.Gauge({
  name: "kefu_messages_waiting",
  help: "Users' messages kept for an agent who is offline or for no one online yet",
  registers: [registry],
  async collect() {
    this.set((await source?.hub())?.held ?? 0);
  },
});
new client.Gauge({
  name: "kefu_agents_online",
  help: "Agents with at least one socket open",
  registers: [registry],
  async collect() {
    this.set((await source?.hub())?.agents_online ?? 0);
  },
});
new client.Gauge({
  name: "kefu_sockets",
  help: "Agents' sockets open",
  registers: [registry],
  async collect() {
    this.set((await source?.hub())?.sockets ?? 0);
  },
});
new client.Gauge({
  name: "kefu_contacts",
  help: "Contacts known to the hub",
  registers: [registry],
  async collect() {
    this.set((await source?.hub())?.contacts ?? 0);
  },
});
new client.Gauge({
  name: "kefu_channel_up",
  help: "1 when a channel's connection is up (a PC hook's socket, a WXBot key's sync socket), else 0",
  labelNames: ["channel", "name"] as const,
  registers: [registry],
  collect() {
    this.reset();
    for (const s of source?.channels() ?? []) this.set({ channel: s.channel, name: s.name }, s.up ? 1 : 0);
  },
});
new client.Gauge({
  name: "kefu_channel_state",
  help: "1 for the state a channel's connection is in (hook: registered, registering, away, manual; WXBot: synced, " +
    "reconnecting, auth_failed, …)",
  labelNames: ["channel", "name", "state"] as const,
  registers: [registry],
  collect() {
    this.reset();
    for (const s of source?.channels() ?? []) this.set({ channel: s.channel, name: s.name, state: s.state }, 1);
  },
});
new client.Gauge({
  name: "kefu_info",
  help: "kefu's version (always 1)",
  labelNames: ["version"] as const,
  registers: [registry],
  collect() {
    this.set({ version: VERSION }, 1);
  },
});
const startSeconds = Date.now() / 1000;
new client.Gauge({
  name: "process_start_time_seconds",
  help: "Start time of the process since the epoch, in seconds",
  registers: [registry],
  collect() {
    this.set(startSeconds);
  },
});
new client.Gauge({
  name: "process_resident_memory_bytes",
  help: "Resident memory size in bytes",
  registers: [registry],
  collect() {
    this.set(Deno.memoryUsage().rss);
  },
});
new client.Gauge({
  name: "kefu_heap_used_bytes",
  help: "V8 heap in use, in bytes",
  registers: [registry],
  collect() {
    this.set(Deno.memoryUsage().heapUsed);
  },
});

// Labelled children, looked up once per label set (prom-client hashes the labels on every call otherwise).
type Child = { inc(n?: number): void };
const children = new Map<string, Child>();
function child(metric: { labels(...values: string[]): Child }, key: string, ...values: string[]): Child {
  let c = children.get(key);
  if (c === undefined) children.set(key, c = metric.labels(...values));
  return c;
}

// When each message was accepted, for the delivery latency (the hub hands the same object to the sockets): a symbol
// on the message, which JSON, Object.keys and structured clones leave out (a WeakMap cost more in garbage collection
// than the rest of this together, Object.defineProperty four times a plain assignment).
const ACCEPTED_AT: unique symbol = Symbol("kefu.acceptedAt");
type Timed = Message & { [ACCEPTED_AT]?: number };
const histograms = new Map<string, { observe(v: number): void }>();

/** The error code of a failure: a `KefuError`'s kind (`no_route`, `queue_full`, …) with WeChat's errcode, else "error". */
function codeOf(e: unknown): string {
  const { kind, data } = (e ?? {}) as { kind?: unknown; data?: { errcode?: unknown } };
  if (typeof kind !== "string" || kind === "") return "error";
  // WeChat's errcode (45015: the window closed, …) says more than the kind alone; a bounded set.
  return typeof data?.errcode === "number" ? `${kind}:${data.errcode}` : kind;
}

/**
 * Run the accept path (`accept`) for a message and count what became of it; answers its result (the channel waits
 * on it as before). The composition root wraps `ChannelContext.accept` with it.
 */
export function observeAccept<T extends { status: string }>(m: Message, accept: () => Promise<T>): Promise<T> {
  // Before the accept path runs: it may write to the sockets before its first await.
  (m as Timed)[ACCEPTED_AT] = performance.now();
  const result = accept();
  // Counted on the side: the channel awaits the accept path's own promise, not one more turn after it.
  result.then((r) => {
    const account = m.account ?? "";
    if (r.status === "duplicate") child(duplicates, `d\n${m.channel}\n${account}`, m.channel, account).inc();
    else child(accepted, `a\n${m.channel}\n${account}\n${r.status}`, m.channel, account, r.status).inc();
  }, (e) => {
    const account = m.account ?? "";
    const code = codeOf(e);
    child(refused, `r\n${m.channel}\n${account}\n${code}`, m.channel, account, code).inc();
  });
  return result;
}

/** A user's message written to an agent's sockets (`src/hub/delivery.ts`). */
export function observeDelivered(m: Message, how: "live" | "backlog"): void {
  child(delivered, `dl\n${m.channel}\n${how}`, m.channel, how).inc();
  const at = (m as Timed)[ACCEPTED_AT];
  // A message from the store (a backlog) is not the object that was accepted: WeChat's send time, to the second.
  const seconds = at !== undefined ? (performance.now() - at) / 1000 : Math.max(0, Date.now() / 1000 - m.sendTime);
  let h = histograms.get(m.channel);
  if (h === undefined) histograms.set(m.channel, h = deliveryLatency.labels(m.channel));
  h.observe(seconds);
}

/** A reply a channel took. */
export function observeReplySent(channel: string, account: string): void {
  child(repliesSent, `rs\n${channel}\n${account}`, channel, account).inc();
}

/** A reply that did not go out; answers its error code. */
export function observeReplyFailed(channel: string, account: string, e: unknown): string {
  const code = codeOf(e);
  child(repliesFailed, `rf\n${channel}\n${account}\n${code}`, channel, account, code).inc();
  return code;
}

/** One call to WeChat's API, its outcome and time. */
export function observeWechatCall(account: string, action: string, outcome: string, seconds: number): void {
  child(wechatCalls, `wc\n${account}\n${action}\n${outcome}`, account, action, outcome).inc();
  wechatLatency.labels(action).observe(seconds);
}

/** A non-zero errcode from WeChat. */
export function observeWechatError(account: string, action: string, errcode: number): void {
  child(wechatErrors, `we\n${account}\n${action}\n${errcode}`, account, action, String(errcode)).inc();
}

/** An access_token fetched: the first or ahead of its expiry (`scheduled`), or because WeChat rejected kefu's. */
export function observeTokenRefresh(account: string, reason: "scheduled" | "rejected"): void {
  child(tokenRefreshes, `tr\n${account}\n${reason}`, account, reason).inc();
}

/** Time the work of one media stage (`fetch`, `convert`); failures are counted. Answers `work`. */
export function observeMedia<T>(stage: "fetch" | "convert", type: string, work: Promise<T>): Promise<T> {
  const t0 = performance.now();
  return work.then((v) => {
    mediaSeconds.labels(stage, type).observe((performance.now() - t0) / 1000);
    return v;
  }, (e) => {
    mediaSeconds.labels(stage, type).observe((performance.now() - t0) / 1000);
    child(mediaFailures, `mf\n${stage}\n${type}`, stage, type).inc();
    throw e;
  });
}

/** A user's file that could not be kept at all (delivered without it): timeout or any failure. */
export function observeMediaFailed(type: string): void {
  child(mediaFailures, `mf\nmessage\n${type}`, "message", type).inc();
}

/** One store commit took `seconds` (the store calls it; see `src/store/`). */
export function observeCommit(seconds: number): void {
  commitSeconds.observe(seconds);
}

/** The metrics as Prometheus' text format. */
export function metricsText(): Promise<string> {
  return registry.metrics();
}

/** Prometheus' content type for {@link metricsText}. */
export const METRICS_CONTENT_TYPE = registry.contentType;
