/**
 * The durable store behind the hub: contacts, every message in both directions
 * with its delivery state, the inbound de-duplication keys and the WeChat reply
 * windows. The hub keeps its Maps as the hot path and writes through to a
 * `Store`; at start it reads everything back with {@link Store.load}.
 *
 * Every method is Promise-shaped so that a networked implementation can follow
 * without touching the hub or the codecs. A write's Promise resolves only once
 * the write is durable (committed); "accepted" means exactly that.
 *
 * @module
 */

import type { Channel, Message } from "../core/message.ts";

/**
 * The state of an inbound message: `media` (committed, its media file being
 * fetched and converted: not delivered yet), `accepted` (committed, not yet
 * read by the agent), `acked` (read: the agent's read receipt, or written to a
 * socket that sends none; never sent again).
 */
export type InboundState = "media" | "accepted" | "acked";

/** The state of an agent's reply: `queued` (to be sent to WeChat), `sent`, `failed` (the detail says why). */
export type OutboundState = "queued" | "sent" | "failed";

/** Either direction's delivery state. */
export type MessageState = InboundState | OutboundState;

/** Names one message: ids are unique per contact, not globally (event ids, an agent page's own ids). */
export interface MessageRef {
  contact: string;
  id: string;
}

/** A message as stored, with what the store adds. */
export interface StoredMessage extends Message {
  /** Monotonic position in the store (never reused); history pages by it. */
  seq: number;
  /** The channel account; "" for a channel without accounts. */
  account: string;
  state: MessageState;
  /** Why a reply failed (WeChat's errcode and message); "" otherwise. */
  detail: string;
  /** Epoch ms when the store took the message; retention counts from it. */
  storedAt: number;
}

/** One user of one channel account and the agent who owns them, as the hub keeps it. */
export interface ContactRecord {
  /** The contact id agents see (`contact_id`); unique. */
  id: string;
  /** The user's own id in the channel (openid, wxid); (channel, account, user) is unique. */
  user: string;
  /** "" while no agent has taken the user. */
  agent: string;
  name: string;
  avatar: string;
  company: string;
  /** The channel account the user writes to (an Official Account's AppID); "" for a channel without accounts. */
  account: string;
  channel: Channel;
  /** Epoch seconds of the last message either way. */
  lastMessageTime: number;
  /** Epoch seconds of the user's last message (WeChat's 48-hour reply window). */
  lastInboundTime: number;
  /** Messages from the user the agent has not read. */
  unread: number;
  /** `resolved` once the agent closed the conversation (it reopens on the user's next message); default `open`. */
  status?: ContactStatus;
  /** The name an agent gave the contact (WeChat no longer tells most accounts a user's nickname); default "". */
  displayName?: string;
  /** The agents' note on the contact; default "". */
  note?: string;
}

/**
 * Whether a conversation is being worked on (`open`), done (`resolved`), or put back in the queue by an agent
 * (`queued`: no owner, waiting for an agent to take the user).
 */
export type ContactStatus = "open" | "resolved" | "queued";

/** WeChat's customer-service reply window of one user of one account. */
export interface WindowRecord {
  account: string;
  openid: string;
  /** Epoch ms of the user's last message (opens the 48-hour window); -Infinity: never. */
  lastMessageAt: number;
  /** Replies used since `lastMessageAt`. */
  messageUsed: number;
  /** Epoch ms of the user's last window-opening event; -Infinity: never. */
  lastEventAt: number;
  /** Replies used since `lastEventAt`. */
  eventUsed: number;
}

/** The de-duplication key of an inbound message: (account, contact id, message id). */
export interface DedupeKey {
  account: string;
  contact: string;
  id: string;
}

/** Everything the hub rebuilds its Maps from at start. */
export interface LoadedState {
  contacts: ContactRecord[];
  windows: WindowRecord[];
  /**
   * Inbound messages not acknowledged, per owning agent ("" = no agent yet),
   * oldest first. The owner is the contact's current agent, so a contact moved
   * to another agent takes its unacknowledged messages along.
   */
  unacked: Map<string, StoredMessage[]>;
  /** Replies still `queued` for WeChat, oldest first. */
  outbox: StoredMessage[];
  /** Inbound messages still waiting for their media (state `media`), oldest first: their work resumes. */
  media: StoredMessage[];
  /** The most recent inbound keys, oldest first (to warm the hub's de-dup window). */
  recentKeys: DedupeKey[];
  /** Each contact's newest message either way, workflow lines (type `system`) left out: the list's preview. */
  lastMessages: Map<string, StoredMessage>;
  /** Each contact's newest workflow line (a transfer, a release…), for contacts that have one. */
  lastSystemLines: Map<string, StoredMessage>;
  /** The contacts whose newest message from the user or the agent (events and workflow lines left out) is the user's. */
  awaitingReply: Set<string>;
}

/** What {@link Store.load} reads back. */
export interface LoadOptions {
  /** How many recent de-dup keys to return; default 100,000. */
  recentKeys?: number;
}

/** One page of a conversation. */
export interface HistoryQuery {
  /** Only messages older than this message id of the conversation; absent: from the newest. */
  before?: string;
  /** At most this many messages (a positive integer). */
  limit: number;
}

