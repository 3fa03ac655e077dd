/**
 * The embedded {@link Store}: SQLite through Deno's built-in `node:sqlite`, one
 * file in write-ahead-log mode, schema versioned with `PRAGMA user_version`.
 *
 * Writes are queued and committed together (group commit): one transaction per
 * batch, when the batch reaches `groupMaxMessages` or `groupCommitMs` after its
 * first write. Each write's Promise settles after its transaction: resolved once
 * committed, rejected when it failed. `node:sqlite` is synchronous, so a commit
 * blocks the event loop for the duration of one batch; batches stay small.
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { dirname } from "node:path";
import { KefuError, quote } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import { Background, type BackgroundStats } from "./background.ts";
import { MESSAGE_FIELDS, prepareSearch, runSearch } from "./search.ts";
import type { ReportData, ReportQuery } from "./reports_sql.ts";
import { sqliteReport } from "./sqlite_reports.ts";
import { observeCommit } from "../metrics/metrics.ts";
import { SQLITE_AUTOMATIC_MIGRATION, SqliteAutomatic } from "./sqlite_automatic.ts";
import {
  CLOSES_WINDOWS,
  contactIds,
  decideOwner,
  decideWindow,
  opensWindow,
  pickAgent,
  UNLIMITED,
  windowType,
  type WindowUse,
} from "./decisions.ts";
import type {
  AgentState,
  AssignInput,
  Availability,
  CannedInput,
  CannedReply,
  CannedScope,
  ContactChange,
  ContactRow,
  ContactSummary,
  HistoryQuery,
  IdleContact,
  IdleScope,
  InboundInput,
  InboundOutcome,
  InboundState,
  Lease,
  MessageRef,
  MessageState,
  OutboundState,
  QueueEntry,
  Store,
  StoredMessage,
  StoreStats,
  WindowRecord,
  WindowRefusal,
  WindowRule,
} from "./store.ts";

/** One schema step; `sql` runs in the transaction that moves `user_version` to `version`. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The schema, oldest step first. Append only: a released step is never edited. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "contacts, messages with delivery state and inbound de-dup keys, reply windows",
    sql: `
    CREATE TABLE contacts (
      id TEXT PRIMARY KEY NOT NULL, agent TEXT NOT NULL, name TEXT NOT NULL, avatar TEXT NOT NULL,
      company TEXT NOT NULL, account TEXT NOT NULL, channel TEXT NOT NULL,
      last_message_time INTEGER NOT NULL, last_inbound_time INTEGER NOT NULL, unread INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX contacts_agent ON contacts (agent);
    -- AUTOINCREMENT: a seq is never reused, even after the newest rows were swept.
    CREATE TABLE messages (
      seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL,
      direction TEXT NOT NULL CHECK (direction IN ('in', 'out')), channel TEXT NOT NULL,
      account TEXT NOT NULL, contact TEXT NOT NULL, agent TEXT NOT NULL, company TEXT NOT NULL,
      type TEXT NOT NULL, content TEXT NOT NULL, media TEXT NOT NULL, send_time INTEGER NOT NULL,
      name TEXT NOT NULL, avatar TEXT NOT NULL, extra TEXT, state TEXT NOT NULL,
      detail TEXT NOT NULL DEFAULT '', stored_at INTEGER NOT NULL
    );
    -- The de-dup key is a constraint, so "seen before" is as durable as the message. It leads
    -- with the id: WeChat's MsgIds grow over time, so inserts append instead of touching a
    -- page per user. Likewise the unacked index is in seq order and small once agents ack.
    CREATE UNIQUE INDEX messages_inbound_key ON messages (id, contact, account) WHERE direction = 'in';
    CREATE INDEX messages_conversation ON messages (contact, seq);
    CREATE INDEX messages_unacked ON messages (seq) WHERE direction = 'in' AND state <> 'acked';
    CREATE INDEX messages_outbox ON messages (seq) WHERE direction = 'out' AND state = 'queued';
    CREATE TABLE windows (
      account TEXT NOT NULL, openid TEXT NOT NULL, last_message_at INTEGER NOT NULL,
      message_used INTEGER NOT NULL, last_event_at INTEGER NOT NULL, event_used INTEGER NOT NULL,
      PRIMARY KEY (account, openid)
    ) WITHOUT ROWID;`,
  },
  {
    version: 2,
    name: "contact identity is (channel, account, user id); the contact id agents see is its own column",
    // Files of version 1 keyed contacts by the user id alone, so that id stays each contact's id, and its user id.
    // Messages pushed over HTTP (no account) move to their own channel, as new ones are named.
    sql: `
    ALTER TABLE contacts ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
    UPDATE contacts SET user_id = id;
    UPDATE contacts SET channel = 'http_push' WHERE account = '';
    UPDATE messages SET channel = 'http_push' WHERE account = '';
    CREATE UNIQUE INDEX contacts_identity ON contacts (channel, account, user_id);`,
  },
  {
    version: 3,
    name: "messages waiting for their media; which messages use a stored media file",
    // State 'media': committed, its file being fetched and converted; delivered once that is done. Only messages
    // with media are in the index, so text messages cost nothing more.
    sql: `CREATE INDEX messages_media ON messages (media) WHERE media <> '';`,
  },
  {
    version: 4,
    name: "conversations resolved or open; agents' names and notes for contacts",
    sql: `
    ALTER TABLE contacts ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
    ALTER TABLE contacts ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
    ALTER TABLE contacts ADD COLUMN note TEXT NOT NULL DEFAULT '';`,
  },
  {
    version: 5,
    name: "each contact's newest workflow line found without a scan of its conversation",
    // Workflow lines are few, so the partial index is small and a user's message costs nothing more.
    sql: `CREATE INDEX messages_system ON messages (contact, seq) WHERE type = 'system';`,
  },
  {
    version: 6,
    name: "the store decides: contacts keep only decisions (owner, status, names) with a version; unread counts, " +
      "times and previews are derived from messages; leases for background work",
    // What a row kept beside the messages (times, the unread count) could drift from them: they are now read from the
    // messages themselves, through the conversation index and a small index of each contact's unread messages.
    sql: `
    ALTER TABLE contacts ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE contacts ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
    UPDATE contacts SET created_at = last_message_time;
    ALTER TABLE contacts DROP COLUMN last_message_time;
    ALTER TABLE contacts DROP COLUMN last_inbound_time;
    ALTER TABLE contacts DROP COLUMN unread;
    CREATE INDEX messages_unread ON messages (contact) WHERE direction = 'in' AND state <> 'acked';
    CREATE TABLE leases (key TEXT PRIMARY KEY NOT NULL, holder TEXT NOT NULL, until INTEGER NOT NULL) WITHOUT ROWID;`,
  },
  {
    version: 7,
    name: "team (issue 22): agents' availability and capacity, the queue",
    // A user waits from `queued_at` (epoch ms; the order of the queue) while no agent has them. Agents' availability
    // and the round-robin turn (`assigned`, a counter) are rows of their own: every process reads the same.
    sql: `
    ALTER TABLE contacts ADD COLUMN queued_at INTEGER NOT NULL DEFAULT 0;
    UPDATE contacts SET queued_at = created_at * 1000 WHERE agent = '';
    CREATE INDEX contacts_queue ON contacts (queued_at, id) WHERE agent = '' AND status <> 'resolved';
    CREATE TABLE agents (
      agent TEXT PRIMARY KEY NOT NULL,
      availability TEXT NOT NULL DEFAULT 'online' CHECK (availability IN ('online', 'busy', 'away')),
      since INTEGER NOT NULL DEFAULT 0, assigned INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;`,
  },
  {
    version: 8,
    name: "team (issue 22): canned replies and tags",
    // A team reply has owner '' (the team is one owner), so that one unique index keeps shortcuts apart per owner.
    // Tags are their own rows: a contact's are read with it, and a tag finds its contacts through the second index.
    sql: `
    CREATE TABLE canned_replies (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      scope TEXT NOT NULL CHECK (scope IN ('team', 'personal')), owner TEXT NOT NULL,
      shortcut TEXT NOT NULL, text TEXT NOT NULL, updated_by TEXT NOT NULL, updated_at INTEGER NOT NULL,
      CHECK ((scope = 'team') = (owner = ''))
    );
    CREATE UNIQUE INDEX canned_replies_shortcut ON canned_replies (owner, shortcut);
    CREATE TABLE contact_tags (contact TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (contact, tag)) WITHOUT ROWID;
    CREATE INDEX contact_tags_tag ON contact_tags (tag);`,
  },
  { version: 9, ...SQLITE_AUTOMATIC_MIGRATION },
  {
    version: 10,
    name: "reports (issue 22): messages by time",
    // The reports count a range's messages by hour, channel and direction from this index alone, and find the
    // contacts active in the range through it; one more index entry per message on the accept path.
    sql: `CREATE INDEX messages_time ON messages (send_time, channel, direction, type, contact);`,
  },
];

/** Options for {@link SqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file (its directory is created), or ":memory:" for a store that keeps nothing. */
  path: string;
  /**
   * `NORMAL` (default): a commit is written to the WAL but not fsynced, so it
   * survives the process being killed (kill -9, a crash), not the machine
   * losing power, where the last commits since a checkpoint can be lost.
   * `FULL`: every commit is fsynced and survives power loss too, at the cost of
   * one fsync per transaction — which group commit shares across the batch.
   */
  synchronous?: "NORMAL" | "FULL";
  /** Longest wait for a batch to fill after its first write; 0 commits every write alone. Default 2. */
  groupCommitMs?: number;
  /** A batch this big commits at once. Default 256. */
  groupMaxMessages?: number;
  /** How long to wait for another connection's lock (an operator's sqlite3 shell). Default 5000. */
  busyTimeoutMs?: number;
  /**
   * How often, at most, the background worker checkpoints the WAL (a file only; it skips its turn while the writer's
   * backstop has one, see `background.ts`); 0: SQLite's automatic checkpoints, on the event loop, in the commit that
   * crosses 1000 pages. Default 1000.
   */
  checkpointMs?: number;
  /** The schema steps; tests pass their own. Default {@link MIGRATIONS}. */
  migrations?: readonly Migration[];
  /** The clock (epoch ms) for reply windows and leases; default `Date.now`. */
  now?: () => number;
  /** Called once the file is closed (the DATA_DIR lock is let go then). */
  closed?: () => void;
}

