/**
 * The WXBot channel's settings: from environment variables (one WeChat
 * account) and from the `wxbot` section of CONFIG_FILE (several accounts under
 * one platform key). A variable wins over the file's value; the accounts of
 * both are used. The key and the tokens are secrets: no error quotes them.
 *
 * @module
 */

import { ConfigError, isObject, readChoice, refuseUnknownKeys } from "../../config/config.ts";
import { MAX_ID_LENGTH } from "../../core/message.ts";

/** The seed's WebSocket address. */
export const DEFAULT_WS_URL = "ws://api.whosecard.com:19095";
/** The seed's HTTP API host (its examples POST to `https://api.whosecard.com/wxapi/pc/message/…`). */
export const DEFAULT_API_BASE = "https://api.whosecard.com";
/** The seed's text endpoint. */
export const TEXT_PATH = "/wxapi/pc/message/sendText";
/** The seed's image endpoint. */
export const IMAGE_PATH = "/wxapi/pc/message/sendImage";
/**
 * Voice: the seed's example POSTs to `sendText`, which looks like a slip copied from the text example (its body has
 * no `Content`); kefu follows the naming of the two endpoints the seed does give. Configurable: WXBOT_VOICE_PATH.
 */
export const DEFAULT_VOICE_PATH = "/wxapi/pc/message/sendVoice";
/** Video: the same slip as voice in the seed; configurable: WXBOT_VIDEO_PATH. */
export const DEFAULT_VIDEO_PATH = "/wxapi/pc/message/sendVideo";

/**
 * How a picture is written in `Base64Image` and `ImageFileBase64`: `seed` as the seed's example
 * (`data:base64;image/png,…`), `data_uri` the standard form (`data:image/png;base64,…`), `raw` base64 alone.
 */
export type ImageFormat = "seed" | "data_uri" | "raw";
const IMAGE_FORMATS = ["seed", "data_uri", "raw"] as const;

/** One WeChat account logged in on the platform: its wxid and the Token of the device slot it is bound to. */
export interface WxbotAccount {
  wxid: string;
  /** The platform Token that sends as this account (a secret). */
  token: string;
  /** `company_id` put on this account's messages. */
  companyId: string;
}

/** The WXBot channel's settings. */
export interface WxbotConfig {
  /** WXBOT_WS_URL: where messages are synced from. */
  wsUrl: string;
  /** WXBOT_KEY: the platform account key (not a Token); it signs in the socket and every API call. */
  key: string;
  /** WXBOT_API_BASE: the HTTP API's origin (and path prefix, if any). */
  apiBase: string;
  accounts: WxbotAccount[];
  /** Wait before connecting again after the socket dropped (the seed's loop sleeps 10 s); up to 20% is added. */
  reconnectMs: number;
  /** A socket that has not answered the auth packet by then is dropped (and connected again). */
  authTimeoutMs: number;
  /** One API call's timeout (the seed recommends 30 s: shorter ones abort calls the platform still carries out). */
  timeoutMs: number;
  /** Retries of a call answered `cost:false` with retCode 1000 or 1003; 0: none. */
  maxRetries: number;
  /** Each retry waits a random time from retryMinMs to retryMaxMs (the seed: 1–3 s). */
  retryMinMs: number;
  retryMaxMs: number;
  voicePath: string;
  videoPath: string;
  imageFormat: ImageFormat;
}

/** Defaults of the settings that have one. */
export const WXBOT_DEFAULTS = {
  reconnectMs: 10_000,
  authTimeoutMs: 30_000,
  timeoutMs: 30_000,
  maxRetries: 3,
  retryMinMs: 1_000,
  retryMaxMs: 3_000,
  imageFormat: "seed" as ImageFormat,
};

/** The keys of CONFIG_FILE's `wxbot` section; any other key is refused. */
export const WXBOT_FILE_KEYS = [
  "key",
  "ws_url",
  "api_base",
  "accounts",
  "reconnect_ms",
  "auth_timeout_ms",
  "timeout_ms",
  "max_retries",
  "retry_min_ms",
  "retry_max_ms",
  "voice_path",
  "video_path",
  "image_format",
] as const;
/** The keys of each of its `accounts`. */
export const WXBOT_ACCOUNT_KEYS = ["wxid", "token", "company_id"] as const;

