/**
 * The `simulate` sub-command: the simulator's settings from environment
 * variables, and the simulator served with `Deno.serve`.
 *
 * @module
 */

import { ConfigError, readChoice, readInt, readLogLevel } from "../config/config.ts";
import { readAesKey } from "../channels/wx_official/config.ts";
import type { Logger, LogLevel } from "../core/log.ts";
import { createSimulator, type Simulator } from "./phone.ts";
import type { WebhookMode } from "./webhook_sender.ts";

/** The simulator's settings. Secrets (appSecret, token, encodingAesKey) are never logged. */
export interface SimulatorConfig {
  appId: string;
  appSecret: string;
  token: string;
  /** "" for plaintext mode. */
  encodingAesKey: string;
  mode: WebhookMode;
  port: number;
  host: string;
  webhookUrl: string;
  /** The account's original id (`gh_…`), the ToUserName of every message. */
  accountId: string;
  timeoutMs: number;
  logLevel: LogLevel;
}

/** A running simulator. */
export interface RunningSimulator {
  port: number;
  /** The phone page's address. */
  url: string;
  simulator: Simulator;
  /** Cancel sends in flight, close phone pages, stop listening. Idempotent. */
  shutdown(): Promise<void>;
}

const DEFAULT_STATIC_DIR = `${import.meta.dirname}/../../static`;

function read(env: Record<string, string | undefined>, name: string): string {
  return env[name]?.trim() ?? "";
}

/** Read the simulator's settings from an environment (`Deno.env.toObject()`); throws `ConfigError` naming the variable. */
export function parseSimulatorConfig(env: Record<string, string | undefined>): SimulatorConfig {
  const token = read(env, "WECHAT_TOKEN");
  if (token === "") {
    throw new ConfigError(
      "cannot start the simulator: WECHAT_TOKEN is required (the Token kefu checks signatures with)",
    );
  }
  const appId = read(env, "WECHAT_APPID");
  const key = readAesKey(env.WECHAT_ENCODING_AES_KEY, "WECHAT_ENCODING_AES_KEY");
  const modes = ["plaintext", "compatible", "safe"] as const;
  const rawMode = readChoice(env.SIM_MODE, "SIM_MODE", modes, key === "" ? "plaintext" : "safe");
  if (rawMode !== "plaintext" && key === "") {
    throw new ConfigError(`cannot use SIM_MODE=${rawMode}: WECHAT_ENCODING_AES_KEY is required for it`);
  }
  if (key !== "" && appId === "") {
    throw new ConfigError(
      "cannot use WECHAT_ENCODING_AES_KEY: WECHAT_APPID is required too (it is inside every message)",
    );
  }
  const webhookUrl = read(env, "SIM_WEBHOOK_URL") || "http://127.0.0.1:1234/wechat";
  let url: URL | undefined;
  try {
    url = new URL(webhookUrl);
  } catch { /* answered below */ }
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
    throw new ConfigError(`cannot read SIM_WEBHOOK_URL=${JSON.stringify(webhookUrl)}: expected an http(s) URL`);
  }
  const accountId = read(env, "SIM_ACCOUNT_ID") || "gh_kefu_simulator";
  if (!/^[\w-]{1,64}$/.test(accountId)) {
    throw new ConfigError(
      `cannot read SIM_ACCOUNT_ID=${JSON.stringify(accountId)}: expected 1–64 letters, digits, _ or - (e.g. gh_…)`,
    );
  }
  const level = readLogLevel(env);
  return {
    appId,
    appSecret: read(env, "WECHAT_APPSECRET"),
    token,
    encodingAesKey: key,
    mode: rawMode,
    port: readInt(env, "SIM_PORT", 9000, 0, 65535),
    host: read(env, "SIM_HOST") || "127.0.0.1",
    webhookUrl,
    accountId,
    timeoutMs: readInt(env, "SIM_TIMEOUT_MS", 5000, 1, 60_000),
    logLevel: level,
  };
}

function origin(host: string, port: number): string {
  return `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** Serve the simulator; `staticDir` holds `phone/` (main.ts passes its own `static`). */
export function startSimulator(config: SimulatorConfig, log: Logger, staticDir = DEFAULT_STATIC_DIR): RunningSimulator {
  const simulator = createSimulator({ ...config, staticDir, log });
  const server = Deno.serve({
    port: config.port,
    hostname: config.host,
    onListen: ({ hostname, port }) =>
      log.info("simulator_listening", {
        phone: `${origin(hostname, port)}/phone/`,
        api_base: origin(hostname, port),
        webhook: config.webhookUrl,
        account: config.accountId,
        appid: config.appId,
        mode: config.mode,
        timeout_ms: config.timeoutMs,
      }),
  }, simulator.app.fetch);
  let stopping: Promise<void> | undefined;
  return {
    port: server.addr.port,
    url: `${origin(config.host, server.addr.port)}/phone/`,
    simulator,
    shutdown() {
      stopping ??= (async () => {
        simulator.close();
        // Let the close frames go out before Deno.serve closes what is left.
        await new Promise((resolve) => setTimeout(resolve, 0));
        await server.shutdown();
        log.info("simulator_stopped", {});
      })();
      return stopping;
    },
  };
}
