/**
 * Delivery: the agent sessions of this process, the backlog a connecting
 * session is caught up with, backpressure, and read receipts. Sessions are
 * {@link AgentPeer}s (a WebSocket with its dialect), so it is tested without
 * sockets. Events are encoded once per dialect per delivery.
 *
 * @module
 */

import type { Logger } from "../core/log.ts";
import type { Message } from "../core/message.ts";
import { Close } from "../envelope/protocol.ts";
import type { MessageRef, Store } from "../store/store.ts";
import type { AgentEvent, EventEncoder } from "./events.ts";
import { observeDelivered } from "../metrics/metrics.ts";

/** What delivery needs of an agent's connection: a `WebSocket` and the dialect it speaks. */
export interface AgentPeer {
  readonly readyState: number;
  /** Bytes queued and not yet sent: a stalled reader shows here. */
  readonly bufferedAmount: number;
  /** How events are written for this peer. */
  readonly dialect: EventEncoder;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** What became of one message handed to an agent's sessions. */
export interface DeliveryReport {
  /** Sessions it was written (or queued behind a backlog) to. */
  sockets: number;
  /** A session that sends read receipts got it: it stays unread until one comes. */
  needsAck: boolean;
}

/** Options for {@link Delivery}. */
export interface DeliveryOptions {
  store: Store;
  log: Logger;
  /** Sessions one agent may hold open; the oldest is closed (4000) past it. */
  maxSocketsPerAgent: number;
  /** A session with more unsent bytes than this is closed (4001); its messages stay unread. */
  maxBufferedBytes: number;
  /** Unread messages read from the store per page when a session connects (all pages are sent). */
  redeliverPage: number;
  /** New messages a session may have waiting behind its backlog before it is closed (4001). */
  maxLiveWhileSyncing: number;
}

const OPEN = 1;
// How long a backlog page sent to a session without read receipts may take to leave this process and count as read.
const BACKLOG_DRAIN_MS = 5000;
// How long a session remembers what its backlog sent: a message committed before the backlog was read may still come
// live after it (from another node, through the broker: tests/cluster/rolling_restart_test.ts saw it under load).
const BACKLOG_REMEMBERED_MS = 30_000;

// A pause that ends early (its timer cleared) when `signal` aborts: a shutdown leaves no timer behind.
function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}

/** The sessions of this process. */
export class Delivery {
  readonly #o: DeliveryOptions;
  readonly #sessions = new Map<string, Set<AgentPeer>>();
  /** Sessions being caught up with their backlog: live messages wait here meanwhile. */
  readonly #syncing = new Map<AgentPeer, Message[]>();
  /**
   * Sessions that do not send read receipts (the seed's protocol): a message written to one counts as read, except
   * what is still in its send buffer, listed here, which is unread again if the session is closed for not reading.
   */
  readonly #legacy = new Map<AgentPeer, MessageRef[]>();
  /** What each session's backlog sent (contact, id), until when: not written to it again as a live message. */
  readonly #backlogSent = new Map<AgentPeer, { keys: Set<string>; until: number }>();

  /** Sessions of supervisors watching every conversation (issue 22): they also get `watch` events. */
  readonly #watchers = new Set<AgentPeer>();

  /** Aborted by {@link closeAll}: waits for a socket to drain end at once. */
  readonly #closing = new AbortController();

  constructor(options: DeliveryOptions) {
    this.#o = options;
  }

  /** Add a session (closing the agent's oldest past the limit); it gets live messages only after {@link catchUp}. */
  register(agent: string, peer: AgentPeer, acks: boolean): void {
    let peers = this.#sessions.get(agent);
    if (peers === undefined) this.#sessions.set(agent, peers = new Set());
    const max = this.#o.maxSocketsPerAgent;
    if (peers.size >= max) {
      const oldest = peers.values().next().value!;
      this.unregister(agent, oldest);
      oldest.close(Close.replaced, `replaced: more than ${max} sockets for agent ${agent}`);
    }
    peers.add(peer);
    if (!acks) this.#legacy.set(peer, []);
    this.#syncing.set(peer, []);
  }

