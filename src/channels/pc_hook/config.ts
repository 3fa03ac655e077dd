/**
 * The PC-hook channel's settings: environment variables for the one-hook case
 * (`HOOK_API_URL`, `HOOK_CALLBACK_URL`, …) and the `pc_hook` section of
 * CONFIG_FILE for several hooks (one per logged-in WeChat, each with its own
 * API port). Every bad value stops the start with a `ConfigError` naming it.
 *
 * @module
 */

import {
  ConfigError,
  isObject,
  readChoice,
  readInt,
  readOpen,
  readSecret,
  refuseUnknownKeys,
} from "../../config/config.ts";

/** One hook: a WeChat PC client with the hook injected, and its HTTP API. */
export interface HookEndpoint {
  /** Short name: in logs, `/healthz`, and the callback path `{path}/{name}` of a hook from CONFIG_FILE. */
  name: string;
  /** The hook's HTTP API, `POST`ed with `{"type":N,…}`; the seed's `http://127.0.0.1:8888/api/`. */
  apiUrl: string;
  /** The `ws://` URL registered with the hook (type 1001), without the token: where the hook dials kefu. */
  callbackUrl: string;
  /** The logged-in account's wxid when known beforehand; otherwise asked (type 28) or read from pushes. */
  wxid?: string;
  /** The hook's API secret (`secretKey` in every call) when one is set on it; never logged. */
  secretKey?: string;
}

/** The names and numbers of the hook's send calls (the research's defaults; see docs/configuration.md, PC hook). */
export interface HookSendCalls {
  textType: number;
  imageType: number;
  fileType: number;
  /** The receiver's field: a wxid or a `…@chatroom`. */
  userField: string;
  /** The text's field. */
  contentField: string;
  /** The field of a file path on the hook's own PC (images and files). */
  pathField: string;
}

/** Options of the PC-hook channel. */
export interface PcHookOptions {
  hooks: HookEndpoint[];
  /** The path of kefu's port the hooks dial; `{path}/{name}` names the hook. */
  path: string;
  send: HookSendCalls;
  /**
   * `HOOK_CALLBACK_TOKEN`: registered as `?token=…` on every callback URL, and required of every hook that dials
   * kefu; undefined: the callback socket is open to whoever reaches kefu's port. Never logged.
   */
  callbackToken?: string;
  /** `HOOK_OPEN=1`: with sign-in on and no callback token, the callback socket is left open on purpose (logged). */
  open?: boolean;
  /** false: the callbacks are set by hand (e.g. `wsCallbackUrl` in the hook's wechatAPI.json); kefu only serves. */
  register: boolean;
  /** Protocol pings on the callback socket, as the seed's server (`ping_interval=5`). */
  pingSeconds: number;
  /** Longest wait for one API call. */
  timeoutMs: number;
  /** How often a registered callback is checked to still be there (a restarted hook forgets it). */
  checkMs: number;
  /** First wait before registering again after the API failed; doubles up to `retryMaxMs`. */
  retryMinMs: number;
  retryMaxMs: number;
}

/** Defaults, as docs/configuration.md's PC hook table lists them. */
export const PC_HOOK_DEFAULTS = {
  apiUrl: "http://127.0.0.1:8888/api/",
  path: "/pc_hook/ws",
  send: {
    textType: 10009,
    imageType: 10010,
    fileType: 10012,
    userField: "userName",
    contentField: "msgContent",
    pathField: "filePath",
  } as HookSendCalls,
  pingSeconds: 5,
  timeoutMs: 10_000,
  checkSeconds: 30,
  retryMinMs: 1_000,
  retryMaxSeconds: 60,
} as const;

/** The keys the CONFIG_FILE section knows; any other is refused. */
export const PC_HOOK_KEYS = [
  "path",
  "callback_url",
  "callback_token",
  "register",
  "send",
  "ping_seconds",
  "timeout_ms",
  "check_seconds",
  "retry_max_seconds",
  "hooks",
] as const;
/** The keys of one hook in CONFIG_FILE. */
export const HOOK_KEYS = ["name", "api_url", "callback_url", "wxid", "secret_key"] as const;
/** The keys of `send` in CONFIG_FILE. */
export const SEND_KEYS = [
  "text_type",
  "image_type",
  "file_type",
  "user_field",
  "content_field",
  "path_field",
] as const;

type Env = Record<string, string | undefined>;
type Obj = Record<string, unknown>;

/** A `http(s)://` or `ws(s)://` URL (as `protocols` says); throws `ConfigError` naming `where`. */
function readUrl(raw: string, where: string, protocols: string[]): string {
  let url: URL | undefined;
  try {
    url = new URL(raw.trim());
  } catch { /* answered below */ }
  if (url === undefined || !protocols.includes(url.protocol)) {
    const want = protocols.map((p) => `${p}//`).join(" or ");
    throw new ConfigError(`cannot read ${where}=${JSON.stringify(raw)}: expected a ${want} URL`);
  }
  return url.href;
}

