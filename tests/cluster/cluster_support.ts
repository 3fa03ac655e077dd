/**
 * Several kefu nodes for the cluster tests: each a child process (`spawnKefu`) on 127.0.0.1 with STORE=postgres
 * (one database), REDIS_URL (one redis-server), one MEDIA_DIR and a NODE_ID and DATA_DIR of its own; and agents as real WebSocket
 * clients that send read receipts for every message (as the agent page does), so that what they did not get stays
 * unread and comes again when they reconnect.
 *
 * @module
 */

import { eventually, type KefuChild, post, spawnKefu, userXml } from "../helpers.ts";

/** One kefu node. */
export interface Node extends AsyncDisposable {
  id: string;
  http: string;
  ws: string;
  child: KefuChild;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** SIGTERM (a drain); answers the exit code. */
  terminate(): Promise<number>;
}

/** Start a node; `env` adds to the cluster settings. */
export async function startNode(
  id: string,
  cluster: { databaseUrl: string; redisUrl: string },
  env: Record<string, string> = {},
): Promise<Node> {
  const dataDir = await Deno.makeTempDir({ prefix: `kefu_node_${id}_` });
  let child: KefuChild;
  try {
    child = await spawnKefu({
      PORT: "0",
      STORE: "postgres",
      DATABASE_URL: cluster.databaseUrl,
      REDIS_URL: cluster.redisUrl,
      NODE_ID: id,
      DATA_DIR: dataDir,
      ...env,
    });
  } catch (e) {
    await Deno.remove(dataDir, { recursive: true });
    throw e;
  }
  let gone = false;
  return {
    id,
    http: `http://127.0.0.1:${child.port}`,
    ws: `ws://127.0.0.1:${child.port}`,
    child,
    async kill() {
      gone = true;
      await child[Symbol.asyncDispose]();
    },
    async terminate() {
      gone = true;
      child.process.kill("SIGTERM");
      const { code } = await child.process.status;
      await child[Symbol.asyncDispose]();
      return code;
    },
    async [Symbol.asyncDispose]() {
      if (!gone) await child[Symbol.asyncDispose]();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

/**
 * Start `n` nodes named n1…, sharing one MEDIA_DIR (a temporary directory; `env.MEDIA_DIR` to name another);
 * disposing the list stops them all (and removes the temporary directory).
 */
export async function startNodes(
  n: number,
  cluster: { databaseUrl: string; redisUrl: string },
  env: Record<string, string> = {},
): Promise<Node[] & AsyncDisposable & { mediaDir: string }> {
  const mediaDir = env.MEDIA_DIR ?? await Deno.makeTempDir({ prefix: "kefu_nodes_media_" });
  const nodes = [] as unknown as Node[] & AsyncDisposable & { mediaDir: string };
  nodes.mediaDir = mediaDir;
  nodes[Symbol.asyncDispose] = async () => {
    await Promise.all(nodes.map((node) => node[Symbol.asyncDispose]()));
    if (env.MEDIA_DIR === undefined) await Deno.remove(mediaDir, { recursive: true });
  };
  try {
    // One at a time: two cores, and each child compiles main.ts.
    for (let i = 1; i <= n; i++) nodes.push(await startNode(`n${i}`, cluster, { MEDIA_DIR: mediaDir, ...env }));
  } catch (e) {
    await nodes[Symbol.asyncDispose]();
    throw e;
  }
  return nodes;
}

// deno-lint-ignore no-explicit-any
type Envelope = any;

/**
 * An agent's tab: one socket at a time (to the node given), sending a read receipt for every user message, keeping
 * every message id it got (and how often) and every other envelope.
 */
export class Agent implements AsyncDisposable {
  readonly id: string;
  /** message id → how many times it arrived. */
  readonly got = new Map<string, number>();
  readonly events: Envelope[] = [];
  socket: WebSocket | undefined;
  closed: Promise<CloseEvent> = Promise.resolve(new CloseEvent("close"));
  /** Ids that arrived twice on one socket (a socket that sends receipts must never get one twice). */
  readonly sameSocketDuplicates: string[] = [];
  /** The close codes of every socket closed other than by `connect` or `disconnect`, in order. */
  readonly closeCodes: number[] = [];
  /** How long each reconnect took, from the close to the new socket's open (ms). */
  readonly reconnectMs: number[] = [];
  readonly #acks: boolean;
  #follow: (() => Node | undefined) | undefined;
  #reconnecting: Promise<void> | undefined;
  #leaving = false;

  constructor(id: string, options: { acks?: boolean } = {}) {
    this.id = id;
    this.#acks = options.acks ?? true;
  }

  /**
   * Reconnect at once whenever the server closes the socket, to the node `pick` names (the load balancer's choice;
   * undefined: none up), as the agent page does on close code 4002. Bounded: 50 tries of one reconnect.
   */
  follow(pick: () => Node | undefined): void {
    this.#follow = pick;
  }

  /** The reconnect under way, if any. */
  settled(): Promise<void> {
    return this.#reconnecting ?? Promise.resolve();
  }

  /** Open a socket to `node` (closing the one before, if open) and wait until open. */
  async connect(node: Node): Promise<void> {
    await this.#closeSocket();
    this.#leaving = false;
    const url = `${node.ws}/im_component/wx_official_account/msg?userid=${encodeURIComponent(this.id)}` +
      (this.#acks ? "&ack=1" : "");
    const ws = new WebSocket(url);
    this.socket = ws;
    const seen = new Set<string>();
    this.closed = new Promise((resolve) => ws.addEventListener("close", resolve, { once: true }));
    ws.addEventListener("close", (e) => this.#closedByServer(ws, e), { once: true });
    ws.addEventListener("message", (e) => this.#frame(ws, String(e.data), seen));
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", () => reject(new Error(`${this.id}: cannot connect to ${url}`)), { once: true });
    });
  }

  /** Close the socket (if open) and wait for its close event; no reconnect follows. */
  async disconnect(): Promise<void> {
    this.#leaving = true;
    await this.#reconnecting;
    await this.#closeSocket();
  }

  async #closeSocket(): Promise<void> {
    const ws = this.socket;
    if (ws === undefined) return;
    this.socket = undefined; // closed by us: not a close to follow
    if (ws.readyState <= WebSocket.OPEN) ws.close();
    await this.closed;
  }

  /** Ids that arrived more than once. */
  duplicates(): string[] {
    return [...this.got].filter(([, n]) => n > 1).map(([id]) => id);
  }

  /** The envelopes of one result code received so far. */
  withCode(code: number): Envelope[] {
    return this.events.filter((e) => Number(e.result?.code) === code);
  }

  #closedByServer(ws: WebSocket, e: CloseEvent): void {
    // Closed by us, or a try of a reconnect under way (which tries again by itself).
    if (this.#leaving || this.socket !== ws || this.#reconnecting !== undefined) return;
    this.closeCodes.push(e.code);
    const pick = this.#follow;
    if (pick === undefined) return;
    const closedAt = Date.now();
    this.#reconnecting = (async () => {
      for (let attempt = 1; attempt <= 50 && !this.#leaving; attempt++) {
        const node = pick();
        try {
          if (node === undefined) throw new Error("no node up");
          await this.connect(node);
          this.reconnectMs.push(Date.now() - closedAt);
          return;
        } catch {
          // The node picked went away meanwhile: the next pick (as the page's next try).
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    })().finally(() => this.#reconnecting = undefined);
  }

  #frame(ws: WebSocket, data: string, seen: Set<string>): void {
    const e = JSON.parse(data);
    const code = Number(e.result?.code);
    if (code === 101) return;
    if (code >= 1001 && code < 1100) {
      if (seen.has(e.data.id)) this.sameSocketDuplicates.push(e.data.id);
      seen.add(e.data.id);
      this.got.set(e.data.id, (this.got.get(e.data.id) ?? 0) + 1);
      if (this.#acks && ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ data: { msg_type: "ack", contact_id: e.data.contact_id, ids: [e.data.id] } }));
      }
    }
    this.events.push(e);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.disconnect();
  }
}

/** Push one user's message through a node (the seed's /send): the message id when kefu accepted it. */
export async function push(node: Node, user: string, agent: string, id: string): Promise<string | undefined> {
  try {
    const r = await post(`${node.http}/send`, userXml(user, `text ${id}`, { to: agent, id }));
    // 200: written to a session; 202: kept for an agent not online (on any node).
    return r.status === 200 || r.status === 202 ? id : undefined;
  } catch {
    return undefined; // the node is gone: not accepted (WeChat would retry elsewhere)
  }
}

/** Whether every id in `ids` has arrived at `agent`. */
export function gotAll(agent: Agent, ids: Iterable<string>): boolean {
  for (const id of ids) if (!agent.got.has(id)) return false;
  return true;
}

/** The ids in `ids` that have not arrived at `agent`. */
export function missing(agent: Agent, ids: Iterable<string>): string[] {
  return [...ids].filter((id) => !agent.got.has(id));
}

/** GET the agents list from a node (as `asker`): agent id → online. */
export async function onlineOn(node: Node, asker = "observer"): Promise<Map<string, boolean>> {
  const res = await fetch(`${node.http}/im_component/wx_official_account/agents?userid=${asker}`);
  const body = await res.json();
  return new Map(
    (body.data.agents as { agent_id: string; online: boolean }[]).map((a) => [a.agent_id, a.online]),
  );
}

/** GET /readyz: its status (0 when the node does not answer, twice: a pooled connection may have been closed). */
export async function readyz(node: Node): Promise<number> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const res = await fetch(`${node.http}/readyz`);
      await res.body?.cancel();
      return res.status;
    } catch {
      // Tried once more on a fresh connection.
    }
  }
  return 0;
}

