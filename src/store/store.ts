/**
 * The store of record: contacts, every message in both directions with its delivery state, and the decisions made
 * on them. **The store decides; processes do not.** Each decision is one atomic step here — a contact found or
 * created by identity, an owner changed only if it is still who the caller saw, a message kept at most once, a
 * reply counted against WeChat's window — so that several kefu processes over one database (PostgreSQL) never
 * contradict each other, and one process on SQLite needs no second copy of the truth in Maps.
 *
 * What a contact list shows is derived from the messages when it is read (unread count, previews, last times,
 * whether the user waits for a reply), never written beside them: it cannot drift, and the accept path writes one
 * message row and touches the contact row only when a decision changed it.
 *
 * Every method is Promise-shaped; a write resolves only once it is committed: "accepted" means exactly that.
 *
 * @module
 */

import type { Channel, Message } from "../core/message.ts";

/**
 * The state of an inbound message: `media` (committed, its media file being fetched and converted: not delivered
 * yet), `accepted` (committed, not yet read by the agent), `acked` (read: the agent's read receipt, or written to a
 * socket that sends none; never sent again).
 */
export type InboundState = "media" | "accepted" | "acked";

/** The state of an agent's reply: `queued` (to be sent), `sent`, `failed` (the detail says why). */
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
  /** Position in the store (never reused); history and backlogs page by it. */
  seq: number;
  /** The channel account; "" for a channel without accounts. */
  account: string;
  state: MessageState;
  /** Why a reply failed (the channel's error); "" otherwise. */
  detail: string;
  /** Epoch ms when the store took the message; retention counts from it. */
  storedAt: number;
}

/**
 * Whether a conversation is being worked on (`open`), done (`resolved`), or put back in the queue by an agent
 * (`queued`: no owner, waiting for an agent to take the user).
 */
export type ContactStatus = "open" | "resolved" | "queued";

/** One user of one channel account and the agent who owns them: the row as stored. */
export interface ContactRow {
  /** The contact id agents see (`contact_id`); unique, given by the store once. */
  id: string;
  /** The user's own id in the channel (openid, wxid); (channel, account, user) is unique. */
  user: string;
  /** "" while no agent has the user. */
  agent: string;
  name: string;
  avatar: string;
  company: string;
  /** The channel account the user writes to (an Official Account's AppID); "" for a channel without accounts. */
  account: string;
  channel: Channel;
  status: ContactStatus;
  /** The name an agent gave the contact; "". */
  displayName: string;
  /** The agents' note on the contact; "". */
  note: string;
  /** Grows with every change of the row: a conditional update names the version it saw. */
  version: number;
}

/** A contact with the numbers derived from its messages when read. */
export interface ContactRecord extends ContactRow {
  /** Derived: epoch seconds of the newest message either way (workflow lines too); the creation time before any. */
  lastMessageTime: number;
  /** Derived: epoch seconds of the user's newest message; 0 before any. */
  lastInboundTime: number;
  /** Derived: messages from the user the agent has not read. */
  unread: number;
}

/** A contact with what its list entry shows, derived from its messages when read. */
export interface ContactSummary extends ContactRecord {
  /** The newest message either way, workflow lines left out. */
  last?: StoredMessage;
  /** The newest workflow line (a transfer, a release…). */
  lastEvent?: StoredMessage;
  /** The user's newest message or reply (events and workflow lines left out) is the user's. */
  awaiting: boolean;
  /** The contact's tags (标签), sorted; absent when it has none. */
  tags?: string[];
}

/** What the accept path asks the store to decide for one inbound message. */
export interface InboundInput {
  /** The message: `contact` is the user's own id in the channel; `channel` and `account` say where from. */
  message: Message;
  /** `media`: kept, delivered once its file is ready; default `accepted`. */
  state?: "media" | "accepted";
  /** The agent the source asked for: it takes the contact. */
  requested?: string;
  /** Agents online now: a new user, or one whose owner is away, goes to the one with the fewest open contacts. */
  online: readonly string[];
  /** Owners offline past their grace period: a user of theirs who writes goes to an online agent. */
  away: { has(agent: string): boolean };
  /**
   * Whether a message handed to this agent now counts as read once written (its sessions send no read receipts);
   * then it is stored as `acked`. The caller writes it after the commit, and requeues it should that fail.
   */
  readsOnWrite?(agent: string): boolean;
  /**
   * Told the decision as soon as it is made, before it is durable, so that the message can be on its way while the
   * commit is (SQLite decides at once, in the batch's open transaction). An engine that decides only in its commit
   * does not call it. Should the commit then fail, the message was seen but not kept: the channel's retry brings it
   * again, and agents drop the repeat by id.
   */
  decided?(outcome: InboundOutcome): void;
}

