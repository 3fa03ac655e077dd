/**
 * The hub: who is online, which agent owns which user (the seed's contact
 * list, many users to one agent), and the way every message takes to its
 * agent. The Maps here are the hot path; the {@link Store} behind them is
 * written through, so that "accepted" means "kept until the agent has read it":
 * messages for offline agents, and messages an agent has not acknowledged,
 * are read back from the store when the agent connects.
 *
 * Transport-free: agents are `AgentPeer`s, so it is tested without sockets.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import { encodeEnvelope } from "../envelope/codec.ts";
import type { Channel, Message } from "../core/message.ts";
import { Close, HEARTBEAT } from "../envelope/protocol.ts";
import type {
  ContactRecord,
  InboundState,
  LoadedState,
  MessageRef,
  OutboundState,
  Store,
  StoredMessage,
} from "../store/store.ts";

/** What the hub needs of an agent's connection; a `WebSocket` is one. */
export interface AgentPeer {
  readonly readyState: number;
  /** Bytes queued and not yet sent: a stalled reader shows here. */
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** One WeChat user and the agent who owns them. */
export interface Contact {
  id: string;
  agent: string;
  name: string;
  avatar: string;
  company: string;
  channel: Channel;
  /** The Official Account the user writes to ("" for messages pushed over HTTP). */
  account: string;
  /** Epoch seconds of the last message either way. */
  lastMessageTime: number;
  /** Epoch seconds of the user's last message. */
  lastInboundTime: number;
  /** The user's messages the agent has not acknowledged. */
  unread: number;
  /** Epoch ms the store last got this contact, and the agent it had then. */
  savedAt?: number;
  savedAgent?: string;
}

/** Limits of the hub; every queue it keeps is bounded. */
export interface HubOptions {
  /** Where everything accepted is kept. */
  store: Store;
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
  now?: () => number;
}

/** What happened to an inbound message. */
export interface InboundResult {
  status: "delivered" | "queued" | "duplicate";
  id: string;
  /** The agent the message is for; "" while no agent is online to take a new user. */
  agent: string;
  contact: string;
  /** Sockets the envelope was written to. */
  sockets: number;
}

/** A contact as the contacts endpoint lists it. */
export interface ContactView {
  contact_id: string;
  name: string;
  avatar: string;
  company_id: string;
  last_message_time: number;
  last_inbound_time: number;
  unread: number;
}

const OPEN = 1;
const UNASSIGNED = "";
// The contact row is rewritten with a message when something that matters changed, or after this long (its times
// and unread count may be this stale after a crash; unread is recounted at start anyway).
const CONTACT_SAVE_EVERY_MS = 60_000;

function record(c: Contact): ContactRecord {
  return {
    id: c.id,
    agent: c.agent,
    name: c.name,
    avatar: c.avatar,
    company: c.company,
    account: c.account,
    channel: c.channel,
    lastMessageTime: c.lastMessageTime,
    lastInboundTime: c.lastInboundTime,
    unread: c.unread,
  };
}

// The snapshot to store with a message: always for a new or moved contact, now and then otherwise.
function snapshot(c: Contact, now: number): ContactRecord | undefined {
  if (c.savedAgent === c.agent && now - (c.savedAt ?? -Infinity) < CONTACT_SAVE_EVERY_MS) return undefined;
  c.savedAt = now;
  c.savedAgent = c.agent;
  return record(c);
}

function storeFailed(m: Message, e: unknown): KefuError {
  return new KefuError(
    "store_failed",
    `cannot keep message ${quote(m.id)}: ${(e as Error).message}; nothing was accepted, try again`,
    503,
  );
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function keyOf(contact: string, id: string): string {
  return `${contact}\n${id}`;
}

/** Routes messages between WeChat users and agents. */
export class Hub {
  readonly #store: Store;
  readonly #agents = new Map<string, Set<AgentPeer>>();
  /** Sockets being caught up with their backlog: live messages wait here meanwhile. */
  readonly #syncing = new Map<AgentPeer, Message[]>();
  /**
   * Sockets that do not send read receipts (the seed's protocol): a message written to one counts as read, except
   * what is still in its send buffer, listed here, which is unread again if the socket is closed for not reading.
   */
  readonly #legacy = new Map<AgentPeer, MessageRef[]>();
  readonly #contacts = new Map<string, Contact>();
  /** agent → its contacts; UNASSIGNED holds users who wrote while no agent was online. */
  readonly #owned = new Map<string, Set<string>>();
  readonly #recent = new Set<string>();
  /** Users being moved to another agent (their waiting messages being read): their next messages wait. */
  readonly #moving = new Map<string, Promise<unknown>>();
  /** Keys being committed: a concurrent repeat waits for the outcome. */
  readonly #inflight = new Map<string, Promise<unknown>>();
  /** Messages stored for agents that were offline, per agent (the caps count these). */
  readonly #waiting = new Map<string, number>();
  #waitingTotal = 0;
  readonly #maxHeldPerAgent: number;
  readonly #maxHeldTotal: number;
  readonly #maxSockets: number;
  readonly #dedupeWindow: number;
  readonly #redeliverPage: number;
  readonly #maxBuffered: number;
  readonly #reassignAfter: number;
  readonly #now: () => number;
  /** agent → epoch ms its last socket closed (or kefu started, for agents known from the store). */
  readonly #offlineSince = new Map<string, number>();
  readonly #started: number;

  constructor(options: HubOptions) {
    this.#reassignAfter = options.reassignAfterMs ?? 30_000;
    this.#now = options.now ?? Date.now;
    this.#started = this.#now();
    this.#store = options.store;
    this.#maxHeldPerAgent = options.maxHeldPerAgent ?? 1000;
    this.#maxHeldTotal = options.maxHeldTotal ?? 100_000;
    this.#maxSockets = options.maxSocketsPerAgent ?? 8;
    this.#dedupeWindow = options.dedupeWindow ?? 100_000;
    this.#redeliverPage = options.redeliverPage ?? 1000;
    this.#maxBuffered = options.maxBufferedBytes ?? 4 << 20;
  }

  /** Rebuild the Maps from what the store kept (at start, before serving). */
  restore(state: LoadedState): void {
    for (const c of state.contacts) {
      const contact: Contact = { ...c, unread: 0, savedAt: Date.now(), savedAgent: c.agent };
      this.#contacts.set(c.id, contact);
      this.#index(contact.agent, c.id);
    }
    // Unread counts come back; the caps count only what arrives while an agent is offline from now on (what was
    // delivered and not yet acknowledged must not refuse new messages after a restart).
    for (const list of state.unacked.values()) {
      for (const m of list) {
        const c = this.#contacts.get(m.contact);
        if (c) c.unread++;
      }
    }
    for (const k of state.recentKeys) this.#remember(keyOf(k.contact, k.id));
  }

  /**
   * Route one message from a user and keep it. An explicit `message.agent` takes
   * (or moves) the contact; otherwise the contact's owner gets it; a new user goes
   * to the online agent with the fewest contacts. Resolves once the message is
   * committed. Throws `KefuError` 503 when it would have to wait and the queue is
   * full, or the store failed: then nothing is kept, and a retry is welcome.
   */
  async inbound(message: Message): Promise<InboundResult> {
    const key = keyOf(message.contact, message.id);
    if (this.#recent.has(key)) {
      // A repeat while the first is being committed waits for it: if that commit fails, this one is the retry.
      const pending = this.#inflight.get(key);
      if (pending === undefined || await pending.then(() => true, () => false)) return this.#duplicate(message);
    }
    // A move of this user to another agent under way finishes first, so that their messages keep their order.
    const moving = this.#moving.get(message.contact);
    if (moving !== undefined) await moving.catch(() => {});
    const known = this.#contacts.get(message.contact);
    let agent = message.agent !== "" ? message.agent : known && known.agent !== "" ? known.agent : this.#fewest();
    // The owner is away for good: an online agent takes the user, and the messages that waited for the owner.
    const owner = agent;
    const moved = message.agent === "" && known !== undefined && this.#away(agent);
    let waiting: StoredMessage[] = [];
    if (moved) {
      agent = this.#fewest();
      // Read before anything changes: if the store fails, nothing was taken and WeChat's retry starts over.
      const read = this.#store.unackedOf(message.contact, this.#maxHeldPerAgent + this.#redeliverPage);
      this.#moving.set(message.contact, read);
      try {
        waiting = await read;
      } catch (e) {
        throw storeFailed(message, e);
      } finally {
        if (this.#moving.get(message.contact) === read) this.#moving.delete(message.contact);
      }
    }
    const peers = this.#agents.get(agent);
    const online = peers !== undefined && agent !== UNASSIGNED;
    if (!online) this.#checkRoom(agent);

    this.#remember(key);
    const contact = this.#own(message, known, agent);
    contact.lastMessageTime = contact.lastInboundTime = message.sendTime;
    contact.unread++;
    message.agent = agent;
    // On the socket before the commit, so the agent sees it at once; should the commit fail, WeChat's
    // retry brings it again and the page drops the repeat by id.
    let state: InboundState = "accepted";
    let sockets = 0;
    let waitingRead = false;
    if (online) {
      let needsAck = false;
      for (const m of waiting) needsAck = this.#deliver(agent, peers, m).needsAck || needsAck;
      waitingRead = waiting.length > 0 && !needsAck;
      const d = this.#deliver(agent, peers, message);
      sockets = d.sockets;
      if (sockets > 0 && !d.needsAck) state = "acked";
    }
    if (moved) {
      const left = Math.max(0, this.heldFor(owner) - waiting.length);
      this.#waitingTotal -= this.heldFor(owner) - left;
      this.#waiting.set(owner, left);
    }
    const saving = this.#store.saveInbound(message, snapshot(contact, Date.now()), state);
    this.#inflight.set(key, saving);
    let saved: "stored" | "duplicate";
    try {
      saved = await saving;
    } catch (e) {
      this.#recent.delete(key);
      contact.unread--;
      contact.savedAt = undefined;
      throw storeFailed(message, e);
    } finally {
      this.#inflight.delete(key);
    }
    // Sockets without read receipts read what was written to them; the contact row now names their agent.
    if (waitingRead) this.#store.ack(agent, waiting).catch(() => {});
    if (state === "acked") contact.unread--;
    if (saved === "duplicate") {
      if (state !== "acked") contact.unread--;
      contact.savedAt = undefined;
      return this.#duplicate(message);
    }
    if (sockets > 0) return { status: "delivered", id: message.id, agent, contact: message.contact, sockets };
    this.#waiting.set(agent, (this.#waiting.get(agent) ?? 0) + 1);
    this.#waitingTotal++;
    return { status: "queued", id: message.id, agent, contact: message.contact, sockets: 0 };
  }

  /**
   * An agent's socket is open: register it, give it the users who wrote while no
   * agent was online, then send what it has not acknowledged, oldest first,
   * followed by whatever came in meanwhile.
   */
  async connect(agent: string, peer: AgentPeer, options: { acks?: boolean } = {}): Promise<void> {
    let peers = this.#agents.get(agent);
    if (peers === undefined) this.#agents.set(agent, peers = new Set());
    if (peers.size >= this.#maxSockets) {
      const oldest = peers.values().next().value!;
      this.#drop(agent, oldest);
      oldest.close(Close.replaced, `replaced: more than ${this.#maxSockets} sockets for agent ${agent}`);
    }
    peers.add(peer);
    this.#offlineSince.delete(agent);
    if (!options.acks) this.#legacy.set(peer, []);
    const live: Message[] = [];
    this.#syncing.set(peer, live);
    try {
      const waiting = this.#owned.get(UNASSIGNED);
      if (waiting !== undefined && waiting.size > 0) {
        const moved = [...waiting].map((id) => this.#own(undefined, this.#contacts.get(id)!, agent));
        try {
          await Promise.all(moved.map((c) => this.#store.upsertContact(snapshot(c, Date.now())!)));
        } catch (e) {
          // Back to waiting for an agent, in memory as in the store, so that the next connect tries again.
          for (const c of moved) {
            this.#own(undefined, c, UNASSIGNED);
            c.savedAt = undefined;
          }
          throw e;
        }
        this.#release(UNASSIGNED);
      }
      this.#release(agent);
      // Page by page, each after the socket has drained half its buffer: a long backlog never piles up in memory.
      const sent = new Set<string>();
      let after = 0;
      for (;;) {
        const page = await this.#store.unacked(agent, this.#redeliverPage, after);
        if (peer.readyState !== OPEN) return;
        for (const m of page) sent.add(keyOf(m.contact, m.id));
        await this.#sendBacklog(agent, peer, page);
        if (page.length < this.#redeliverPage) break;
        after = page[page.length - 1].seq;
        while (peer.readyState === OPEN && peer.bufferedAmount > this.#maxBuffered / 2) await delay(10);
      }
      if (peer.readyState !== OPEN) return;
      await this.#sendBacklog(agent, peer, live.filter((m) => !sent.has(keyOf(m.contact, m.id))));
    } finally {
      this.#syncing.delete(peer);
    }
  }

  /** An agent's socket closed. Its contacts stay its own; their messages wait in the store until it is back. */
  disconnect(agent: string, peer: AgentPeer): void {
    this.#drop(agent, peer);
    if (!this.#agents.has(agent)) this.#offlineSince.set(agent, this.#now());
  }

  /**
   * The agent read these messages (read receipt): they are not sent again. A ref with contact "" names any
   * contact. The socket that sent it (`peer`) acknowledges from now on.
   */
  async ack(agent: string, refs: MessageRef[], peer?: AgentPeer): Promise<number> {
    if (peer !== undefined) this.#legacy.delete(peer);
    const n = await this.#store.ack(agent, refs);
    // Unread counts follow when the receipt names the contact.
    if (n > 0 && refs.every((r) => r.contact === refs[0].contact)) {
      const c = this.#contacts.get(refs[0].contact);
      if (c && c.agent === agent) c.unread = Math.max(0, c.unread - n);
    }
    return n;
  }

  /** The agent's contact `contact`; throws `KefuError` 403 when it is not this agent's. */
  ownedContact(agent: string, contact: string): Contact {
    const c = this.#contacts.get(contact);
    if (c === undefined || c.agent !== agent) {
      throw new KefuError(
        "not_your_contact",
        `cannot reply to contact ${quote(contact)}: ${
          c === undefined ? "no such contact" : "the contact belongs to another agent"
        }`,
        403,
      );
    }
    return c;
  }

  /** Accept an agent's reply: fills in channel, company and account. Throws `KefuError` 403 when the contact is not this agent's. */
  reply(agent: string, message: Message): Message {
    const contact = this.ownedContact(agent, message.contact);
    message.agent = agent;
    message.channel = contact.channel;
    message.company ||= contact.company;
    message.account = contact.account;
    contact.lastMessageTime = message.sendTime;
    return message;
  }

  /** Keep an accepted reply (state `queued`) before it goes out; throws `KefuError` 503 when the store fails. */
  async keepReply(message: Message): Promise<void> {
    const c = this.#contacts.get(message.contact);
    try {
      await this.#store.saveOutbound(message, "queued", c && record(c));
    } catch (e) {
      throw new KefuError(
        "store_failed",
        `cannot keep reply ${quote(message.id)}: ${(e as Error).message}; it was not sent, try again`,
        503,
      );
    }
  }

  /** Record how a reply ended (sent, or failed and why). */
  replyState(message: Message, state: OutboundState, detail = ""): Promise<boolean> {
    return this.#store.setOutboundState(message, state, detail);
  }

  /** One page of a conversation of the agent's own contact, newest first. */
  history(agent: string, contact: string, before: string | undefined, limit: number): Promise<StoredMessage[]> {
    this.ownedContact(agent, contact);
    return this.#store.history(contact, { before, limit });
  }

  /** Send a text to every open socket of an agent; answers how many. */
  notify(agent: string, data: string): number {
    const peers = this.#agents.get(agent);
    if (peers === undefined) return 0;
    let n = 0;
    for (const p of peers) {
      if (p.readyState === OPEN) {
        p.send(data);
        n++;
      }
    }
    return n;
  }

  /** The contacts of one agent, most recent first. */
  contactsOf(agent: string): ContactView[] {
    const ids = this.#owned.get(agent);
    if (ids === undefined || agent === UNASSIGNED) return [];
    const list: ContactView[] = [];
    for (const id of ids) {
      const c = this.#contacts.get(id)!;
      list.push({
        contact_id: c.id,
        name: c.name,
        avatar: c.avatar,
        company_id: c.company,
        last_message_time: c.lastMessageTime,
        last_inbound_time: c.lastInboundTime,
        unread: c.unread,
      });
    }
    return list.sort((a, b) => b.last_message_time - a.last_message_time);
  }

  /** Whether an agent has at least one socket open. */
  isOnline(agent: string): boolean {
    return this.#agents.has(agent);
  }

  /** Messages waiting for one offline agent ("" = waiting for any agent). */
  heldFor(agent: string): number {
    return this.#waiting.get(agent) ?? 0;
  }

  /** Send the heartbeat envelope to every open socket. */
  heartbeat(): void {
    for (const agent of this.#agents.keys()) this.notify(agent, HEARTBEAT);
  }

  /** Close every agent socket (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const peers of this.#agents.values()) {
      for (const p of peers) p.close(code, reason);
    }
    this.#agents.clear();
    this.#syncing.clear();
  }

  /** Counters for `/healthz`. */
  stats(): { agents_online: number; sockets: number; contacts: number; held: number } {
    let sockets = 0;
    for (const peers of this.#agents.values()) sockets += peers.size;
    return { agents_online: this.#agents.size, sockets, contacts: this.#contacts.size, held: this.#waitingTotal };
  }

  #duplicate(m: Message): InboundResult {
    return {
      status: "duplicate",
      id: m.id,
      agent: this.#contacts.get(m.contact)?.agent ?? "",
      contact: m.contact,
      sockets: 0,
    };
  }

  // Write to every socket of the agent; a socket still catching up gets it after its backlog, a stalled one is
  // closed (its messages stay unacknowledged, so they come again when it reconnects). `needsAck`: a socket that
  // sends read receipts got it, so it stays unacknowledged until one comes.
  #deliver(agent: string, peers: Set<AgentPeer>, m: Message): { sockets: number; needsAck: boolean } {
    let data: string | undefined;
    let sockets = 0;
    let needsAck = false;
    for (const p of peers) {
      if (p.readyState !== OPEN) continue;
      const live = this.#syncing.get(p);
      const unflushed = this.#legacy.get(p);
      if (live !== undefined && live.length >= this.#maxHeldPerAgent) {
        // Catching up slower than messages come: the messages are kept (unacknowledged) for its next connect.
        this.#drop(agent, p);
        p.close(Close.tooSlow, `too slow: ${live.length} new messages arrived while catching up; reconnect`);
        continue;
      } else if (live !== undefined) {
        live.push(m);
      } else if (p.bufferedAmount > this.#maxBuffered) {
        // Dropped at once: a peer that does not read will not finish the close handshake either.
        this.#drop(agent, p);
        p.close(Close.tooSlow, `too slow: over ${this.#maxBuffered} bytes unsent; reconnect to get the rest`);
        continue;
      } else {
        // What went out before the buffer last emptied has left this process; the rest may be lost with the socket.
        if (unflushed !== undefined) {
          if (p.bufferedAmount === 0) unflushed.length = 0;
          unflushed.push({ contact: m.contact, id: m.id });
        }
        p.send(data ??= encodeEnvelope(m));
      }
      if (unflushed === undefined || live !== undefined) needsAck = true;
      sockets++;
    }
    return { sockets, needsAck };
  }

  #drop(agent: string, peer: AgentPeer): void {
    this.#syncing.delete(peer);
    // What a socket without read receipts still had in its buffer did not reach the agent: unread again.
    const unflushed = this.#legacy.get(peer);
    if (unflushed !== undefined && unflushed.length > 0 && peer.bufferedAmount > 0) {
      this.#store.requeue(unflushed).catch(() => {});
    }
    this.#legacy.delete(peer);
    const peers = this.#agents.get(agent);
    if (peers?.delete(peer) && peers.size === 0) this.#agents.delete(agent);
  }

  #release(agent: string): void {
    this.#waitingTotal -= this.#waiting.get(agent) ?? 0;
    this.#waiting.delete(agent);
  }

  // Send part of a connecting socket's backlog. A socket without read receipts has read it once it has left this
  // process, like any message; when not yet, it stays unread and comes again on the next connect (at least once),
  // rather than wait here on a timer.
  async #sendBacklog(agent: string, peer: AgentPeer, messages: Message[]): Promise<void> {
    for (const m of messages) peer.send(encodeEnvelope(m));
    if (this.#legacy.has(peer) && messages.length > 0 && peer.readyState === OPEN && peer.bufferedAmount === 0) {
      await this.#store.ack(agent, messages);
    }
  }

  // Offline longer than the grace period, while someone else is online to take over.
  #away(agent: string): boolean {
    if (agent === UNASSIGNED || this.#agents.has(agent) || this.#agents.size === 0) return false;
    const since = this.#offlineSince.get(agent) ?? this.#started;
    return this.#now() - since >= this.#reassignAfter;
  }

  #fewest(): string {
    let best = UNASSIGNED;
    let min = Infinity;
    for (const agent of this.#agents.keys()) {
      const n = this.#owned.get(agent)?.size ?? 0;
      if (n < min) {
        min = n;
        best = agent;
      }
    }
    return best;
  }

  #index(agent: string, id: string): void {
    let set = this.#owned.get(agent);
    if (set === undefined) this.#owned.set(agent, set = new Set());
    set.add(id);
  }

  // Create the contact or move it to `agent`, keeping the per-agent index in step.
  #own(m: Message | undefined, known: Contact | undefined, agent: string): Contact {
    let c = known;
    if (c === undefined) {
      m = m!;
      c = {
        id: m.contact,
        agent,
        name: m.name,
        avatar: m.avatar,
        company: m.company,
        channel: m.channel,
        account: m.account ?? "",
        lastMessageTime: m.sendTime,
        lastInboundTime: m.sendTime,
        unread: 0,
      };
      this.#contacts.set(m.contact, c);
      this.#index(agent, c.id);
      return c;
    }
    if (m !== undefined) {
      if (m.name !== m.contact) c.name = m.name;
      if (m.avatar !== "") c.avatar = m.avatar;
      if (m.company !== "") c.company = m.company;
      if (m.account) c.account = m.account;
    }
    if (c.agent !== agent) {
      this.#owned.get(c.agent)?.delete(c.id);
      c.agent = agent;
      this.#index(agent, c.id);
    }
    return c;
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
}
