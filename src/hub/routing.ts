/**
 * Routing: who owns whom (the seed's contact list, many users to one agent),
 * who is away, and the assignment policy. Pure bookkeeping in Maps, no I/O: the
 * hub writes what changes through to the store.
 *
 * A contact is a user of one account of one channel: its identity is (channel,
 * account, user id), since WeChat openids are per Official Account and a wxid
 * lives in another namespace. Agents see it as `contact_id`: the user id itself,
 * or, when a contact of another account or channel has that id already,
 * `user@account` (`user@channel` for a channel without accounts), with `#2`,
 * `#3`, … in the unlikely case that is taken too. The id is given once, when
 * the contact is first seen, and kept in the store: it never changes.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import type { ContactRecord, ContactStatus } from "../store/store.ts";

/** One user of one channel account, and the agent who owns them. */
export interface Contact extends ContactRecord {
  status: ContactStatus;
  displayName: string;
  note: string;
  /** The newest message either way, workflow lines left out (the contact list's preview); undefined before the first. */
  last?: LastMessage;
  /** The newest workflow line (a transfer, a release…: why a user waits in the queue); undefined before the first. */
  lastEvent?: LastMessage;
  /** The user's last message (not an event) came after the agent's last reply. */
  awaiting: boolean;
  /** Epoch ms the store last got this contact, and the agent it had then. */
  savedAt?: number;
  savedAgent?: string;
}

/** A contact's newest message, as the contact list previews it. */
export interface LastMessage {
  id: string;
  type: string;
  /** The text, cut to {@link PREVIEW_CHARS}; "" for media. */
  content: string;
  direction: "in" | "out" | "system";
  sendTime: number;
  /** A system line's `{action, by, from_agent_id, to_agent_id, note}`, for the page to word in its language. */
  event?: Record<string, string>;
}

/** How much of a message's text the contact list previews. */
export const PREVIEW_CHARS = 120;

/** The preview of a message (a system line is an outbound message of type `system`). */
export function lastOf(m: Message): LastMessage {
  const content = m.content.length > PREVIEW_CHARS ? m.content.slice(0, PREVIEW_CHARS) : m.content;
  const direction = m.type === "system" ? "system" : m.direction;
  const last: LastMessage = { id: m.id, type: m.type, content, direction, sendTime: m.sendTime };
  if (direction === "system") last.event = m.extra ?? {};
  return last;
}

/**
 * What a channel allows now, for channels with reply windows (WeChat's customer-service API): epoch seconds until
 * which each window is open (0: never opened) and the replies left in it. The page shows it and closes its composer
 * by the same rules the channel enforces.
 */
export interface ReplyWindowView {
  message_until: number;
  message_left: number;
  event_until: number;
  event_left: number;
}

/** The reply window of a contact; null when its channel has none (a PC hook, a bot platform, a push over HTTP). */
export type ReplyWindowOf = (contact: ContactRecord) => ReplyWindowView | null;

/** A contact as the contacts endpoint lists it. */
export interface ContactView {
  contact_id: string;
  name: string;
  avatar: string;
  company_id: string;
  channel: string;
  account_id: string;
  user_id: string;
  last_message_time: number;
  last_inbound_time: number;
  unread: number;
  /** The owner; "" while the user waits for an agent. */
  agent_id: string;
  status: ContactStatus;
  display_name: string;
  note: string;
  /** The newest message either way (workflow lines left out). */
  last_message: { id: string; msg_type: string; content: string; direction: string; send_time: number } | null;
  /** The newest workflow line, with what happened. */
  last_event: { id: string; content: string; send_time: number; event: Record<string, string> } | null;
  /** The user wrote last (an event such as a follow does not count) and the conversation is not resolved. */
  awaiting_reply: boolean;
  reply_window: ReplyWindowView | null;
}

/** Who is online, as routing needs to know it (the bus tells). */
export interface Presence {
  isOnline(agent: string): boolean;
  /** The agents with at least one session. */
  online(): Iterable<string>;
}

/** Options for {@link Routing}. */
export interface RoutingOptions {
  presence: Presence;
  /** A user whose agent has been offline this long goes to an online agent (a reload keeps them). */
  reassignAfterMs: number;
  /** What each contact's channel allows now; default: no windows. */
  replyWindow?: ReplyWindowOf;
  now?: () => number;
}

/** Where a user's message goes. */
export interface Assignment {
  agent: string;
  /** The owner is away for good and `agent` takes the user over. */
  moved: boolean;
  /** The owner before, when moved. */
  previous: string;
}

/** Contacts waiting for the first agent to come online are owned by this "agent". */
export const UNASSIGNED = "";

/** The identity of a contact as one string (a Map key). */
export function identityOf(channel: string, account: string, user: string): string {
  return `${channel}\u0000${account}\u0000${user}`;
}