/** What the store decided for one inbound message. */
export interface InboundOutcome {
  /** `duplicate`: its key was stored before; nothing was written. */
  status: "stored" | "duplicate";
  /** The contact's row after the decision (derived fields are not computed on the hot path). */
  contact: ContactRow;
  /** The message's state as stored. */
  state: InboundState;
  /** The contact was created by this message. */
  created: boolean;
  /** The owner before, when the message moved the contact to another agent; undefined otherwise. */
  movedFrom?: string;
  /** The message reopened a resolved conversation. */
  reopened: boolean;
  seq: number;
}

/** A change of a contact, made only if the contact is still as the caller saw it. */
export interface ContactChange {
  /** Only if the owner is still this one. */
  expectAgent?: string;
  /** Only if the status is still this one. */
  expectStatus?: ContactStatus;
  /**
   * Only if no message of the contact (either way, workflow lines too) has a seq above this one — nothing happened in
   * the conversation since the caller looked (0: it had none). The auto-resolve's condition (issue 22).
   */
  expectNoMessageAfter?: number;
  agent?: string;
  status?: ContactStatus;
  displayName?: string;
  note?: string;
  /** The contact's tags, replacing those it had (deduplicated; stored in `contact_tags`). */
  tags?: readonly string[];
  /** A workflow line to keep in the conversation with the change (a system message, state `sent`). */
  line?: Message;
}

/** A reply window's rule: at most `quota` replies within `ms` after the newest inbound message of `types`. */
export interface WindowRule {
  /** The window's name, for the refusal ("message", "event"). */
  name: string;
  /**
   * Inbound message types that open the window: a type, `event:<Event>` for an event (e.g. `event:subscribe`), or
   * `*` for any type that is not an event.
   */
  opens: readonly string[];
  ms: number;
  quota: number;
}

/** Why a reply was refused by {@link Store.saveReply}: no window open, or every open window used up. */
export interface WindowRefusal {
  refused: true;
  /** Per rule: epoch ms its window opened (-Infinity: never) and replies used since. */
  windows: { name: string; openedAt: number; used: number; quota: number; ms: number }[];
}

/** WeChat's customer-service reply window of one user of one account, as the Official Account channel keeps it. */
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

/** One page of a conversation. */
export interface HistoryQuery {
  /** Only messages older than this message id of the conversation; absent: from the newest. */
  before?: string;
  /** At most this many messages (a positive integer). */
  limit: number;
}

/** A lease on a piece of background work: who holds it until when. */
export interface Lease {
  /** What is leased (`outbox:<contact>`, `media:<contact>/<id>`, `job:retention`…). */
  key: string;
  holder: string;
  /** Epoch ms the lease ends unless renewed. */
  until: number;
}

/** Counters for `/healthz` and measurements; the same on every engine. */
export interface StoreStats {
  kind: string;
  /** Where it is (a file, a database without its password). */
  path: string;
  messages: number;
  contacts: number;
  /** Inbound messages not yet read by an agent (waiting, wherever). */
  unread: number;
  /** Transactions committed since open. */
  commits: number;
  /** Writes committed since open (commits / writes shows the group-commit batching). */
  writes: number;
  /** The largest batch committed in one transaction. */
  maxBatch: number;
  /** Writes waiting for the next commit. */
  queued: number;
  /** Bytes on disk (SQLite: the file and its write-ahead log); 0 where unknown. */
  fileBytes: number;
  /**
   * The figures that are estimates rather than counts; absent or empty when all are counted. PostgreSQL estimates
   * `messages` and `contacts` of a large table (src/store/postgres_stats.ts); SQLite counts every figure.
   */
  estimates?: ("messages" | "contacts")[];
}