/** Wait until every node of `nodes` sees every agent of `agents` online. */
export async function allOnline(nodes: Node[], agents: string[], ms = 15_000): Promise<void> {
  for (const node of nodes) {
    await eventually(`${node.id} sees ${agents.join(", ")} online`, async () => {
      const online = await onlineOn(node);
      return agents.every((x) => online.get(x) === true);
    }, ms);
  }
}

/** What one send of a load gave: when it started and ended, and whether kefu accepted it. */
export interface Sent {
  i: number;
  id: string;
  node: string;
  start: number;
  end: number;
  ok: boolean;
}

/**
 * Run `send(i)` for i = 0, 1, … with `concurrency` in flight until `count` sends were made, `stop()` says so, or
 * `ms` passed (bounded in count and time), each worker starting a send at most every `paceMs`; each send's outcome is added to `outcomes` as it comes (for the test to
 * watch while the load runs), which is also the answer.
 */
export async function load(
  options: { count: number; concurrency: number; ms: number; stop?: () => boolean; paceMs?: number },
  send: (i: number) => Promise<{ id: string; node: string; ok: boolean }>,
  outcomes: Sent[] = [],
): Promise<Sent[]> {
  const deadline = Date.now() + options.ms;
  let next = 0;
  const worker = async () => {
    while (next < options.count && Date.now() < deadline && !(options.stop?.() ?? false)) {
      const i = next++;
      const start = Date.now();
      const r = await send(i);
      outcomes.push({ i, ...r, start, end: Date.now() });
      // A refusal comes back at once: paced, the load stays a load (not a spin) while a part is away.
      const wait = (options.paceMs ?? 0) - (Date.now() - start);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return outcomes;
}