/** The database file under a data directory (`DATA_DIR`). */
export function storePath(dataDir: string): string {
  return `${dataDir.replace(/\/+$/, "") || "."}/kefu.db`;
}

type Row = Record<string, unknown>;

interface Write {
  result: unknown;
  resolve(): void;
  reject(error: unknown): void;
}

const SWEEP_CHUNK = 5000;
// The main connection's own checkpoint threshold while the background worker checkpoints (SQLite's default: 1000).
const WAL_BACKSTOP_PAGES = 4000;

const CONTACT_FIELDS = "c.id, c.user_id AS user, c.agent, c.name, c.avatar, c.company, c.account, c.channel, " +
  "c.status, c.display_name AS displayName, c.note, c.version, c.created_at AS createdAt";

/** {@link Store} on SQLite. */
export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #groupMs: number;
  readonly #groupMax: number;
  readonly #now: () => number;
  readonly #closedHook: (() => void) | undefined;
  readonly #q: Record<string, StatementSync> = {};
  /** The worker that checkpoints and searches (a file only: a second connection cannot see ":memory:"). */
  readonly #background: Background | undefined;
  /**
   * Open (not resolved) contacts per agent, for "the online agent with the fewest": a count per new user would visit
   * every contact of every online agent. This process is the store's only writer (DATA_DIR's lock), so the counts
   * are kept here as each write changes them; a batch that rolls back drops them, and they are read again.
   */
  #open: Map<string, number> | undefined;
  /** The agents' rows (availability, round-robin turn), kept here likewise: read once, changed as written. */
  #agents: Map<string, { availability: Availability; since: number; assigned: number }> | undefined;
  /** The newest `queued_at` given: the queue's order is strict even within one millisecond. */
  #queuedAt = -1;
  #queue: Write[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #commits = 0;
  #writes = 0;
  #maxBatch = 0;
  #messages: number;

  /** Open (creating the file and its directory) and migrate the schema; throws naming the file. */
  constructor(options: SqliteStoreOptions) {
    const path = this.#path = options.path;
    this.#groupMs = options.groupCommitMs ?? 2;
    this.#groupMax = Math.max(1, options.groupMaxMessages ?? 256);
    this.#now = options.now ?? Date.now;
    this.#closedHook = options.closed;
    try {
      if (path !== ":memory:") Deno.mkdirSync(dirname(path), { recursive: true });
      this.#db = new DatabaseSync(path);
    } catch (e) {
      throw new Error(`cannot open the store ${quote(path)}: ${errorText(e)}`, { cause: e });
    }
    try {
      this.#db.exec(`PRAGMA busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`);
      this.#db.exec("PRAGMA journal_mode = WAL");
      this.#db.exec(`PRAGMA synchronous = ${options.synchronous === "FULL" ? "FULL" : "NORMAL"}`);
      // A burst can grow the WAL; cut it back after each checkpoint.
      this.#db.exec("PRAGMA journal_size_limit = 67108864");
    } catch (e) {
      this.#db.close();
      throw new Error(`cannot open the store ${quote(path)}: ${errorText(e)}`, { cause: e });
    }
    try {
      migrate(this.#db, options.migrations ?? MIGRATIONS, path);
      this.#prepare();
      this.#messages = Number(this.#q.countMessages.get()!.n);
    } catch (e) {
      this.#db.close();
      throw e;
    }
    const checkpointMs = options.checkpointMs ?? 1000;
    if (path !== ":memory:" && checkpointMs > 0) {
      // A backstop, not the way: the worker copies the WAL back as it grows, but SQLite starts the WAL over only
      // when a write finds all of it copied, which under steady load never happens between two commits. Past this
      // many pages the commit checkpoints itself — cheap then, as the worker has copied nearly everything already —
      // and the WAL starts over: it stays within ~16 MiB instead of growing without bound.
      this.#db.exec(`PRAGMA wal_autocheckpoint = ${WAL_BACKSTOP_PAGES}`);
      this.#background = new Background({
        path,
        busyTimeoutMs: Math.trunc(options.busyTimeoutMs ?? 5000),
        checkpointMs,
        backstopPages: WAL_BACKSTOP_PAGES,
        // Without its worker the store checkpoints by itself again: the WAL must not grow without bound.
        failed: () => {
          if (!this.#closed) this.#db.exec("PRAGMA wal_autocheckpoint = 1000");
        },
      });
    }
  }

  #prepare(): void {
    const p = (name: string, sql: string) => this.#q[name] = this.#db.prepare(sql);
    // Positional parameters: node:sqlite binds them about twice as fast as named ones.
    p(
      "insertMessage",
      "INSERT INTO messages (id, direction, channel, account, contact, agent, company, type, content, media, " +
        "send_time, name, avatar, extra, state, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " +
        "ON CONFLICT DO NOTHING",
    );
    p(
      "insertMessageSeq",
      "INSERT INTO messages (id, direction, channel, account, contact, agent, company, type, content, media, " +
        "send_time, name, avatar, extra, state, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " +
        "ON CONFLICT DO NOTHING RETURNING seq",
    );
    p(
      "contactByIdentity",
      `SELECT ${CONTACT_FIELDS} FROM contacts c WHERE channel = ? AND account = ? AND user_id = ?`,
    );
    p("contactById", `SELECT ${CONTACT_FIELDS} FROM contacts c WHERE id = ?`);
    p("idTaken", "SELECT 1 AS yes FROM contacts WHERE id = ?");
    p(
      "inboundKey",
      "SELECT seq, state FROM messages INDEXED BY messages_inbound_key WHERE id = ? AND contact = ? AND account = ? " +
        "AND direction = 'in'",
    );
    p(
      "insertContact",
      "INSERT INTO contacts (id, user_id, agent, name, avatar, company, account, channel, status, display_name, " +
        "note, version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', '', '', 1, ?)",
    );
    p(
      "writeContact",
      "UPDATE contacts SET agent = ?, name = ?, avatar = ?, company = ?, status = ?, display_name = ?, note = ?, " +
        "version = version + 1 WHERE id = ? AND version = ?",
    );
    p(
      "openCountsAll",
      "SELECT agent, count(*) AS n FROM contacts WHERE status <> 'resolved' AND agent <> '' GROUP BY agent",
    );
    p("contactsOf", `SELECT ${CONTACT_FIELDS} FROM contacts c WHERE agent = ?`);
    p(
      "findContacts",
      `SELECT ${CONTACT_FIELDS} FROM contacts c WHERE agent = ?1 AND (c.id LIKE ?2 ESCAPE '\\' OR ` +
        "c.user_id LIKE ?2 ESCAPE '\\' OR c.name LIKE ?2 ESCAPE '\\' OR c.display_name LIKE ?2 ESCAPE '\\' OR " +
        "c.note LIKE ?2 ESCAPE '\\' OR EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact = c.id AND " +
        "t.tag LIKE ?2 ESCAPE '\\'))",
    );
    // What a contact's list entry derives from its messages: a few lookups on the conversation's indexes.
    p(
      "unreadOf",
      "SELECT count(*) AS n FROM messages INDEXED BY messages_unread WHERE contact = ? AND direction = 'in' " +
        "AND state <> 'acked'",
    );
    p(
      "newestOf",
      "SELECT send_time AS t FROM messages INDEXED BY messages_conversation WHERE contact = ? ORDER BY seq DESC LIMIT 1",
    );
    p(
      "newestInboundOf",
      "SELECT send_time AS t FROM messages INDEXED BY messages_conversation WHERE contact = ? AND direction = 'in' " +
        "ORDER BY seq DESC LIMIT 1",
    );
    p(
      "lastOf",
      `SELECT ${MESSAGE_FIELDS} FROM messages m INDEXED BY messages_conversation WHERE contact = ? ` +
        "AND type NOT IN ('system', 'note') ORDER BY seq DESC LIMIT 1",
    );
    p(
      "lastExchange",
      // kefu's automatic messages (agent 'kefu', issue 22) answer nobody: the user still waits for an agent.
      "SELECT direction FROM messages INDEXED BY messages_conversation WHERE contact = ? " +
        "AND type NOT IN ('system', 'event', 'note') AND NOT (direction = 'out' AND agent = 'kefu') ORDER BY seq DESC LIMIT 1",
    );
    p(
      "lastSystemLine",
      `SELECT ${MESSAGE_FIELDS} FROM messages m INDEXED BY messages_system WHERE contact = ? AND type = 'system' ` +
        "ORDER BY seq DESC LIMIT 1",
    );
    // Reply windows: the user's inbound messages newest first, and the replies counted after one of them.
    p(
      "inboundNewestFirst",
      "SELECT seq, type, extra, send_time AS sendTime, stored_at AS storedAt FROM messages " +
        "INDEXED BY messages_conversation WHERE contact = ? AND direction = 'in' ORDER BY seq DESC",
    );
    p(
      "repliesAfter",
      "SELECT count(*) AS n FROM messages INDEXED BY messages_conversation WHERE contact = ? AND seq > ? " +
        "AND direction = 'out' AND type NOT IN ('system', 'note') AND state IN ('queued', 'sent')",
    );
    p(
      "waitingContacts",
      `SELECT ${CONTACT_FIELDS}, min(m.seq) AS oldest FROM contacts c JOIN messages m INDEXED BY messages_unread ` +
        "ON m.contact = c.id AND m.direction = 'in' AND m.state <> 'acked' WHERE c.agent = ? AND m.state = 'accepted' " +
        "GROUP BY c.id ORDER BY oldest LIMIT ?",
    );
    p(
      "setOutbound",
      "UPDATE messages SET state = :state, detail = :detail WHERE seq = (SELECT max(seq) FROM messages " +
        "WHERE contact = :contact AND id = :id AND direction = 'out')",
    );
    const mine = "direction = 'in' AND contact = ?1 AND id = ?2 AND " +
      "EXISTS (SELECT 1 FROM contacts c WHERE c.id = ?1 AND c.agent = ?3)";
    p("ack", `UPDATE messages SET state = 'acked' WHERE state <> 'acked' AND ${mine} RETURNING contact, id`);
    p(
      "requeue",
      "UPDATE messages SET state = 'accepted' WHERE direction = 'in' AND contact = ?1 AND id = ?2 AND state = 'acked'",
    );
    // A read receipt that names only the message id (seed 003's event 3): any of the agent's contacts.
    p(
      "ackAny",
      "UPDATE messages SET state = 'acked' WHERE direction = 'in' AND state <> 'acked' AND ?1 = '' AND id = ?2 AND " +
        "contact IN (SELECT c.id FROM contacts c WHERE c.agent = ?3) RETURNING contact, id",
    );
    p(
      "unackedOf",
      `SELECT ${MESSAGE_FIELDS} FROM messages m INDEXED BY messages_conversation ` +
        "WHERE m.contact = ? AND m.direction = 'in' AND m.state = 'accepted' ORDER BY m.seq LIMIT ?",
    );
    p(
      "unacked",
      `SELECT ${MESSAGE_FIELDS} FROM messages m INDEXED BY messages_unacked JOIN contacts c ON c.id = m.contact ` +
        "WHERE c.agent = ? AND m.direction = 'in' AND m.state <> 'acked' AND m.state = 'accepted' AND m.seq > ? " +
        "ORDER BY m.seq LIMIT ?",
    );
    p(
      "countUnread",
      "SELECT count(*) AS n FROM messages INDEXED BY messages_unacked WHERE direction = 'in' AND state <> 'acked'",
    );
    p("outbox", `SELECT ${MESSAGE_FIELDS} FROM messages m WHERE direction = 'out' AND state = 'queued' ORDER BY seq`);
    p(
      "waitingMedia",
      `SELECT ${MESSAGE_FIELDS} FROM messages m INDEXED BY messages_unacked ` +
        "WHERE m.direction = 'in' AND m.state <> 'acked' AND m.state = 'media' ORDER BY m.seq",
    );
    p(
      "finishMedia",
      "UPDATE messages SET media = ?, extra = ?, state = ? WHERE direction = 'in' AND contact = ? AND id = ? " +
        "AND state = 'media'",
    );
    // A failed file is tried again: the message goes back to state 'media' (only one that failed, of this agent).
    p(
      "reopenMedia",
      `UPDATE messages AS m SET state = 'media' WHERE m.direction = 'in' AND m.contact = ?1 AND m.id = ?2 ` +
        "AND m.state <> 'media' AND m.extra LIKE '%\"media_error\"%' " +
        "AND EXISTS (SELECT 1 FROM contacts c WHERE c.id = ?1 AND c.agent = ?3) " +
        `RETURNING ${MESSAGE_FIELDS.replaceAll("m.", "")}`,
    );
    p(
      "mediaInUse",
      "SELECT media, extra FROM messages m INDEXED BY messages_media WHERE m.media <> '' AND m.media LIKE '%/media/%'",
    );
    p(
      "mediaOwner",
      // The `<> ''` term is the index's own condition, so that the partial index serves the lookup. A file is named
      // by its path, or by its absolute URL when PUBLIC_URL was set when it was stored.
      "SELECT 1 AS yes FROM messages m JOIN contacts c ON c.id = m.contact " +
        "WHERE m.media IN (?, ?) AND m.media <> '' AND c.agent = ? LIMIT 1",
    );
    p("beforeSeq", "SELECT max(seq) AS seq FROM messages WHERE contact = ? AND id = ?");
    p("history", `SELECT ${MESSAGE_FIELDS} FROM messages m WHERE contact = ? AND seq < ? ORDER BY seq DESC LIMIT ?`);
    p(
      "lease",
      "INSERT INTO leases (key, holder, until) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET " +
        "holder = excluded.holder, until = excluded.until WHERE leases.holder = excluded.holder OR leases.until < ?4",
    );
    p("release", "DELETE FROM leases WHERE key = ? AND holder = ?");
    p(
      "sweepChunk",
      "SELECT max(seq) AS hi, max(stored_at) AS newest FROM " +
        "(SELECT seq, stored_at FROM messages WHERE seq > ? ORDER BY seq LIMIT ?)",
    );
    // Kept whatever their age: inbound not acknowledged, replies not yet sent to WeChat.
    p(
      "sweepMessages",
      "DELETE FROM messages WHERE seq > :lo AND seq <= :hi AND stored_at < :cutoff AND " +
        "NOT (direction = 'in' AND state <> 'acked') AND NOT (direction = 'out' AND state = 'queued')",
    );
    p(
      "upsertWindow",
      "INSERT OR REPLACE INTO windows (account, openid, last_message_at, message_used, last_event_at, event_used) " +
        "VALUES (?, ?, ?, ?, ?, ?)",
    );
    p(
      "windows",
      "SELECT account, openid, last_message_at AS lastMessageAt, message_used AS messageUsed, " +
        "last_event_at AS lastEventAt, event_used AS eventUsed FROM windows",
    );
    p("sweepWindows", "DELETE FROM windows WHERE max(last_message_at, last_event_at) < ?");
    p("countMessages", "SELECT count(*) AS n FROM messages");
    p("agentRows", "SELECT agent, availability, since, assigned FROM agents");
    p(
      "agentTurn",
      "INSERT INTO agents (agent, assigned) VALUES (?1, ?2) ON CONFLICT (agent) DO UPDATE SET assigned = ?2",
    );
    p(
      "setAvailability",
      "INSERT INTO agents (agent, availability, since) VALUES (?1, ?2, ?3) ON CONFLICT (agent) DO UPDATE SET " +
        "availability = ?2, since = ?3",
    );
    p("lastQueuedAt", "SELECT coalesce(max(queued_at), 0) AS t FROM contacts");
    p("setQueuedAt", "UPDATE contacts SET queued_at = ? WHERE id = ?");
    p(
      "queue",
      "SELECT id, status, queued_at AS queuedAt FROM contacts INDEXED BY contacts_queue " +
        "WHERE agent = '' AND status <> 'resolved' ORDER BY queued_at, id",
    );
    p(
      "nextWaiting",
      `SELECT ${CONTACT_FIELDS} FROM contacts c INDEXED BY contacts_queue WHERE agent = '' AND status <> 'resolved' ` +
        "AND status = 'open' ORDER BY queued_at, id LIMIT 1",
    );
    p("countContacts", "SELECT count(*) AS n FROM contacts");
    p("tagsOf", "SELECT tag FROM contact_tags WHERE contact = ? ORDER BY tag");
    p("clearTags", "DELETE FROM contact_tags WHERE contact = ?");
    p("addTag", "INSERT OR IGNORE INTO contact_tags (contact, tag) VALUES (?, ?)");
  }

  acceptInbound(input: InboundInput): Promise<InboundOutcome> {
    const m = input.message;
    let decided: InboundOutcome | undefined;
    const kept = this.#write(
      `save inbound message ${quote(m.id)}`,
      () => decided = this.#accept(input),
      (o) => o.status === "stored" && this.#messages++,
    );
    // Decided at once, in the batch's transaction: the caller may act on it while the commit is under way.
    if (decided !== undefined) input.decided?.(decided);
    return kept;
  }

  // Runs inside the batch's transaction: the only writer, so what it reads is what it writes over.
  #accept(input: InboundInput): InboundOutcome {
    const m = input.message;
    const account = m.account ?? "";
    const found = this.#q.contactByIdentity.get(m.channel, account, m.contact) as Row | undefined;
    const row = found && toContactRow(found);
    const agent = decideOwner(row, input, () => this.#pick(input));
    let state: InboundState = input.state ?? "accepted";
    if (state === "accepted" && agent !== "" && input.readsOnWrite?.(agent) === true) state = "acked";
    let contact: ContactRow;
    if (row === undefined) {
      let id = "";
      for (id of contactIds(m.contact, m.channel, account)) if (this.#q.idTaken.get(id) === undefined) break;
      this.#q.insertContact.run(id, m.contact, agent, m.name, m.avatar, m.company, account, m.channel, m.sendTime);
      this.#counted(undefined, { agent, status: "open" });
      if (agent === "") this.#enqueue(id);
      contact = {
        id,
        user: m.contact,
        agent,
        name: m.name,
        avatar: m.avatar,
        company: m.company,
        account,
        channel: m.channel,
        status: "open",
        displayName: "",
        note: "",
        version: 1,
      };
    } else {
      contact = row;
    }
    // The message first: its key, unique in the index, says whether it was kept before (then nothing changes).
    const params = messageParams(m, state, this.#now(), contact.id, agent);
    const inserted = this.#q.insertMessageSeq.get(...params);
    if (inserted === undefined) {
      const dup = this.#q.inboundKey.get(m.id, contact.id, account)!;
      return {
        status: "duplicate",
        contact,
        state: dup.state as InboundState,
        created: false,
        reopened: false,
        seq: Number(dup.seq),
      };
    }
    const seq = Number(inserted.seq);
    if (row !== undefined) {
      contact = { ...row, agent };
      if (row.status === "resolved") contact.status = "open";
      if (m.name !== m.contact && m.name !== "") contact.name = m.name;
      if (m.avatar !== "") contact.avatar = m.avatar;
      if (m.company !== "") contact.company = m.company;
      if (changed(row, contact)) {
        this.#writeRow(contact, row.version);
        this.#counted(row, contact);
      }
    }
    return {
      status: "stored",
      contact,
      state,
      created: row === undefined,
      movedFrom: row !== undefined && row.agent !== agent ? row.agent : undefined,
      reopened: row !== undefined && row.status === "resolved",
      seq,
    };
  }

  // The available agent under capacity the policy picks ("" when none); its round-robin turn is taken.
  #pick(input: AssignInput): string {
    const agents = this.#agentRows();
    const candidates = input.online.filter((a) => (agents.get(a)?.availability ?? "online") === "online");
    if (candidates.length === 0) return "";
    const turns = new Map([...agents].map(([a, r]) => [a, r.assigned] as const).filter(([, n]) => n > 0));
    const policy = input.policy ?? "fewest";
    const agent = pickAgent(candidates, this.#openCounts(), input.capacity ?? UNLIMITED, policy, turns);
    if (agent !== "" && policy === "round_robin") {
      const turn = Math.max(0, ...[...agents.values()].map((r) => r.assigned)) + 1;
      this.#q.agentTurn.run(agent, turn);
      const r = agents.get(agent);
      agents.set(agent, { availability: r?.availability ?? "online", since: r?.since ?? 0, assigned: turn });
    }
    return agent;
  }

  #agentRows(): Map<string, { availability: Availability; since: number; assigned: number }> {
    if (this.#agents === undefined) {
      this.#agents = new Map();
      for (const r of this.#q.agentRows.all()) {
        this.#agents.set(String(r.agent), {
          availability: r.availability as Availability,
          since: Number(r.since),
          assigned: Number(r.assigned),
        });
      }
    }
    return this.#agents;
  }

  // The contact begins to wait now: after everyone already waiting, even within the same millisecond.
  #enqueue(id: string): void {
    if (this.#queuedAt < 0) this.#queuedAt = Number(this.#q.lastQueuedAt.get()!.t);
    this.#queuedAt = Math.max(this.#now(), this.#queuedAt + 1);
    this.#q.setQueuedAt.run(this.#queuedAt, id);
  }

  #openCounts(): Map<string, number> {
    if (this.#open === undefined) {
      this.#open = new Map();
      for (const r of this.#q.openCountsAll.all()) this.#open.set(String(r.agent), Number(r.n));
    }
    return this.#open;
  }

  // A contact's owner or status changed from `before` to `after` (either absent: created, or none).
  #counted(before: { agent: string; status: string } | undefined, after: { agent: string; status: string }): void {
    const open = this.#open;
    if (open === undefined) return;
    if (before !== undefined && before.agent !== "" && before.status !== "resolved") {
      open.set(before.agent, (open.get(before.agent) ?? 1) - 1);
    }
    if (after.agent !== "" && after.status !== "resolved") open.set(after.agent, (open.get(after.agent) ?? 0) + 1);
  }

  #writeRow(c: ContactRow, version: number): void {
    this.#q.writeContact.run(c.agent, c.name, c.avatar, c.company, c.status, c.displayName, c.note, c.id, version);
    c.version = version + 1;
  }

  saveReply(message: Message, rules: readonly WindowRule[] = []): Promise<StoredMessage | WindowRefusal> {
    return this.#write(`save reply ${quote(message.id)}`, () => {
      if (rules.length > 0) {
        const decision = decideWindow(rules, this.#windowUses(message.contact, rules), this.#now());
        if (typeof decision !== "number") return decision;
      }
      const storedAt = this.#now();
      const seq = Number(this.#q.insertMessageSeq.get(...messageParams(message, "queued", storedAt))!.seq);
      return {
        ...message,
        account: message.account ?? "",
        seq,
        state: "queued",
        detail: "",
        storedAt,
      } as StoredMessage;
    }, (r) => !("refused" in r) && this.#messages++);
  }

  // Each rule's window: the newest inbound message that opens it (an unfollow after it closes it) and replies since.
  #windowUses(contact: string, rules: readonly WindowRule[]): WindowUse[] {
    const opened: ({ seq: number; at: number } | null | undefined)[] = rules.map(() => undefined);
    let left = rules.length;
    for (const r of this.#q.inboundNewestFirst.iterate(contact) as Iterable<Row>) {
      const type = windowType(String(r.type), r.extra === null ? undefined : JSON.parse(String(r.extra)));
      if (type === CLOSES_WINDOWS) {
        for (let i = 0; i < opened.length; i++) opened[i] ??= null;
        break;
      }
      rules.forEach((rule, i) => {
        if (opened[i] !== undefined || !opensWindow(rule.opens, type)) return;
        opened[i] = { seq: Number(r.seq), at: Math.min(Number(r.sendTime) * 1000, Number(r.storedAt)) };
        left--;
      });
      if (left === 0) break;
    }
    return opened.map((o) =>
      o == null
        ? { openedAt: -Infinity, used: 0 }
        : { openedAt: o.at, used: Number(this.#q.repliesAfter.get(contact, o.seq)!.n) }
    );
  }

  saveOutbound(message: Message, state: OutboundState): Promise<void> {
    const params = messageParams(message, state, this.#now());
    return this.#write(`save reply ${quote(message.id)}`, () => {
      this.#q.insertMessage.run(...params);
    }, () => this.#messages++);
  }

  setOutboundState(ref: MessageRef, state: OutboundState, detail = ""): Promise<boolean> {
    const params = { contact: ref.contact, id: ref.id, state, detail };
    return this.#write(
      `set the state of reply ${quote(ref.id)} to ${quote(state)}`,
      () => this.#q.setOutbound.run(params).changes > 0,
    );
  }

  updateContact(id: string, change: ContactChange): Promise<ContactRow | undefined> {
    const line = change.line && messageParams(change.line, "sent", this.#now());
    const tags = change.tags && [...change.tags];
    return this.#write(`update contact ${quote(id)}`, () => {
      const found = this.#q.contactById.get(id) as Row | undefined;
      if (found === undefined) return undefined;
      const row = toContactRow(found);
      if (change.expectAgent !== undefined && row.agent !== change.expectAgent) return undefined;
      if (change.expectStatus !== undefined && row.status !== change.expectStatus) return undefined;
      const quiet = change.expectNoMessageAfter;
      if (quiet !== undefined && this.#auto.hasMessageAfter(id, quiet)) return undefined;
      const after: ContactRow = {
        ...row,
        agent: change.agent ?? row.agent,
        status: change.status ?? row.status,
        displayName: change.displayName ?? row.displayName,
        note: change.note ?? row.note,
      };
      this.#writeRow(after, row.version);
      this.#counted(row, after);
      if (after.agent === "" && row.agent !== "") this.#enqueue(id);
      if (tags) {
        this.#q.clearTags.run(id);
        for (const t of tags) this.#q.addTag.run(id, t);
      }
      if (line) this.#q.insertMessage.run(...line);
      return after;
    }, (r) => r !== undefined && line && this.#messages++);
  }

  contact(id: string): Promise<ContactSummary | undefined> {
    return this.#read(`read contact ${quote(id)}`, () => {
      const row = this.#q.contactById.get(id) as Row | undefined;
      return row === undefined ? undefined : this.#summary(row);
    });
  }

  contactsOf(agent: string): Promise<ContactSummary[]> {
    return this.#read(
      `list the contacts of agent ${quote(agent)}`,
      () => sortContacts((this.#q.contactsOf.all(agent) as Row[]).map((r) => this.#summary(r))),
    );
  }

  findContacts(agent: string, text: string, limit: number): Promise<ContactSummary[]> {
    const pattern = `%${text.replace(/[\\%_]/g, "\\$&")}%`;
    return this.#read(
      `search the contacts of agent ${quote(agent)}`,
      () =>
        sortContacts((this.#q.findContacts.all(agent, pattern) as Row[]).map((r) => this.#summary(r))).slice(0, limit),
    );
  }

  // The list entry of a contact: its row and what its messages say.
  #summary(r: Row): ContactSummary {
    const row = toContactRow(r);
    const id = row.id;
    const newest = this.#q.newestOf.get(id);
    const inbound = this.#q.newestInboundOf.get(id);
    const last = this.#q.lastOf.get(id) as Row | undefined;
    const line = this.#q.lastSystemLine.get(id) as Row | undefined;
    const tags = (this.#q.tagsOf.all(id) as Row[]).map((t) => String(t.tag));
    return {
      ...row,
      ...(tags.length > 0 ? { tags } : {}),
      unread: Number(this.#q.unreadOf.get(id)!.n),
      lastMessageTime: newest === undefined ? Number(r.createdAt) : Number(newest.t),
      lastInboundTime: inbound === undefined ? 0 : Number(inbound.t),
      last: last && toMessage(last),
      lastEvent: line && toMessage(line),
      awaiting: this.#q.lastExchange.get(id)?.direction === "in",
    };
  }

  openCounts(agents?: readonly string[]): Promise<Map<string, number>> {
    return this.#read("count the agents' open contacts", () => {
      const open = this.#openCounts();
      if (agents === undefined) return new Map([...open].filter(([, n]) => n > 0));
      return new Map(agents.map((a) => [a, open.get(a) ?? 0]));
    });
  }

  waitingContacts(agent: string, limit: number): Promise<ContactRow[]> {
    return this.#read(
      `list the waiting users of agent ${quote(agent)}`,
      () => (this.#q.waitingContacts.all(agent, limit) as Row[]).map(toContactRow),
    );
  }

  finishMedia(ref: MessageRef, media: string, extra: Record<string, string> | undefined, state: InboundState) {
    const params = [media, extra === undefined ? null : JSON.stringify(extra), state, ref.contact, ref.id];
    return this.#write(
      `record the media of message ${quote(ref.id)}`,
      () => this.#q.finishMedia.run(...params).changes > 0,
    );
  }

  reopenMedia(ref: MessageRef, agent: string): Promise<StoredMessage | undefined> {
    return this.#write(`try the media of message ${quote(ref.id)} again`, () => {
      const row = this.#q.reopenMedia.get(ref.contact, ref.id, agent) as Row | undefined;
      return row === undefined ? undefined : toMessage(row);
    });
  }

  mediaInUse(): Promise<Set<string>> {
    return this.#read("list the media files messages use", () => {
      const names = new Set<string>();
      const nameOf = (path: string) => path.slice(path.lastIndexOf("/") + 1);
      for (const row of this.#q.mediaInUse.all() as Row[]) {
        names.add(nameOf(String(row.media)));
        // The original a converted file was made from is kept with it.
        const original = row.extra === null ? undefined : JSON.parse(String(row.extra)).media_original;
        if (typeof original === "string") names.add(nameOf(original));
      }
      return names;
    });
  }

  mediaOwnedBy(paths: readonly [string, string], agent: string): Promise<boolean> {
    return this.#read(
      `look up who may open ${quote(paths[0])}`,
      () => this.#q.mediaOwner.get(paths[0], paths[1], agent) !== undefined,
    );
  }

  waitingMedia(): Promise<StoredMessage[]> {
    return this.#read(
      "list the messages waiting for their media",
      () => (this.#q.waitingMedia.all() as Row[]).map(toMessage),
    );
  }

  outbox(): Promise<StoredMessage[]> {
    return this.#read("list the replies not yet confirmed", () => (this.#q.outbox.all() as Row[]).map(toMessage));
  }

  requeue(refs: readonly MessageRef[]): Promise<number> {
    const params = refs.map((r) => [r.contact, r.id]);
    return this.#write("requeue unread messages", () => {
      let n = 0;
      for (const p of params) n += Number(this.#q.requeue.run(...p).changes);
      return n;
    });
  }

  ack(agent: string, refs: readonly MessageRef[]): Promise<MessageRef[]> {
    const params = refs.map((r) => [r.contact, r.id, agent]);
    return this.#write(`acknowledge messages for agent ${quote(agent)}`, () => {
      const done: MessageRef[] = [];
      for (const p of params) {
        for (const row of (p[0] === "" ? this.#q.ackAny : this.#q.ack).all(...p)) {
          done.push({ contact: String(row.contact), id: String(row.id) });
        }
      }
      return done;
    });
  }

  unacked(agent: string, limit = 1000, afterSeq = 0): Promise<StoredMessage[]> {
    return this.#read(
      `read the unacknowledged messages of agent ${quote(agent)}`,
      () => (this.#q.unacked.all(agent, afterSeq, limit) as Row[]).map(toMessage),
    );
  }

  unackedOf(contact: string, limit = 1000): Promise<StoredMessage[]> {
    return this.#read(
      `read the unacknowledged messages of contact ${quote(contact)}`,
      () => (this.#q.unackedOf.all(contact, limit) as Row[]).map(toMessage),
    );
  }

  history(contact: string, query: HistoryQuery): Promise<StoredMessage[]> {
    return this.#read(`read the history of contact ${quote(contact)}`, () => {
      if (!Number.isSafeInteger(query.limit) || query.limit < 1) {
        throw new RangeError(`limit ${quote(query.limit)} is not a positive integer`);
      }
      let before = Number.MAX_SAFE_INTEGER;
      if (query.before !== undefined) {
        const seq = this.#q.beforeSeq.get(contact, query.before)?.seq;
        if (seq === null || seq === undefined) {
          throw new KefuError(
            "not_found",
            `cannot page the history of contact ${quote(contact)}: no message ${quote(query.before)} in it`,
            404,
          );
        }
        before = Number(seq);
      }
      return (this.#q.history.all(contact, before, query.limit) as Row[]).map(toMessage);
    });
  }

  search(agent: string, text: string, limit: number): Promise<StoredMessage[]> {
    if (this.#closed) return Promise.reject(new Error(`cannot search: the store ${quote(this.#path)} is closed`));
    // What is queued is committed first, so that the search sees every write made before it.
    if (this.#db.isTransaction) this.#commit();
    // Without a working worker (":memory:", or it died) the search runs here, on the event loop.
    if (this.#background?.alive !== true) {
      return this.#read(`search the messages of agent ${quote(agent)}`, () => {
        this.#q.search ??= prepareSearch(this.#db);
        return runSearch(this.#q.search, agent, text, limit).map(toMessage);
      });
    }
    return this.#background.search(agent, text, limit).then((rows) => rows.map(toMessage));
  }

  // Issue 22, reports: one additive block; the queries are sqlite_reports.ts's. On the background connection, as a
  // search: a 30-day report reads every message of the range, which must not hold up the accept path.
  report(query: ReportQuery): Promise<ReportData> {
    if (this.#closed) {
      return Promise.reject(new Error(`cannot compute a report: the store ${quote(this.#path)} is closed`));
    }
    if (this.#db.isTransaction) this.#commit();
    if (this.#background?.alive !== true) return this.#read("compute a report", () => sqliteReport(this.#db, query));
    return this.#background.report(query);
  }

  saveWindow(w: WindowRecord): Promise<void> {
    const params = [w.account, w.openid, w.lastMessageAt, w.messageUsed, w.lastEventAt, w.eventUsed];
    return this.#write(`save the reply window of ${quote(w.openid)}`, () => void this.#q.upsertWindow.run(...params));
  }

  windows(): Promise<WindowRecord[]> {
    return this.#read(
      "read the reply windows",
      () => this.#q.windows.all().map((r) => ({ ...r }) as unknown as WindowRecord),
    );
  }

  lease(key: string, holder: string, until: number): Promise<boolean> {
    return this.#write(`take the lease ${quote(key)}`, () => {
      return this.#q.lease.run(key, holder, until, this.#now()).changes > 0;
    });
  }

  release(key: string, holder: string): Promise<void> {
    return this.#write(`give back the lease ${quote(key)}`, () => void this.#q.release.run(key, holder));
  }

  // Issue 19, holders: one additive block.
  leaseOf(key: string): Promise<Lease | undefined> {
    return this.#read(`read the lease ${quote(key)}`, () => {
      const q = this.#q.leaseOf ??= this.#db.prepare("SELECT holder, until FROM leases WHERE key = ? AND until >= ?");
      const r = q.get(key, this.#now());
      return r === undefined ? undefined : { key, holder: String(r.holder), until: Number(r.until) };
    });
  }

  async sweep(cutoffMs: number): Promise<number> {
    // Chunks in seq order, each its own short transaction; seq grows with stored_at,
    // so the walk stops at the first chunk holding a message newer than the cutoff.
    let lo = 0;
    let deleted = 0;
    for (;;) {
      const step = await this.#write("sweep old messages", () => {
        const { hi, newest } = this.#q.sweepChunk.get(lo, SWEEP_CHUNK)!;
        if (hi === null) return { hi: lo, n: 0, done: true };
        const n = Number(this.#q.sweepMessages.run({ lo, hi: Number(hi), cutoff: cutoffMs }).changes);
        return { hi: Number(hi), n, done: Number(newest) >= cutoffMs };
      }, (s) => this.#messages -= s.n);
      deleted += step.n;
      lo = step.hi;
      if (step.done) break;
    }
    const windows = await this.#write(
      "sweep old reply windows",
      () => Number(this.#q.sweepWindows.run(cutoffMs).changes),
    );
    return deleted + windows;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#commit();
    this.#closed = true;
    // The worker's connection first: the last one to close checkpoints the WAL and removes it.
    await this.#background?.close();
    try {
      this.#db.exec("PRAGMA optimize");
    } finally {
      try {
        this.#db.close();
      } finally {
        this.#closedHook?.();
      }
    }
  }

  /** The background worker's checkpoint counters; undefined without one (":memory:", or checkpointMs 0). */
  backgroundStats(): BackgroundStats | undefined {
    return this.#background?.stats();
  }

  stats(): Promise<StoreStats> {
    return this.#read("read the store's counters", () => {
      let fileBytes = 0;
      if (this.#path !== ":memory:") {
        for (const f of [this.#path, `${this.#path}-wal`]) {
          try {
            fileBytes += Deno.statSync(f).size;
          } catch (e) {
            if (!(e instanceof Deno.errors.NotFound)) throw e;
          }
        }
      }
      return {
        kind: "sqlite",
        path: this.#path,
        fileBytes,
        messages: this.#messages,
        contacts: Number(this.#q.countContacts.get()!.n),
        unread: Number(this.#q.countUnread.get()!.n),
        commits: this.#commits,
        writes: this.#writes,
        maxBatch: this.#maxBatch,
        queued: this.#queue.length,
      };
    });
  }

  // Reads see every write made before them: what is queued is committed first.
  #read<T>(action: string, run: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new Error(`cannot ${action}: the store ${quote(this.#path)} is closed`));
    try {
      if (this.#db.isTransaction) this.#commit();
      return Promise.resolve(run());
    } catch (e) {
      return Promise.reject(e instanceof KefuError ? e : new Error(`cannot ${action}: ${errorText(e)}`, { cause: e }));
    }
  }

  // Run one write now, inside the batch's open transaction (begun by the batch's first write), each in a savepoint of
  // its own: a write that fails on its own data (a constraint, a value SQLite cannot take, its own refusal) is undone
  // and rejected alone. Its Promise settles when the batch commits (`committed` updates counters then) — or fails,
  // when every write of the batch is rejected, none of it durable. What a write decided is known at once (the
  // accept path delivers it while the commit is under way); what it wrote is "accepted" only once committed.
  #write<T>(action: string, run: () => T, committed?: (result: T) => unknown): Promise<T> {
    if (this.#closed) return Promise.reject(new Error(`cannot ${action}: the store ${quote(this.#path)} is closed`));
    return new Promise<T>((resolve, reject) => {
      const fail = (e: unknown) => reject(new Error(`cannot ${action}: ${errorText(e)}`, { cause: e }));
      let result: T;
      try {
        if (!this.#db.isTransaction) this.#db.exec("BEGIN IMMEDIATE");
        // exec(), not prepared SAVEPOINT/RELEASE statements: those measured slower (90–130 against 60–67 µs an
        // accept, 64 in flight, session 7).
        this.#db.exec("SAVEPOINT w");
      } catch (e) {
        this.#abort(e);
        return fail(e);
      }
      try {
        result = run();
        this.#db.exec("RELEASE w");
      } catch (e) {
        // The counts may have followed part of this write: read them again when next needed.
        this.#forget();
        try {
          this.#db.exec("ROLLBACK TO w");
          this.#db.exec("RELEASE w");
        } catch (undo) {
          this.#abort(undo);
          return fail(e);
        }
        if (!ownFault(e)) this.#abort(e);
        // Nothing else in the batch: no transaction stays open behind it.
        else if (this.#queue.length === 0) this.#rollback();
        return fail(e);
      }
      this.#queue.push({
        result,
        resolve: () => {
          committed?.(result);
          resolve(result);
        },
        reject: fail,
      });
      if (this.#groupMs <= 0 || this.#queue.length >= this.#groupMax) this.#commit();
      else this.#timer ??= setTimeout(() => this.#commit(), this.#groupMs);
    });
  }

  // Commit the batch: every write in it is durable now, or (a failed COMMIT: disk full, I/O) none is.
  #commit(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const batch = this.#queue;
    this.#queue = [];
    if (!this.#db.isTransaction) return;
    const t0 = performance.now();
    try {
      this.#db.exec("COMMIT");
      observeCommit((performance.now() - t0) / 1000);
      this.#background?.committed();
    } catch (e) {
      this.#rollback();
      this.#forget();
      for (const w of batch) w.reject(e);
      return;
    }
    this.#commits++;
    this.#writes += batch.length;
    this.#maxBatch = Math.max(this.#maxBatch, batch.length);
    for (const w of batch) w.resolve();
  }

  // The batch's transaction cannot go on: undo it and reject every write in it.
  #abort(e: unknown): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#rollback();
    this.#forget();
    const batch = this.#queue;
    this.#queue = [];
    for (const w of batch) w.reject(e);
  }

  // Never throws: it runs from a timer, and SQLite may have rolled back already.
  #rollback(): void {
    try {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
    } catch {
      // The transaction is gone either way; the writes are rejected by the caller.
    }
  }

  // Issue 22, availability, capacity and the queue: one additive block.

  // What this process keeps beside the file (open counts, agents' rows, the queue's last time) followed writes that
  // are undone: read it again when next needed.
  #forget(): void {
    this.#open = undefined;
    this.#agents = undefined;
    this.#queuedAt = -1;
  }

  setAvailability(agent: string, availability: Availability): Promise<AgentState> {
    return this.#write(`set the availability of agent ${quote(agent)} to ${quote(availability)}`, () => {
      const since = this.#now();
      this.#q.setAvailability.run(agent, availability, since);
      const rows = this.#agentRows();
      rows.set(agent, { availability, since, assigned: rows.get(agent)?.assigned ?? 0 });
      return { agent, availability, since };
    });
  }

  agentStates(): Promise<AgentState[]> {
    return this.#read(
      "read the agents' availability",
      () =>
        [...this.#agentRows()].filter(([, r]) => r.since > 0).map(([agent, r]) => ({
          agent,
          availability: r.availability,
          since: r.since,
        })).sort((a, b) => (a.agent < b.agent ? -1 : 1)),
    );
  }

  queue(): Promise<QueueEntry[]> {
    return this.#read("list the users waiting for an agent", () =>
      this.#q.queue.all().map((r) => ({
        id: String(r.id),
        status: r.status as QueueEntry["status"],
        queuedAt: Number(r.queuedAt),
      })));
  }

  assignWaiting(input: AssignInput): Promise<ContactRow[]> {
    // The whole fill is one write: this process is the file's only writer, so nothing else runs in between.
    return this.#write("assign the users waiting for an agent", () => {
      const assigned: ContactRow[] = [];
      for (;;) {
        const found = this.#q.nextWaiting.get() as Row | undefined;
        if (found === undefined) break;
        const agent = this.#pick(input);
        if (agent === "") break;
        const row = toContactRow(found);
        const after = { ...row, agent };
        this.#writeRow(after, row.version);
        this.#counted(row, after);
        if (input.line) this.#q.insertMessage.run(...messageParams(input.line(after), "sent", this.#now()));
        assigned.push(after);
      }
      return assigned;
    }, (assigned) => input.line && (this.#messages += assigned.length));
  }

  // Issue 20, sign-in revocations: one additive block. The table is not a numbered migration: it is created when the
  // store first needs it (at start, when the revocations are read), and a kefu without it never reads it.
  #revocationsTable = false;

  #ensureRevocations(): void {
    if (this.#revocationsTable) return;
    this.#db.exec(
      "CREATE TABLE IF NOT EXISTS revocations (agent TEXT NOT NULL, token_id TEXT NOT NULL DEFAULT '', " +
        "at INTEGER NOT NULL, until INTEGER NOT NULL)",
    );
    this.#revocationsTable = true;
  }

  revoke(r: import("./store.ts").Revocation): Promise<void> {
    const params = [r.agent, r.tokenId ?? "", r.at, r.until];
    return this.#write(`revoke the sign-in of agent ${quote(r.agent)}`, () => {
      this.#ensureRevocations();
      this.#db.prepare("DELETE FROM revocations WHERE until <= ?").run(Date.now());
      this.#db.prepare("INSERT INTO revocations (agent, token_id, at, until) VALUES (?, ?, ?, ?)").run(...params);
    });
  }

  revocations(): Promise<import("./store.ts").Revocation[]> {
    return this.#read("read the revoked sign-ins", () => {
      this.#ensureRevocations();
      const rows = this.#db.prepare(
        "SELECT agent, token_id AS tokenId, at, until FROM revocations WHERE until > ? ORDER BY at",
      ).all(Date.now()) as Row[];
      return rows.map((r) => ({
        agent: String(r.agent),
        ...(r.tokenId ? { tokenId: String(r.tokenId) } : {}),
        at: Number(r.at),
        until: Number(r.until),
      }));
    });
  }

  // Issue 22, canned replies: one additive block. Statements are prepared on first use.
  #canned(name: string, sql: string): StatementSync {
    return this.#q[name] ??= this.#db.prepare(sql);
  }

  cannedReplies(agent: string): Promise<CannedReply[]> {
    return this.#read(`list the canned replies of agent ${quote(agent)}`, () =>
      (this.#canned(
        "cannedOf",
        `SELECT ${CANNED_FIELDS} FROM canned_replies WHERE owner = '' OR owner = ? ` +
          "ORDER BY shortcut, scope DESC, id",
      ).all(agent) as Row[]).map(toCanned));
  }

  cannedReply(id: number): Promise<CannedReply | undefined> {
    return this.#read(`read canned reply ${quote(id)}`, () => {
      const r = this.#canned("cannedById", `SELECT ${CANNED_FIELDS} FROM canned_replies WHERE id = ?`).get(id);
      return r === undefined ? undefined : toCanned(r as Row);
    });
  }

  addCanned(input: CannedInput): Promise<CannedReply | "taken"> {
    const params = [input.scope, input.owner, input.shortcut, input.text, input.by, this.#now()];
    return this.#write(`add canned reply ${quote(input.shortcut)}`, () => {
      const r = this.#canned(
        "addCanned",
        "INSERT INTO canned_replies (scope, owner, shortcut, text, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?) " +
          `ON CONFLICT (owner, shortcut) DO NOTHING RETURNING ${CANNED_FIELDS}`,
      ).get(...params);
      return r === undefined ? "taken" : toCanned(r as Row);
    });
  }

  updateCanned(
    id: number,
    expect: { scope: CannedScope; owner: string },
    change: { shortcut?: string; text?: string; by: string },
  ): Promise<CannedReply | "taken" | undefined> {
    const params = [
      change.shortcut ?? null,
      change.text ?? null,
      change.by,
      this.#now(),
      id,
      expect.scope,
      expect.owner,
    ];
    return this.#write(`change canned reply ${quote(id)}`, () => {
      const found = this.#canned(
        "cannedMine",
        "SELECT 1 AS yes FROM canned_replies WHERE id = ? AND scope = ? AND owner = ?",
      ).get(id, expect.scope, expect.owner);
      if (found === undefined) return undefined;
      // The unique index says whether the shortcut is another reply's: that change alone is refused.
      const r = this.#canned(
        "updateCanned",
        "UPDATE OR IGNORE canned_replies SET shortcut = coalesce(?, shortcut), text = coalesce(?, text), " +
          `updated_by = ?, updated_at = ? WHERE id = ? AND scope = ? AND owner = ? RETURNING ${CANNED_FIELDS}`,
      ).get(...params);
      return r === undefined ? "taken" : toCanned(r as Row);
    });
  }

  deleteCanned(id: number, expect: { scope: CannedScope; owner: string }): Promise<boolean> {
    return this.#write(
      `delete canned reply ${quote(id)}`,
      () =>
        this.#canned("deleteCanned", "DELETE FROM canned_replies WHERE id = ? AND scope = ? AND owner = ?")
          .run(id, expect.scope, expect.owner).changes > 0,
    );
  }

  // Issue 22, automatic messages: one additive block (the statements are in sqlite_automatic.ts).

  #automatic?: SqliteAutomatic;

  get #auto(): SqliteAutomatic {
    return this.#automatic ??= new SqliteAutomatic(this.#db);
  }

  claimAutomatic(contact: string, kind: string, key: string): Promise<boolean> {
    return this.#write(
      `record the automatic ${quote(kind)} message to contact ${quote(contact)}`,
      () => this.#auto.claim(contact, kind, key, this.#now()),
    );
  }

  forgetAutomatic(beforeMs: number): Promise<number> {
    return this.#write("forget old automatic message records", () => this.#auto.forget(beforeMs));
  }

  idleContacts(beforeMs: number, limit: number, scope?: IdleScope): Promise<IdleContact[]> {
    return this.#read("list idle conversations", () => this.#auto.idle(beforeMs, limit, scope));
  }
}

