/**
 * A minimal Chrome DevTools Protocol driver for the browser tests: launch a
 * headless Chromium, open pages as flattened target sessions, evaluate
 * script, collect console lines. Everything it opens, `close()` releases, so
 * the tests pass Deno's op and resource sanitizers.
 *
 * @module
 */

/** Where Debian's `chromium` package installs the browser. */
export const CHROMIUM_PATH = "/usr/bin/chromium";

const DEFAULT_TIMEOUT_MS = 10_000;

type Json = Record<string, unknown>;
type EventHandler = (method: string, params: Json, sessionId?: string) => void;

/** Whether the Chromium binary is installed. */
export function hasChromium(path = CHROMIUM_PATH): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Sleep without leaving a timer behind. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a rejection naming `what` after `ms`; the timer is always cleared. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Poll `check` until it returns a value other than undefined/false, or fail after `ms` saying what was awaited. */
export async function waitFor<T>(
  what: string | (() => string),
  check: () => Promise<T | undefined | false> | T | undefined | false,
  ms = DEFAULT_TIMEOUT_MS,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const said = typeof what === "string" ? what : what();
      throw new Error(`timed out after ${ms} ms waiting for ${said}${last ? ` (last error: ${last})` : ""}`);
    }
    await delay(50);
  }
}

/** One DevTools WebSocket connection; commands carry a `sessionId` to address a page. */
export class Cdp {
  readonly #ws: WebSocket;
  readonly #pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void; method: string }>();
  readonly #handlers = new Set<EventHandler>();
  readonly #closed: Promise<void>;
  #nextId = 1;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#closed = new Promise((resolve) => ws.addEventListener("close", () => resolve()));
    ws.addEventListener("close", () => {
      for (const p of this.#pending.values()) p.reject(new Error(`DevTools connection closed during ${p.method}`));
      this.#pending.clear();
    });
    ws.addEventListener("message", (e) => this.#receive(JSON.parse(e.data as string)));
  }

  /** Connect to a browser's DevTools WebSocket URL. */
  static async connect(url: string): Promise<Cdp> {
    const ws = new WebSocket(url);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.addEventListener("open", () => resolve());
        ws.addEventListener("error", () => reject(new Error(`cannot connect to DevTools at ${url}`)));
      }),
      DEFAULT_TIMEOUT_MS,
      `DevTools WebSocket ${url}`,
    );
    return new Cdp(ws);
  }

  /** Send a command and await its result; a protocol error is thrown with the method's name. */
  send(method: string, params: Json = {}, sessionId?: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Json> {
    const id = this.#nextId++;
    const result = new Promise<Json>((resolve, reject) => this.#pending.set(id, { resolve, reject, method }));
    this.#ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return withTimeout(result, timeoutMs, `DevTools command ${method}`);
  }

  /** Listen to every event; returns the function that stops listening. */
  on(handler: EventHandler): () => void {
    this.#handlers.add(handler);
    return () => this.#handlers.delete(handler);
  }

  /** Close the connection and wait until it is closed. */
  async close(): Promise<void> {
    if (this.#ws.readyState !== WebSocket.CLOSED) this.#ws.close();
    await this.#closed;
  }

  #receive(
    msg: {
      id?: number;
      result?: Json;
      error?: { message: string };
      method?: string;
      params?: Json;
      sessionId?: string;
    },
  ) {
    if (msg.id !== undefined) {
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result ?? {});
    } else if (msg.method) {
      for (const h of this.#handlers) h(msg.method, msg.params ?? {}, msg.sessionId);
    }
  }
}

/** A page (tab) attached with a flattened session. */
export class Page {
  /** Console lines, each the `console.*` arguments joined by a space. */
  readonly console: string[] = [];
  readonly #cdp: Cdp;
  readonly #session: string;
  readonly #targetId: string;
  readonly #off: () => void;

  constructor(cdp: Cdp, targetId: string, session: string) {
    this.#cdp = cdp;
    this.#targetId = targetId;
    this.#session = session;
    this.#off = cdp.on((method, params, sessionId) => {
      if (sessionId !== session) return;
      if (method === "Runtime.consoleAPICalled") {
        const args = params.args as { value?: unknown; description?: string }[];
        this.console.push(args.map((a) => a.value !== undefined ? String(a.value) : a.description ?? "").join(" "));
      } else if (method === "Runtime.exceptionThrown") {
        const d = params.exceptionDetails as { text: string; exception?: { description?: string } };
        this.console.push(`uncaught: ${d.exception?.description ?? d.text}`);
      }
    });
  }

  /** Send a command to this page's session. */
  send(method: string, params: Json = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Json> {
    return this.#cdp.send(method, params, this.#session, timeoutMs);
  }

  /** Load a URL and wait for its load event. */
  async goto(url: string): Promise<void> {
    let off = () => {};
    const loaded = new Promise<void>((resolve) => {
      off = this.#cdp.on((method, _params, sessionId) => {
        if (sessionId === this.#session && method === "Page.loadEventFired") resolve();
      });
    });
    try {
      const nav = await this.send("Page.navigate", { url });
      if (nav.errorText) throw new Error(`cannot load ${url}: ${nav.errorText}`);
      await withTimeout(loaded, DEFAULT_TIMEOUT_MS, `load event of ${url}`);
    } finally {
      off();
    }
  }

  /**
   * Evaluate an expression in the page (promises awaited, for at most `timeoutMs`) and return its JSON value; page
   * exceptions are thrown.
   */
  async evaluate<T = unknown>(expression: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true }, timeoutMs);
    const ex = r.exceptionDetails as { text: string; exception?: { description?: string } } | undefined;
    if (ex) throw new Error(`page script failed: ${ex.exception?.description ?? ex.text}\nscript: ${expression}`);
    return (r.result as { value?: T }).value as T;
  }

  /** Wait for a console line matching `test`; returns it. */
  waitForConsole(what: string, test: (line: string) => boolean, ms = DEFAULT_TIMEOUT_MS): Promise<string> {
    return waitFor(
      () => `console line ${what}; console so far:\n  ${this.console.join("\n  ")}`,
      () => this.console.find(test),
      ms,
    );
  }

  /** Poll a page expression until it is truthy; returns its value. */
  waitForExpression<T = unknown>(what: string, expression: string, ms = DEFAULT_TIMEOUT_MS): Promise<T> {
    return waitFor(what, async () => {
      const v = await this.evaluate<T>(expression);
      return v ? v : undefined;
    }, ms);
  }

  /** A PNG screenshot of the viewport. */
  async screenshot(): Promise<Uint8Array> {
    // A page in a background tab draws no frames, and the capture would wait for one forever.
    await this.send("Page.bringToFront", {});
    const r = await this.send("Page.captureScreenshot", { format: "png" });
    return Uint8Array.from(atob(r.data as string), (c) => c.charCodeAt(0));
  }

  /** Close the tab. */
  async close(): Promise<void> {
    this.#off();
    await this.#cdp.send("Target.closeTarget", { targetId: this.#targetId });
  }
}