  /**
   * Send the session what the agent has not read, oldest first, page by page (each after the socket drained half
   * its buffer), then whatever came in meanwhile; from then on it gets messages live.
   */
  async catchUp(agent: string, peer: AgentPeer): Promise<void> {
    const live = this.#syncing.get(peer);
    if (live === undefined) return;
    const { store, redeliverPage, maxBufferedBytes } = this.#o;
    const sent = new Set<string>();
    try {
      let after = 0;
      for (let first = true;; first = false) {
        const page = await store.unacked(agent, redeliverPage, after);
        if (peer.readyState !== OPEN) return;
        for (const m of page) sent.add(`${m.contact}\n${m.id}`);
        this.#sendBacklog(agent, peer, page, first);
        if (page.length < redeliverPage) break;
        after = page[page.length - 1].seq;
        while (peer.readyState === OPEN && peer.bufferedAmount > maxBufferedBytes / 2) {
          await delay(10, this.#closing.signal);
        }
      }
      if (peer.readyState !== OPEN) return;
      this.#sendBacklog(agent, peer, live.filter((m) => !sent.has(`${m.contact}\n${m.id}`)), "live");
    } finally {
      this.#syncing.delete(peer);
      if (sent.size > 0 && peer.readyState === OPEN) {
        this.#backlogSent.set(peer, { keys: sent, until: Date.now() + BACKLOG_REMEMBERED_MS });
      }
    }
  }

  // Whether the session's backlog already sent `m` (forgotten once the time is up).
  #sentInBacklog(peer: AgentPeer, m: Message): boolean {
    const sent = this.#backlogSent.get(peer);
    if (sent === undefined) return false;
    if (Date.now() > sent.until) {
      this.#backlogSent.delete(peer);
      return false;
    }
    return sent.keys.has(`${m.contact}\n${m.id}`);
  }

