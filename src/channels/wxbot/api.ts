/**
 * WXBot's HTTP API: `POST {base}{path}?key=…` with a JSON body, answered
 * `{"ok","retCode","cost","result"?,"error"?}`, and the seed's retry rules
 * (its "使用建议"), exactly:
 *
 * - `cost: true`: the call counted; never retried, whatever `ok` says;
 * - `cost: false`: retCode 1000 (internal error) and 1003 (busy) are retried
 *   after 1–3 s, a bounded number of times; 1001, 1002 and 1004 never are;
 * - 30 s timeout: a shorter one can abort a call the platform still carries
 *   out, and a timed-out call is never retried (it may have gone out).
 *
 * Where the seed is silent kefu does not retry, so that nothing goes out
 * twice: an answer without `cost`, an unknown retCode, an answer that is not
 * the envelope, a network error.
 *
 * @module
 */

import { KefuError, quote } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { parseFrame } from "./codec.ts";

/** An answer of the platform. */
export interface ApiAnswer {
  ok: boolean;
  /** undefined when the answer has none. */
  retCode?: number;
  /** undefined when the answer has none. */
  cost?: boolean;
  result?: unknown;
  error?: string;
}

/** What to do with an answer: it went out, try again, or give up. */
export type Verdict = "done" | "retry" | "fail";

/** The seed's retry rules for one answer. */
export function verdict(a: ApiAnswer): Verdict {
  if (a.cost === true) return a.ok ? "done" : "fail";
  if (a.ok) return "done";
  if (a.cost === false && (a.retCode === 1000 || a.retCode === 1003)) return "retry";
  return "fail";
}

/** Options for {@link WxbotApi}. */
export interface WxbotApiOptions {
  /** WXBOT_API_BASE. */
  base: string;
  /** WXBOT_KEY (a secret: never logged). */
  key: string;
  timeoutMs: number;
  maxRetries: number;
  retryMinMs: number;
  retryMaxMs: number;
  log: Logger;
  fetch?: typeof fetch;
  random?: () => number;
}

/** One API client (the platform's key; each call names its Token). */
export class WxbotApi {
  readonly #o: WxbotApiOptions;
  readonly #stop = new AbortController();

  constructor(options: WxbotApiOptions) {
    this.#o = options;
  }

  /**
   * POST `body` to `path` under the rules above; resolves to the answer when it went out (`ok`, or `cost: true`
   * with `ok`). Throws `KefuError` saying what happened and what to do. `what` names the call in messages.
   */
  async call(path: string, body: Record<string, unknown>, what: string): Promise<ApiAnswer> {
    const o = this.#o;
    for (let attempt = 1;; attempt++) {
      const a = await this.#post(path, body, what);
      const v = verdict(a);
      if (v === "done") return a;
      if (v === "fail" || attempt > o.maxRetries) throw refusal(a, what, attempt);
      const wait = o.retryMinMs + Math.floor((o.random ?? Math.random)() * (o.retryMaxMs - o.retryMinMs + 1));
      o.log.warn("wxbot_api_retry", { path, retCode: a.retCode, attempt, wait_ms: wait });
      await this.#sleep(wait, what);
    }
  }

  /** Abort what is under way (calls and waits between retries): kefu is stopping. */
  close(): void {
    this.#stop.abort();
  }

