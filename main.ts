/**
 * kefu: the composition root. Reads the configuration, builds the hub and the
 * application, serves them with `Deno.serve`, and stops cleanly on SIGINT/SIGTERM.
 *
 * @module
 */

import { createApp } from "./src/app.ts";
import { type Config, ConfigError, parseConfig } from "./src/config.ts";
import { Hub } from "./src/hub.ts";
import { createLogger, type Logger } from "./src/log.ts";
import { Outbound } from "./src/outbound.ts";
import { PassiveReplies } from "./src/passive_reply.ts";
import { Close } from "./src/protocol.ts";
import { ReplyWindows } from "./src/reply_window.ts";
import { Uploads } from "./src/uploads.ts";

/** A running service. */
export interface Service {
  /** The port it listens on (useful with `PORT=0`). */
  port: number;
  hub: Hub;
  /** Close agent sockets with 1001, stop the heartbeat, stop listening. Idempotent. */
  shutdown(): Promise<void>;
}

/** Start the service with a configuration; `log` defaults to one made from `config.logLevel`. */
export function start(config: Config, log: Logger = createLogger({ level: config.logLevel })): Service {
  const hub = new Hub({
    maxHeldPerAgent: config.maxHeldPerAgent,
    maxHeldTotal: config.maxHeldTotal,
    maxSocketsPerAgent: config.maxSocketsPerAgent,
    dedupeWindow: config.dedupeWindow,
  });
  const windows = new ReplyWindows();
  const passive = new PassiveReplies();
  const uploads = new Uploads();
  const outbound = new Outbound({ accounts: config.accounts, log, windows, passive, uploads });
  const app = createApp({
    hub,
    log,
    staticDir: `${import.meta.dirname}/static`,
    maxBodyBytes: config.maxBodyBytes,
    maxWsMessageBytes: config.maxWsMessageBytes,
    idleTimeoutSeconds: config.idleTimeoutSeconds,
    accounts: config.accounts,
    outbound,
    windows,
    passive,
    uploads,
  });
  const server = Deno.serve({
    port: config.port,
    hostname: config.host,
    onListen: ({ hostname, port }) => log.info("listening", { host: hostname, port }),
  }, app.fetch);
  const heartbeat = setInterval(() => hub.heartbeat(), config.heartbeatSeconds * 1000);
  // Users whose reply windows have closed are forgotten, so the map stays bounded.
  const sweep = setInterval(() => windows.sweep(), 600_000);

  let stopping: Promise<void> | undefined;
  return {
    port: server.addr.port,
    hub,
    shutdown() {
      stopping ??= (async () => {
        clearInterval(heartbeat);
        clearInterval(sweep);
        passive.close();
        // Replies on their way to WeChat get a moment to finish and be confirmed to their agents.
        await outbound.drain(5_000);
        const { sockets, held } = hub.stats();
        hub.closeAll(Close.goingAway, "server shutting down");
        // Let our close frames go out before Deno.serve closes what is left with its own.
        await new Promise((resolve) => setTimeout(resolve, 0));
        await server.shutdown();
        log.info("stopped", { sockets_closed: sockets, held_lost: held });
      })();
      return stopping;
    },
  };
}

if (import.meta.main) {
  let config: Config;
  try {
    config = parseConfig(Deno.env.toObject());
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    console.error(`kefu: ${e.message}`);
    Deno.exit(2);
  }
  const service = start(config);
  const stop = () => service.shutdown().then(() => Deno.exit(0));
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}
