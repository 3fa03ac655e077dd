/**
 * Keeping kefu's callback registered with one hook: on start list the hook's
 * message processors (1003), remove those that point at kefu's own callback
 * URL (1002: left from an earlier run, they would push everything twice), ask
 * which account is logged in (28), register (1001, protocol 3) and keep the
 * cookie. Then check now and then that the cookie is still listed: a
 * restarted WeChat forgets its processors, so a missing one is registered
 * again. When the API does not answer, try again after a back-off that
 * doubles up to a cap. `stop()` clears the one timer, cancels the call under
 * way and removes the cookie.
 *
 * Unlike the seed's recipe, which removes every processor, only kefu's own are
 * removed: another program's callback on the same hook keeps working. One
 * registered exactly as kefu would register it is adopted, not replaced: among
 * several nodes (issue 19) the node taking over keeps the callback its
 * predecessor left, so that the hook never goes without one.
 *
 * @module
 */

import { KefuError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { HookApi } from "./api.ts";
import type { HookEndpoint } from "./config.ts";

/** Where a hook's registration stands, as `/healthz` shows it. */
export type RegistrationState = "registering" | "registered" | "away" | "manual" | "stopped";

/** Settings of {@link Registration}. */
export interface RegistrationOptions {
  /** false: nothing is registered (the operator set the callback on the hook). */
  register: boolean;
  /** Added to the registered URL as `?token=…`; never logged. */
  token?: string;
  checkMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  log: Logger;
  /** Told the account the hook says is logged in (type 28). */
  onWxid(wxid: string): void;
}

/**
 * Whether two callback URLs name the same place: the query (an earlier token) does not count, nor a trailing
 * slash the hook may add or drop.
 */
export function sameCallback(a: string, b: string): boolean {
  const norm = (s: string) => {
    try {
      const u = new URL(s.trim());
      u.search = "";
      u.hash = "";
      return u.href.replace(/\/+$/, "");
    } catch {
      return s.trim().replace(/[?#].*$/, "").replace(/\/+$/, "");
    }
  };
  return norm(a) === norm(b);
}

/** The URL registered with the hook: `url` with `?token=…` when there is a token. */
export function withToken(url: string, token: string | undefined): string {
  if (token === undefined) return url;
  const u = new URL(url);
  u.searchParams.set("token", token);
  return u.href;
}

/** One hook's callback registration, kept alive until `stop()`. */
export class Registration {
  state: RegistrationState;
  /** What went wrong last, while `away`. */
  lastError = "";
  /** Failed attempts in a row. */
  failures = 0;
  #cookie: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | undefined;
  #abort = new AbortController();
  readonly #hook: HookEndpoint;
  readonly #api: HookApi;
  readonly #options: RegistrationOptions;

  constructor(hook: HookEndpoint, api: HookApi, options: RegistrationOptions) {
    this.#hook = hook;
    this.#api = api;
    this.#options = options;
    this.state = options.register ? "registering" : "manual";
  }

  /** Whether kefu holds a cookie on the hook. */
  get registered(): boolean {
    return this.#cookie !== undefined;
  }

  /**
   * Start in the background: kefu listens before the hook dials it, and an absent hook must not stop the start.
   * Again after `stop()`: a node that takes the registration over (issue 19) starts it once more.
   */
  start(): void {
    if (this.state === "manual") return;
    if (this.state === "stopped") {
      this.state = "registering";
      this.#abort = new AbortController();
    }
    this.#schedule(0);
  }

  /** The hook's socket dropped (maybe WeChat restarted): check soon rather than at the next period. */
  poke(): void {
    if (this.state !== "registered" || this.#running !== undefined) return;
    this.#schedule(this.#options.retryMinMs);
  }

  /**
   * Stop: no more calls; remove kefu's callback from the hook, waiting at most `ms` for it — unless `keep`: among
   * several nodes the callback (the load balancer's URL) stays for the node that takes over, which adopts it, so that
   * the hook is never without it.
   */
  async stop(ms: number, options: { keep?: boolean } = {}): Promise<void> {
    if (this.state === "stopped") return;
    const was = this.state;
    this.state = "stopped";
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    await this.#running;
    const cookie = this.#cookie;
    if (cookie === undefined || was === "manual") return;
    this.#cookie = undefined;
    if (options.keep) {
      this.#options.log.info("pc_hook_callback_left", { hook: this.#hook.name, detail: "for the node taking over" });
      return;
    }
    try {
      await this.#api.removeCallback(cookie, AbortSignal.timeout(Math.max(1, ms)));
      this.#options.log.info("pc_hook_unregistered", { hook: this.#hook.name, url: this.#hook.callbackUrl });
    } catch (e) {
      this.#options.log.warn("pc_hook_unregister_failed", { hook: this.#hook.name, error: (e as Error).message });
    }
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    if (this.state === "stopped") return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#attempt().finally(() => this.#running = undefined);
    }, ms);
  }

  async #attempt(): Promise<void> {
    const { log, checkMs, retryMinMs, retryMaxMs } = this.#options;
    const signal = this.#abort.signal;
    const name = this.#hook.name;
    try {
      if (this.#cookie !== undefined) {
        const listed = await this.#api.listCallbacks(signal);
        if (listed.some((c) => c.cookie === this.#cookie)) {
          this.#recovered();
          return this.#schedule(checkMs);
        }
        log.warn("pc_hook_callback_lost", {
          hook: name,
          detail: "the hook no longer lists kefu's callback: registering again",
        });
        this.#cookie = undefined;
      }
      await this.#register(signal);
      this.#schedule(checkMs);
    } catch (e) {
      if (this.state === "stopped") return;
      const error = e instanceof KefuError ? e.message : String(e);
      this.failures++;
      // Doubling from retryMinMs to retryMaxMs, with ±20 % jitter so that several kefus do not call in step.
      const base = Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(20, this.failures - 1));
      const delay = Math.round(base * (0.8 + Math.random() * 0.4));
      // The first failure is a warning; repeats of the same one are debug lines, so an absent hook does not flood.
      const level = this.state !== "away" || this.lastError !== error ? "warn" : "debug";
      this.state = "away";
      this.lastError = error;
      log[level]("pc_hook_api_away", { hook: name, error, retry_in_ms: delay, failures: this.failures });
      this.#schedule(delay);
    }
  }

  async #register(signal: AbortSignal): Promise<void> {
    const { log } = this.#options;
    const { name, callbackUrl } = this.#hook;
    const listed = await this.#api.listCallbacks(signal);
    const url = withToken(callbackUrl, this.#options.token);
    let adopted: string | undefined;
    for (const c of listed) {
      if (!sameCallback(c.url, callbackUrl)) continue;
      // One exactly as kefu would register it (the node before, among several) is kept: the hook goes on pushing
      // without a gap. Any other (an older token, a second copy) would push everything twice: removed.
      if (adopted === undefined && c.url === url) {
        adopted = c.cookie;
        continue;
      }
      await this.#api.removeCallback(c.cookie, signal);
      log.info("pc_hook_stale_callback_removed", { hook: name, url: c.url.replace(/[?#].*$/, ""), cookie: c.cookie });
    }
    if (this.#hook.wxid === undefined) {
      // Which account the hook's pushes are for, before the first push says so; a hook that cannot tell is fine.
      try {
        const wxid = await this.#api.self(signal);
        if (wxid !== undefined) this.#options.onWxid(wxid);
      } catch (e) {
        log.debug("pc_hook_self_unknown", { hook: name, error: (e as Error).message });
      }
    }
    if (adopted !== undefined) {
      this.#cookie = adopted;
      log.info("pc_hook_callback_adopted", { hook: name, url: callbackUrl, cookie: adopted });
    } else {
      this.#cookie = await this.#api.addCallback(url, signal, callbackUrl);
      log.info("pc_hook_registered", { hook: name, url: callbackUrl, api: this.#api.url, attempts: this.failures + 1 });
    }
    this.#recovered();
  }

  #recovered(): void {
    if (this.state === "stopped") return;
    this.state = "registered";
    this.failures = 0;
    this.lastError = "";
  }

  /** For `/healthz`: the state and, while away, why (never the secret). */
  health(): Record<string, unknown> {
    const h: Record<string, unknown> = { registration: this.state };
    if (this.lastError !== "") h.error = this.lastError;
    if (this.failures > 0) h.failures = this.failures;
    return h;
  }

  /** The cookie, for logs and tests. */
  get cookie(): string | undefined {
    return this.#cookie;
  }
}