  async #post(path: string, body: Record<string, unknown>, what: string): Promise<ApiAnswer> {
    const o = this.#o;
    const url = `${o.base}${path}?key=${encodeURIComponent(o.key)}`;
    const signal = AbortSignal.any([this.#stop.signal, AbortSignal.timeout(o.timeoutMs)]);
    let res: Response;
    let text: string;
    try {
      res = await (o.fetch ?? fetch)(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal,
      });
      text = await res.text();
    } catch (e) {
      if (this.#stop.signal.aborted) throw stopped(what);
      if ((e as Error).name === "TimeoutError") {
        throw new KefuError(
          "wxbot_timeout",
          `the WXBot platform did not answer ${what} within ${o.timeoutMs} ms: it may or may not have been sent ` +
            "(a retry could send it twice, so kefu did not retry); check the chat in WeChat before sending it again",
          504,
        );
      }
      o.log.warn("wxbot_unreachable", { path, error: (e as Error).message });
      throw new KefuError(
        "wxbot_unreachable",
        `cannot reach the WXBot API (WXBOT_API_BASE ${quote(o.base)}) for ${what}: ${(e as Error).message}; ` +
          "nothing was sent, try again",
        502,
      );
    }
    let doc: Record<string, unknown> | undefined;
    try {
      doc = parseFrame(text);
    } catch { /* answered below */ }
    if (doc === undefined || typeof doc.ok !== "boolean") {
      throw new KefuError(
        "wxbot_refused",
        `the WXBot API answered ${what} with HTTP ${res.status} ${quote(text, 120)}, not {"ok":…,"retCode":…}: ` +
          "it is not known whether it was sent; check WXBOT_API_BASE and the chat in WeChat",
        502,
        { status: res.status },
      );
    }
    const a: ApiAnswer = { ok: doc.ok, result: doc.result };
    if (typeof doc.retCode === "number") a.retCode = doc.retCode;
    if (typeof doc.cost === "boolean") a.cost = doc.cost;
    if (typeof doc.error === "string") a.error = doc.error;
    return a;
  }

  #sleep(ms: number, what: string): Promise<void> {
    const signal = this.#stop.signal;
    if (signal.aborted) return Promise.reject(stopped(what));
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        reject(stopped(what));
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", done);
        resolve();
      }, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }
}

function stopped(what: string): KefuError {
  return new KefuError("wxbot_unreachable", `kefu stopped before ${what} went out: nothing was sent, try again`, 503);
}

/** The error an agent gets for an answer that did not go out, by retCode: what happened and what to do. */
export function refusal(a: ApiAnswer, what: string, attempts: number): KefuError {
  const said = a.error ? ` (${quote(a.error)})` : "";
  const code = `retCode ${a.retCode ?? "missing"}${said}`;
  const data = { retCode: a.retCode, cost: a.cost, attempts };
  // Counted calls are final, whatever went wrong: the seed says never to retry them.
  const counted = a.cost === true ? "; the platform counted the call (cost=true), so kefu did not retry" : "";
  switch (a.retCode) {
    case 1000:
    case 1003: {
      const why = a.retCode === 1000 ? "an internal error" : "busy";
      const tries = attempts > 1 ? ` after ${attempts} tries` : "";
      return new KefuError(
        "wxbot_busy",
        `the WXBot platform was ${why} for ${what} (${code})${tries}${counted}: nothing was sent; try again in a minute`,
        503,
        data,
      );
    }
    case 1001:
      return new KefuError(
        "wxbot_bad_request",
        `the WXBot platform refused the parameters of ${what} (${code})${counted}: nothing was sent; ` +
          "check the account's Token and the file, then try again",
        502,
        data,
      );
    case 1002:
      return new KefuError(
        "wxbot_contact_gone",
        `the WXBot platform says the contact or account of ${what} no longer exists, deleted or banned (${code})` +
          `${counted}: nothing was sent; do not send to this contact again`,
        410,
        data,
      );
    case 1004:
      return new KefuError(
        "wxbot_no_balance",
        `the WXBot account's balance or permission is not enough for ${what} (${code})${counted}: nothing was sent; ` +
          "top up the WXBot account or ask its administrator to enable this API",
        402,
        data,
      );
    default:
      return new KefuError(
        "wxbot_refused",
        `the WXBot platform did not take ${what} (ok=false, ${code}, cost=${a.cost ?? "missing"})${counted}: ` +
          "nothing is known to be sent, so kefu did not retry; check the chat in WeChat",
        502,
        data,
      );
  }
}