/** The record the store keeps of a contact. */
export function recordOf(c: Contact): ContactRecord {
  return {
    id: c.id,
    user: c.user,
    agent: c.agent,
    name: c.name,
    avatar: c.avatar,
    company: c.company,
    account: c.account,
    channel: c.channel,
    lastMessageTime: c.lastMessageTime,
    lastInboundTime: c.lastInboundTime,
    unread: c.unread,
    status: c.status,
    displayName: c.displayName,
    note: c.note,
  };
}

/** A contact as agents see it. */
export function viewOf(c: Contact, replyWindow: ReplyWindowOf): ContactView {
  const m = c.last;
  const e = c.lastEvent;
  return {
    contact_id: c.id,
    name: c.name,
    avatar: c.avatar,
    company_id: c.company,
    channel: c.channel,
    account_id: c.account,
    user_id: c.user,
    last_message_time: c.lastMessageTime,
    last_inbound_time: c.lastInboundTime,
    unread: c.unread,
    agent_id: c.agent,
    status: c.status,
    display_name: c.displayName,
    note: c.note,
    last_message: m === undefined
      ? null
      : { id: m.id, msg_type: m.type, content: m.content, direction: m.direction, send_time: m.sendTime },
    last_event: e === undefined ? null : { id: e.id, content: e.content, send_time: e.sendTime, event: e.event ?? {} },
    awaiting_reply: c.awaiting && c.status !== "resolved",
    reply_window: replyWindow(c),
  };
}

/** The contact list and the assignment policy. */
export class Routing {
  readonly #byId = new Map<string, Contact>();
  readonly #byIdentity = new Map<string, Contact>();
  /** agent → its contacts' ids; UNASSIGNED holds users who wrote while no agent was online. */
  readonly #owned = new Map<string, Set<string>>();
  /** agent → epoch ms its last session closed (or kefu started, for agents known from the store). */
  readonly #offlineSince = new Map<string, number>();
  readonly #presence: Presence;
  readonly #reassignAfter: number;
  readonly #replyWindow: ReplyWindowOf;
  readonly #now: () => number;
  readonly #started: number;

  constructor(options: RoutingOptions) {
    this.#presence = options.presence;
    this.#reassignAfter = options.reassignAfterMs;
    this.#replyWindow = options.replyWindow ?? (() => null);
    this.#now = options.now ?? Date.now;
    this.#started = this.#now();
  }

  /**
   * Rebuild from the store's contacts and their newest messages (at start); unread counts start at 0 and are
   * counted by the caller.
   */
  restore(
    records: readonly ContactRecord[],
    kept: {
      lastMessages?: ReadonlyMap<string, Message>;
      lastSystemLines?: ReadonlyMap<string, Message>;
      awaitingReply?: ReadonlySet<string>;
    } = {},
  ): void {
    const now = Date.now();
    for (const r of records) {
      const last = kept.lastMessages?.get(r.id);
      const line = kept.lastSystemLines?.get(r.id);
      const c: Contact = {
        ...r,
        status: r.status ?? "open",
        displayName: r.displayName ?? "",
        note: r.note ?? "",
        unread: 0,
        last: last && lastOf(last),
        lastEvent: line && lastOf(line),
        awaiting: kept.awaitingReply?.has(r.id) ?? false,
        savedAt: now,
        savedAgent: r.agent,
      };
      this.#add(c);
    }
  }

  /** The contact of this user of this channel account, if known. */
  find(channel: string, account: string, user: string): Contact | undefined {
    return this.#byIdentity.get(identityOf(channel, account, user));
  }

  /** The contact with this `contact_id`, if any. */
  get(id: string): Contact | undefined {
    return this.#byId.get(id);
  }

