/**
 * A kefu node among several: the {@link AgentBus} that reaches agents' sessions on every node through an
 * {@link Engine}, and answers who is online anywhere from a local cache of the cluster's presence (refreshed by a
 * heartbeat and by each node's notices), so that the accept path makes no round trip to the broker per message.
 *
 * - Delivery: to this node's sessions directly, and published on the agent's topic for the others. Each node
 *   subscribes to the topics of the agents it has sessions for — before their backlog is read (`joined`), so nothing
 *   falls between the backlog and the live messages. A node whose session sends no read receipts marks what it wrote
 *   read in the store, as the local path does.
 * - Presence: each node announces its agents every heartbeat with a TTL of a few heartbeats: a node killed with
 *   SIGKILL stops announcing and its agents count as offline once its announcement expired.
 * - Node to node: each node has a topic of its own and a {@link Mailbox} on it (requests with a timeout, answers).
 * - The broker away: this node's own sessions keep working; publishes fail (the messages stay unread in the store);
 *   once it is back, each node resyncs its sessions from the store (what is unread goes again) and announces again.
 *
 * @module
 */

import type { Logger } from "../core/log.ts";
import type { Message } from "../core/message.ts";
import type { AgentBus } from "../hub/bus.ts";
import type { Delivery, DeliveryReport } from "../hub/delivery.ts";
import type { AgentEvent } from "../hub/events.ts";
import type { Store } from "../store/store.ts";
import type { Engine } from "./engine.ts";
import { Mailbox } from "./mailbox.ts";

/** Options for {@link ClusterNode}. */
export interface ClusterNodeOptions {
  /** This node's name (`NODE_ID`): unique among the nodes. */
  nodeId: string;
  engine: Engine;
  /** Marks messages read (for sessions without receipts) and reads what to resync. */
  store: Pick<Store, "ack" | "unacked">;
  log: Logger;
  /** How often presence is announced and read; default 2 s. */
  heartbeatMs?: number;
  /** How long an announcement lasts without a heartbeat; default 3 heartbeats. */
  ttlMs?: number;
  /** How long `joined` waits for the broker to confirm a subscription; default 1 s. */
  subscribeTimeoutMs?: number;
  /** How long `stop` waits for the acknowledgements under way (the store may be away); default 5 s. */
  drainAcksMs?: number;
}

/** What travels on an agent's topic: a user's message, another event, or "resync from the store". */
type Wire =
  | { from: string; kind: "message"; agent: string; message: Message }
  | { from: string; kind: "event"; agent: string; event: AgentEvent }
  | { from: string; kind: "resync"; agent: string };

/** What travels on the presence topic: a node's agent went online or offline there. */
interface Notice {
  from: string;
  agent: string;
  online: boolean;
}

// Unread messages re-sent per agent when resyncing after an outage (the rest comes with the next connect).
const RESYNC_LIMIT = 1000;

/** One node of the cluster; {@link bus} is what the hub is given. */
export class ClusterNode implements AgentBus {
  readonly #o: Required<ClusterNodeOptions>;
  readonly #agentTopic: (agent: string) => string;
  readonly #presenceTopic = "kefu:presence";
  /** Events for the supervisors watching the team (issue 22): every node subscribes, each writes to its watchers. */
  readonly #watchersTopic = "kefu:watchers";
  #local: Delivery | undefined;
  /** agent → the other nodes it has sessions on (the cluster's presence, as last heard). */
  #remote = new Map<string, Set<string>>();
  /** Agents whose topic this node subscribed to (it has sessions for them). */
  readonly #subscribed = new Set<string>();
  /** Agents a publish for failed while the broker was away: their nodes are told to resync once it is back. */
  readonly #missed = new Set<string>();
  readonly #offline: Array<(agent: string) => void> = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #down = false;
  /** Until then presence read from the broker is added to what was known, not put in its place (see {@link #up}). */
  #mergeUntil = 0;
  #refreshing: Promise<void> | undefined;
  #stopped = false;
  /** Messages written to sessions without read receipts, to be marked read: agent → messages. */
  readonly #toAck = new Map<string, Message[]>();
  /** The acknowledgements under way, while any are. */
  #acking: Promise<void> | undefined;
  /** Requests to and from the other nodes, on this node's own topic. */
  readonly mailbox: Mailbox;

