/**
 * The Official Account channel's settings: one account from the `WECHAT_*` variables (on `/wechat`) and more from
 * the `accounts` section of CONFIG_FILE (each on `/wechat/{appid}`). Every bad value stops the start with a
 * `ConfigError` naming it; no error quotes a secret (AppSecret, Token, EncodingAESKey).
 *
 * @module
 */

import { ConfigError, isObject, readChoice, readInt, refuseUnknownKeys } from "../../config/config.ts";
import { isEncodingAesKey } from "./crypto.ts";

/** One WeChat Official Account. Secrets (appSecret, token, encodingAesKey) are never logged. */
export interface WechatAccount {
  /** AppID; "" for a token-only account (plaintext webhook, no outbound API). */
  appId: string;
  appSecret: string;
  /** The Token set in the account's server configuration (signatures). */
  token: string;
  /** EncodingAESKey (43 characters) for compatible and safe mode; "" for plaintext only. */
  encodingAesKey: string;
  /** WeChat's message encryption mode when set; else safe with an EncodingAESKey, plaintext without. */
  encryptMode?: "plaintext" | "compatible" | "safe";
  /** `company_id` put on this account's messages. */
  companyId: string;
  apiBase: string;
  tokenMode: "token" | "stable_token";
  /** Webhook path: `/wechat` for the account from the environment, `/wechat/{appid}` from CONFIG_FILE. */
  path: string;
  /** Requests whose timestamp is further from now are refused (replays). */
  maxSkewSeconds: number;
  /**
   * A signed `(timestamp, nonce)` pair is taken once (another body under it is a forgery: WeChat's signature does not
   * cover the body); default true. false only for load generators that reuse signed URLs (WeChat never does).
   */
  replayGuard?: boolean;
  /** Passive reply sent when no agent is online to take the message; "" for none. */
  autoReply: string;
  /**
   * `custom`: agents' replies go through the customer-service API (needs AppID and AppSecret);
   * `passive`: WeChat's request is held and the reply goes in its answer (accounts without that API).
   */
  replyMode: "custom" | "passive";
  /** How long a passive-mode request (and WeChat's retries) is held for an agent's reply. */
  passiveHoldMs: number;
  /** How long WeChat waits for one answer before it drops the request and retries (5 s; tests shorten it). */
  passiveAttemptMs: number;
}

/** The variables this channel reads (for `kefu --help` and the near-miss warnings). */
export const WX_OFFICIAL_VARIABLES = [
  "WECHAT_TOKEN",
  "WECHAT_APPID",
  "WECHAT_APPSECRET",
  "WECHAT_ENCODING_AES_KEY",
  "WECHAT_COMPANY_ID",
  "WECHAT_API_BASE",
  "WECHAT_TOKEN_MODE",
  "WECHAT_MAX_SKEW_SECONDS",
  "WECHAT_REPLAY_GUARD",
  "WECHAT_AUTO_REPLY",
  "WECHAT_REPLY_MODE",
  "WECHAT_PASSIVE_HOLD_MS",
  "WECHAT_PASSIVE_ATTEMPT_MS",
  "WECHAT_ENCRYPT_MODE",
] as const;

/** The id kefu gives an account: its AppID, or its webhook path for a token-only account. */
export function accountId(a: WechatAccount): string {
  return a.appId || a.path;
}

/** What the start log says about one account: where its webhook is and how it works, never a secret. */
export interface AccountSummary {
  /** {@link accountId}: the AppID, or the webhook path of a token-only account. */
  account: string;
  path: string;
  /** WeChat's message encryption mode: plaintext, compatible (both) or safe (encrypted only). */
  mode: "plaintext" | "compatible" | "safe";
  reply_mode: WechatAccount["replyMode"];
}

/** The active accounts and their webhook paths, for the start log. */
export function describeAccounts(accounts: readonly WechatAccount[]): AccountSummary[] {
  return accounts.map((a) => ({
    account: accountId(a),
    path: a.path,
    mode: encryptModeOf(a),
    reply_mode: a.replyMode,
  }));
}

const API_BASE = "https://api.weixin.qq.com";
const TOKEN_MODES = ["token", "stable_token"] as const;
const REPLY_MODES = ["custom", "passive"] as const;
const ENCRYPT_MODES = ["plaintext", "compatible", "safe"] as const;

/** An account's encryption mode: as set, else safe with an EncodingAESKey (plaintext posts refused), else plaintext. */
export function encryptModeOf(a: WechatAccount): "plaintext" | "compatible" | "safe" {
  return a.encryptMode ?? (a.encodingAesKey === "" ? "plaintext" : "safe");
}

// WECHAT_ENCRYPT_MODE / encrypt_mode: undefined when unset (the default follows the key).
function readEncryptMode(value: string | undefined, where: string): WechatAccount["encryptMode"] {
  return value?.trim() ? readChoice(value, where, ENCRYPT_MODES, "safe") : undefined;
}

/** The keys CONFIG_FILE knows in each account; any other key is refused. */
export const ACCOUNT_KEYS = [
  "appid",
  "appsecret",
  "token",
  "encoding_aes_key",
  "company_id",
  "api_base",
  "token_mode",
  "max_skew_seconds",
  "replay_guard",
  "auto_reply",
  "reply_mode",
  "passive_hold_ms",
  "path",
  "encrypt_mode",
] as const;

/** An EncodingAESKey (43 letters and digits) or ""; the error never quotes the key, a secret. */
export function readAesKey(value: string | undefined, where: string): string {
  const v = value?.trim() ?? "";
  // The key itself is never quoted: it is a secret.
  if (v !== "" && !isEncodingAesKey(v)) {
    throw new ConfigError(
      `cannot read ${where}: an EncodingAESKey is 43 letters and digits (got ${v.length} characters)`,
    );
  }
  return v;
}