const CANNED_FIELDS = "id, scope, owner, shortcut, text, updated_by AS updatedBy, updated_at AS updatedAt";

function toCanned(r: Row): CannedReply {
  return {
    id: Number(r.id),
    scope: r.scope as CannedScope,
    owner: String(r.owner),
    shortcut: String(r.shortcut),
    text: String(r.text),
    updatedBy: String(r.updatedBy),
    updatedAt: Number(r.updatedAt),
  };
}

// SQLite's primary result codes for a write's own data: TOOBIG, CONSTRAINT, MISMATCH, RANGE.
const OWN_FAULT = new Set([18, 19, 20, 25]);

function ownFault(e: unknown): boolean {
  const code = (e as { errcode?: unknown })?.errcode;
  return typeof code !== "number" || OWN_FAULT.has(code & 0xff);
}

// Apply the steps above user_version in one transaction: the file is either fully migrated or untouched.
function migrate(db: DatabaseSync, migrations: readonly Migration[], path: string): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`cannot migrate the store schema: step ${quote(m.name)} has version ${m.version}, not ${i + 1}`);
    }
  });
  const current = Number(db.prepare("PRAGMA user_version").get()!.user_version);
  if (current > migrations.length) {
    throw new Error(
      `cannot open the store ${quote(path)}: its schema version ${current} is newer than this kefu's ` +
        `(${migrations.length}); run a newer kefu or restore a backup`,
    );
  }
  if (current === migrations.length) return;
  db.exec("BEGIN IMMEDIATE");
  let step = migrations[current];
  try {
    for (step of migrations.slice(current)) db.exec(step.sql);
    db.exec(`PRAGMA user_version = ${migrations.length}`);
    db.exec("COMMIT");
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw new Error(
      `cannot migrate the store schema of ${quote(path)} to version ${step.version} (${step.name}): ${errorText(e)}`,
      { cause: e },
    );
  }
}

