/**
 * A client of the PC hook's HTTP API: every call is `POST {apiUrl}` with a
 * JSON body whose `type` names the call. Answers come in two shapes, both
 * read: `{"data":{"status","desc",…}}` (the seed's) and the same wrapped with
 * `{"error_code":10000,"description":…}`. `error_code` other than 10000 (or 0),
 * or `data.status` other than 0, is a failure that names the call and quotes
 * what the hook said.
 *
 * @module
 */

import { KefuError, quote } from "../../core/errors.ts";
import { parseHookJson } from "./codec.ts";

type Obj = Record<string, unknown>;

/** One registered message processor (type 1003's `data.data[]`). */
export interface HookCallback {
  cookie: string;
  url: string;
  protocol?: number;
}

/** Options of {@link HookApi}. */
export interface HookApiOptions {
  /** The hook's name, in error messages. */
  name: string;
  timeoutMs: number;
  /** Sent as `secretKey` in every call when the hook has one; never logged. */
  secretKey?: string;
}

// The vendor's error_code table (doc/错误代码.md).
const ERROR_CODES: Record<number, string> = {
  10001: "the hook could not read the JSON",
  10002: "a required parameter is missing",
  10003: "the hook does not know this call type",
  10004: "the hook's licence has expired",
};

/** The hook's call types kefu uses. */
export const HookCall = { addCallback: 1001, removeCallback: 1002, listCallbacks: 1003, self: 28 } as const;

// A number as it is, anything else quoted (a string code is not mistaken for a number).
function show(v: unknown): string {
  return typeof v === "number" ? String(v) : quote(v);
}

function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The HTTP API of one hook. */
export class HookApi {
  readonly url: string;
  readonly #options: HookApiOptions;

  constructor(url: string, options: HookApiOptions) {
    this.url = url;
    this.#options = options;
  }

  /**
   * Call the API with `body` and answer its `data` (`{}` when there is none). `action` says what kefu was doing
   * ("register the callback", "send the reply to wxid_…") for the error, a `KefuError` `hook_unreachable` (no
   * answer) or `hook_api_error` (an error answer).
   */
  async call(body: Obj, action: string, signal?: AbortSignal): Promise<Obj> {
    const where = `the PC hook ${quote(this.#options.name)} at ${this.url}`;
    const { secretKey, timeoutMs } = this.#options;
    const timeout = AbortSignal.timeout(timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(secretKey === undefined ? body : { ...body, secretKey }),
        signal: signal === undefined ? timeout : AbortSignal.any([timeout, signal]),
      });
      text = await res.text();
    } catch (e) {
      const why = timeout.aborted ? `no answer within ${timeoutMs} ms` : (e as Error).message;
      throw new KefuError("hook_unreachable", `cannot ${action}: ${where} did not answer (${why})`, 502, {
        hook: this.#options.name,
      });
    }
    const fail = (what: string, data: Obj = {}) =>
      new KefuError("hook_api_error", `cannot ${action}: ${where} ${what}`, 502, { hook: this.#options.name, ...data });
    if (!res.ok) throw fail(`answered HTTP ${res.status} ${quote(text)}`, { status: res.status });
    let answer: unknown;
    try {
      answer = parseHookJson(text);
    } catch {
      throw fail(`answered something that is not JSON: ${quote(text)}`);
    }
    if (!isObject(answer)) throw fail(`answered ${quote(text)}, not a JSON object`);
    const code = answer.error_code;
    if (code !== undefined && code !== null && code !== 10000 && code !== 0) {
      const known = typeof code === "number" ? ERROR_CODES[code] : undefined;
      const desc = typeof answer.description === "string" && answer.description !== ""
        ? ` ${quote(answer.description)}`
        : "";
      throw fail(`answered error_code ${show(code)}${desc}${known ? ` (${known})` : ""}`, { error_code: code });
    }
    const data = isObject(answer.data) ? answer.data : {};
    const status = data.status;
    if (status !== undefined && status !== null && status !== 0 && status !== "0") {
      const desc = typeof data.desc === "string" && data.desc !== "" ? ` ${quote(data.desc)}` : "";
      throw fail(`answered status ${show(status)}${desc}`, { hook_status: status });
    }
    return data;
  }

  /** The registered message processors (type 1003); `data.data` is the list. */
  async listCallbacks(signal?: AbortSignal): Promise<HookCallback[]> {
    const data = await this.call({ type: HookCall.listCallbacks }, "list the hook's callbacks", signal);
    const list = Array.isArray(data.data) ? data.data : [];
    return list.filter(isObject).map((c) => ({
      cookie: typeof c.cookie === "string" ? c.cookie : String(c.cookie ?? ""),
      url: typeof c.url === "string" ? c.url : "",
      protocol: typeof c.protocol === "number" ? c.protocol : undefined,
    }));
  }

  /** Remove a message processor by its cookie (type 1002). */
  async removeCallback(cookie: string, signal?: AbortSignal): Promise<void> {
    await this.call({ type: HookCall.removeCallback, cookie }, `remove the hook's callback ${quote(cookie)}`, signal);
  }

  /**
   * Register a WebSocket message processor (type 1001, protocol 3); answers its cookie. `shown` is the URL as
   * errors name it (without its token).
   */
  async addCallback(url: string, signal?: AbortSignal, shown = url): Promise<string> {
    const action = `register the callback ${quote(shown)}`;
    const data = await this.call({ type: HookCall.addCallback, protocol: 3, url }, action, signal);
    const cookie = typeof data.cookie === "string" ? data.cookie : String(data.cookie ?? "");
    // Without a cookie kefu could never remove it again (S2 treats this as a failure too).
    if (cookie === "") {
      throw new KefuError("hook_api_error", `cannot ${action}: the PC hook answered no cookie`, 502, {
        hook: this.#options.name,
      });
    }
    return cookie;
  }

  /** The logged-in account's wxid (type 28, `data.data.userName`); undefined when the hook names none. */
  async self(signal?: AbortSignal): Promise<string | undefined> {
    const data = await this.call({ type: HookCall.self }, "ask the hook which account is logged in", signal);
    const me = isObject(data.data) ? data.data.userName : undefined;
    return typeof me === "string" && me.trim() !== "" ? me.trim() : undefined;
  }
}