function fileString(obj: Obj, key: string, where: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new ConfigError(`cannot read ${where}.${key}: expected a string`);
  return v.trim() === "" ? undefined : v.trim();
}

function fileInt(obj: Obj, key: string, where: string, min: number, max: number): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
    throw new ConfigError(
      `cannot read ${where}.${key}=${JSON.stringify(v)}: expected an integer from ${min} to ${max}`,
    );
  }
  return v as number;
}

// A JSON field name the hook's API reads: letters, digits and _ only, so it cannot be mistaken for anything else.
function fieldName(raw: string | undefined, where: string, fallback: string): string {
  if (raw === undefined || raw.trim() === "") return fallback;
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(raw.trim())) {
    throw new ConfigError(
      `cannot read ${where}=${JSON.stringify(raw)}: expected a JSON field name (letters, digits, _)`,
    );
  }
  return raw.trim();
}

function envInt(env: Env, name: string, file: number | undefined, fallback: number, min: number, max: number): number {
  return readInt(env, name, file ?? fallback, min, max);
}

/**
 * The PC-hook channel's options from the environment and CONFIG_FILE's `pc_hook` section (`fileSection`,
 * undefined when absent); undefined when neither turns the channel on. `HOOK_API_URL` or `HOOK_CALLBACK_URL`
 * adds the hook of the environment (named `default`); `PORT` gives the default callback URL's port.
 */
