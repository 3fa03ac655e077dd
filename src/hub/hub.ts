/**
 * The hub: the one accept path every channel hands its users' messages to
 * (commit, route, deliver), and the agents' side of it (sessions connecting,
 * read receipts, replies being kept). It is built from three rooms:
 *
 * - {@link Routing} (`routing.ts`): who owns whom, presence, the assignment policy;
 * - {@link Delivery} (`delivery.ts`): this process's sessions, backlog, backpressure;
 * - an {@link AgentBus} (`bus.ts`): how "deliver this to agent X" gets to X's sessions.
 *
 * The Maps are the hot path; the {@link Store} behind them is written through,
 * so that "accepted" means "kept until the agent has read it": messages for
 * offline agents, and messages an agent has not acknowledged, are read back
 * from the store when the agent connects. Wire formats live elsewhere (channels
 * on the way in, dialects on the way out): here there are only `Message`s and
 * {@link AgentEvent}s.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import { type Logger, silentLogger } from "../core/log.ts";
import type { Message } from "../core/message.ts";
import type {
  ContactRecord,
  InboundState,
  LoadedState,
  MessageRef,
  OutboundState,
  Store,
  StoredMessage,
} from "../store/store.ts";
import { type AgentBus, type AgentBusFactory, LocalBus } from "./bus.ts";
import { type AgentPeer, Delivery } from "./delivery.ts";
import type { AgentEvent } from "./events.ts";
import {
  type Contact,
  type ContactView,
  lastOf,
  recordOf,
  type ReplyWindowOf,
  Routing,
  UNASSIGNED,
} from "./routing.ts";
import { Workflow } from "./workflow.ts";

export type { AgentPeer } from "./delivery.ts";
export type { Contact, ContactView } from "./routing.ts";

/** Limits of the hub; every queue it keeps is bounded. */
export interface HubOptions {
  /** Where everything accepted is kept. */
  store: Store;
  /** Where store failures in the background are reported; default: nowhere. */
  log?: Logger;
  /** The bus to agents' sessions; default: this process's own ({@link LocalBus}). */
  bus?: AgentBusFactory;
  /** Messages waiting for one offline agent (and for "no agent online yet"). */
  maxHeldPerAgent?: number;
  /** Messages waiting across all agents. */
  maxHeldTotal?: number;
  /** Sockets one agent may hold open; the oldest is closed (4000) past it. */
  maxSocketsPerAgent?: number;
  /** Recent inbound ids remembered to drop repeats (WeChat retries) without asking the store. */
  dedupeWindow?: number;
  /** Unacknowledged messages read from the store per page when an agent connects (all pages are sent). */
  redeliverPage?: number;
  /** A socket with more unsent bytes than this is closed (4001); its messages stay unacknowledged. */
  maxBufferedBytes?: number;
  /**
   * A user whose agent has been offline this long goes to an online agent with their waiting messages (a reload
   * or a short network loss keeps them); default 30 s. Nobody online: they wait for their own agent.
   */
  reassignAfterMs?: number;
  /** What each contact's channel allows now (shown with contacts); default: no reply windows. */
  replyWindow?: ReplyWindowOf;
  /** The configured agents (CONFIG_FILE `agents`): contacts can be transferred to them while they are offline. */
  agents?: readonly string[];
  now?: () => number;
}

/** How a channel hands a message over. */
export interface AcceptOptions {
  /** The agent the source asked for (the seed's push names one): it takes the contact. */
  agent?: string;
  /**
   * Its media file is still to be fetched and converted: keep it (state `media`) but deliver it only when
   * {@link Hub.release} says it is ready (seed 004 §3: re-store first, then the URL to the agent).
   */
  holdForMedia?: boolean;
}

/** What happened to an inbound message. */
export interface InboundResult {
  /** `pending`: kept, delivered once its media is ready. */
  status: "delivered" | "queued" | "duplicate" | "pending";
  id: string;
  /** The agent the message is for; "" while no agent is online to take a new user. */
  agent: string;
  /** The contact's id, as agents see it. */
  contact: string;
  /** Sockets the envelope was written to. */
  sockets: number;
}

// The contact row is rewritten with a message when something that matters changed, or after this long (its times
// and unread count may be this stale after a crash; unread is recounted at start anyway).
const CONTACT_SAVE_EVERY_MS = 60_000;

