/**
 * Several kefu nodes for the cluster tests: each a child process (`spawnKefu`) on 127.0.0.1 with STORE=postgres
 * (one database), REDIS_URL (one redis-server), one MEDIA_DIR and a NODE_ID and DATA_DIR of its own; and agents as real WebSocket
 * clients that send read receipts for every message (as the agent page does), so that what they did not get stays
 * unread and comes again when they reconnect.
 *
 * @module
 */

import { type KefuChild, post, spawnKefu, userXml } from "../helpers.ts";

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
  readonly #acks: boolean;

  constructor(id: string, options: { acks?: boolean } = {}) {
    this.id = id;
    this.#acks = options.acks ?? true;
  }

  /** Open a socket to `node` (closing the one before, if open) and wait until open. */
  async connect(node: Node): Promise<void> {
    await this.disconnect();
    const url = `${node.ws}/im_component/wx_official_account/msg?userid=${encodeURIComponent(this.id)}` +
      (this.#acks ? "&ack=1" : "");
    const ws = new WebSocket(url);
    this.socket = ws;
    this.closed = new Promise((resolve) => ws.addEventListener("close", resolve, { once: true }));
    ws.addEventListener("message", (e) => this.#frame(ws, String(e.data)));
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener("open", () => resolve(), { once: true });
      ws.addEventListener("error", () => reject(new Error(`${this.id}: cannot connect to ${url}`)), { once: true });
    });
  }

  /** Close the socket (if open) and wait for its close event. */
  async disconnect(): Promise<void> {
    if (this.socket === undefined) return;
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close();
    await this.closed;
    this.socket = undefined;
  }

  /** Ids that arrived more than once. */
  duplicates(): string[] {
    return [...this.got].filter(([, n]) => n > 1).map(([id]) => id);
  }

  /** The envelopes of one result code received so far. */
  withCode(code: number): Envelope[] {
    return this.events.filter((e) => Number(e.result?.code) === code);
  }

  #frame(ws: WebSocket, data: string): void {
    const e = JSON.parse(data);
    const code = Number(e.result?.code);
    if (code === 101) return;
    if (code >= 1001 && code < 1100) {
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