export function parsePcHookConfig(env: Env, fileSection?: unknown): PcHookOptions | undefined {
  const envOn = (env.HOOK_API_URL?.trim() ?? "") !== "" || (env.HOOK_CALLBACK_URL?.trim() ?? "") !== "";
  if (!envOn && fileSection === undefined) return undefined;
  const where = "CONFIG_FILE pc_hook";
  const file: Obj = fileSection === undefined ? {} : isObject(fileSection) ? fileSection : (() => {
    throw new ConfigError(`cannot read ${where}: expected an object {"hooks":[{"api_url":…}],…}`);
  })();
  refuseUnknownKeys(file, PC_HOOK_KEYS, where);

  const port = readInt(env, "PORT", 1234, 0, 65535);
  const envCallback = env.HOOK_CALLBACK_URL?.trim()
    ? readUrl(env.HOOK_CALLBACK_URL, "HOOK_CALLBACK_URL", ["ws:", "wss:"])
    : undefined;
  const filePath = fileString(file, "path", where);
  const rawPath = env.HOOK_CALLBACK_PATH?.trim() || filePath ||
    (envCallback ? new URL(envCallback).pathname : PC_HOOK_DEFAULTS.path);
  if (!/^\/[\w\-./]*$/.test(rawPath) || rawPath.includes("//") || rawPath.includes("/../")) {
    throw new ConfigError(
      `cannot read the callback path ${JSON.stringify(rawPath)} (HOOK_CALLBACK_PATH or ${where}.path): ` +
        `expected a path like /pc_hook/ws`,
    );
  }
  const path = rawPath.replace(/\/+$/, "");
  if (path === "") {
    throw new ConfigError(
      `cannot serve the PC hook's callback on "/" (HOOK_CALLBACK_PATH or ${where}.path): the agent page is there`,
    );
  }
  const baseCallback = fileString(file, "callback_url", where);
  const callbackBase = baseCallback
    ? readUrl(baseCallback, `${where}.callback_url`, ["ws:", "wss:"]).replace(/\/+$/, "")
    : `ws://127.0.0.1:${port}${path}`;

  const hooks: HookEndpoint[] = [];
  if (envOn) {
    hooks.push({
      name: "default",
      apiUrl: readUrl(env.HOOK_API_URL?.trim() || PC_HOOK_DEFAULTS.apiUrl, "HOOK_API_URL", ["http:", "https:"]),
      callbackUrl: envCallback ?? callbackBase,
      wxid: env.HOOK_WXID?.trim() || undefined,
      secretKey: env.HOOK_SECRET_KEY?.trim() || undefined,
    });
  }
  const list = file.hooks ?? [];
  if (!Array.isArray(list)) throw new ConfigError(`cannot read ${where}.hooks: expected a list [{"api_url":…},…]`);
  list.forEach((h, i) => {
    const at = `${where}.hooks[${i}]`;
    if (!isObject(h)) throw new ConfigError(`cannot read ${at}: expected an object {"name","api_url",…}`);
    refuseUnknownKeys(h, HOOK_KEYS, at);
    const name = fileString(h, "name", at) ?? `hook${i + 1}`;
    if (!/^[\w-]{1,64}$/.test(name)) {
      throw new ConfigError(`cannot read ${at}.name=${JSON.stringify(name)}: expected 1–64 letters, digits, _ or -`);
    }
    const api = fileString(h, "api_url", at);
    if (api === undefined) throw new ConfigError(`cannot read ${at}: api_url is required (the hook's HTTP API)`);
    const cb = fileString(h, "callback_url", at);
    hooks.push({
      name,
      apiUrl: readUrl(api, `${at}.api_url`, ["http:", "https:"]),
      callbackUrl: cb ? readUrl(cb, `${at}.callback_url`, ["ws:", "wss:"]) : `${callbackBase}/${name}`,
      wxid: fileString(h, "wxid", at),
      secretKey: fileString(h, "secret_key", at),
    });
  });
  if (hooks.length === 0) throw new ConfigError(`cannot read ${where}: no hook: list at least one in "hooks"`);
  const names = new Set<string>();
  const urls = new Set<string>();
  for (const h of hooks) {
    if (names.has(h.name)) throw new ConfigError(`cannot configure two PC hooks named ${JSON.stringify(h.name)}`);
    // The callback URL tells kefu which hook a socket is, and which registrations are its own.
    if (urls.has(h.callbackUrl)) {
      throw new ConfigError(`cannot configure two PC hooks with the callback URL ${JSON.stringify(h.callbackUrl)}`);
    }
    names.add(h.name);
    urls.add(h.callbackUrl);
  }

  const sendSection = file.send ?? {};
  if (!isObject(sendSection)) throw new ConfigError(`cannot read ${where}.send: expected an object {"text_type":…}`);
  refuseUnknownKeys(sendSection, SEND_KEYS, `${where}.send`);
  const d = PC_HOOK_DEFAULTS.send;
  const type = (name: string, key: string, fallback: number) =>
    envInt(env, name, fileInt(sendSection, key, `${where}.send`, 0, 1_000_000), fallback, 0, 1_000_000);
  const field = (name: string, key: string, fallback: string) =>
    fieldName(
      env[name]?.trim() || fileString(sendSection, key, `${where}.send`),
      env[name]?.trim() ? name : `${where}.send.${key}`,
      fallback,
    );
  const registerFile = file.register;
  if (registerFile !== undefined && typeof registerFile !== "boolean") {
    throw new ConfigError(`cannot read ${where}.register: expected true or false`);
  }
  const register = env.HOOK_REGISTER?.trim()
    ? readChoice(env.HOOK_REGISTER, "HOOK_REGISTER", ["on", "off"] as const, "on", true) === "on"
    : registerFile ?? true;
  return {
    hooks,
    path,
    open: readOpen(env.HOOK_OPEN, "HOOK_OPEN"),
    callbackToken: readSecret(
      env.HOOK_CALLBACK_TOKEN?.trim() ? env.HOOK_CALLBACK_TOKEN : fileString(file, "callback_token", where),
      env.HOOK_CALLBACK_TOKEN?.trim() ? "HOOK_CALLBACK_TOKEN" : `${where}.callback_token`,
    ),
    send: {
      textType: type("HOOK_SEND_TEXT_TYPE", "text_type", d.textType),
      imageType: type("HOOK_SEND_IMAGE_TYPE", "image_type", d.imageType),
      fileType: type("HOOK_SEND_FILE_TYPE", "file_type", d.fileType),
      userField: field("HOOK_SEND_USER_FIELD", "user_field", d.userField),
      contentField: field("HOOK_SEND_CONTENT_FIELD", "content_field", d.contentField),
      pathField: field("HOOK_SEND_PATH_FIELD", "path_field", d.pathField),
    },
    register,
    pingSeconds: envInt(
      env,
      "HOOK_PING_SECONDS",
      fileInt(file, "ping_seconds", where, 1, 3600),
      PC_HOOK_DEFAULTS.pingSeconds,
      1,
      3600,
    ),
    timeoutMs: envInt(
      env,
      "HOOK_TIMEOUT_MS",
      fileInt(file, "timeout_ms", where, 100, 120_000),
      PC_HOOK_DEFAULTS.timeoutMs,
      100,
      120_000,
    ),
    checkMs: 1000 * envInt(
      env,
      "HOOK_CHECK_SECONDS",
      fileInt(file, "check_seconds", where, 1, 86400),
      PC_HOOK_DEFAULTS.checkSeconds,
      1,
      86400,
    ),
    retryMinMs: PC_HOOK_DEFAULTS.retryMinMs,
    retryMaxMs: 1000 * envInt(
      env,
      "HOOK_RETRY_MAX_SECONDS",
      fileInt(file, "retry_max_seconds", where, 1, 3600),
      PC_HOOK_DEFAULTS.retryMaxSeconds,
      1,
      3600,
    ),
  };
}