// The snapshot to store with a message: always for a new or moved contact, now and then otherwise.
function snapshot(c: Contact, now: number): ContactRecord | undefined {
  if (c.savedAgent === c.agent && now - (c.savedAt ?? -Infinity) < CONTACT_SAVE_EVERY_MS) return undefined;
  c.savedAt = now;
  c.savedAgent = c.agent;
  return recordOf(c);
}

function storeFailed(m: Message, e: unknown): KefuError {
  return new KefuError(
    "store_failed",
    `cannot keep message ${quote(m.id)}: ${(e as Error).message}; nothing was accepted, try again`,
    503,
  );
}

function keyOf(contact: string, id: string): string {
  return `${contact}\n${id}`;
}

/** Routes messages between users and agents. */
export class Hub {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #delivery: Delivery;
  readonly #bus: AgentBus;
  readonly #routing: Routing;
  /** The workplace's actions on contacts: transfer, resolve, reopen, take, names and notes, search. */
  readonly workflow: Workflow;
  readonly #recent = new Set<string>();
  /** Contacts being moved to another agent (their waiting messages being read): their next messages wait. */
  readonly #moving = new Map<string, Promise<unknown>>();
  /** Keys being committed: a concurrent repeat waits for the outcome. */
  readonly #inflight = new Map<string, Promise<unknown>>();
  /** Messages stored for agents that were offline, per agent (the caps count these). */
  readonly #waiting = new Map<string, number>();
  #waitingTotal = 0;
  /**
   * Contacts whose stored row is behind the Map (a time, the unread count): rows go with a message at most once a
   * minute, so these wait for {@link saveStaleContacts} (a clean stop) or their next snapshot.
   */
  readonly #stale = new Set<Contact>();
  readonly #maxHeldPerAgent: number;
  readonly #maxHeldTotal: number;
  readonly #dedupeWindow: number;
  readonly #redeliverPage: number;

