/**
 * The HTTP application: the agents' sub-app, each channel's routes and the
 * static page joined with `app.route()`, request accounting as middleware, and
 * one error type ({@link KefuError}) mapped to a JSON answer in `app.onError`.
 *
 * @module
 */

import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Auth } from "../agents/auth/auth.ts";
import type { AgentDialect } from "../agents/dialect.ts";
import { agentRoutes } from "../agents/routes.ts";
import { mayReadDetails } from "../agents/middleware.ts";
import type { ChannelAdapter, ReplyRouter } from "../channels/channel.ts";
import { KefuError, quote } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { errorObject } from "../envelope/protocol.ts";
import type { Hub } from "../hub/hub.ts";
import type { ReplyService } from "../hub/replies.ts";
import type { MediaFiles } from "../media/files.ts";
import type { MediaPipeline } from "../media/pipeline.ts";
import { mediaRoutes } from "../media/routes.ts";
import { MediaOwnership, type SharedUploads } from "../media/ownership.ts";
import type { Uploads } from "../media/uploads.ts";
import type { HttpStats } from "./http_stats.ts";
import { staticRoutes } from "./static_routes.ts";

/** What the application is built from. */
export interface AppOptions {
  hub: Hub;
  log: Logger;
  /** The channels, whose routes are mounted; replies go out through `router`. */
  channels: readonly ChannelAdapter[];
  router: ReplyRouter;
  /** The reply use case every transport calls. */
  replies: ReplyService;
  /** Agent socket dialects; the first is the default. */
  dialects: readonly AgentDialect[];
  /** Files agents upload to send. */
  uploads: Uploads;
  /** Agent sign-in; undefined: off. */
  auth?: Auth;
  /** Users' media files and the work on them. */
  media: {
    files: MediaFiles;
    pipeline: MediaPipeline;
    publicUrl?: string;
    linkSeconds?: number;
    /** Several nodes: who uploaded what, known to every node. */
    sharedUploads?: SharedUploads;
  };
  /** Where requests are counted for the periodic summary line. */
  stats: HttpStats;
  /** Directory of the agent page. */
  staticDir: string;
  maxWsMessageBytes: number;
  idleTimeoutSeconds: number;
  /** `METRICS_TOKEN`: operators' Bearer token; with it (or an agent's token) `/healthz` tells its details. */
  metricsToken?: string;
  /** The operators' routes (`/metrics`, `/readyz`: src/metrics/routes.ts), mounted before the static page. */
  ops?: Hono;
}

/** Build the application. */
export function createApp(options: AppOptions): Hono {
  const { hub, log, stats } = options;
  const started = Date.now();
  const app = new Hono();

  // A line per request would be a write(2) per message on the hot path: failures get their own line, the rest is
  // counted and summed up every STATS_SECONDS (or written per request at debug level).
  app.use(async (c, next) => {
    const t0 = performance.now();
    await next();
    const status = c.res.status;
    const ms = performance.now() - t0;
    stats.record(status, ms);
    if (status >= 400 || log.enabled("debug")) {
      // The path only: query strings may carry signatures and tokens.
      const fields = { method: c.req.method, path: c.req.path, status, ms: Math.round(ms * 1000) / 1000 };
      if (status >= 500) log.warn("http", fields);
      else if (status >= 400) log.info("http", fields);
      else log.debug("http", fields);
    }
  });

  app.get("/healthz", async (c) => {
    // Without authorization only whether kefu is alive: AppIDs, agents online and hook URLs are for agents (a
    // token), operators (METRICS_TOKEN), or anyone while sign-in is off.
    if (!mayReadDetails(c, options.auth, options.metricsToken)) return c.json({ status: "ok" });
    const channels: Record<string, unknown> = {};
    for (const ch of options.channels) channels[ch.name] = ch.health?.() ?? {};
    return c.json({
      status: "ok",
      uptime_s: Math.floor((Date.now() - started) / 1000),
      auth: options.auth ? "on" : "off",
      // The page's "模拟微信用户" panel posts to /send as a user: offered only in a development setup (sign-in off,
      // the push open without PUSH_TOKEN), never in production.
      simulate: options.auth === undefined && channels.http_push !== undefined &&
        (channels.http_push as { token?: unknown }).token === false,
      ...await storeCounters(hub),
      ...options.media.pipeline.stats(),
      channels,
    });
  });
  // Who owns which stored file: one for the agent routes (uploads) and the media routes (users' files).
  const ownership = new MediaOwnership({
    hub,
    publicUrl: options.media.publicUrl,
    shared: options.media.sharedUploads,
  });
  app.route(
    "/",
    agentRoutes({
      ownership,
      hub,
      log,
      router: options.router,
      replies: options.replies,
      dialects: options.dialects,
      idleTimeoutSeconds: options.idleTimeoutSeconds,
      maxMessageBytes: options.maxWsMessageBytes,
      uploads: options.uploads,
      auth: options.auth,
      retryMedia: (agent, ref) =>
        options.media.pipeline.retry(agent, ref, (name) => options.channels.find((ch) => ch.name === name)),
    }),
  );
  app.route(
    "/",
    mediaRoutes({
      files: options.media.files,
      hub,
      auth: options.auth,
      publicUrl: options.media.publicUrl,
      linkSeconds: options.media.linkSeconds,
      ownership,
    }),
  );
  for (const ch of options.channels) if (ch.routes) app.route("/", ch.routes);
  if (options.ops) app.route("/", options.ops);
  app.route("/", staticRoutes(options.staticDir));

  app.notFound((c) => {
    const allowed = allowedMethods(app, c.req.path);
    if (allowed.length > 0 && !allowed.includes(c.req.method)) {
      return c.json(
        errorObject(
          "method_not_allowed",
          `cannot ${c.req.method} ${c.req.path}: it takes ${allowed.join(", ")}`,
        ),
        405,
        { allow: allowed.join(", ") },
      );
    }
    return c.json(errorObject("not_found", `no route for ${c.req.method} ${quote(c.req.path)}`), 404);
  });
  app.onError((err, c) => {
    if (err instanceof KefuError) {
      return c.json(errorObject(err.kind, err.message, err.data), err.status as 400);
    }
    if (err instanceof HTTPException) {
      return c.json(errorObject("invalid_envelope", err.message), err.status);
    }
    log.error("http_failed", {
      method: c.req.method,
      path: c.req.path,
      error: String(err),
      stack: (err as Error).stack,
    });
    return c.json(errorObject("internal", "the request could not be handled"), 500);
  });
  return app;
}

// Liveness must not hang on the store (a supervisor would restart every node while PostgreSQL is away): its
// counters are left out, and why said, when it does not answer within 2 s; /readyz is the store's check.
async function storeCounters(hub: Hub): Promise<Record<string, unknown>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<Record<string, unknown>>((resolve) =>
    timer = setTimeout(() => resolve({ store: "no answer within 2000 ms" }), 2_000)
  );
  try {
    return await Promise.race([
      hub.stats().then((s) => ({ ...s }), (e) => ({ store: `unreachable: ${String(e).split("\n")[0]}` })),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

// The methods some route takes on `path` (middleware excepted): what a 405's Allow lists. Only on a miss.
function allowedMethods(app: Hono, path: string): string[] {
  const methods = new Set<string>();
  for (const r of app.routes) {
    if (r.method === "ALL") continue;
    const pattern = r.path.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\/:\w+/g, "/[^/]+").replace(/\*/g, ".*");
    if (new RegExp(`^${pattern}$`).test(path)) methods.add(r.method);
  }
  if (methods.has("GET")) methods.add("HEAD");
  return [...methods].sort();
}
