/**
 * The operators' endpoints: `/metrics` (Prometheus' text format, behind `METRICS_TOKEN` as a Bearer token) and
 * `/readyz` (readiness: 503 while the store does not answer or a configured channel is down). `/healthz` stays
 * liveness: it answers while the process serves at all.
 *
 * Why a token rather than a second listen address: one port to publish, proxy and firewall (nginx passes
 * `/metrics` to the same upstream, or keeps it off the public site); Prometheus sends it with
 * `authorization: {credentials: …}`; without the setting the endpoint is off (404), so nothing is exposed by default.
 *
 * @module
 */

import { Hono } from "hono";
import { timingSafeEqual } from "node:crypto";
import type { ChannelAdapter } from "../channels/channel.ts";
import { type ChannelState, METRICS_CONTENT_TYPE, metricsText } from "./metrics.ts";

/** Options for {@link opsRoutes}. */
export interface OpsOptions {
  /** `METRICS_TOKEN`; undefined: `/metrics` is off. */
  token?: string;
  /** The store answers its counters, or does not. */
  store: { stats(): Promise<unknown> };
  /** The channels' connection states (see {@link channelStates}). */
  channels: () => ChannelState[];
  /** Longest wait for the store's answer; default 2 s. */
  readyTimeoutMs?: number;
}

/** `/metrics` and `/readyz`, as a sub-app to mount at `/`. */
export function opsRoutes(options: OpsOptions): Hono {
  const app = new Hono();
  app.get("/metrics", async (c) => {
    if (options.token === undefined) {
      return c.json(
        { error: "metrics_off", detail: "set METRICS_TOKEN to turn /metrics on (docs/operations.md)" },
        404,
      );
    }
    const got = /^Bearer\s+(.+)$/i.exec(c.req.header("authorization") ?? "")?.[1]?.trim() ?? "";
    const [a, b] = [new TextEncoder().encode(got), new TextEncoder().encode(options.token)];
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      c.header("WWW-Authenticate", 'Bearer realm="kefu metrics"');
      return c.json({ error: "auth_failed", detail: "send METRICS_TOKEN as Authorization: Bearer …" }, 401);
    }
    c.header("content-type", METRICS_CONTENT_TYPE);
    return c.body(await metricsText());
  });
  app.get("/readyz", async (c) => {
    const store = await reach(options.store, options.readyTimeoutMs ?? 2_000);
    const down = options.channels().filter((s) => !s.up).map((s) => ({
      channel: s.channel,
      name: s.name,
      state: s.state,
    }));
    const ready = store === "ok" && down.length === 0;
    return c.json({ status: ready ? "ready" : "not_ready", store, channels_down: down }, ready ? 200 : 503);
  });
  return app;
}

async function reach(store: { stats(): Promise<unknown> }, ms: number): Promise<string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<string>((resolve) => timer = setTimeout(() => resolve(`no answer within ${ms} ms`), ms));
  try {
    return await Promise.race([
      store.stats().then(() => "ok", (e) => `unreachable: ${String(e).split("\n")[0]}`),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Each channel's connection states from what its `health()` says: a PC hook per hook (up while its socket is
 * connected; state: its registration), WXBot per key (up while synced; state: the socket's). Channels that only
 * take requests (the Official Account's webhook, the HTTP push) have no connection: none listed.
 */
export function channelStates(channels: readonly ChannelAdapter[]): ChannelState[] {
  const out: ChannelState[] = [];
  for (const ch of channels) {
    const h = ch.health?.() as Record<string, unknown> | undefined;
    if (h === undefined) continue;
    if (Array.isArray(h.hooks)) {
      for (const hook of h.hooks as Record<string, unknown>[]) {
        const state = String(hook.registration ?? "unknown");
        // Among several nodes the hook says itself whether it is up (its socket may be on any node).
        const up = typeof hook.up === "boolean" ? hook.up : Number(hook.connected ?? 0) > 0;
        out.push({ channel: ch.name, name: String(hook.name ?? ""), state, up });
      }
    } else if (typeof h.state === "string" && typeof h.up === "boolean") {
      const accounts = Array.isArray(h.accounts) ? (h.accounts as unknown[]).join(",") : "";
      // A node standing by while another holds the socket (issue 19) is not a channel down.
      const standby = (h.hold as { hold?: string } | undefined)?.hold === "standby";
      out.push({ channel: ch.name, name: accounts, state: h.state, up: h.up || standby });
    }
  }
  return out;
}