  constructor(options: HubOptions) {
    this.#store = options.store;
    this.#log = options.log ?? silentLogger;
    this.#maxHeldPerAgent = options.maxHeldPerAgent ?? 1000;
    this.#maxHeldTotal = options.maxHeldTotal ?? 100_000;
    this.#dedupeWindow = options.dedupeWindow ?? 100_000;
    this.#redeliverPage = options.redeliverPage ?? 1000;
    this.#delivery = new Delivery({
      store: this.#store,
      log: this.#log,
      maxSocketsPerAgent: options.maxSocketsPerAgent ?? 8,
      maxBufferedBytes: options.maxBufferedBytes ?? 4 << 20,
      redeliverPage: this.#redeliverPage,
      maxLiveWhileSyncing: this.#maxHeldPerAgent,
    });
    this.#bus = (options.bus ?? ((local) => new LocalBus(local)))(this.#delivery);
    this.#routing = new Routing({
      presence: this.#bus,
      reassignAfterMs: options.reassignAfterMs ?? 30_000,
      replyWindow: options.replyWindow,
      now: options.now,
    });
    this.workflow = new Workflow({
      routing: this.#routing,
      store: this.#store,
      bus: this.#bus,
      log: this.#log,
      agents: options.agents,
      saved: (c) => this.#stale.delete(c),
      handOver: (c, from, to) => this.#handOver(c, from, to),
    });
  }

  /** Rebuild the Maps from what the store kept (at start, before serving). */
  restore(state: LoadedState): void {
    this.#routing.restore(state.contacts, state);
    // Unread counts come back; the caps count only what arrives while an agent is offline from now on (what was
    // delivered and not yet acknowledged must not refuse new messages after a restart).
    for (const list of state.unacked.values()) {
      for (const m of list) {
        const c = this.#routing.get(m.contact);
        if (c) c.unread++;
      }
    }
    // A row whose unread count is not what the store's messages say (a crash) is written at the next clean stop.
    for (const r of state.contacts) {
      const c = this.#routing.get(r.id);
      if (c && c.unread !== r.unread) this.#stale.add(c);
    }
    for (const k of state.recentKeys) this.#remember(keyOf(k.contact, k.id));
  }

  /**
   * The accept path: route one message from a user of a channel and keep it. The channel hands it over with
   * `channel`, `account` and `contact` (the user's id in that channel); the hub sets `contact` to the contact's id
   * and `agent` to its owner. A requested agent takes (or moves) the contact; otherwise the contact's owner gets
   * it; a new user goes to the online agent with the fewest contacts. Resolves once the message is committed.
   * Throws `KefuError` 503 when it would have to wait and the queue is full, or the store failed: then nothing is
   * kept, and a retry is welcome.
   */
  async accept(message: Message, options: AcceptOptions = {}): Promise<InboundResult> {
    const account = message.account ?? "";
    let known = this.#routing.find(message.channel, account, message.contact);
    if (known !== undefined) {
      const key = keyOf(known.id, message.id);
      if (this.#recent.has(key)) {
        // A repeat while the first is being committed waits for it: if that commit fails, this one is the retry.
        const pending = this.#inflight.get(key);
        if (pending === undefined || await pending.then(() => true, () => false)) {
          return this.#duplicate(message, known);
        }
      }
      // A move of this user to another agent under way finishes first, so that their messages keep their order.
      const moving = this.#moving.get(known.id);
      // Its failure is the mover's to report (its own message is refused); this one just goes on after it.
      if (moving !== undefined) await moving.catch(() => undefined);
    }
    // Looked up again: the contact may have been created meanwhile (a concurrent first message).
    known = this.#routing.find(message.channel, account, message.contact);
    const { agent, moved, previous } = this.#routing.assign(known, options.agent);
    // The owner is away for good: an online agent takes the user, and the messages that waited for the owner.
    let waiting: StoredMessage[] = [];
    if (moved) {
      const id = known!.id;
      // Read before anything changes: if the store fails, nothing was taken and WeChat's retry starts over.
      const read = this.#store.unackedOf(id, this.#maxHeldPerAgent + this.#redeliverPage);
      this.#moving.set(id, read);
      try {
        waiting = await read;
      } catch (e) {
        throw storeFailed(message, e);
      } finally {
        if (this.#moving.get(id) === read) this.#moving.delete(id);
      }
    }
    const held = options.holdForMedia === true;
    const online = !held && agent !== UNASSIGNED && this.#bus.isOnline(agent);
    if (!online && !held) this.#checkRoom(agent);

    const contact = this.#routing.own(message, known, agent);
    message.contact = contact.id;
    message.agent = agent;
    const key = keyOf(contact.id, message.id);
    this.#remember(key);
    // What this message changes in the contact, kept to undo for a message not kept after all (#unwrite).
    const prevLast = contact.last;
    const prevAwaiting = contact.awaiting;
    const prevMessageTime = contact.lastMessageTime;
    const prevInboundTime = contact.lastInboundTime;
    contact.lastMessageTime = contact.lastInboundTime = message.sendTime;
    contact.unread++;
    contact.last = lastOf(message);
    // A user's message waits for a reply; a WeChat event (a follow, a menu click) is not one to answer.
    if (message.type !== "event") contact.awaiting = true;
    // The user's message reopens a resolved conversation: the row goes with this message.
    const reopened = this.workflow.userWrote(contact);
    if (reopened) contact.savedAt = undefined;
    // On the socket before the commit, so the agent sees it at once; should the commit fail, WeChat's
    // retry brings it again and the page drops the repeat by id.
    let state: InboundState = held ? "media" : "accepted";
    let sockets = 0;
    let waitingRead = false;
    if (online) {
      let needsAck = false;
      for (const m of waiting) needsAck = this.#bus.deliver(agent, m).needsAck || needsAck;
      waitingRead = waiting.length > 0 && !needsAck;
      const d = this.#bus.deliver(agent, message);
      sockets = d.sockets;
      if (sockets > 0 && !d.needsAck) state = "acked";
    }
    if (moved) {
      const left = Math.max(0, this.heldFor(previous) - waiting.length);
      this.#waitingTotal -= this.heldFor(previous) - left;
      this.#waiting.set(previous, left);
    }
    const record = snapshot(contact, Date.now());
    if (record === undefined) this.#stale.add(contact);
    else this.#stale.delete(contact);
    const saving = this.#store.saveInbound(message, record, state);
    this.#inflight.set(key, saving);
    let saved: "stored" | "duplicate";
    try {
      saved = await saving;
    } catch (e) {
      this.#recent.delete(key);
      contact.unread--;
      this.#unwrite(contact, message, reopened, prevLast, prevAwaiting, prevMessageTime, prevInboundTime);
      contact.savedAt = undefined;
      this.#stale.add(contact);
      throw storeFailed(message, e);
    } finally {
      this.#inflight.delete(key);
    }
    // Sockets without read receipts read what was written to them; the contact row now names their agent.
    if (waitingRead) this.#background("ack_failed", this.#store.ack(agent, waiting), { agent });
    if (state === "acked") contact.unread--;
    if (state === "acked" || saved === "duplicate") this.#stale.add(contact);
    if (saved === "duplicate") {
      if (state !== "acked") contact.unread--;
      this.#unwrite(contact, message, reopened, prevLast, prevAwaiting, prevMessageTime, prevInboundTime);
      contact.savedAt = undefined;
      return this.#duplicate(message, contact);
    }
    if (reopened) {
      this.#bus.send(agent, { kind: "contact", action: "reopened", contact: this.#routing.view(contact), by: "" });
    }
    // A user waiting in the queue wrote again: every agent's list shows it.
    if (agent === UNASSIGNED && contact.status === "queued") {
      const event = { kind: "contact", action: "queued", contact: this.#routing.view(contact), by: "" } as const;
      for (const a of this.#bus.online()) this.#bus.send(a, event);
    }
    if (sockets > 0) return { status: "delivered", id: message.id, agent, contact: contact.id, sockets };
    if (held) return { status: "pending", id: message.id, agent, contact: contact.id, sockets: 0 };
    this.#waiting.set(agent, (this.#waiting.get(agent) ?? 0) + 1);
    this.#waitingTotal++;
    return { status: "queued", id: message.id, agent, contact: contact.id, sockets: 0 };
  }

  /**
   * A message kept with `holdForMedia` is ready: its `media` and `extra` now say where its file is (or why there is
   * none). Deliver it to its contact's agent now, and record that. Resolves once committed; false when it had been
   * released already (nothing is delivered twice).
   */
  async release(message: Message): Promise<boolean> {
    const contact = this.#routing.get(message.contact);
    const agent = contact?.agent ?? UNASSIGNED;
    message.agent = agent;
    let state: InboundState = "accepted";
    let sockets = 0;
    if (agent !== UNASSIGNED && this.#bus.isOnline(agent)) {
      const d = this.#bus.deliver(agent, message);
      sockets = d.sockets;
      if (sockets > 0 && !d.needsAck) state = "acked";
    }
    const done = await this.#store.finishMedia(message, message.media, message.extra, state);
    if (!done) return false;
    if (state === "acked" && contact) {
      contact.unread = Math.max(0, contact.unread - 1);
      this.#stale.add(contact);
    }
    if (sockets === 0) {
      this.#waiting.set(agent, (this.#waiting.get(agent) ?? 0) + 1);
      this.#waitingTotal++;
    }
    return true;
  }

  /**
   * An agent asks for a failed media file to be tried again: the message waits for its media once more (and is
   * delivered again, with its file or a new reason, by {@link release}). Throws `KefuError` 404 when the agent has no
   * such message whose media failed.
   */
  async reopenMedia(agent: string, ref: MessageRef): Promise<StoredMessage> {
    this.ownedContact(agent, ref.contact, "retry the media of");
    const m = await this.#store.reopenMedia(ref, agent);
    if (m === undefined) {
      throw new KefuError(
        "not_found",
        `cannot retry the media of message ${quote(ref.id)}: no message of contact ${
          quote(ref.contact)
        } whose file failed`,
        404,
      );
    }
    return m;
  }

  /** Whether a message of one of `agent`'s contacts uses the stored media file named by either of `paths`. */
  mediaOwnedBy(paths: readonly [string, string], agent: string): Promise<boolean> {
    return this.#store.mediaOwnedBy(paths, agent);
  }

  /**
   * An agent's session is open: register it, give the agent the users who wrote while no agent was online, then
   * send what it has not acknowledged, oldest first, followed by whatever came in meanwhile.
   */
  async connect(agent: string, peer: AgentPeer, options: { acks?: boolean } = {}): Promise<void> {
    this.#delivery.register(agent, peer, options.acks ?? false);
    this.#routing.connected(agent);
    try {
      await this.#takeUnassigned(agent);
    } catch (e) {
      this.disconnect(agent, peer);
      throw e;
    }
    this.#release(agent);
    await this.#delivery.catchUp(agent, peer);
  }

  /** An agent's session closed. Its contacts stay its own; their messages wait in the store until it is back. */
  disconnect(agent: string, peer: AgentPeer): void {
    this.#delivery.unregister(agent, peer);
    if (!this.#delivery.isOnline(agent)) this.#routing.disconnected(agent);
  }

  /**
   * The agent read these messages (read receipt): they are not sent again. A ref with contact "" names any
   * contact. The session that sent it (`peer`) acknowledges from now on.
   */
  async ack(agent: string, refs: MessageRef[], peer?: AgentPeer): Promise<number> {
    if (peer !== undefined) this.#delivery.acknowledges(peer);
    const done = await this.#store.ack(agent, refs);
    // Unread counts follow, also for receipts that named the message only (seed 003).
    for (const r of done) {
      const c = this.#routing.get(r.contact);
      if (c && c.agent === agent && c.unread > 0) {
        c.unread--;
        this.#stale.add(c);
      }
    }
    return done.length;
  }

  /**
   * The agent's contact `contact`; throws `KefuError` 404 when there is none, 403 when it is another agent's.
   * `action` names what was refused ("reply to", "read the history of").
   */
  ownedContact(agent: string, contact: string, action = "reply to"): Contact {
    return this.#routing.ownedBy(agent, contact, action);
  }

  /**
   * Accept an agent's reply: fills in channel, account and company from the contact, which it answers. Throws
   * `KefuError` (403/404) when the contact is not this agent's.
   */
  reply(agent: string, message: Message): Contact {
    const contact = this.ownedContact(agent, message.contact);
    message.agent = agent;
    message.channel = contact.channel;
    message.company ||= contact.company;
    message.account = contact.account;
    contact.lastMessageTime = message.sendTime;
    contact.last = lastOf(message);
    contact.awaiting = false;
    // Written with the reply by keepReply.
    this.#stale.add(contact);
    return contact;
  }

  /** Keep an accepted reply (state `queued`) before it goes out; throws `KefuError` 503 when the store fails. */
  async keepReply(message: Message): Promise<void> {
    const c = this.#routing.get(message.contact);
    if (c) this.#stale.delete(c);
    try {
      await this.#store.saveOutbound(message, "queued", c && recordOf(c));
    } catch (e) {
      if (c) this.#stale.add(c);
      throw new KefuError(
        "store_failed",
        `cannot keep reply ${quote(message.id)}: ${(e as Error).message}; it was not sent, try again`,
        503,
      );
    }
  }

  /** Record how a reply ended (sent, or failed and why). */
  replyState(message: MessageRef, state: OutboundState, detail = ""): Promise<boolean> {
    return this.#store.setOutboundState(message, state, detail);
  }

  /** One page of a conversation of the agent's own contact (or of a user waiting for an agent), newest first. */
  history(agent: string, contact: string, before: string | undefined, limit: number): Promise<StoredMessage[]> {
    // A user waiting in the queue: any agent may read the conversation before taking them.
    if (this.#routing.get(contact)?.agent !== UNASSIGNED) this.ownedContact(agent, contact, "read the history of");
    return this.#store.history(contact, { before, limit });
  }

  /**
   * Write the contacts whose stored row is behind (last message time, unread count): on the hot path a row is
   * rewritten with a message at most once a minute, so a clean stop calls this before the store closes, and a restart
   * lists the contacts with their right times and order. Answers how many rows were written.
   */
  async saveStaleContacts(): Promise<number> {
    const stale = [...this.#stale];
    this.#stale.clear();
    try {
      await Promise.all(stale.map((c) => this.#store.upsertContact(recordOf(c))));
    } catch (e) {
      // Still behind: a later call tries again.
      for (const c of stale) this.#stale.add(c);
      throw e;
    }
    return stale.length;
  }

  /** Send an event to every session of an agent; answers how many. */
  notify(agent: string, event: AgentEvent): number {
    return this.#bus.send(agent, event);
  }

  /** The contacts of one agent, most recent first (the users waiting for an agent: {@link Workflow.queue}). */
  contactsOf(agent: string): ContactView[] {
    if (agent === UNASSIGNED) return [];
    return this.#routing.contactsOf(agent);
  }

  /** Whether an agent has at least one session open. */
  isOnline(agent: string): boolean {
    return this.#bus.isOnline(agent);
  }

  /** Messages waiting for one offline agent ("" = waiting for any agent). */
  heldFor(agent: string): number {
    return this.#waiting.get(agent) ?? 0;
  }

  /** Send the heartbeat to every session of this process. */
  heartbeat(): void {
    this.#delivery.broadcast({ kind: "heartbeat" });
  }

  /** Close every session of this process (shutdown). */
  closeAll(code: number, reason: string): void {
    this.#delivery.closeAll(code, reason);
  }

  /** Counters for `/healthz`. */
  stats(): { agents_online: number; sockets: number; contacts: number; held: number } {
    return { ...this.#delivery.stats(), contacts: this.#routing.size, held: this.#waitingTotal };
  }

  // The users who wrote while nobody was online go to the first agent who connects, in memory as in the store.
  async #takeUnassigned(agent: string): Promise<void> {
    const moved = this.#routing.unassigned();
    if (moved.length === 0) return;
    for (const c of moved) this.#routing.move(c, agent);
    try {
      await Promise.all(moved.map((c) => this.#store.upsertContact(snapshot(c, Date.now())!)));
    } catch (e) {
      // Back to waiting for an agent, so that the next connect tries again.
      for (const c of moved) {
        this.#routing.move(c, UNASSIGNED);
        c.savedAt = undefined;
        this.#stale.add(c);
      }
      throw e;
    }
    this.#release(UNASSIGNED);
  }

  // A contact went from `from` to `to` by hand (a transfer, the queue): the messages held for `from` that are this
  // contact's are counted for `to` now (while it is offline) or delivered to it.
  async #handOver(c: Contact, from: string, to: string): Promise<void> {
    const online = to !== UNASSIGNED && this.#bus.isOnline(to);
    const held = this.heldFor(from);
    if (held === 0 && !online) return;
    const waiting = await this.#store.unackedOf(c.id, this.#maxHeldPerAgent + this.#redeliverPage);
    const moved = Math.min(held, waiting.length);
    if (moved > 0) {
      this.#waiting.set(from, held - moved);
      this.#waitingTotal -= moved;
    }
    if (!online) {
      if (waiting.length > 0) {
        this.#waiting.set(to, this.heldFor(to) + waiting.length);
        this.#waitingTotal += waiting.length;
      }
      return;
    }
    let needsAck = false;
    let sockets = 0;
    for (const m of waiting) {
      m.agent = to;
      const d = this.#bus.deliver(to, m);
      needsAck = d.needsAck || needsAck;
      sockets = Math.max(sockets, d.sockets);
    }
    // Sockets without read receipts read what was written to them: the unread count goes down by what that acked.
    if (waiting.length > 0 && sockets > 0 && !needsAck) {
      const done = await this.#store.ack(to, waiting);
      c.unread = Math.max(0, c.unread - done.length);
      this.#stale.add(c);
    }
  }

  // A message that was not kept after all (its commit failed, or the store knew it): the contact as it was, unless a
  // later message moved it on meanwhile.
  #unwrite(
    c: Contact,
    m: Message,
    reopened: boolean,
    last: Contact["last"],
    awaiting: boolean,
    lastMessageTime: number,
    lastInboundTime: number,
  ): void {
    if (reopened) c.status = "resolved";
    if (c.last?.id !== m.id) return;
    c.last = last;
    c.awaiting = awaiting;
    c.lastMessageTime = lastMessageTime;
    c.lastInboundTime = lastInboundTime;
  }

  #duplicate(m: Message, c: Contact): InboundResult {
    return { status: "duplicate", id: m.id, agent: c.agent, contact: c.id, sockets: 0 };
  }

  #release(agent: string): void {
    this.#waitingTotal -= this.#waiting.get(agent) ?? 0;
    this.#waiting.delete(agent);
  }

  #remember(key: string): void {
    this.#recent.add(key);
    if (this.#recent.size > this.#dedupeWindow) {
      this.#recent.delete(this.#recent.values().next().value!);
    }
  }

  #checkRoom(agent: string): void {
    const n = this.heldFor(agent);
    if (n >= this.#maxHeldPerAgent || this.#waitingTotal >= this.#maxHeldTotal) {
      const who = agent === UNASSIGNED ? "no agent online" : `agent ${quote(agent)} offline`;
      throw new KefuError(
        "queue_full",
        `cannot hold the message (${who}): ${n} held for it, ${this.#waitingTotal} in all; try again later`,
        503,
      );
    }
  }

  // A write nobody waits for: its failure is logged, never swallowed.
  #background(event: string, p: Promise<unknown>, fields: Record<string, unknown>): void {
    p.catch((e) => this.#log.error(event, { ...fields, error: String(e) }));
  }
}
