/**
 * Routing: how contacts look to agents (the contact list's entries and previews), and who is away. Who owns whom is
 * the store's to decide (`src/store/decisions.ts`): here is no copy of it.
 *
 * A contact is a user of one account of one channel: its identity is (channel,
 * account, user id), since WeChat openids are per Official Account and a wxid
 * lives in another namespace. Agents see it as `contact_id`: the user id itself,
 * or, when a contact of another account or channel has that id already,
 * `user@account` (`user@channel` for a channel without accounts), with `#2`,
 * `#3`, … in the unlikely case that is taken too. The store gives the id once,
 * when the contact is first seen: it never changes.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import type { ContactRecord, ContactStatus, ContactSummary, MessageState } from "../store/store.ts";

/** A contact's newest message, as the contact list previews it. */
export interface LastMessage {
  id: string;
  type: string;
  /** The text, cut to {@link PREVIEW_CHARS}; "" for media. */
  content: string;
  direction: "in" | "out" | "system";
  sendTime: number;
  /** A reply's delivery state (`queued`, `sent`, `failed`): the list marks a failed last reply. */
  state?: MessageState;
  /** A system line's `{action, by, from_agent_id, to_agent_id, note}`, for the page to word in its language. */
  event?: Record<string, string>;
  /** Sent by kefu itself (issue 22: `welcome`, `closed`…): the page previews it as 自动回复, not as the agent's. */
  automatic?: string;
}

/** How much of a message's text the contact list previews. */
export const PREVIEW_CHARS = 120;

/** The preview of a message (a system line is an outbound message of type `system`). */
export function lastOf(m: Message & { state?: MessageState }): LastMessage {
  const content = m.content.length > PREVIEW_CHARS ? m.content.slice(0, PREVIEW_CHARS) : m.content;
  const direction = m.type === "system" ? "system" : m.direction;
  const last: LastMessage = { id: m.id, type: m.type, content, direction, sendTime: m.sendTime };
  if (direction === "out" && m.state !== undefined) last.state = m.state;
  if (direction === "system") last.event = m.extra ?? {};
  if (direction === "out" && typeof m.extra?.automatic === "string") last.automatic = m.extra.automatic;
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
  /** The contact's tags (标签), sorted. */
  tags: string[];
  /** The newest message either way (workflow lines left out). */
  last_message:
    | {
      id: string;
      msg_type: string;
      content: string;
      direction: string;
      send_time: number;
      state?: string;
      automatic?: string;
    }
    | null;
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

/** Contacts waiting for the first agent to come online are owned by this "agent". */
export const UNASSIGNED = "";

/** A contact as agents see it. */
export function viewOf(c: ContactSummary, replyWindow: ReplyWindowOf): ContactView {
  const m = c.last && lastOf(c.last);
  const e = c.lastEvent && lastOf(c.lastEvent);
  const last: ContactView["last_message"] = m === undefined
    ? null
    : { id: m.id, msg_type: m.type, content: m.content, direction: m.direction, send_time: m.sendTime };
  if (last !== null && m?.state !== undefined) last.state = m.state;
  if (last !== null && m?.automatic !== undefined) last.automatic = m.automatic;
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
    tags: c.tags ?? [],
    last_message: last,
    last_event: e === undefined ? null : { id: e.id, content: e.content, send_time: e.sendTime, event: e.event ?? {} },
    awaiting_reply: c.awaiting && c.status !== "resolved",
    reply_window: replyWindow(c),
  };
}

/** The agent's contact, or the refusal: 404 when there is none, 403 when it is another agent's. */
export function ownedBy<T extends { agent: string }>(agent: string, id: string, c: T | undefined, action: string): T {
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

/**
 * Who is away: an agent offline longer than the grace period (a reload or a short network loss keeps their users).
 * Agents never seen since this process started count from its start. Presence itself is the bus's.
 */
export class Away {
  /** agent → epoch ms its last session closed (or this process started, for owners known from the store). */
  readonly #offlineSince = new Map<string, number>();
  readonly #presence: Presence;
  readonly #grace: number;
  readonly #now: () => number;
  readonly #started: number;

  constructor(presence: Presence, graceMs: number, now: () => number = Date.now) {
    this.#presence = presence;
    this.#grace = graceMs;
    this.#now = now;
    this.#started = now();
  }

  /** Whether `agent` is offline past the grace period. */
  has(agent: string): boolean {
    if (agent === UNASSIGNED || this.#presence.isOnline(agent)) return false;
    const since = this.#offlineSince.get(agent) ?? this.#started;
    return this.#now() - since >= this.#grace;
  }

  /** An agent's first session opened. */
  connected(agent: string): void {
    this.#offlineSince.delete(agent);
  }

  /** An agent's last session closed (or it was handed a contact while offline): the grace period starts now. */
  disconnected(agent: string): void {
    if (agent !== UNASSIGNED && !this.#presence.isOnline(agent)) this.#offlineSince.set(agent, this.#now());
  }

  /** Among `agents`, those away now. */
  among(agents: Iterable<string>): string[] {
    return [...agents].filter((a) => this.has(a));
  }
}