  constructor(options: ClusterNodeOptions) {
    const heartbeatMs = options.heartbeatMs ?? 2000;
    this.#o = {
      ...options,
      heartbeatMs,
      ttlMs: options.ttlMs ?? 3 * heartbeatMs,
      subscribeTimeoutMs: options.subscribeTimeoutMs ?? 1000,
      drainAcksMs: options.drainAcksMs ?? 5000,
    };
    this.#agentTopic = (agent) => `kefu:agent:${agent}`;
    this.mailbox = new Mailbox(options.engine, options.nodeId, options.log);
  }

  /** The engine (shared values, for the parts built on the cluster). */
  get engine(): Engine {
    return this.#o.engine;
  }

  /** The hub's bus factory: this node, over the hub's sessions. */
  readonly bus = (local: Delivery): AgentBus => {
    this.#local = local;
    return this;
  };

  /** Connect the engine, listen for presence notices, announce, and start the heartbeat. */
  async start(): Promise<void> {
    await this.#o.engine.start({
      message: (topic, data) => this.#receive(topic, data),
      up: () => this.#up(),
      down: (error) => this.#broken("cluster_broker_unavailable", error),
    });
    await this.#o.engine.subscribe(this.#presenceTopic).catch((e) => this.#broken("cluster_subscribe_failed", e));
    await this.#o.engine.subscribe(this.mailbox.topic).catch((e) => this.#broken("cluster_subscribe_failed", e));
    await this.#o.engine.subscribe(this.#watchersTopic).catch((e) => this.#broken("cluster_subscribe_failed", e));
    await this.refresh();
    this.#timer = setInterval(() => void this.refresh(), this.#o.heartbeatMs);
  }

  /**
   * Stop the heartbeat, withdraw this node's presence (its agents are offline here at once), close the engine, and
   * wait for the acknowledgements under way (call it before the store closes).
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    clearInterval(this.#timer);
    this.mailbox.close();
    await this.#refreshing;
    const { engine, nodeId } = this.#o;
    await engine.withdraw(nodeId).catch((e) => this.#broken("cluster_withdraw_failed", e));
    const notices = [...this.#subscribed].map((agent) =>
      engine.publish(this.#presenceTopic, JSON.stringify({ from: nodeId, agent, online: false } satisfies Notice))
    );
    await Promise.allSettled(notices);
    await engine.stop();
    // Nothing comes from the broker any more: the last acknowledgements go to the store (still open, main.ts). Bounded:
    // with the store away a drain must still end; what is not marked read comes again on the agent's next connect.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(true), this.#o.drainAcksMs));
    const timedOut = await Promise.race([this.drainAcks().then(() => false), late]);
    clearTimeout(timer);
    if (timedOut) {
      this.#o.log.warn("ack_drain_timeout", {
        node: this.#o.nodeId,
        detail: "messages written to sessions without read receipts stay unread: they come again at the next connect",
      });
    }
  }

  // ---- AgentBus ----

  deliver(agent: string, message: Message): DeliveryReport {
    const local = this.#localDelivery().message(agent, message);
    // Published even when no other node is known to have the agent: one may have just subscribed.
    this.#publish(agent, { from: this.#o.nodeId, kind: "message", agent, message });
    const remote = this.#remote.get(agent)?.size ?? 0;
    return { sockets: local.sockets + remote, needsAck: local.needsAck || remote > 0 };
  }

  send(agent: string, event: AgentEvent): number {
    const n = this.#localDelivery().send(agent, event);
    this.#publish(agent, { from: this.#o.nodeId, kind: "event", agent, event });
    return n + (this.#remote.get(agent)?.size ?? 0);
  }

  readsOnWrite(agent: string): boolean {
    return !this.#remote.has(agent) && this.#localDelivery().readsOnWrite(agent);
  }

  isOnline(agent: string): boolean {
    return this.#remote.has(agent) || this.#localDelivery().isOnline(agent);
  }

  online(): Iterable<string> {
    return new Set([...this.#localDelivery().agents(), ...this.#remote.keys()]);
  }

  async joined(agent: string): Promise<void> {
    if (this.#subscribed.has(agent)) return;
    this.#subscribed.add(agent);
    const { engine, nodeId, subscribeTimeoutMs } = this.#o;
    // Subscribed before the backlog is read: a message committed after that read is published to us.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, subscribeTimeoutMs));
    await Promise.race([
      engine.subscribe(this.#agentTopic(agent)).then(
        () => engine.announce(nodeId, [...this.#localDelivery().agents()], this.#o.ttlMs),
      ).then(
        () =>
          engine.publish(this.#presenceTopic, JSON.stringify({ from: nodeId, agent, online: true } satisfies Notice)),
      ).catch((e) => this.#broken("cluster_subscribe_failed", e)),
      timeout,
    ]);
    clearTimeout(timer);
  }

  left(agent: string): void {
    if (!this.#subscribed.delete(agent)) return;
    const { engine, nodeId } = this.#o;
    engine.unsubscribe(this.#agentTopic(agent))
      .then(() => engine.announce(nodeId, [...this.#localDelivery().agents()], this.#o.ttlMs))
      .then(() =>
        engine.publish(this.#presenceTopic, JSON.stringify({ from: nodeId, agent, online: false } satisfies Notice))
      )
      .catch((e) => this.#broken("cluster_unsubscribe_failed", e));
  }

  watchOffline(listener: (agent: string) => void): void {
    this.#offline.push(listener);
  }

  watch(event: AgentEvent): void {
    this.#localDelivery().watched(event);
    // A lost publish costs the watchers a live line, never a message: their page reads the history on reconnect.
    this.#o.engine.publish(this.#watchersTopic, JSON.stringify({ from: this.#o.nodeId, event }))
      .catch((e) => this.#broken("cluster_publish_failed", e));
  }

  // ---- presence ----

  /** Announce this node's agents and read everyone's (the heartbeat); subscriptions follow the sessions. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#refresh().finally(() => this.#refreshing = undefined);
    return this.#refreshing;
  }

  async #refresh(): Promise<void> {
    const local = this.#localDelivery();
    // A safety net: sessions that went without the hub saying so (or came while the broker was away).
    for (const agent of this.#subscribed) if (!local.isOnline(agent)) this.left(agent);
    for (const agent of [...local.agents()]) {
      if (!this.#subscribed.has(agent)) void this.joined(agent);
    }
    const { engine, nodeId, ttlMs } = this.#o;
    try {
      await engine.announce(nodeId, [...local.agents()], ttlMs);
      const nodes = await engine.nodes();
      const remote = new Map<string, Set<string>>();
      for (const [node, agents] of nodes) {
        if (node === nodeId) continue;
        for (const agent of agents) this.#addRemote(remote, agent, node);
      }
      const before = [...this.#remote.keys()];
      if (Date.now() < this.#mergeUntil) {
        for (const [agent, nodes] of this.#remote) for (const n of nodes) this.#addRemote(remote, agent, n);
      }
      this.#remote = remote;
      for (const agent of before) this.#tellIfOffline(agent);
      await this.#resyncMissed();
      this.#healthy();
    } catch (e) {
      // The broker is away: the last presence heard stays (the best guess) until it is back.
      this.#broken("cluster_broker_unavailable", e);
    }
  }

  #addRemote(remote: Map<string, Set<string>>, agent: string, node: string): void {
    let set = remote.get(agent);
    if (set === undefined) remote.set(agent, set = new Set());
    set.add(node);
  }

  #notice(n: Notice): void {
    if (n.from === this.#o.nodeId) return;
    let set = this.#remote.get(n.agent);
    if (n.online) {
      if (set === undefined) this.#remote.set(n.agent, set = new Set());
      set.add(n.from);
    } else if (set?.delete(n.from) && set.size === 0) {
      this.#remote.delete(n.agent);
      this.#tellIfOffline(n.agent);
    }
  }

  #tellIfOffline(agent: string): void {
    if (this.isOnline(agent)) return;
    for (const listener of this.#offline) listener(agent);
  }

  // ---- messages ----

  #publish(agent: string, wire: Wire): void {
    this.#o.engine.publish(this.#agentTopic(agent), JSON.stringify(wire)).catch((e) => {
      // Kept unread in the store; its node is told to resync once the broker is back.
      if (wire.kind !== "resync") this.#missed.add(agent);
      this.#broken("cluster_publish_failed", e);
    });
  }

  #receive(topic: string, data: string): void {
    if (topic === this.mailbox.topic) return this.mailbox.receive(data);
    let wire: Wire | Notice;
    try {
      wire = JSON.parse(data);
    } catch (e) {
      return this.#o.log.warn("cluster_bad_payload", { topic, error: String(e) });
    }
    if (topic === this.#presenceTopic) return this.#notice(wire as Notice);
    if (topic === this.#watchersTopic) {
      const w = wire as unknown as { from: string; event: AgentEvent };
      return void (w.from !== this.#o.nodeId && this.#localDelivery().watched(w.event));
    }
    const w = wire as Wire;
    if (w.from === this.#o.nodeId && w.kind !== "resync") return;
    const local = this.#localDelivery();
    if (w.kind === "event") return void local.send(w.agent, w.event);
    if (w.kind === "resync") return void this.#resync(w.agent);
    const report = local.message(w.agent, w.message);
    // A session without read receipts has read what was written to it (the local path stores it read at once).
    if (report.sockets > 0 && !report.needsAck) this.#ack(w.agent, [w.message]);
  }

  // The broker is back: publishes to this node's agents may have been lost meanwhile.
  #up(): void {
    this.#healthy();
    // A restarted Redis has no announcements until every node has made its next: nobody is offline for that.
    this.#mergeUntil = Date.now() + 2 * this.#o.heartbeatMs;
    for (const agent of this.#subscribed) this.#o.engine.subscribe(this.#agentTopic(agent)).catch(() => {});
    this.#o.engine.subscribe(this.#presenceTopic).catch(() => {});
    this.#o.engine.subscribe(this.mailbox.topic).catch(() => {});
    this.#o.engine.subscribe(this.#watchersTopic).catch(() => {});
    for (const agent of this.#localDelivery().agents()) void this.#resync(agent);
    void this.refresh();
  }

  // Agents a publish for failed: their nodes resync them from the store (ours at once).
  async #resyncMissed(): Promise<void> {
    for (const agent of [...this.#missed]) {
      this.#missed.delete(agent);
      if (this.#remote.has(agent)) {
        await this.#o.engine.publish(
          this.#agentTopic(agent),
          JSON.stringify({ from: this.#o.nodeId, kind: "resync", agent }),
        );
      }
    }
  }

  // Send this node's sessions of `agent` what is unread in the store (a session with receipts may get a message it
  // had already: the page keeps one of each id; one without had read it, so it is not unread).
  async #resync(agent: string): Promise<void> {
    const local = this.#localDelivery();
    if (!local.isOnline(agent)) return;
    try {
      const unread = await this.#o.store.unacked(agent, RESYNC_LIMIT);
      const read: Message[] = [];
      for (const m of unread) {
        const report = local.message(agent, m);
        if (report.sockets > 0 && !report.needsAck) read.push(m);
      }
      if (read.length > 0) this.#ack(agent, read);
      if (unread.length > 0) this.#o.log.info("cluster_resynced", { agent, messages: unread.length });
    } catch (e) {
      this.#o.log.warn("cluster_resync_failed", { agent, error: String(e) });
    }
  }

  // Coalesced: what is written in one task (and while the previous acknowledgement is under way) goes to the store
  // as one `ack` per agent, not one transaction per message (issue 19: ~200 µs of PostgreSQL each).
  #ack(agent: string, messages: Message[]): void {
    let list = this.#toAck.get(agent);
    if (list === undefined) this.#toAck.set(agent, list = []);
    list.push(...messages);
    if (this.#acking === undefined) this.#acking = this.#flushAcks();
  }

  async #flushAcks(): Promise<void> {
    // One microtask first: the rest of this batch of broker messages joins.
    await Promise.resolve();
    try {
      while (this.#toAck.size > 0) {
        const batch = [...this.#toAck];
        this.#toAck.clear();
        await Promise.all(
          batch.map(([agent, messages]) =>
            this.#o.store.ack(agent, messages).catch((e) =>
              this.#o.log.error("ack_failed", { agent, messages: messages.length, error: String(e) })
            )
          ),
        );
      }
    } finally {
      this.#acking = undefined;
    }
  }

  /** Wait until what this node's sessions were written is marked read in the store (before it closes). */
  async drainAcks(): Promise<void> {
    while (this.#acking !== undefined) await this.#acking;
  }

  /** {@link AgentBus.settled}: the batched reads under way are committed. */
  settled(): Promise<void> {
    return this.drainAcks();
  }

  #localDelivery(): Delivery {
    if (this.#local === undefined) throw new Error("cluster node used before the hub was built (pass node.bus)");
    return this.#local;
  }

  // Said once per outage, not once per message.
  #broken(event: string, e: unknown): void {
    if (this.#down || this.#stopped) return;
    this.#down = true;
    this.#o.log.warn(event, {
      node: this.#o.nodeId,
      error: e instanceof Error ? e.message : String(e),
      detail: "delivery to other nodes waits (messages stay unread in the store); this node's sessions go on",
    });
  }

  #healthy(): void {
    if (!this.#down) return;
    this.#down = false;
    this.#o.log.info("cluster_broker_back", { node: this.#o.nodeId });
  }
}
