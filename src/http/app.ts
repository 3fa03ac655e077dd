/**
 * The HTTP application: sub-apps joined with `app.route()`, one error type
 * mapped in `app.onError`, one log line per request.
 *
 * @module
 */

import { Hono } from "hono";
import type { HttpStats } from "./http_stats.ts";
import { HTTPException } from "hono/http-exception";
import { agentRoutes } from "../agents/routes.ts";
import { type ErrorKind, KefuError } from "../core/errors.ts";
import type { Hub } from "../hub/hub.ts";
import { inboundRoutes } from "../channels/http_push/routes.ts";
import type { Logger } from "../core/log.ts";
import { Code } from "../envelope/protocol.ts";
import { staticRoutes } from "./static_routes.ts";
import type { WechatAccount } from "../config/config.ts";
import type { Outbound } from "../channels/wx_official/sender.ts";
import type { PassiveReplies } from "../channels/wx_official/passive_reply.ts";
import type { ReplyWindows } from "../channels/wx_official/reply_window.ts";
import type { Uploads } from "../media/uploads.ts";
import { wechatRoutes } from "../channels/wx_official/webhook.ts";

/** What the application is built from. */
export interface AppOptions {
  hub: Hub;
  log: Logger;
  /** Directory of the agent test page. */
  staticDir: string;
  maxBodyBytes: number;
  maxWsMessageBytes: number;
  idleTimeoutSeconds: number;
  /** WeChat Official Accounts, each with its webhook path. */
  accounts?: WechatAccount[];
  /** Where agents' replies go; without it they are accepted and kept. */
  outbound?: Outbound;
  /** Users' reply windows (recorded by the webhook, checked by `outbound`). */
  windows?: ReplyWindows;
  /** Held requests of passive-mode accounts. */
  passive?: PassiveReplies;
  /** Files agents upload to send. */
  uploads?: Uploads;
  /** Where requests are counted for the periodic summary line. */
  stats?: HttpStats;
}

/** The JSON body of an error answer, in the seed's envelope style. */
export function errorBody(kind: ErrorKind, detail: string, extra?: Record<string, unknown>): unknown {
  return { data: { error: kind, detail, ...extra }, result: { code: Code.error, message: "error" } };
}

/** Build the application. */
export function createApp(options: AppOptions): Hono {
  const { hub, log } = options;
  const started = Date.now();
  const app = new Hono();

  // A line per request would be a write(2) per message on the hot path: failures get their own line, the rest is
  // counted and summed up every STATS_SECONDS (or written per request at debug level).
  const stats = options.stats;
  app.use(async (c, next) => {
    const t0 = performance.now();
    await next();
    const status = c.res.status;
    const ms = performance.now() - t0;
    stats?.record(status, ms);
    if (status >= 400 || log.enabled("debug")) {
      // The path only: query strings may carry signatures and tokens.
      const fields = { method: c.req.method, path: c.req.path, status, ms: Math.round(ms * 1000) / 1000 };
      if (status >= 500) log.warn("http", fields);
      else if (status >= 400) log.info("http", fields);
      else log.debug("http", fields);
    }
  });

  app.get(
    "/healthz",
    (c) => c.json({ status: "ok", uptime_s: Math.floor((Date.now() - started) / 1000), ...hub.stats() }),
  );
  app.route(
    "/",
    agentRoutes({
      hub,
      log,
      idleTimeoutSeconds: options.idleTimeoutSeconds,
      maxMessageBytes: options.maxWsMessageBytes,
      outbound: options.outbound,
      uploads: options.uploads,
    }),
  );
  app.route("/", inboundRoutes({ hub, maxBodyBytes: options.maxBodyBytes }));
  app.route(
    "/",
    wechatRoutes({
      hub,
      log,
      accounts: options.accounts ?? [],
      maxBodyBytes: options.maxBodyBytes,
      windows: options.windows,
      passive: options.passive,
    }),
  );
  app.route("/", staticRoutes(options.staticDir));

  app.notFound((c) => c.json(errorBody("not_found", `no route for ${c.req.method} ${c.req.path}`), 404));
  app.onError((err, c) => {
    if (err instanceof KefuError) {
      return c.json(errorBody(err.kind, err.message, err.data), err.status as 400);
    }
    if (err instanceof HTTPException) {
      return c.json(errorBody("invalid_envelope", err.message), err.status);
    }
    log.error("http_failed", {
      method: c.req.method,
      path: c.req.path,
      error: String(err),
      stack: (err as Error).stack,
    });
    return c.json(errorBody("internal", "the request could not be handled"), 500);
  });
  return app;
}