type Env = Record<string, string | undefined>;
type Obj = Record<string, unknown>;

// A setting from its variable when set, else from the file section; "" when neither has it.
function text(env: Env, name: string, file: Obj, key: string, where: string): { value: string; from: string } {
  const v = env[name];
  if (v !== undefined && v.trim() !== "") return { value: v.trim(), from: name };
  const f = file[key];
  if (f === undefined || f === null) return { value: "", from: `${where}.${key}` };
  if (typeof f !== "string") throw new ConfigError(`cannot read ${where}.${key}: expected a string`);
  return { value: f.trim(), from: `${where}.${key}` };
}

function int(
  env: Env,
  name: string,
  file: Obj,
  key: string,
  where: string,
  fallback: number,
  min: number,
  max: number,
) {
  const raw = env[name];
  let n: unknown = fallback;
  let from = name;
  if (raw !== undefined && raw.trim() !== "") n = Number(raw.trim());
  else if (file[key] !== undefined) [n, from] = [file[key], `${where}.${key}`];
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    const shown = from === name ? JSON.stringify(raw) : JSON.stringify(file[key]);
    throw new ConfigError(`cannot read ${from}=${shown}: expected an integer from ${min} to ${max}`);
  }
  return n;
}

function url(value: string, from: string, protocols: readonly string[], fallback: string): string {
  if (value === "") return fallback;
  let u: URL | undefined;
  try {
    u = new URL(value);
  } catch { /* answered below */ }
  if (u === undefined || !protocols.includes(u.protocol)) {
    const kinds = protocols.map((p) => `${p}//`).join(" or ");
    throw new ConfigError(`cannot read ${from}=${JSON.stringify(value)}: expected a ${kinds} URL`);
  }
  return value.replace(/\/+$/, "");
}