/** A running headless Chromium with its own throw-away profile. */
export class Browser {
  readonly cdp: Cdp;
  readonly #child: Deno.ChildProcess;
  readonly #stderr: ReadableStreamDefaultReader<Uint8Array>;
  readonly #drained: Promise<void>;
  readonly #profile: string;

  private constructor(
    cdp: Cdp,
    child: Deno.ChildProcess,
    stderr: ReadableStreamDefaultReader<Uint8Array>,
    drained: Promise<void>,
    profile: string,
  ) {
    this.cdp = cdp;
    this.#child = child;
    this.#stderr = stderr;
    this.#drained = drained;
    this.#profile = profile;
  }

  /** Start Chromium and connect to its DevTools endpoint (read from the `DevTools listening on` line). */
  static async launch(path = CHROMIUM_PATH): Promise<Browser> {
    const profile = await Deno.makeTempDir({ prefix: "kefu-chromium-" });
    const child = new Deno.Command(path, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        // Containers often have a tiny /dev/shm, which crashes renderers.
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,800",
        `--user-data-dir=${profile}`,
        "--remote-debugging-port=0",
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = child.stderr.getReader();
    let log = "";
    let found: (url: string) => void = () => {};
    const endpoint = new Promise<string>((resolve) => found = resolve);
    // Keep reading stderr for the browser's whole life: a full pipe would block it.
    const drained = (async () => {
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        log = (log + decoder.decode(value, { stream: true })).slice(-20_000);
        const m = /DevTools listening on (ws:\/\/\S+)/.exec(log);
        if (m) found(m[1]);
      }
    })().catch(() => {});
    let cdp: Cdp;
    try {
      const url = await withTimeout(
        Promise.race([endpoint, child.status.then((s) => Promise.reject(new Error(`exited with ${s.code}`)))]),
        DEFAULT_TIMEOUT_MS,
        "Chromium's DevTools endpoint",
      ).catch((e) => {
        throw new Error(`cannot start ${path}: ${e.message}\nstderr:\n${log}`);
      });
      cdp = await Cdp.connect(url);
    } catch (e) {
      try {
        child.kill("SIGTERM");
      } catch {
        // It already exited: that is why it failed.
      }
      await stop(child, reader, drained, profile);
      throw e;
    }
    return new Browser(cdp, child, reader, drained, profile);
  }

  /** Open a blank tab with Page and Runtime events on; console lines are collected from the start. */
  async newPage(): Promise<Page> {
    const { targetId } = await this.cdp.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.cdp.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this.cdp, targetId as string, sessionId as string);
    await page.send("Page.enable");
    await page.send("Runtime.enable");
    return page;
  }

  /** Close the browser, wait for the process, release its pipe and delete the profile. */
  async close(): Promise<void> {
    try {
      await this.cdp.send("Browser.close").catch(() => {});
      await this.cdp.close();
    } finally {
      await stop(this.#child, this.#stderr, this.#drained, this.#profile);
    }
  }
}

async function stop(
  child: Deno.ChildProcess,
  stderr: ReadableStreamDefaultReader<Uint8Array>,
  drained: Promise<void>,
  profile: string,
): Promise<void> {
  // Browser.close usually ends it; SIGKILL covers a browser that hangs on the way out.
  const exited = await withTimeout(child.status, 5_000, "Chromium exit").then(() => true, () => false);
  if (!exited) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await child.status;
  }
  // Child processes of Chromium may still hold the pipe open: cancel rather than wait for EOF.
  await stderr.cancel().catch(() => {});
  await drained;
  await Deno.remove(profile, { recursive: true }).catch(() => {});
}
