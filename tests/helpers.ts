/**
 * Test helpers in one place: start the real service on a free port, talk to it
 * with real `WebSocket` clients and `fetch`.
 *
 * @module
 */

import { start } from "../main.ts";
import { onPostgres, postgresEnv } from "./support/on_postgres.ts";
import { parseConfig } from "../src/config/config.ts";
import type { Service } from "../main.ts";
import { createWechatServer, type WechatServer, type WechatServerOptions } from "../src/simulator/wechat_server.ts";
import { signature } from "../src/channels/wx_official/crypto.ts";
import { hashPassword } from "../src/agents/auth/passwords.ts";

/** The seed's test message (seed 004 §4), byte for byte. */
export const SEED_XML = `<xml>
  <ToUserName>1</ToUserName>
  <FromUserName>魏秀兰</FromUserName>
  <CreateTime>1976-04-10 12:21:47</CreateTime>
  <MsgType>enim</MsgType>
  <Content>occaecat ut in fugiat dolor</Content>
  <MsgId>19</MsgId>
  <MsgDataId>27</MsgDataId>
  <Idx>74</Idx>
</xml>
`;

/** A running service for one test, with its base URLs. */
export interface TestService extends AsyncDisposable {
  svc: Service;
  port: number;
  http: string;
  ws: string;
}

/**
 * Start the real service on a free port of 127.0.0.1; `env` overrides configuration variables.
 * The store is in memory unless `env` names a DATA_DIR (a real SQLite file) — or, in a file that runs its tests on
 * PostgreSQL (`support/on_postgres.ts`), a database of PostgreSQL's (the same one for the same DATA_DIR).
 */
export async function startService(env: Record<string, string> = {}): Promise<TestService> {
  const store = onPostgres() && env.STORE === undefined
    ? await postgresEnv(env.DATA_DIR)
    : { STORE: env.DATA_DIR ? "sqlite" : "memory" };
  const svc = await start(parseConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", ...store, ...env }));
  return {
    svc,
    port: svc.port,
    http: `http://127.0.0.1:${svc.port}`,
    ws: `ws://127.0.0.1:${svc.port}`,
    [Symbol.asyncDispose]: () => svc.shutdown(),
  };
}

/** A team member in CONFIG_FILE: its id and role (an agent when absent). */
export interface TeamMember {
  id: string;
  role?: "agent" | "supervisor" | "admin";
}

let unusedHash: Promise<string> | undefined;

/**
 * {@link startService} with `members` in a CONFIG_FILE of its own (sign-in off: their password is never used); `env`
 * may name paths in the team's folder (`dir`), which goes with the service.
 */
export async function startTeam(
  members: TeamMember[],
  env: Record<string, string> | ((dir: string) => Record<string, string>) = {},
): Promise<TestService & { dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "kefu-team-" });
  const file = `${dir}/kefu.json`;
  const hash = await (unusedHash ??= hashPassword("not used: sign-in is off"));
  const agents = members.map((m) => ({ ...m, password_hash: hash }));
  await Deno.writeTextFile(file, JSON.stringify({ agents }));
  const t = await startService({ CONFIG_FILE: file, ...(typeof env === "function" ? env(dir) : env) });
  return {
    ...t,
    dir,
    [Symbol.asyncDispose]: async () => {
      await t[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A free port of 127.0.0.1, for a service whose own address must be known before it listens. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** kefu as a child process (for kill -9 tests), ready once it logged "listening"; disposing it kills it. */
export interface KefuChild extends AsyncDisposable {
  /** The port from the "listening" line. */
  port: number;
  process: Deno.ChildProcess;
}

/**
 * Start `deno run <entry>` (main.ts, or a fixture that calls start()) from the project root with `env` and wait for
 * its "listening" log line; stdout is drained from then on so the child never blocks on a full pipe.
 */
export async function spawnKefu(env: Record<string, string>, entry = "main.ts"): Promise<KefuChild> {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-run", entry],
    cwd: new URL("..", import.meta.url).pathname,
    env: { HOST: "127.0.0.1", LOG_LEVEL: "info", ...env },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  let port = 0;
  while (port === 0) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`kefu exited before listening: ${buffered}`);
    buffered += value;
    port = Number(/"event":"listening".*?"port":(\d+)/.exec(buffered)?.[1] ?? 0);
  }
  const drained = (async () => {
    try {
      while (!(await lines.read()).done) { /* discard */ }
    } catch { /* killed */ }
  })();
  return {
    port,
    process,
    async [Symbol.asyncDispose]() {
      try {
        process.kill("SIGKILL");
      } catch { /* already gone */ }
      await process.status;
      await drained;
    },
  };
}

/** POST a body; answers the status and the parsed JSON body. */
export async function post(
  url: string,
  body: BodyInit,
  headers: Record<string, string> = {},
  // deno-lint-ignore no-explicit-any
): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: "POST", body, headers });
  const text = await res.text();
  return { status: res.status, body: text === "" ? undefined : JSON.parse(text) };
}