  /**
   * Who gets a message of `known` (undefined: a new user): the agent a channel asked for, else the owner, else the
   * online agent with the fewest contacts; an owner away longer than the grace period, while someone else is
   * online, hands the user over.
   */
  assign(known: Contact | undefined, requested?: string): Assignment {
    if (requested !== undefined && requested !== "") return { agent: requested, moved: false, previous: "" };
    // Put back in the queue by an agent: the user waits there until an agent takes them.
    if (known?.status === "queued" && known.agent === UNASSIGNED) {
      return { agent: UNASSIGNED, moved: false, previous: "" };
    }
    const owner = known !== undefined && known.agent !== UNASSIGNED ? known.agent : this.fewest();
    if (known !== undefined && this.#away(owner)) return { agent: this.fewest(), moved: true, previous: owner };
    return { agent: owner, moved: false, previous: "" };
  }

  /** Create the contact of message `m` for `agent`, or update `known` from it and move it to `agent`. */
  own(m: Message, known: Contact | undefined, agent: string): Contact {
    if (known === undefined) {
      const account = m.account ?? "";
      const c: Contact = {
        id: this.#freeId(m.contact, m.channel, account),
        user: m.contact,
        agent,
        name: m.name,
        avatar: m.avatar,
        company: m.company,
        channel: m.channel,
        account,
        lastMessageTime: m.sendTime,
        lastInboundTime: m.sendTime,
        unread: 0,
        status: "open",
        displayName: "",
        note: "",
        awaiting: false,
      };
      this.#add(c);
      return c;
    }
    if (m.name !== m.contact) known.name = m.name;
    if (m.avatar !== "") known.avatar = m.avatar;
    if (m.company !== "") known.company = m.company;
    this.move(known, agent);
    return known;
  }

  /** Give contact `c` to `agent`, keeping the per-agent index in step. */
  move(c: Contact, agent: string): void {
    if (c.agent === agent) return;
    this.#owned.get(c.agent)?.delete(c.id);
    c.agent = agent;
    this.#index(agent, c.id);
  }

  /** The users who wrote while nobody was online (not those an agent put back in the queue). */
  unassigned(): Contact[] {
    return [...this.#owned.get(UNASSIGNED) ?? []].map((id) => this.#byId.get(id)!).filter((c) => c.status !== "queued");
  }

  /** `agent` was handed a contact: when offline, its grace period starts again (the user waits for it that long). */
  handedTo(agent: string): void {
    if (agent !== UNASSIGNED && !this.#presence.isOnline(agent)) this.#offlineSince.set(agent, this.#now());
  }

  /** An agent's first session opened. */
  connected(agent: string): void {
    this.#offlineSince.delete(agent);
  }

  /** An agent's last session closed: its contacts stay its own for the grace period. */
  disconnected(agent: string): void {
    this.#offlineSince.set(agent, this.#now());
  }

  /** The agent's contact `id`; throws `KefuError` 404 when there is none, 403 when it is another agent's. */
  ownedBy(agent: string, id: string, action: string): Contact {
    const c = this.#byId.get(id);
    if (c === undefined) {
      throw new KefuError("not_found", `cannot ${action} contact ${quote(id)}: no such contact`, 404);
    }
    if (c.agent !== agent) {
      throw new KefuError(
        "not_your_contact",
        `cannot ${action} contact ${quote(id)}: the contact belongs to another agent`,
        403,
      );
    }
    return c;
  }

  /** The contacts of one agent ("" = the users waiting for an agent), most recent first. */
  contactsOf(agent: string): ContactView[] {
    return this.ownedContacts(agent).map((c) => this.view(c));
  }

  /** The contacts of one agent ("" = the users waiting for an agent), most recent first. */
  ownedContacts(agent: string): Contact[] {
    const ids = this.#owned.get(agent);
    if (ids === undefined) return [];
    const list: Contact[] = [];
    for (const id of ids) list.push(this.#byId.get(id)!);
    return list.sort((a, b) => b.lastMessageTime - a.lastMessageTime);
  }

  /** A contact as agents see it. */
  view(c: Contact): ContactView {
    return viewOf(c, this.#replyWindow);
  }

  /** Agents known to own contacts (the ones that may be offline). */
  owners(): string[] {
    return [...this.#owned.keys()].filter((a) => a !== UNASSIGNED && this.#owned.get(a)!.size > 0);
  }

  /** How many contacts are known. */
  get size(): number {
    return this.#byId.size;
  }

  /** The online agent with the fewest contacts; UNASSIGNED when nobody is online. */
  fewest(): string {
    let best = UNASSIGNED;
    let min = Infinity;
    for (const agent of this.#presence.online()) {
      const n = this.#owned.get(agent)?.size ?? 0;
      if (n < min) {
        min = n;
        best = agent;
      }
    }
    return best;
  }

  // Offline longer than the grace period, while someone else is online to take over.
  #away(agent: string): boolean {
    if (agent === UNASSIGNED || this.#presence.isOnline(agent)) return false;
    if (this.#presence.online()[Symbol.iterator]().next().done) return false;
    const since = this.#offlineSince.get(agent) ?? this.#started;
    return this.#now() - since >= this.#reassignAfter;
  }

  #add(c: Contact): void {
    this.#byId.set(c.id, c);
    this.#byIdentity.set(identityOf(c.channel, c.account, c.user), c);
    this.#index(c.agent, c.id);
  }

  #index(agent: string, id: string): void {
    let set = this.#owned.get(agent);
    if (set === undefined) this.#owned.set(agent, set = new Set());
    set.add(id);
  }

  // The user's own id when free; otherwise qualified by the account (or channel), then numbered.
  #freeId(user: string, channel: string, account: string): string {
    if (!this.#byId.has(user)) return user;
    const qualified = `${user}@${account || channel}`;
    let id = qualified;
    for (let n = 2; this.#byId.has(id); n++) id = `${qualified}#${n}`;
    return id;
  }
}