/**
 * The Official Accounts from the environment (`WECHAT_TOKEN` turns the one on `/wechat` on) and CONFIG_FILE's
 * `accounts` section (`section`, as parsed; undefined when absent). Throws `ConfigError` naming the variable or the
 * place in the file.
 */
export function parseWxOfficialConfig(env: Record<string, string | undefined>, section?: unknown): WechatAccount[] {
  if (section !== undefined && !Array.isArray(section)) {
    throw new ConfigError(`cannot read CONFIG_FILE accounts: expected a list [{"appid":…,"token":…},…]`);
  }
  const accounts = accountsFromFile(section ?? []);
  if (env.WECHAT_TOKEN) accounts.unshift(accountFromEnv(env));
  const paths = new Set<string>();
  for (const a of accounts) {
    if (a.encodingAesKey !== "" && a.appId === "") {
      throw new ConfigError(`cannot use the EncodingAESKey of the account on ${a.path}: its AppID is required too`);
    }
    if (paths.has(a.path)) throw new ConfigError(`cannot configure two accounts on the webhook path ${a.path}`);
    if (a.encryptMode !== undefined && a.encryptMode !== "plaintext" && a.encodingAesKey === "") {
      throw new ConfigError(
        `cannot use ${a.encryptMode} mode for the account on ${a.path}: it needs the account's EncodingAESKey`,
      );
    }
    paths.add(a.path);
  }
  return accounts;
}

function accountFromEnv(env: Record<string, string | undefined>): WechatAccount {
  return {
    appId: env.WECHAT_APPID?.trim() ?? "",
    appSecret: env.WECHAT_APPSECRET?.trim() ?? "",
    token: env.WECHAT_TOKEN!.trim(),
    encodingAesKey: readAesKey(env.WECHAT_ENCODING_AES_KEY, "WECHAT_ENCODING_AES_KEY"),
    encryptMode: readEncryptMode(env.WECHAT_ENCRYPT_MODE, "WECHAT_ENCRYPT_MODE"),
    companyId: env.WECHAT_COMPANY_ID?.trim() ?? "",
    apiBase: (env.WECHAT_API_BASE?.trim() || API_BASE).replace(/\/+$/, ""),
    tokenMode: readChoice(env.WECHAT_TOKEN_MODE, "WECHAT_TOKEN_MODE", TOKEN_MODES, "token"),
    path: "/wechat",
    maxSkewSeconds: readInt(env, "WECHAT_MAX_SKEW_SECONDS", 300, 1, 86400 * 365 * 100),
    replayGuard: readChoice(env.WECHAT_REPLAY_GUARD, "WECHAT_REPLAY_GUARD", ON_OFF, "on") === "on",
    autoReply: env.WECHAT_AUTO_REPLY ?? "",
    replyMode: readChoice(env.WECHAT_REPLY_MODE, "WECHAT_REPLY_MODE", REPLY_MODES, "custom"),
    passiveHoldMs: readInt(env, "WECHAT_PASSIVE_HOLD_MS", 14_000, 100, 60_000),
    passiveAttemptMs: readInt(env, "WECHAT_PASSIVE_ATTEMPT_MS", 4_500, 50, 60_000),
  };
}

const ON_OFF = ["on", "off"] as const;

function readGuard(v: unknown, where: string): boolean {
  if (v === undefined || v === null) return true;
  if (typeof v !== "boolean") {
    throw new ConfigError(`cannot read ${where}: expected true or false, got ${JSON.stringify(v)}`);
  }
  return v;
}

function accountsFromFile(list: unknown[]): WechatAccount[] {
  return list.map((a, i) => {
    const where = `CONFIG_FILE accounts[${i}]`;
    if (!isObject(a)) throw new ConfigError(`cannot read ${where}: expected an object {"appid":…,"token":…}`);
    refuseUnknownKeys(a, ACCOUNT_KEYS, where);
    const str = (key: string): string => {
      const v = a[key];
      if (v === undefined || v === null) return "";
      if (typeof v !== "string") throw new ConfigError(`cannot read ${where}.${key}: expected a string`);
      return v.trim();
    };
    const appId = str("appid");
    const token = str("token");
    if (appId === "" || token === "") throw new ConfigError(`cannot read ${where}: appid and token are required`);
    const skew = a.max_skew_seconds ?? 300;
    const hold = a.passive_hold_ms ?? 14_000;
    if (!Number.isInteger(hold) || (hold as number) < 100 || (hold as number) > 60_000) {
      throw new ConfigError(`cannot read ${where}.passive_hold_ms: expected an integer from 100 to 60000`);
    }
    if (!Number.isInteger(skew) || (skew as number) < 1) {
      throw new ConfigError(`cannot read ${where}.max_skew_seconds: expected a positive integer`);
    }
    return {
      appId,
      appSecret: str("appsecret"),
      token,
      encodingAesKey: readAesKey(str("encoding_aes_key"), `${where}.encoding_aes_key`),
      encryptMode: readEncryptMode(str("encrypt_mode"), `${where}.encrypt_mode`),
      companyId: str("company_id"),
      apiBase: (str("api_base") || API_BASE).replace(/\/+$/, ""),
      tokenMode: readChoice(str("token_mode"), `${where}.token_mode`, TOKEN_MODES, "token"),
      path: str("path") || `/wechat/${appId}`,
      maxSkewSeconds: skew as number,
      replayGuard: readGuard(a.replay_guard, `${where}.replay_guard`),
      autoReply: str("auto_reply"),
      replyMode: readChoice(str("reply_mode"), `${where}.reply_mode`, REPLY_MODES, "custom"),
      passiveHoldMs: hold as number,
      passiveAttemptMs: 4_500,
    };
  });
}