/** GET a URL; answers the status and the parsed JSON body. */
// deno-lint-ignore no-explicit-any
export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

// deno-lint-ignore no-explicit-any
type Envelope = any;

/** A real WebSocket client that queues what it receives, for tests to take in order. */
export class AgentClient implements AsyncDisposable {
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<CloseEvent>;
  readonly #inbox: string[] = [];
  #wake?: () => void;

  constructor(url: string, protocols?: string | string[]) {
    this.socket = new WebSocket(url, protocols);
    this.opened = new Promise((resolve, reject) => {
      this.socket.addEventListener("open", () => resolve(), { once: true });
      this.socket.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)), { once: true });
    });
    this.closed = new Promise((resolve) => this.socket.addEventListener("close", resolve, { once: true }));
    this.opened.catch(() => {});
    this.socket.addEventListener("message", (e) => {
      this.#inbox.push(typeof e.data === "string" ? e.data : "<binary>");
      this.#wake?.();
    });
    this.socket.addEventListener("close", () => this.#wake?.());
  }

  /** Connect and wait until open. */
  static async open(url: string, protocols?: string | string[]): Promise<AgentClient> {
    const c = new AgentClient(url, protocols);
    await c.opened;
    return c;
  }

  /** Send text, or an object as JSON. */
  send(data: string | object): void {
    this.socket.send(typeof data === "string" ? data : JSON.stringify(data));
  }

  /** The next envelope whose `result.code` is `code` (others before it are dropped); heartbeats skipped unless asked. */
  async next(code?: number, timeoutMs = 5000): Promise<Envelope> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#inbox.length > 0) {
        const e = JSON.parse(this.#inbox.shift()!);
        const c = Number(e.result?.code);
        if (code === undefined ? c !== 101 : c === code) return e;
      }
      if (this.socket.readyState >= WebSocket.CLOSING) throw new Error(`socket closed while waiting for code ${code}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no envelope with code ${code ?? "≠101"} within ${timeoutMs} ms`);
      await this.#wait(left);
    }
  }

  /** Every envelope received so far and not yet taken (heartbeats included). */
  drain(): Envelope[] {
    return this.#inbox.splice(0).map((s) => JSON.parse(s));
  }

  /** Wait until nothing new arrives for `ms`, then answer what is queued. */
  async settle(ms = 150): Promise<Envelope[]> {
    let n = -1;
    while (n !== this.#inbox.length) {
      n = this.#inbox.length;
      await new Promise((r) => setTimeout(r, ms));
    }
    return this.drain();
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      this.#wake = done;
      function done() {
        clearTimeout(t);
        resolve();
      }
    });
  }

  /** Close (if open) and wait for the close event. */
  async close(): Promise<CloseEvent> {
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close();
    return await this.closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The agent socket URL of the seed's component path. */
export function agentUrl(t: TestService, agent: string): string {
  return `${t.ws}/im_component/wx_official_account/msg?userid=${encodeURIComponent(agent)}`;
}

/** Simplified WeChat XML from a user to an (optional) agent. */
export function userXml(from: string, content: string, options: { to?: string; id?: string; type?: string } = {}) {
  return `<xml><ToUserName><![CDATA[${
    options.to ?? ""
  }]]></ToUserName><FromUserName><![CDATA[${from}]]></FromUserName>` +
    `<CreateTime>1700000000</CreateTime><MsgType><![CDATA[${options.type ?? "text"}]]></MsgType>` +
    `<Content><![CDATA[${content}]]></Content><MsgId>${options.id ?? crypto.randomUUID()}</MsgId></xml>`;
}

/** The simulator's WeChat API served on a free port of 127.0.0.1, for kefu's `WECHAT_API_BASE`. */
export interface TestWechat extends AsyncDisposable {
  sim: WechatServer;
  url: string;
}

/** Serve a simulated WeChat API for one account. */
export function startWechat(options: WechatServerOptions): TestWechat {
  const sim = createWechatServer(options);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, sim.app.fetch);
  return {
    sim,
    url: `http://127.0.0.1:${server.addr.port}`,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

/** A signed webhook query string, as WeChat builds it (plaintext mode). */
export async function signedQuery(token: string, timestamp = String(Math.floor(Date.now() / 1000))): Promise<string> {
  const nonce = String(Math.floor(Math.random() * 1e9));
  return `?signature=${await signature(token, timestamp, nonce)}&timestamp=${timestamp}&nonce=${nonce}`;
}

/** A WeChat text message XML from `openid` to the account. */
export function wechatText(openid: string, content: string, msgId: string, createTime = Math.floor(Date.now() / 1000)) {
  return `<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[${openid}]]></FromUserName>` +
    `<CreateTime>${createTime}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[${content}]]></Content>` +
    `<MsgId>${msgId}</MsgId></xml>`;
}

/**
 * Wait until `check` answers true (the store commits in groups and sessions read when they read: what the service
 * says settles a moment after an event); throws with `what` after `ms`.
 */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`still not true after ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