// In the order of the insertMessage statement's columns.
function messageParams(
  m: Message,
  state: MessageState,
  storedAt: number,
  contact = m.contact,
  agent = m.agent,
): SQLInputValue[] {
  const extra = m.extra === undefined ? null : JSON.stringify(m.extra);
  const account = m.account ?? "";
  return [
    m.id,
    m.direction,
    m.channel,
    account,
    contact,
    agent,
    m.company,
    m.type,
    m.content,
    m.media,
    m.sendTime,
    m.name,
    m.avatar,
    extra,
    state,
    storedAt,
  ];
}

function toContactRow(r: Row): ContactRow {
  return {
    id: String(r.id),
    user: String(r.user),
    agent: String(r.agent),
    name: String(r.name),
    avatar: String(r.avatar),
    company: String(r.company),
    account: String(r.account),
    channel: String(r.channel),
    status: r.status as ContactRow["status"],
    displayName: String(r.displayName),
    note: String(r.note),
    version: Number(r.version),
  };
}

// Whether a decision changed what the row keeps.
function changed(a: ContactRow, b: ContactRow): boolean {
  return a.agent !== b.agent || a.status !== b.status || a.name !== b.name || a.avatar !== b.avatar ||
    a.company !== b.company;
}

/** Most recent first, then by id: the order of every contact list. */
export function sortContacts<T extends { lastMessageTime: number; id: string }>(list: T[]): T[] {
  return list.sort((a, b) => b.lastMessageTime - a.lastMessageTime || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function toMessage(row: Row): StoredMessage {
  const { extra, ...fields } = row;
  if (extra !== null) fields.extra = JSON.parse(String(extra));
  return fields as unknown as StoredMessage;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