/** The store of record; see the module documentation. */
export interface Store {
  /**
   * Decide and keep one inbound message in one step: the contact found or created by identity (its id given here),
   * its owner decided (the requested agent; else the owner; else, or when the owner is away, the online agent with
   * the fewest open contacts; a user put back in the queue waits there), a resolved conversation reopened, the
   * message stored once (a repeat of its key is `duplicate` and changes nothing).
   */
  acceptInbound(input: InboundInput): Promise<InboundOutcome>;
  /**
   * Keep an agent's reply (state `queued`) if the contact's channel allows it now: with `rules`, the reply is
   * counted against the first open window with replies left — in the same step, so that replies from anywhere
   * never exceed a window. Resolves to the stored message, or a refusal saying which windows are closed or used up.
   */
  saveReply(message: Message, rules?: readonly WindowRule[]): Promise<StoredMessage | WindowRefusal>;
  /** Store an outbound message as it is (a workflow line, a message kefu sends by itself). */
  saveOutbound(message: Message, state: OutboundState): Promise<void>;
  /** Set the state of a reply (the latest with this id for this contact); false when there is none. */
  setOutboundState(ref: MessageRef, state: OutboundState, detail?: string): Promise<boolean>;
  /**
   * Change a contact if it is still as `change` expects: resolves to the contact after, or undefined when it is not
   * (another agent took it first, it was resolved meanwhile…) or does not exist. The line, if any, is kept with it.
   */
  updateContact(id: string, change: ContactChange): Promise<ContactRow | undefined>;
  /** One contact by id, with its derived fields. */
  contact(id: string): Promise<ContactSummary | undefined>;
  /** The contacts of one agent ("" = the users waiting for an agent), most recent first. */
  contactsOf(agent: string): Promise<ContactSummary[]>;
  /** `agent`'s contacts whose name, display name, note, ids or a tag contain `text` (case-insensitive for ASCII). */
  findContacts(agent: string, text: string, limit: number): Promise<ContactSummary[]>;
  /** Open (not resolved) contacts per agent, for these agents (all owners when absent). */
  openCounts(agents?: readonly string[]): Promise<Map<string, number>>;
  /** The contacts of `agent` with messages not yet read (a user waiting for them), oldest waiting first. */
  waitingContacts(agent: string, limit: number): Promise<ContactRow[]>;
  /** These messages did not reach their agent after all (a stalled socket): they are unread again. */
  requeue(refs: readonly MessageRef[]): Promise<number>;
  /**
   * The agent read these messages of its contacts: never redelivered. A ref with contact "" names the message by
   * id alone (seed 003's read receipt). Resolves to the messages it changed.
   */
  ack(agent: string, refs: readonly MessageRef[]): Promise<MessageRef[]>;
  /**
   * Inbound messages of the agent's contacts not read, in store order, after `afterSeq`: a connecting session pages
   * through them. A message committed after a page was read reaches a registered session live, so the cursor
   * never needs to look back.
   */
  unacked(agent: string, limit?: number, afterSeq?: number): Promise<StoredMessage[]>;
  /** One contact's inbound messages not read, oldest first (they follow the contact to a new agent). */
  unackedOf(contact: string, limit?: number): Promise<StoredMessage[]>;
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
  /** One of `agent`'s contacts' messages whose media failed goes back to state `media`; undefined when none. */
  reopenMedia(ref: MessageRef, agent: string): Promise<StoredMessage | undefined>;
  /** The names of the stored media files messages still use (theirs and the originals they were converted from). */
  mediaInUse(): Promise<Set<string>>;
  /** Inbound messages waiting for their media (state `media`), oldest first: their work resumes. */
  waitingMedia(): Promise<StoredMessage[]>;
  /** Replies still `queued`, oldest first: they were on their way when a process stopped. */
  outbox(): Promise<StoredMessage[]>;
  /**
   * One page of a conversation, newest first, both directions. Rejects with a `not_found` KefuError (404) when
   * `before` is not a message of this conversation (or was swept).
   */
  history(contact: string, query: HistoryQuery): Promise<StoredMessage[]>;
  /** Messages of `agent`'s contacts whose text contains `text` (case-insensitive for ASCII), newest first. */
  search(agent: string, text: string, limit: number): Promise<StoredMessage[]>;
  /**
   * Take or renew a lease: resolves true when `holder` holds `key` until `until` — it was free, expired, or already
   * its own. Another holder's lease that has not expired is never taken.
   */
  lease(key: string, holder: string, until: number): Promise<boolean>;
  /** Give a lease back (only the holder can). */
  release(key: string, holder: string): Promise<void>;
  /** Create or replace a user's reply window (the Official Account channel's view of it, kept across restarts). */
  saveWindow(window: WindowRecord): Promise<void>;
  /** Every kept reply window (read at start). */
  windows(): Promise<WindowRecord[]>;
  /**
   * Retention: delete the messages stored before `cutoffMs` (epoch ms). Unread inbound messages and queued replies
   * are kept whatever their age. Resolves to the rows deleted.
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

// Issue 22, canned replies (快捷回复): one additive block (the interface below merges into `Store` above).

/** Whose a canned reply is: the whole team's (managed by supervisors and admins) or one agent's own. */
export type CannedScope = "team" | "personal";

/** A canned reply as stored. */
export interface CannedReply {
  /** Given by the store once (never reused). */
  id: number;
  scope: CannedScope;
  /** The agent a personal reply belongs to; "" for a team reply. */
  owner: string;
  /** What `/` in the composer finds it by (e.g. `/hi`); unique per owner (the team is one owner). */
  shortcut: string;
  /** The reply, with `{name}` and `{agent}` filled in when an agent picks it. */
  text: string;
  /** The agent who wrote it last. */
  updatedBy: string;
  /** Epoch ms of the last change (the store's clock). */
  updatedAt: number;
}

/** A new canned reply. */
export interface CannedInput {
  scope: CannedScope;
  /** "" for a team reply; the agent's id for a personal one. */
  owner: string;
  shortcut: string;
  text: string;
  /** Who writes it. */
  by: string;
}

/** Canned replies are kept by the store, team-wide and per agent. */
export interface Store {
  /** The team's replies and `agent`'s own, by shortcut (the team's first on a tie), then id. */
  cannedReplies(agent: string): Promise<CannedReply[]>;
  /** One canned reply by id. */
  cannedReply(id: number): Promise<CannedReply | undefined>;
  /** Keep a new reply; `"taken"` (nothing written) when its owner has a reply with that shortcut already. */
  addCanned(input: CannedInput): Promise<CannedReply | "taken">;
  /**
   * Change a reply only if it is still of `scope` and `owner`: the reply after, `"taken"` when the new shortcut is
   * another reply's of that owner (nothing changed), undefined when there is no such reply.
   */
  updateCanned(
    id: number,
    expect: { scope: CannedScope; owner: string },
    change: { shortcut?: string; text?: string; by: string },
  ): Promise<CannedReply | "taken" | undefined>;
  /** Delete a reply only if it is of `scope` and `owner`; false when there is no such reply. */
  deleteCanned(id: number, expect: { scope: CannedScope; owner: string }): Promise<boolean>;
}

// Issue 22, availability, capacity and the queue: one additive block (merges into `Store` above).

/** What an agent set: `online` takes new users; `busy` and `away` keep their conversations and get no new ones. */
export type Availability = "online" | "busy" | "away";

/** How a new user's agent is chosen among those available under capacity (`ASSIGN_POLICY`). */
export type AssignPolicy = "fewest" | "round_robin";

/** An agent's availability as kept in the store (every process reads the same). */
export interface AgentState {
  agent: string;
  availability: Availability;
  /** Epoch ms it was set. */
  since: number;
}

/** Who may be given users: online now, and each one's capacity (open conversations; Infinity: no limit). */
export interface AssignInput {
  /** Agents online now, in preference order; those whose availability is not `online` are left out by the store. */
  online: readonly string[];
  /** Open conversations an agent may hold before new users wait; default: no limit. */
  capacity?: (agent: string) => number;
  /** Default `fewest`. */
  policy?: AssignPolicy;
  /** The workflow line kept in each assigned user's history, in the same write (the row as assigned). */
  line?: (after: ContactRow) => Message;
}

/** One user waiting for an agent, in arrival order. */
export interface QueueEntry {
  id: string;
  /** `open`: waits for a free slot (assigned by itself); `queued`: put back by an agent (taken by hand). */
  status: ContactStatus;
  /** Epoch ms the user began to wait. */
  queuedAt: number;
}

/** The assignment inputs the accept path also takes (a new user goes to an available agent under capacity). */
export interface InboundInput {
  /** Open conversations an agent may hold before new users wait; default: no limit. */
  capacity?: (agent: string) => number;
  /** Default `fewest`. */
  policy?: AssignPolicy;
  /** The workflow line kept in each assigned user's history, in the same write (the row as assigned). */
  line?: (after: ContactRow) => Message;
}

/** Availability, capacity and the queue are decided by the store, atomically, on every engine. */
export interface Store {
  /** Keep what `agent` set (it stands until changed again, across restarts and on every process). */
  setAvailability(agent: string, availability: Availability): Promise<AgentState>;
  /** Every agent who ever set an availability (agents without a row are `online`). */
  agentStates(): Promise<AgentState[]>;
  /** The users waiting for an agent (agent "", not resolved), longest-waiting first. */
  queue(): Promise<QueueEntry[]>;
  /**
   * Fill free slots: while an available agent is under capacity and a user waits with status `open`, the
   * longest-waiting one goes to the agent the policy picks. One atomic step with a conditional update per user, so
   * that two calls at once (two slots freeing, two processes) never assign one user twice. Resolves to the rows
   * assigned.
   */
  assignWaiting(input: AssignInput): Promise<ContactRow[]>;
}

// Issue 22, automatic messages: one additive block (merges into `Store` above).

/**
 * The agent id kefu's automatic messages are kept under (no agent may have it): they count against reply windows like
 * an agent's reply, but a user answered only by one still waits for an agent (`awaiting`).
 */
export const AUTOMATIC_AGENT = "kefu";

/** An open conversation and when its newest message either way was stored. */
export interface IdleContact {
  id: string;
  agent: string;
  channel: Channel;
  account: string;
  /** Epoch ms of the newest message (the store's clock); the creation time when it has none. */
  lastAt: number;
  /** The newest message's seq; 0 when it has none (for {@link ContactChange.expectNoMessageAfter}). */
  lastSeq: number;
}

/** A (channel, account) pattern: undefined matches any. */
export interface AccountPattern {
  channel?: string;
  account?: string;
}

/** Which conversations {@link Store.idleContacts} looks at: those matching the pattern, except those matching any of `except`. */
export interface IdleScope extends AccountPattern {
  except?: readonly AccountPattern[];
}

/** What kefu sends by itself is recorded by the store, so that no node and no restart sends it twice. */
export interface Store {
  /**
   * Record that kefu sends `kind` (`welcome`, `closed`, `please_wait`…) to `contact` for `key` (the occasion: an
   * event id, a closed period, a wait): true the first time, false when recorded before — by another node, before
   * a restart. The caller sends only on true.
   */
  claimAutomatic(contact: string, kind: string, key: string): Promise<boolean>;
  /** Forget the records made before `beforeMs` (epoch ms); resolves to how many. */
  forgetAutomatic(beforeMs: number): Promise<number>;
  /**
   * Open conversations with an owner (status `open`) whose newest message either way was stored before `beforeMs`,
   * longest idle first, at most `limit`; only those in `scope` (default: every one).
   */
  idleContacts(beforeMs: number, limit: number, scope?: IdleScope): Promise<IdleContact[]>;
}

// Issue 19, holders: one additive block (the interface below merges into `Store` above).

/** Who holds a lease can be read (for `/healthz`: which node holds a channel's connection). */
export interface Store {
  /** The lease on `key` while it has not ended by the store's clock (`until` ≥ now); undefined when free. */
  leaseOf(key: string): Promise<Lease | undefined>;
}

// Issue 22, internal notes (内部备注): one additive block. A note needs no method of its own: it is an outbound
// message of type `note` kept with `saveOutbound(note, "sent")`, and the engines leave it out of what is derived.

/**
 * The message type of an internal note (内部备注): a message of the team in a conversation (direction `out`, state
 * `sent`), shown in its history to the team only. No channel ever sends it (only replies go out, and a note is never
 * one), and unread counts, `awaiting`, the preview (`last`) and every reply window leave it out.
 */
export const NOTE_TYPE = "note";

// Issue 22, reports for supervisors: one additive block (merges into `Store` above).

/** Reports are computed by the store, in SQL, on every engine (`reports_sql.ts`; docs/reports.md). */
export interface Store {
  /** Messages per hour and day, conversations, response, resolution and queue times over the query's hours. */
  report(query: import("./reports_sql.ts").ReportQuery): Promise<import("./reports_sql.ts").ReportData>;
}
