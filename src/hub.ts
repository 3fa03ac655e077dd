/**
 * The hub: who is online, which agent owns which user (the seed's contact
 * list, many users to one agent), and the messages held for agents who are
 * offline. Transport-free: agents are `AgentPeer`s, so it is tested without sockets.
 *
 * @module
 */

import { KefuError, quote } from "./errors.ts";
import { encodeEnvelope } from "./json_codec.ts";
import type { Channel, Message } from "./message.ts";
import { Close, HEARTBEAT } from "./protocol.ts";

/** What the hub needs of an agent's connection; a `WebSocket` is one. */
export interface AgentPeer {
  readonly readyState: number;
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
  /** Epoch seconds of the user's last message (WeChat's 48-hour reply window). */
  lastInboundTime: number;
}

/** Limits of the hub; every queue it keeps is bounded. */
export interface HubOptions {
  /** Messages held for one offline agent (and for "no agent online yet"). */
  maxHeldPerAgent?: number;
  /** Messages held across all agents. */
  maxHeldTotal?: number;
  /** Sockets one agent may hold open; the oldest is closed (4000) past it. */
  maxSocketsPerAgent?: number;
  /** Recent inbound ids remembered to drop repeats (WeChat retries). */
  dedupeWindow?: number;
  /** Called with each accepted agent reply (the outbound channel). */
  onReply?: (message: Message) => void;
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
}

const OPEN = 1;
const UNASSIGNED = "";

/** Routes messages between WeChat users and agents. */
export class Hub {
  readonly #agents = new Map<string, Set<AgentPeer>>();
  readonly #contacts = new Map<string, Contact>();
  readonly #owned = new Map<string, Set<string>>();
  readonly #held = new Map<string, Message[]>();
  readonly #recent = new Set<string>();
  #heldTotal = 0;
  readonly #maxHeldPerAgent: number;
  readonly #maxHeldTotal: number;
  readonly #maxSockets: number;
  readonly #dedupeWindow: number;
  readonly #onReply?: (message: Message) => void;

  constructor(options: HubOptions = {}) {
    this.#maxHeldPerAgent = options.maxHeldPerAgent ?? 1000;
    this.#maxHeldTotal = options.maxHeldTotal ?? 100_000;
    this.#maxSockets = options.maxSocketsPerAgent ?? 8;
    this.#dedupeWindow = options.dedupeWindow ?? 100_000;
    this.#onReply = options.onReply;
  }

  /**
   * Route one message from a user. An explicit `message.agent` takes (or moves)
   * the contact; otherwise the contact's owner gets it; a new user goes to the
   * online agent with the fewest contacts. Throws `KefuError` 503 when the
   * message would have to be held and the queue is full (nothing is dropped).
   */
  inbound(message: Message): InboundResult {
    const key = `${message.contact}\n${message.id}`;
    const known = this.#contacts.get(message.contact);
    if (this.#recent.has(key)) {
      return { status: "duplicate", id: message.id, agent: known?.agent ?? "", contact: message.contact, sockets: 0 };
    }
    const agent = message.agent !== "" ? message.agent : known && known.agent !== "" ? known.agent : this.#fewest();
    const peers = this.#agents.get(agent);
    const online = peers !== undefined && agent !== UNASSIGNED;
    if (!online) this.#checkRoom(agent);

    this.#remember(key);
    const contact = this.#own(message, known, agent);
    contact.lastMessageTime = contact.lastInboundTime = message.sendTime;
    message.agent = agent;

    if (online) {
      const sockets = sendAll(peers, encodeEnvelope(message));
      if (sockets > 0) return { status: "delivered", id: message.id, agent, contact: message.contact, sockets };
    }
    this.#hold(agent, message);
    return { status: "queued", id: message.id, agent, contact: message.contact, sockets: 0 };
  }

  /** An agent's socket is open: register it, then deliver what was held, in order. */
  connect(agent: string, peer: AgentPeer): void {
    let peers = this.#agents.get(agent);
    if (peers === undefined) this.#agents.set(agent, peers = new Set());
    if (peers.size >= this.#maxSockets) {
      const oldest = peers.values().next().value!;
      peers.delete(oldest);
      oldest.close(Close.replaced, `replaced: more than ${this.#maxSockets} sockets for agent ${agent}`);
    }
    peers.add(peer);
    this.#flush(agent, this.#take(agent));
    const waiting = this.#take(UNASSIGNED);
    for (const m of waiting) {
      const owner = this.#contacts.get(m.contact)!;
      if (owner.agent === UNASSIGNED) this.#own(m, owner, this.#fewest());
      m.agent = owner.agent;
      this.#flush(owner.agent, [m]);
    }
  }