/** Counters for `/healthz` and measurements. */
export interface StoreStats {
  kind: string;
  /** The database file, or ":memory:". */
  path: string;
  /** Bytes on disk: the database file and its write-ahead log. */
  fileBytes: number;
  messages: number;
  contacts: number;
  /** Transactions committed since open. */
  commits: number;
  /** Writes committed since open (commits / writes shows the group-commit batching). */
  writes: number;
  /** The largest batch committed in one transaction. */
  maxBatch: number;
  /** Writes waiting for the next commit. */
  queued: number;
}

/** The durable store; see the module documentation. */
export interface Store {
  /** Everything the hub needs at start. Reads are taken after every write made before the call. */
  load(options?: LoadOptions): Promise<LoadedState>;
  /**
   * Store an inbound message (state `accepted` unless told) and, when given, its contact's
   * snapshot in one transaction. Resolves once committed; "duplicate" when its
   * {@link DedupeKey} is already stored (then nothing is written).
   */
  saveInbound(message: Message, contact?: ContactRecord, state?: InboundState): Promise<"stored" | "duplicate">;
  /** These messages did not reach their agent after all (a stalled socket): they are unacknowledged again. */
  requeue(refs: readonly MessageRef[]): Promise<number>;
  /**
   * A message's media is ready (or failed): its media path and extra fields are set and it leaves state `media` for
   * `state`. False when it was not waiting (done already).
   */
  finishMedia(
    ref: MessageRef,
    media: string,
    extra: Record<string, string> | undefined,
    state: InboundState,
  ): Promise<boolean>;
  /** Whether a message of one of `agent`'s contacts uses the stored media file named by either of `paths`. */
  mediaOwnedBy(paths: readonly [string, string], agent: string): Promise<boolean>;
  /**
   * Work on a message's media again: one of `agent`'s contacts' messages whose media failed goes back to state
   * `media`. Resolves to it, or undefined when there is no such message (or it is not waiting for a retry).
   */
  reopenMedia(ref: MessageRef, agent: string): Promise<StoredMessage | undefined>;
  /** The names of the stored media files messages still use (theirs and the originals they were converted from). */
  mediaInUse(): Promise<Set<string>>;
  /** Store an agent's reply, with its contact's snapshot when given, in one transaction. */
  saveOutbound(message: Message, state: OutboundState, contact?: ContactRecord): Promise<void>;
  /** Set the state of a reply (the latest with this id for this contact); false when there is none. */
  setOutboundState(ref: MessageRef, state: OutboundState, detail?: string): Promise<boolean>;
  /**
   * The agent read these messages of its contacts: never redelivered. A ref with
   * contact "" names the message by id alone (seed 003's read receipt). Resolves to the messages it changed,
   * each with its contact.
   */
  ack(agent: string, refs: readonly MessageRef[]): Promise<MessageRef[]>;
  /** Inbound messages of the agent's contacts not acknowledged, oldest first, after `afterSeq`: to send again on reconnect. */
  unacked(agent: string, limit?: number, afterSeq?: number): Promise<StoredMessage[]>;
  /** One contact's inbound messages not acknowledged, oldest first (they follow the contact to a new agent). */
  unackedOf(contact: string, limit?: number): Promise<StoredMessage[]>;
  /**
   * One page of a conversation, newest first, both directions, never another
   * contact's messages. Rejects with a `not_found` KefuError (404) when `before`
   * is not a message of this conversation (or was swept).
   */
  history(contact: string, query: HistoryQuery): Promise<StoredMessage[]>;
  /**
   * Messages of `agent`'s contacts whose text contains `text` (case-insensitive), newest first, at most `limit`.
   */
  search(agent: string, text: string, limit: number): Promise<StoredMessage[]>;
  /** Create or replace a contact (a move to another agent, a new name, the unread count). */
  upsertContact(contact: ContactRecord): Promise<void>;
  /** Create or replace a user's reply window. */
  saveWindow(window: WindowRecord): Promise<void>;
  /**
   * Retention: delete the messages stored before `cutoffMs` (epoch ms) and the
   * reply windows not used since. Unacknowledged inbound messages and queued
   * replies are kept whatever their age: an accepted message is never lost
   * before it reached its agent. Resolves to the rows deleted.
   */
  sweep(cutoffMs: number): Promise<number>;
  /** Flush, then release the store; later calls reject. */
  close(): Promise<void>;
  stats(): Promise<StoreStats>;
}

// Issue 20, sign-in revocation: one additive block (the interface below merges into `Store` above).

/**
 * A revoked sign-in: one token (`tokenId`), or, without it, every token of `agent` issued at or before `at`. Kept
 * until `until` (epoch ms), after which every token it names has expired anyway.
 */
export interface Revocation {
  agent: string;
  tokenId?: string;
  /** Epoch ms of the revocation. */
  at: number;
  /** Epoch ms after which it can be forgotten. */
  until: number;
}

/** Revocations are kept by the store, so that a sign-out or an administrator's revocation survives restarts. */
export interface Store {
  /** Keep a revocation (and forget those past their `until`). */
  revoke(r: Revocation): Promise<void>;
  /** The revocations not yet past their `until`, oldest first. */
  revocations(): Promise<Revocation[]>;
}