  /** Remove a session; true when it was the agent's last. */
  unregister(agent: string, peer: AgentPeer): boolean {
    this.#syncing.delete(peer);
    this.#watchers.delete(peer);
    this.#backlogSent.delete(peer);
    // What a session without read receipts still had in its buffer did not reach the agent: unread again. Known only
    // while it is open (Deno's bufferedAmount reads 0 once it is closing): a drain's close is covered by closeAll.
    const unflushed = this.#legacy.get(peer);
    if (unflushed !== undefined && unflushed.length > 0 && peer.readyState === OPEN && peer.bufferedAmount > 0) {
      this.#o.store.requeue(unflushed).catch((e) =>
        this.#o.log.error("requeue_failed", { agent, messages: unflushed.length, error: String(e) })
      );
    }
    this.#legacy.delete(peer);
    const peers = this.#sessions.get(agent);
    if (peers?.delete(peer) && peers.size === 0) {
      this.#sessions.delete(agent);
      return true;
    }
    return false;
  }

  /** The session sends read receipts from now on. */
  acknowledges(peer: AgentPeer): void {
    this.#legacy.delete(peer);
  }

  /**
   * Write a user's message to every session of the agent; a session still catching up gets it after its backlog, a
   * stalled one is closed (its messages stay unread, so they come again when it reconnects).
   */
  message(agent: string, m: Message): DeliveryReport {
    const peers = this.#sessions.get(agent);
    if (peers === undefined) return { sockets: 0, needsAck: false };
    let encoder: EventEncoder | undefined;
    let data = "";
    let sockets = 0;
    let needsAck = false;
    for (const p of peers) {
      if (p.readyState !== OPEN) continue;
      const live = this.#syncing.get(p);
      const unflushed = this.#legacy.get(p);
      if (live !== undefined && live.length >= this.#o.maxLiveWhileSyncing) {
        // Catching up slower than messages come: the messages are kept (unread) for its next connect.
        this.unregister(agent, p);
        p.close(Close.tooSlow, `too slow: ${live.length} new messages arrived while catching up; reconnect`);
        continue;
      } else if (live !== undefined) {
        live.push(m);
      } else if (this.#sentInBacklog(p, m)) {
        // It has it already (counted as delivered to it, as then).
      } else if (p.bufferedAmount > this.#o.maxBufferedBytes) {
        // Dropped at once: a peer that does not read will not finish the close handshake either.
        this.unregister(agent, p);
        p.close(Close.tooSlow, `too slow: over ${this.#o.maxBufferedBytes} bytes unsent; reconnect to get the rest`);
        continue;
      } else {
        // What went out before the buffer last emptied has left this process; the rest may be lost with the socket.
        if (unflushed !== undefined) {
          if (p.bufferedAmount === 0) unflushed.length = 0;
          unflushed.push({ contact: m.contact, id: m.id });
        }
        if (p.dialect !== encoder) {
          encoder = p.dialect;
          data = encoder.encode({ kind: "message", message: m });
        }
        p.send(data);
      }
      if (unflushed === undefined || live !== undefined) needsAck = true;
      sockets++;
    }
    if (sockets > 0) observeDelivered(m, "live");
    return { sockets, needsAck };
  }

  /** Send an event (not a user's message) to every open session of an agent; answers how many. */
  send(agent: string, event: AgentEvent): number {
    const peers = this.#sessions.get(agent);
    if (peers === undefined) return 0;
    return this.#write(peers, event);
  }

  /** A registered session also gets what happens in every conversation (`watch` events) until it closes. */
  watch(peer: AgentPeer): void {
    this.#watchers.add(peer);
  }

  /** Send a `watch` event to this process's watching sessions; answers how many. */
  watched(event: AgentEvent): number {
    if (this.#watchers.size === 0) return 0;
    // Every conversation is a lot: a watcher that does not read is closed (its page reads history again on connect).
    for (const p of this.#watchers) {
      if (p.bufferedAmount <= this.#o.maxBufferedBytes) continue;
      this.#watchers.delete(p);
      p.close(Close.tooSlow, `too slow: over ${this.#o.maxBufferedBytes} bytes unsent while watching; reconnect`);
    }
    return this.#write(this.#watchers, event);
  }

  /** Send an event to every open session (the heartbeat). */
  broadcast(event: AgentEvent): void {
    for (const peers of this.#sessions.values()) this.#write(peers, event);
  }

  /**
   * Whether a message written to the agent now is read once written: it has sessions, all open, none sending read
   * receipts and none still catching up.
   */
  readsOnWrite(agent: string): boolean {
    const peers = this.#sessions.get(agent);
    if (peers === undefined) return false;
    for (const p of peers) {
      if (p.readyState !== OPEN || !this.#legacy.has(p) || this.#syncing.has(p)) return false;
    }
    return true;
  }

  /** Whether an agent has at least one session here. */
  isOnline(agent: string): boolean {
    return this.#sessions.has(agent);
  }

  /** The agents with sessions here. */
  agents(): IterableIterator<string> {
    return this.#sessions.keys();
  }

  /**
   * Close every session (shutdown); resolves to the sessions closed. A session without read receipts that still has
   * bytes to send is given up to `flushMs` to send them (it gets nothing new meanwhile), then closed once what it
   * still holds is unread again in the store: its agent reconnects (elsewhere) as soon as the close arrives, and reads
   * its backlog then.
   */
  async closeAll(
    code: number,
    reason: string,
    flushMs = 0,
    settled: () => Promise<void> = () => Promise.resolve(),
  ): Promise<AgentPeer[]> {
    this.#closing.abort();
    const closed: AgentPeer[] = [];
    const held: AgentPeer[] = [];
    const unread = new Map<AgentPeer, MessageRef[]>();
    for (const peers of this.#sessions.values()) {
      for (const p of peers) {
        closed.push(p);
        // Read before the close: once a socket is closing, Deno's bufferedAmount reads 0 whatever it still holds.
        const unflushed = this.#legacy.get(p);
        this.#legacy.delete(p);
        if (unflushed !== undefined && unflushed.length > 0 && p.readyState === OPEN && p.bufferedAmount > 0) {
          held.push(p);
          unread.set(p, unflushed);
        } else p.close(code, reason);
      }
    }
    this.#sessions.clear();
    this.#syncing.clear();
    this.#watchers.clear();
    this.#backlogSent.clear();
    if (held.length === 0) return closed;
    // Most often a write is merely under way: what leaves has been read (the rule), and nothing is requeued, so no
    // read marked for it by another path (a node's receipt for what it wrote) can land after the requeue.
    const stuck = () => held.some((p) => p.readyState === OPEN && p.bufferedAmount > 0);
    for (let waited = 0; waited < flushMs && stuck(); waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // No more writes reach these sessions (they are no longer listed): what they hold is all there is to requeue.
    const left = held.filter((p) => p.readyState === OPEN && p.bufferedAmount > 0).map((p) => unread.get(p)!);
    if (left.length > 0) {
      // A read marked for one of them by another path (a node's batched receipt for what it wrote) commits first.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([settled().catch(() => {}), new Promise((resolve) => timer = setTimeout(resolve, 2_000))]);
      clearTimeout(timer);
      await this.#o.store.requeue(left.flat()).catch((e) =>
        this.#o.log.error("requeue_failed", { messages: left.flat().length, error: String(e) })
      );
    }
    for (const p of held) p.close(code, reason);
    return closed;
  }

  /** Counters for `/healthz`. */
  stats(): { agents_online: number; sockets: number } {
    let sockets = 0;
    for (const peers of this.#sessions.values()) sockets += peers.size;
    return { agents_online: this.#sessions.size, sockets };
  }

  #write(peers: Set<AgentPeer>, event: AgentEvent): number {
    let encoder: EventEncoder | undefined;
    let data = "";
    let n = 0;
    for (const p of peers) {
      if (p.readyState !== OPEN) continue;
      if (p.dialect !== encoder) {
        encoder = p.dialect;
        data = encoder.encode(event);
      }
      if (data === "") continue;
      p.send(data);
      n++;
    }
    return n;
  }

  // Send part of a connecting session's backlog. A session without read receipts has read it once it has left this
  // process, like any message; when not yet, it stays unread and comes again on the next connect (at least once),
  // rather than wait here on a timer.
  // The first page goes to the dialect even when empty (a dialect may say "nothing unread" on connect); what came
  // in while catching up goes as live messages.
  #sendBacklog(agent: string, peer: AgentPeer, messages: Message[], page: boolean | "live"): void {
    if (messages.length === 0 && page !== true) return;
    if (page === "live") { for (const m of messages) peer.send(peer.dialect.encode({ kind: "message", message: m })); }
    else for (const frame of peer.dialect.backlog(messages)) peer.send(frame);
    if (page !== "live") { for (const m of messages) observeDelivered(m, "backlog"); }
    if (messages.length === 0) return;
    if (!this.#legacy.has(peer)) return;
    // Not waited for: the session takes live messages as soon as its backlog is written.
    this.#readOnceSent(agent, peer, messages).catch((e) =>
      this.#o.log.error("ack_failed", { agent, messages: messages.length, error: String(e) })
    );
  }

  // A session without read receipts has read what left this process: wait (a little) for the socket to take it. A
  // socket closed with nothing left in its buffer had handed everything on; one closed with bytes left did not, and
  // they stay unread.
  async #readOnceSent(agent: string, peer: AgentPeer, messages: Message[]): Promise<void> {
    // Most often it has left already: marked read in this very turn, before anything can move the contact. An empty
    // buffer counts only on an open socket: once it is closing, Deno's bufferedAmount reads 0 whatever it still holds.
    for (let waited = 0; peer.readyState === OPEN && waited < BACKLOG_DRAIN_MS; waited += 10) {
      if (peer.bufferedAmount === 0) return void await this.#o.store.ack(agent, messages);
      await delay(10, this.#closing.signal);
    }
  }
}