function path(value: string, from: string, fallback: string): string {
  if (value === "") return fallback;
  if (!value.startsWith("/") || /[?#\s]/.test(value)) {
    throw new ConfigError(
      `cannot read ${from}=${JSON.stringify(value)}: expected a path starting with / (e.g. ${fallback})`,
    );
  }
  return value;
}

function account(wxid: string, token: string, companyId: string, where: string): WxbotAccount {
  if (wxid === "" || token === "") throw new ConfigError(`cannot read ${where}: wxid and token are required`);
  if (wxid.length > MAX_ID_LENGTH || /\s/.test(wxid)) {
    throw new ConfigError(
      `cannot read ${where}: ${JSON.stringify(wxid.slice(0, 40))} is not a wxid (no spaces, at most ${MAX_ID_LENGTH})`,
    );
  }
  return { wxid, token, companyId };
}

function accountsOf(env: Env, file: Obj, where: string): WxbotAccount[] {
  const list = file.accounts ?? [];
  if (!Array.isArray(list)) throw new ConfigError(`cannot read ${where}.accounts: expected [{"wxid","token"}, …]`);
  const accounts = list.map((a, i) => {
    const at = `${where}.accounts[${i}]`;
    if (!isObject(a)) throw new ConfigError(`cannot read ${at}: expected {"wxid":…,"token":…}`);
    refuseUnknownKeys(a, WXBOT_ACCOUNT_KEYS, at);
    const s = (key: string) => {
      const v = a[key];
      if (v === undefined || v === null) return "";
      if (typeof v !== "string") throw new ConfigError(`cannot read ${at}.${key}: expected a string`);
      return v.trim();
    };
    return account(s("wxid"), s("token"), s("company_id"), at);
  });
  const wxid = env.WXBOT_WXID?.trim() ?? "";
  const token = env.WXBOT_TOKEN?.trim() ?? "";
  if (wxid !== "" || token !== "") {
    accounts.unshift(account(wxid, token, env.WXBOT_COMPANY_ID?.trim() ?? "", "WXBOT_WXID and WXBOT_TOKEN"));
  }
  const seen = new Set<string>();
  for (const a of accounts) {
    if (seen.has(a.wxid)) throw new ConfigError(`cannot configure the WXBot account ${JSON.stringify(a.wxid)} twice`);
    seen.add(a.wxid);
  }
  return accounts;
}

/**
 * Read the WXBot settings from the environment and CONFIG_FILE's `wxbot` section (`section`, as parsed; undefined
 * when the file has none). Undefined when neither mentions WXBot: the channel is off. Throws `ConfigError` naming
 * the variable or the place in the file.
 */
export function parseWxbotConfig(env: Env, section?: unknown): WxbotConfig | undefined {
  const where = "CONFIG_FILE wxbot";
  if (section !== undefined && !isObject(section)) {
    throw new ConfigError(`cannot read ${where}: expected an object {"key":…,"accounts":[…]}`);
  }
  const file = section ?? {};
  refuseUnknownKeys(file, WXBOT_FILE_KEYS, where);
  const named = Object.keys(env).filter((k) => k.startsWith("WXBOT_") && env[k]?.trim());
  if (section === undefined && named.length === 0) return undefined;
  const key = text(env, "WXBOT_KEY", file, "key", where);
  if (key.value === "") {
    throw new ConfigError(
      `cannot use the WXBot channel: WXBOT_KEY (or ${where}.key) is required, the platform account key ` +
        `(${
          named.length > 0 ? `${named.join(", ")} ${named.length === 1 ? "is" : "are"} set` : "the section is there"
        })`,
    );
  }
  const ws = text(env, "WXBOT_WS_URL", file, "ws_url", where);
  const api = text(env, "WXBOT_API_BASE", file, "api_base", where);
  const voice = text(env, "WXBOT_VOICE_PATH", file, "voice_path", where);
  const video = text(env, "WXBOT_VIDEO_PATH", file, "video_path", where);
  const format = text(env, "WXBOT_IMAGE_FORMAT", file, "image_format", where);
  const n = (name: string, k: string, fallback: number, min: number, max: number) =>
    int(env, name, file, k, where, fallback, min, max);
  const d = WXBOT_DEFAULTS;
  const config: WxbotConfig = {
    wsUrl: url(ws.value, ws.from, ["ws:", "wss:"], DEFAULT_WS_URL),
    key: key.value,
    apiBase: url(api.value, api.from, ["http:", "https:"], DEFAULT_API_BASE),
    accounts: accountsOf(env, file, where),
    reconnectMs: n("WXBOT_RECONNECT_MS", "reconnect_ms", d.reconnectMs, 1, 3_600_000),
    authTimeoutMs: n("WXBOT_AUTH_TIMEOUT_MS", "auth_timeout_ms", d.authTimeoutMs, 1, 600_000),
    timeoutMs: n("WXBOT_TIMEOUT_MS", "timeout_ms", d.timeoutMs, 1, 600_000),
    maxRetries: n("WXBOT_MAX_RETRIES", "max_retries", d.maxRetries, 0, 10),
    retryMinMs: n("WXBOT_RETRY_MIN_MS", "retry_min_ms", d.retryMinMs, 0, 60_000),
    retryMaxMs: n("WXBOT_RETRY_MAX_MS", "retry_max_ms", d.retryMaxMs, 0, 60_000),
    voicePath: path(voice.value, voice.from, DEFAULT_VOICE_PATH),
    videoPath: path(video.value, video.from, DEFAULT_VIDEO_PATH),
    imageFormat: readChoice(format.value, format.from, IMAGE_FORMATS, d.imageFormat),
  };
  if (config.retryMaxMs < config.retryMinMs) {
    throw new ConfigError(
      `cannot use WXBOT_RETRY_MAX_MS=${config.retryMaxMs}: it is below WXBOT_RETRY_MIN_MS=${config.retryMinMs}`,
    );
  }
  return config;
}

/** What the start log and `/healthz` may show of the settings: never the key or a token. */
export function describeWxbot(c: WxbotConfig): Record<string, unknown> {
  return {
    ws_url: c.wsUrl,
    api_base: c.apiBase,
    accounts: c.accounts.map((a) => a.wxid),
    voice_path: c.voicePath,
    video_path: c.videoPath,
    image_format: c.imageFormat,
  };
}