  /** An agent's socket closed. Its contacts stay its own; their messages are held until it is back. */
  disconnect(agent: string, peer: AgentPeer): void {
    const peers = this.#agents.get(agent);
    if (peers?.delete(peer) && peers.size === 0) this.#agents.delete(agent);
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
    this.#onReply?.(message);
    return message;
  }

  /** Send a text to every open socket of an agent; answers how many. */
  notify(agent: string, data: string): number {
    const peers = this.#agents.get(agent);
    return peers === undefined ? 0 : sendAll(peers, data);
  }

  /** The contacts of one agent, most recent first. */
  contactsOf(agent: string): ContactView[] {
    const ids = this.#owned.get(agent);
    if (ids === undefined) return [];
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
      });
    }
    return list.sort((a, b) => b.last_message_time - a.last_message_time);
  }

  /** Whether an agent has at least one socket open. */
  isOnline(agent: string): boolean {
    return this.#agents.has(agent);
  }

  /** Messages held for one agent ("" = waiting for any agent). */
  heldFor(agent: string): number {
    return this.#held.get(agent)?.length ?? 0;
  }

  /** Send the heartbeat envelope to every open socket. */
  heartbeat(): void {
    for (const peers of this.#agents.values()) sendAll(peers, HEARTBEAT);
  }

  /** Close every agent socket (shutdown). */
  closeAll(code: number, reason: string): void {
    for (const peers of this.#agents.values()) {
      for (const p of peers) p.close(code, reason);
    }
    this.#agents.clear();
  }

  /** Counters for `/healthz`. */
  stats(): { agents_online: number; sockets: number; contacts: number; held: number } {
    let sockets = 0;
    for (const peers of this.#agents.values()) sockets += peers.size;
    return { agents_online: this.#agents.size, sockets, contacts: this.#contacts.size, held: this.#heldTotal };
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

  // Create the contact or move it to `agent`, keeping the per-agent index in step.
  #own(m: Message, known: Contact | undefined, agent: string): Contact {
    let c = known;
    if (c === undefined) {
      c = {
        id: m.contact,
        agent: UNASSIGNED,
        name: m.name,
        avatar: m.avatar,
        company: m.company,
        channel: m.channel,
        account: m.account ?? "",
        lastMessageTime: m.sendTime,
        lastInboundTime: m.sendTime,
      };
      this.#contacts.set(m.contact, c);
    } else {
      if (m.name !== m.contact) c.name = m.name;
      if (m.avatar !== "") c.avatar = m.avatar;
      if (m.company !== "") c.company = m.company;
      if (m.account) c.account = m.account;
    }
    if (c.agent !== agent) {
      if (c.agent !== UNASSIGNED) this.#owned.get(c.agent)?.delete(c.id);
      c.agent = agent;
      if (agent !== UNASSIGNED) {
        let set = this.#owned.get(agent);
        if (set === undefined) this.#owned.set(agent, set = new Set());
        set.add(c.id);
      }
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
    if (n >= this.#maxHeldPerAgent || this.#heldTotal >= this.#maxHeldTotal) {
      const who = agent === UNASSIGNED ? "no agent online" : `agent ${quote(agent)} offline`;
      throw new KefuError(
        "queue_full",
        `cannot hold the message (${who}): ${n} held for it, ${this.#heldTotal} in all; try again later`,
        503,
      );
    }
  }

  #hold(agent: string, m: Message): void {
    let q = this.#held.get(agent);
    if (q === undefined) this.#held.set(agent, q = []);
    q.push(m);
    this.#heldTotal++;
  }

  #take(agent: string): Message[] {
    const q = this.#held.get(agent);
    if (q === undefined) return [];
    this.#held.delete(agent);
    this.#heldTotal -= q.length;
    return q;
  }

  // Deliver in order; whatever finds no open socket goes back to the queue.
  #flush(agent: string, messages: Message[]): void {
    const peers = this.#agents.get(agent);
    for (const m of messages) {
      if (peers === undefined || sendAll(peers, encodeEnvelope(m)) === 0) this.#hold(agent, m);
    }
  }
}

function sendAll(peers: Set<AgentPeer>, data: string): number {
  let n = 0;
  for (const p of peers) {
    if (p.readyState === OPEN) {
      p.send(data);
      n++;
    }
  }
  return n;
}
