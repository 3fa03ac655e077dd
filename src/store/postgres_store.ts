/**
 * The {@link Store} on PostgreSQL, through `npm:postgres` (porsager/postgres): several kefu processes over one
 * database. Every decision is one transaction that locks what it decides on — the contact row (`FOR UPDATE`) for a
 * user's message and for a reply counted against WeChat's window, the row's own update for a conditional change —
 * and de-duplication is the inbound key's unique index inside the insert, so that no two processes contradict each
 * other. Derived fields are read from the messages in SQL (LATERAL lookups on the conversation's indexes), one query
 * per list. Exactly what each method does: docs/store_semantics.md.
 *
 * A write resolves once its transaction committed; there is no group commit (PostgreSQL commits concurrent
 * transactions together by itself). A connection that dies fails what runs on it; the pool opens a new one for the
 * next call.
 *
 * @module
 */

import postgres from "postgres";
import { KefuError, quote } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { silentLogger } from "../core/log.ts";
import type { Message } from "../core/message.ts";
import {
  CLOSES_WINDOWS,
  contactIds,
  decideOwner,
  decideWindow,
  opensWindow,
  pickFewest,
  windowType,
} from "./decisions.ts";
import type { WindowUse } from "./decisions.ts";
import { migrate, PG_MIGRATIONS, type PgMigration, URL_QUOTE } from "./postgres_schema.ts";
import type {
  ContactChange,
  ContactRow,
  ContactSummary,
  HistoryQuery,
  InboundInput,
  InboundOutcome,
  InboundState,
  MessageRef,
  MessageState,
  OutboundState,
  Revocation,
  Store,
  StoredMessage,
  StoreStats,
  WindowRecord,
  WindowRefusal,
  WindowRule,
} from "./store.ts";

/** Options for {@link openPostgresStore}. */
export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database`; the password is never logged nor put in an error. */
  url: string;
  /** Connections in the pool. Default 10. */
  max?: number;
  log?: Logger;
  /** The clock (epoch ms) for stored times, reply windows and leases; default `Date.now`. */
  now?: () => number;
  /** The schema steps; tests pass their own. Default {@link PG_MIGRATIONS}. */
  migrations?: readonly PgMigration[];
}

type Sql = postgres.Sql;
/** The pool or one transaction of it: what a read or a write runs its statements on. */
type Db = Pick<postgres.Sql, "unsafe">;
type Row = Record<string, unknown>;

const CONTACT_FIELDS = `c.id, c.user_id AS "user", c.agent, c.name, c.avatar, c.company, c.account, c.channel, ` +
  `c.status, c.display_name AS "displayName", c.note, c.version`;

const MESSAGE_FIELDS = `m.seq, m.id, m.direction, m.channel, m.account, m.contact, m.agent, m.company, m.type, ` +
  `m.content, m.media, m.send_time AS "sendTime", m.name, m.avatar, m.extra, m.state, m.detail, ` +
  `m.stored_at AS "storedAt"`;

const INSERT_MESSAGE = "INSERT INTO messages (id, direction, channel, account, contact, agent, company, type, " +
  "content, media, send_time, name, avatar, extra, state, stored_at) " +
  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

const Q = {
  lockIdentity: `SELECT ${CONTACT_FIELDS} FROM contacts c WHERE c.channel = $1 AND c.account = $2 AND c.user_id = $3 ` +
    "FOR UPDATE",
  // Any unique conflict does nothing: the identity made by another process at once, or an id another identity has.
  insertContact: "INSERT INTO contacts AS c (id, user_id, agent, name, avatar, company, account, channel, status, " +
    "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9) ON CONFLICT DO NOTHING " +
    `RETURNING ${CONTACT_FIELDS}`,
  idsTaken: "SELECT id FROM contacts WHERE id = $1 OR id = $2 OR id LIKE $3",
  openCountsOf: "SELECT agent, count(*) AS n FROM contacts WHERE agent = ANY($1::text[]) AND status <> 'resolved' " +
    "GROUP BY agent",
  openCountsAll: "SELECT agent, count(*) AS n FROM contacts WHERE status <> 'resolved' AND agent <> '' GROUP BY agent",
  insertInbound: `${INSERT_MESSAGE} ON CONFLICT (id, contact, account) WHERE direction = 'in' DO NOTHING RETURNING seq`,
  insertOutbound: `${INSERT_MESSAGE} RETURNING seq`,
  inboundKey: "SELECT seq, state FROM messages WHERE id = $1 AND contact = $2 AND account = $3 AND direction = 'in'",
  writeDecision: "UPDATE contacts SET agent = $2, name = $3, avatar = $4, company = $5, status = $6, " +
    "version = version + 1 WHERE id = $1 RETURNING version",
  lockContact: "SELECT 1 FROM contacts WHERE id = $1 FOR UPDATE",
  inboundNewestFirst: `SELECT seq, type, extra, send_time AS "sendTime", stored_at AS "storedAt" FROM messages ` +
    "WHERE contact = $1 AND direction = 'in' AND seq < $2 ORDER BY seq DESC LIMIT 64",
  repliesAfter:
    "SELECT s.seq, (SELECT count(*) FROM messages WHERE contact = $1 AND seq > s.seq AND direction = 'out' " +
    "AND type <> 'system' AND state IN ('queued', 'sent')) AS n FROM unnest($2::bigint[]) AS s(seq)",
  setOutbound: "UPDATE messages SET state = $3, detail = $4 WHERE seq = (SELECT max(seq) FROM messages " +
    "WHERE contact = $1 AND id = $2 AND direction = 'out')",
  ack:
    "UPDATE messages m SET state = 'acked' FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(contact, id, i) " +
    "WHERE m.direction = 'in' AND m.state <> 'acked' AND m.id = r.id AND (m.contact = r.contact OR r.contact = '') " +
    "AND EXISTS (SELECT 1 FROM contacts c WHERE c.id = m.contact AND c.agent = $3) RETURNING m.contact, m.id, r.i",
  requeue: "UPDATE messages m SET state = 'accepted' FROM unnest($1::text[], $2::text[]) AS r(contact, id) " +
    "WHERE m.direction = 'in' AND m.state = 'acked' AND m.id = r.id AND m.contact = r.contact",
  unacked: `SELECT ${MESSAGE_FIELDS} FROM messages m JOIN contacts c ON c.id = m.contact WHERE c.agent = $1 ` +
    "AND m.direction = 'in' AND m.state = 'accepted' AND m.seq > $2 ORDER BY m.seq LIMIT $3",
  unackedOf: `SELECT ${MESSAGE_FIELDS} FROM messages m WHERE m.contact = $1 AND m.direction = 'in' ` +
    "AND m.state <> 'acked' AND m.state = 'accepted' ORDER BY m.seq LIMIT $2",
  waitingContacts: `SELECT ${CONTACT_FIELDS} FROM contacts c CROSS JOIN LATERAL (SELECT min(m.seq) AS oldest ` +
    "FROM messages m WHERE m.contact = c.id AND m.direction = 'in' AND m.state <> 'acked' AND m.state = 'accepted') w " +
    "WHERE c.agent = $1 AND w.oldest IS NOT NULL ORDER BY w.oldest LIMIT $2",
  finishMedia: "UPDATE messages SET media = $1, extra = $2, state = $3 WHERE direction = 'in' AND contact = $4 " +
    "AND id = $5 AND state = 'media'",
  reopenMedia: "UPDATE messages m SET state = 'media' WHERE m.direction = 'in' AND m.contact = $1 AND m.id = $2 " +
    `AND m.state <> 'media' AND m.extra LIKE '%"media_error"%' ` +
    `AND EXISTS (SELECT 1 FROM contacts c WHERE c.id = $1 AND c.agent = $3) RETURNING ${MESSAGE_FIELDS}`,
  mediaInUse: "SELECT media, extra FROM messages WHERE media <> '' AND media LIKE '%/media/%'",
  mediaOwner: "SELECT 1 AS yes FROM messages m JOIN contacts c ON c.id = m.contact " +
    "WHERE m.media IN ($1, $2) AND m.media <> '' AND c.agent = $3 LIMIT 1",
  waitingMedia:
    `SELECT ${MESSAGE_FIELDS} FROM messages m WHERE m.direction = 'in' AND m.state = 'media' ORDER BY m.seq`,
  outbox: `SELECT ${MESSAGE_FIELDS} FROM messages m WHERE m.direction = 'out' AND m.state = 'queued' ORDER BY m.seq`,
  beforeSeq: "SELECT max(seq) AS seq FROM messages WHERE contact = $1 AND id = $2",
  history: `SELECT ${MESSAGE_FIELDS} FROM messages m WHERE m.contact = $1 AND m.seq < $2 ORDER BY m.seq DESC LIMIT $3`,
  // COLLATE "C": case-insensitive for ASCII only, as SQLite's LIKE, whatever the database's locale.
  search: `SELECT ${MESSAGE_FIELDS} FROM contacts c JOIN messages m ON m.contact = c.id WHERE c.agent = $1 ` +
    `AND m.content COLLATE "C" ILIKE $2 ESCAPE '\\' ORDER BY m.seq DESC LIMIT $3`,
  lease: "INSERT INTO leases AS l (key, holder, until) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET " +
    "holder = excluded.holder, until = excluded.until WHERE l.holder = excluded.holder OR l.until < $4 RETURNING 1",
  release: "DELETE FROM leases WHERE key = $1 AND holder = $2",
  saveWindow: "INSERT INTO windows (account, openid, last_message_at, message_used, last_event_at, event_used) " +
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account, openid) DO UPDATE SET " +
    "last_message_at = excluded.last_message_at, message_used = excluded.message_used, " +
    "last_event_at = excluded.last_event_at, event_used = excluded.event_used",
  windows: `SELECT account, openid, last_message_at AS "lastMessageAt", message_used AS "messageUsed", ` +
    `last_event_at AS "lastEventAt", event_used AS "eventUsed" FROM windows`,
  sweepWindows: "DELETE FROM windows WHERE greatest(last_message_at, last_event_at) < $1",
  forgetRevocations: "DELETE FROM revocations WHERE until <= $1",
  revoke: "INSERT INTO revocations (agent, token_id, at, until) VALUES ($1, $2, $3, $4)",
  revocations: `SELECT agent, token_id AS "tokenId", at, until FROM revocations WHERE until > $1 ORDER BY at`,
  sweepChunk: `SELECT max(seq) AS hi, max(stored_at) AS newest FROM ` +
    "(SELECT seq, stored_at FROM messages WHERE seq > $1 ORDER BY seq LIMIT $2) s",
  // Kept whatever their age: inbound not read, replies not yet sent.
  sweep: "DELETE FROM messages WHERE seq > $1 AND seq <= $2 AND stored_at < $3 " +
    "AND NOT (direction = 'in' AND state <> 'acked') AND NOT (direction = 'out' AND state = 'queued')",
  stats: "SELECT (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM contacts) AS contacts, " +
    "(SELECT count(*) FROM messages WHERE direction = 'in' AND state <> 'acked') AS unread, " +
    "pg_database_size(current_database()) AS bytes",
} as const;

/** What a contact's list entry derives from its messages: one indexed lookup each, in the same query. */
function summarySql(where: string): string {
  const newest = (filter: string) =>
    `(SELECT row_to_json(x) AS j FROM (SELECT ${MESSAGE_FIELDS} FROM messages m WHERE m.contact = c.id ${filter} ` +
    "ORDER BY m.seq DESC LIMIT 1) x)";
  return `SELECT ${CONTACT_FIELDS}, coalesce(n.t, c.created_at) AS "lastMessageTime", ` +
    `coalesce(i.t, 0) AS "lastInboundTime", u.n AS unread, l.j AS last, e.j AS "lastEvent", ` +
    "coalesce(a.d = 'in', false) AS awaiting FROM contacts c " +
    "LEFT JOIN LATERAL (SELECT send_time AS t FROM messages WHERE contact = c.id ORDER BY seq DESC LIMIT 1) n ON true " +
    "LEFT JOIN LATERAL (SELECT send_time AS t FROM messages WHERE contact = c.id AND direction = 'in' " +
    "ORDER BY seq DESC LIMIT 1) i ON true " +
    "CROSS JOIN LATERAL (SELECT count(*) AS n FROM messages WHERE contact = c.id AND direction = 'in' " +
    "AND state <> 'acked') u " +
    `LEFT JOIN LATERAL ${newest("AND m.type <> 'system'")} l ON true ` +
    `LEFT JOIN LATERAL ${newest("AND m.type = 'system'")} e ON true ` +
    "LEFT JOIN LATERAL (SELECT direction AS d FROM messages WHERE contact = c.id AND type NOT IN ('system', 'event') " +
    `ORDER BY seq DESC LIMIT 1) a ON true WHERE ${where}`;
}

const SUMMARY = {
  one: summarySql("c.id = $1"),
  of: summarySql("c.agent = $1"),
  find: summarySql(
    `c.agent = $1 AND (c.id COLLATE "C" ILIKE $2 OR c.user_id COLLATE "C" ILIKE $2 OR c.name COLLATE "C" ILIKE $2 ` +
      `OR c.display_name COLLATE "C" ILIKE $2 OR c.note COLLATE "C" ILIKE $2)`,
  ),
};

const SWEEP_CHUNK = 5000;
// A call is taken again from the start when it cannot have changed anything: its transaction lost a deadlock, or its
// connection died before the transaction was asked to commit (the server rolls back what a dead connection left).
// A connection found dead is dropped from the pool, so that each attempt meets another one; at most this often.
const ATTEMPTS = 5;
const RETRY_CODES = new Set(["40P01", "40001"]);
// postgres.js's codes for a connection that went away, the socket's own, and the server's "terminating connection".
const CONNECTION_LOST = new Set(["CONNECTION_CLOSED", "CONNECTION_DESTROYED", "ECONNRESET", "EPIPE", "57P01", "57P02"]);
// decideOwner's answer when it needs the fewest-open agent, which costs a query: asked only then.
const FEWEST = "\u0000fewest";

/** Open the store at `options.url`: connect and bring the schema up to date (under a lock); rejects naming the URL. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const where = redact(options.url);
  const log = options.log ?? silentLogger;
  let sql: Sql;
  try {
    sql = postgres(options.url, {
      max: options.max ?? 10,
      connect_timeout: 10,
      connection: { application_name: "kefu" },
      // bigint (seq, times, counts) comes back as a JS number: every value kefu keeps is far below 2^53.
      types: { bigint: { to: 20, from: [20], serialize: (x: number) => String(x), parse: (x: string) => Number(x) } },
      onnotice: (notice) => log.debug("store_notice", { message: notice.message }),
    });
  } catch (e) {
    throw new Error(`cannot open the store ${quote(where, URL_QUOTE)}: ${scrub(errorText(e), options.url)}`);
  }
  try {
    const version = await migrate(sql, options.migrations ?? PG_MIGRATIONS, where);
    log.info("store_opened", { kind: "postgres", path: where, version });
  } catch (e) {
    await sql.end({ timeout: 1 }).catch(() => {});
    if (e instanceof Error && e.message.startsWith("cannot ")) throw e;
    throw new Error(`cannot open the store ${quote(where, URL_QUOTE)}: ${scrub(errorText(e), options.url)}`, {
      cause: e,
    });
  }
  return new PostgresStore(sql, where, options.now ?? Date.now);
}

/** {@link Store} on PostgreSQL; made by {@link openPostgresStore}. */
export class PostgresStore implements Store {
  readonly #sql: Sql;
  readonly #path: string;
  readonly #now: () => number;
  #closed = false;
  #commits = 0;
  #inFlight = 0;

  /** Use {@link openPostgresStore}: it migrates the schema first. */
  constructor(sql: Sql, path: string, now: () => number) {
    this.#sql = sql;
    this.#path = path;
    this.#now = now;
  }

  acceptInbound(input: InboundInput): Promise<InboundOutcome> {
    return this.#write(
      `save inbound message ${quote(input.message.id)}`,
      (tx) => this.#accept(tx, input),
      (o) => o.status === "stored",
    );
  }

  // One transaction: the contact found (or made) and locked, its owner decided, the message inserted once.
  async #accept(tx: Db, input: InboundInput): Promise<InboundOutcome> {
    const m = input.message;
    const account = m.account ?? "";
    let row = await this.#lockIdentity(tx, m.channel, account, m.contact);
    let created = false;
    if (row === undefined) {
      const agent = await this.#decide(tx, undefined, input);
      let taken: Set<string> | undefined;
      for (const id of contactIds(m.contact, m.channel, account)) {
        if (taken?.has(id)) continue;
        const [made] = await tx.unsafe(
          Q.insertContact,
          [id, m.contact, agent, m.name, m.avatar, m.company, account, m.channel, m.sendTime],
          { prepare: true },
        );
        if (made !== undefined) {
          row = toContactRow(made);
          created = true;
          break;
        }
        // Made by another process at once (its row and its owner stand), or the id is another identity's.
        row = await this.#lockIdentity(tx, m.channel, account, m.contact);
        if (row !== undefined) break;
        taken ??= await this.#idsTaken(tx, m.contact, `${m.contact}@${account || m.channel}`);
      }
      if (row === undefined) throw new Error("no contact id was free"); // contactIds never ends
    }
    const agent = created ? row.agent : await this.#decide(tx, row, input);
    let state: InboundState = input.state ?? "accepted";
    if (state === "accepted" && agent !== "" && input.readsOnWrite?.(agent) === true) state = "acked";
    const params = messageParams({ ...m, contact: row.id, agent }, state, this.#now());
    const [stored] = await tx.unsafe(Q.insertInbound, params, { prepare: true });
    if (stored === undefined) {
      const [dup] = await tx.unsafe(Q.inboundKey, [m.id, row.id, account], { prepare: true });
      return { status: "duplicate", contact: row, state: dup.state, created, reopened: false, seq: dup.seq };
    }
    const after: ContactRow = { ...row, agent };
    if (!created) {
      if (row.status === "resolved") after.status = "open";
      if (m.name !== m.contact && m.name !== "") after.name = m.name;
      if (m.avatar !== "") after.avatar = m.avatar;
      if (m.company !== "") after.company = m.company;
      if (
        after.agent !== row.agent || after.status !== row.status || after.name !== row.name ||
        after.avatar !== row.avatar || after.company !== row.company
      ) {
        const [{ version }] = await tx.unsafe(
          Q.writeDecision,
          [row.id, after.agent, after.name, after.avatar, after.company, after.status],
          { prepare: true },
        );
        after.version = version;
      }
    }
    return {
      status: "stored",
      contact: after,
      state,
      created,
      movedFrom: !created && row.agent !== agent ? row.agent : undefined,
      reopened: !created && row.status === "resolved",
      seq: stored.seq,
    };
  }

  async #lockIdentity(tx: Db, channel: string, account: string, user: string): Promise<ContactRow | undefined> {
    const [r] = await tx.unsafe(Q.lockIdentity, [channel, account, user], { prepare: true });
    return r === undefined ? undefined : toContactRow(r);
  }

  // The ids a new contact cannot have: the user id, the qualified id and its numbered forms, where others have them.
  async #idsTaken(tx: Db, user: string, qualified: string): Promise<Set<string>> {
    const rows = await tx.unsafe(Q.idsTaken, [user, qualified, `${likeEscape(qualified)}#%`]);
    return new Set(rows.map((r) => String(r.id)));
  }

  async #decide(tx: Db, row: ContactRow | undefined, input: InboundInput): Promise<string> {
    const agent = decideOwner(row, input, () => FEWEST);
    if (agent !== FEWEST) return agent;
    if (input.online.length === 0) return "";
    const rows = await tx.unsafe(Q.openCountsOf, [input.online], { prepare: true });
    return pickFewest(input.online, new Map(rows.map((r) => [String(r.agent), Number(r.n)])));
  }

  saveReply(message: Message, rules: readonly WindowRule[] = []): Promise<StoredMessage | WindowRefusal> {
    return this.#write(`save reply ${quote(message.id)}`, async (tx) => {
      // Replies to one user, from any process, are counted one at a time.
      await tx.unsafe(Q.lockContact, [message.contact], { prepare: true });
      if (rules.length > 0) {
        const decision = decideWindow(rules, await this.#windowUses(tx, message.contact, rules), this.#now());
        if (typeof decision !== "number") return decision;
      }
      const storedAt = this.#now();
      const [{ seq }] = await tx.unsafe(Q.insertOutbound, messageParams(message, "queued", storedAt), {
        prepare: true,
      });
      return {
        ...message,
        account: message.account ?? "",
        seq,
        state: "queued",
        detail: "",
        storedAt,
      } as StoredMessage;
    }, (r) => !("refused" in r));
  }

  // Each rule's window: the newest inbound message that opens it (an unfollow after it closes it) and replies since.
  async #windowUses(tx: Db, contact: string, rules: readonly WindowRule[]): Promise<WindowUse[]> {
    const opened: ({ seq: number; at: number } | null | undefined)[] = rules.map(() => undefined);
    let left = rules.length;
    let before = Number.MAX_SAFE_INTEGER;
    walk: for (;;) {
      const rows = await tx.unsafe(Q.inboundNewestFirst, [contact, before], { prepare: true });
      for (const r of rows) {
        const type = windowType(r.type, r.type === "event" && r.extra !== null ? JSON.parse(r.extra) : undefined);
        if (type === CLOSES_WINDOWS) {
          for (let i = 0; i < opened.length; i++) opened[i] ??= null;
          break walk;
        }
        rules.forEach((rule, i) => {
          if (opened[i] !== undefined || !opensWindow(rule.opens, type)) return;
          opened[i] = { seq: r.seq, at: Math.min(r.sendTime * 1000, r.storedAt) };
          left--;
        });
        if (left === 0) break walk;
      }
      if (rows.length < 64) break;
      before = rows[rows.length - 1].seq;
    }
    const seqs = opened.flatMap((o) => (o ? [o.seq] : []));
    const used = new Map<number, number>();
    if (seqs.length > 0) {
      for (const r of await tx.unsafe(Q.repliesAfter, [contact, seqs], { prepare: true })) used.set(r.seq, r.n);
    }
    return opened.map((o) => o ? { openedAt: o.at, used: used.get(o.seq) ?? 0 } : { openedAt: -Infinity, used: 0 });
  }

  saveOutbound(message: Message, state: OutboundState): Promise<void> {
    return this.#write(`save reply ${quote(message.id)}`, async (tx) => {
      await tx.unsafe(Q.insertOutbound, messageParams(message, state, this.#now()), { prepare: true });
    });
  }

  setOutboundState(ref: MessageRef, state: OutboundState, detail = ""): Promise<boolean> {
    return this.#write(
      `set the state of reply ${quote(ref.id)} to ${quote(state)}`,
      async (tx) => (await tx.unsafe(Q.setOutbound, [ref.contact, ref.id, state, detail], { prepare: true })).count > 0,
      (changed) => changed,
    );
  }

  updateContact(id: string, change: ContactChange): Promise<ContactRow | undefined> {
    const params: unknown[] = [id];
    const param = (v: unknown) => `$${params.push(v)}`;
    const set = ["version = version + 1"];
    if (change.agent !== undefined) set.push(`agent = ${param(change.agent)}`);
    if (change.status !== undefined) set.push(`status = ${param(change.status)}`);
    if (change.displayName !== undefined) set.push(`display_name = ${param(change.displayName)}`);
    if (change.note !== undefined) set.push(`note = ${param(change.note)}`);
    const where = ["c.id = $1"];
    // The row's own update checks the condition: a second update waiting on the row lock sees the first's result.
    if (change.expectAgent !== undefined) where.push(`c.agent = ${param(change.expectAgent)}`);
    if (change.expectStatus !== undefined) where.push(`c.status = ${param(change.expectStatus)}`);
    const text = `UPDATE contacts c SET ${set.join(", ")} WHERE ${where.join(" AND ")} RETURNING ${CONTACT_FIELDS}`;
    const line = change.line;
    return this.#write(`update contact ${quote(id)}`, async (tx) => {
      const [r] = await tx.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
      if (r === undefined) return undefined;
      if (line) await tx.unsafe(Q.insertOutbound, messageParams(line, "sent", this.#now()), { prepare: true });
      return toContactRow(r);
    }, (r) => r !== undefined);
  }

  contact(id: string): Promise<ContactSummary | undefined> {
    return this.#read(`read contact ${quote(id)}`, async (sql) => {
      const [r] = await sql.unsafe(SUMMARY.one, [id], { prepare: true });
      return r === undefined ? undefined : toSummary(r);
    });
  }

  contactsOf(agent: string): Promise<ContactSummary[]> {
    return this.#read(
      `list the contacts of agent ${quote(agent)}`,
      async (sql) => sortContacts((await sql.unsafe(SUMMARY.of, [agent], { prepare: true })).map(toSummary)),
    );
  }

  findContacts(agent: string, text: string, limit: number): Promise<ContactSummary[]> {
    return this.#read(`search the contacts of agent ${quote(agent)}`, async (sql) => {
      const rows = await sql.unsafe(SUMMARY.find, [agent, `%${likeEscape(text)}%`], { prepare: true });
      return sortContacts(rows.map(toSummary)).slice(0, limit);
    });
  }

  openCounts(agents?: readonly string[]): Promise<Map<string, number>> {
    return this.#read("count the agents' open contacts", async (sql) => {
      const counts = new Map<string, number>();
      if (agents === undefined) {
        for (const r of await sql.unsafe(Q.openCountsAll, [], { prepare: true })) counts.set(r.agent, r.n);
      } else {
        const found = new Map<string, number>();
        for (const r of await sql.unsafe(Q.openCountsOf, [agents], { prepare: true })) found.set(r.agent, r.n);
        for (const a of agents) counts.set(a, found.get(a) ?? 0);
      }
      return counts;
    });
  }

  waitingContacts(agent: string, limit: number): Promise<ContactRow[]> {
    return this.#read(
      `list the waiting users of agent ${quote(agent)}`,
      async (sql) => (await sql.unsafe(Q.waitingContacts, [agent, limit], { prepare: true })).map(toContactRow),
    );
  }

  requeue(refs: readonly MessageRef[]): Promise<number> {
    const [contacts, ids] = columns(refs);
    return this.#write(
      "requeue unread messages",
      async (tx) => (await tx.unsafe(Q.requeue, [contacts, ids], { prepare: true })).count,
      (n) => n > 0,
    );
  }

  ack(agent: string, refs: readonly MessageRef[]): Promise<MessageRef[]> {
    const [contacts, ids] = columns(refs);
    return this.#write(`acknowledge messages for agent ${quote(agent)}`, async (tx) => {
      const rows = await tx.unsafe(Q.ack, [contacts, ids, agent], { prepare: true });
      // In the order the refs named them, as the agent sent them.
      return rows.sort((a, b) => a.i - b.i).map((r) => ({ contact: String(r.contact), id: String(r.id) }));
    }, (done) => done.length > 0);
  }

  unacked(agent: string, limit = 1000, afterSeq = 0): Promise<StoredMessage[]> {
    return this.#read(
      `read the unacknowledged messages of agent ${quote(agent)}`,
      async (sql) => (await sql.unsafe(Q.unacked, [agent, afterSeq, limit], { prepare: true })).map(toMessage),
    );
  }

  unackedOf(contact: string, limit = 1000): Promise<StoredMessage[]> {
    return this.#read(
      `read the unacknowledged messages of contact ${quote(contact)}`,
      async (sql) => (await sql.unsafe(Q.unackedOf, [contact, limit], { prepare: true })).map(toMessage),
    );
  }

  finishMedia(
    ref: MessageRef,
    media: string,
    extra: Record<string, string> | undefined,
    state: InboundState,
  ): Promise<boolean> {
    const params = [media, extra === undefined ? null : JSON.stringify(extra), state, ref.contact, ref.id];
    return this.#write(
      `record the media of message ${quote(ref.id)}`,
      async (tx) => (await tx.unsafe(Q.finishMedia, params, { prepare: true })).count > 0,
      (done) => done,
    );
  }

  mediaOwnedBy(paths: readonly [string, string], agent: string): Promise<boolean> {
    return this.#read(
      `look up who may open ${quote(paths[0])}`,
      async (sql) => (await sql.unsafe(Q.mediaOwner, [paths[0], paths[1], agent], { prepare: true })).length > 0,
    );
  }

  reopenMedia(ref: MessageRef, agent: string): Promise<StoredMessage | undefined> {
    return this.#write(`try the media of message ${quote(ref.id)} again`, async (tx) => {
      const [r] = await tx.unsafe(Q.reopenMedia, [ref.contact, ref.id, agent], { prepare: true });
      return r === undefined ? undefined : toMessage(r);
    }, (r) => r !== undefined);
  }

  mediaInUse(): Promise<Set<string>> {
    return this.#read("list the media files messages use", async (sql) => {
      const names = new Set<string>();
      const nameOf = (path: string) => path.slice(path.lastIndexOf("/") + 1);
      for (const r of await sql.unsafe(Q.mediaInUse, [], { prepare: true })) {
        names.add(nameOf(r.media));
        // The original a converted file was made from is kept with it.
        const original = r.extra === null ? undefined : JSON.parse(r.extra).media_original;
        if (typeof original === "string") names.add(nameOf(original));
      }
      return names;
    });
  }

  waitingMedia(): Promise<StoredMessage[]> {
    return this.#read(
      "list the messages waiting for their media",
      async (sql) => (await sql.unsafe(Q.waitingMedia, [], { prepare: true })).map(toMessage),
    );
  }

  outbox(): Promise<StoredMessage[]> {
    return this.#read(
      "list the replies not yet confirmed",
      async (sql) => (await sql.unsafe(Q.outbox, [], { prepare: true })).map(toMessage),
    );
  }

  history(contact: string, query: HistoryQuery): Promise<StoredMessage[]> {
    return this.#read(`read the history of contact ${quote(contact)}`, async (sql) => {
      if (!Number.isSafeInteger(query.limit) || query.limit < 1) {
        throw new RangeError(`limit ${quote(query.limit)} is not a positive integer`);
      }
      let before = Number.MAX_SAFE_INTEGER;
      if (query.before !== undefined) {
        const [{ seq }] = await sql.unsafe(Q.beforeSeq, [contact, query.before], { prepare: true });
        if (seq === null) {
          throw new KefuError(
            "not_found",
            `cannot page the history of contact ${quote(contact)}: no message ${quote(query.before)} in it`,
            404,
          );
        }
        before = seq;
      }
      return (await sql.unsafe(Q.history, [contact, before, query.limit], { prepare: true })).map(toMessage);
    });
  }

  search(agent: string, text: string, limit: number): Promise<StoredMessage[]> {
    return this.#read(
      `search the messages of agent ${quote(agent)}`,
      async (sql) =>
        (await sql.unsafe(Q.search, [agent, `%${likeEscape(text)}%`, limit], { prepare: true })).map(toMessage),
    );
  }

  lease(key: string, holder: string, until: number): Promise<boolean> {
    return this.#write(
      `take the lease ${quote(key)}`,
      async (tx) => (await tx.unsafe(Q.lease, [key, holder, until, this.#now()], { prepare: true })).length > 0,
      (held) => held,
    );
  }

  release(key: string, holder: string): Promise<void> {
    return this.#write(`give back the lease ${quote(key)}`, async (tx) => {
      await tx.unsafe(Q.release, [key, holder], { prepare: true });
    });
  }

  saveWindow(w: WindowRecord): Promise<void> {
    const params = [w.account, w.openid, w.lastMessageAt, w.messageUsed, w.lastEventAt, w.eventUsed];
    return this.#write(`save the reply window of ${quote(w.openid)}`, async (tx) => {
      await tx.unsafe(Q.saveWindow, params, { prepare: true });
    });
  }

  windows(): Promise<WindowRecord[]> {
    return this.#read(
      "read the reply windows",
      async (sql) => (await sql.unsafe(Q.windows, [], { prepare: true })).map((r) => r as unknown as WindowRecord),
    );
  }

  revoke(r: Revocation): Promise<void> {
    return this.#write(`revoke the sign-in of agent ${quote(r.agent)}`, async (tx) => {
      await tx.unsafe(Q.forgetRevocations, [this.#now()], { prepare: true });
      await tx.unsafe(Q.revoke, [r.agent, r.tokenId ?? "", r.at, r.until], { prepare: true });
    });
  }

  revocations(): Promise<Revocation[]> {
    return this.#read("read the revoked sign-ins", async (sql) => {
      const rows = await sql.unsafe(Q.revocations, [this.#now()], { prepare: true });
      return rows.map((r) => ({
        agent: String(r.agent),
        ...(r.tokenId ? { tokenId: String(r.tokenId) } : {}),
        at: Number(r.at),
        until: Number(r.until),
      }));
    });
  }

  async sweep(cutoffMs: number): Promise<number> {
    // Chunks in seq order, each its own short transaction; seq grows with stored_at, so the walk stops at the first
    // chunk holding a message newer than the cutoff.
    let lo = 0;
    let deleted = 0;
    for (;;) {
      const step = await this.#write("sweep old messages", async (tx) => {
        const [{ hi, newest }] = await tx.unsafe(Q.sweepChunk, [lo, SWEEP_CHUNK], { prepare: true });
        if (hi === null) return { hi: lo, n: 0, done: true };
        const { count } = await tx.unsafe(Q.sweep, [lo, hi, cutoffMs], { prepare: true });
        return { hi: Number(hi), n: count, done: Number(newest) >= cutoffMs };
      }, (s) => s.n > 0);
      deleted += step.n;
      lo = step.hi;
      if (step.done) break;
    }
    const windows = await this.#write(
      "sweep old reply windows",
      async (tx) => (await tx.unsafe(Q.sweepWindows, [cutoffMs], { prepare: true })).count,
      (n) => n > 0,
    );
    return deleted + windows;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Waits for what is running (a write resolves once committed), then closes every connection.
    await this.#sql.end({ timeout: 5 });
  }

  stats(): Promise<StoreStats> {
    return this.#read("read the store's counters", async (sql) => {
      const [r] = await sql.unsafe(Q.stats, [], { prepare: true });
      return {
        kind: "postgres",
        path: this.#path,
        messages: r.messages,
        contacts: r.contacts,
        unread: r.unread,
        commits: this.#commits,
        // One write per transaction: PostgreSQL shares the WAL flush of concurrent commits by itself.
        writes: this.#commits,
        maxBatch: this.#commits > 0 ? 1 : 0,
        queued: this.#inFlight,
        fileBytes: r.bytes,
      };
    });
  }

  #closedError(action: string): Error {
    return new Error(`cannot ${action}: the store ${quote(this.#path, URL_QUOTE)} is closed`);
  }

  async #read<T>(action: string, run: (sql: Db) => Promise<T>): Promise<T> {
    if (this.#closed) throw this.#closedError(action);
    for (let attempt = 1;; attempt++) {
      try {
        return await run(this.#sql);
      } catch (e) {
        if (attempt < ATTEMPTS && CONNECTION_LOST.has(codeOf(e)) && !this.#closed) continue;
        throw failure(action, e);
      }
    }
  }

  // One transaction, taken again from the start when it lost a deadlock; `wrote` says whether it changed anything.
  async #write<T>(action: string, run: (tx: Db) => Promise<T>, wrote: (result: T) => boolean = () => true) {
    if (this.#closed) throw this.#closedError(action);
    this.#inFlight++;
    try {
      for (let attempt = 1;; attempt++) {
        // Set once the transaction's statements are done: a connection lost after it may have committed.
        let committing = false;
        try {
          const result = await this.#sql.begin(async (tx) => {
            const r = await run(tx);
            committing = true;
            return r;
          }) as T;
          if (wrote(result)) this.#commits++;
          return result;
        } catch (e) {
          const code = codeOf(e);
          const again = RETRY_CODES.has(code) || (CONNECTION_LOST.has(code) && !committing && !this.#closed);
          if (attempt < ATTEMPTS && again) continue;
          throw failure(action, e);
        }
      }
    } finally {
      this.#inFlight--;
    }
  }
}

function codeOf(e: unknown): string {
  const code = (e as { code?: unknown })?.code;
  return typeof code === "string" ? code : "";
}

function failure(action: string, e: unknown): Error {
  if (e instanceof KefuError || e instanceof RangeError) return e;
  return new Error(`cannot ${action}: ${errorText(e)}`, { cause: e });
}

// In the order of INSERT_MESSAGE's columns.
function messageParams(m: Message, state: MessageState, storedAt: number): postgres.ParameterOrJSON<never>[] {
  return [
    m.id,
    m.direction,
    m.channel,
    m.account ?? "",
    m.contact,
    m.agent,
    m.company,
    m.type,
    m.content,
    m.media,
    m.sendTime,
    m.name,
    m.avatar,
    m.extra === undefined ? null : JSON.stringify(m.extra),
    state,
    storedAt,
  ];
}

function columns(refs: readonly MessageRef[]): [string[], string[]] {
  return [refs.map((r) => r.contact), refs.map((r) => r.id)];
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

function toSummary(r: Row): ContactSummary {
  const summary: ContactSummary = {
    ...toContactRow(r),
    lastMessageTime: Number(r.lastMessageTime),
    lastInboundTime: Number(r.lastInboundTime),
    unread: Number(r.unread),
    awaiting: r.awaiting === true,
  };
  if (r.last !== null) summary.last = toMessage(r.last as Row);
  if (r.lastEvent !== null) summary.lastEvent = toMessage(r.lastEvent as Row);
  return summary;
}

function toMessage(row: Row): StoredMessage {
  const { extra, ...fields } = row;
  if (extra !== null && extra !== undefined) fields.extra = JSON.parse(String(extra));
  return fields as unknown as StoredMessage;
}

/** Most recent first, then by id (UTF-16 order, as on SQLite): the order of every contact list. */
function sortContacts<T extends { lastMessageTime: number; id: string }>(list: T[]): T[] {
  return list.sort((a, b) => b.lastMessageTime - a.lastMessageTime || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

// LIKE's own characters taken literally (backslash is PostgreSQL's default escape).
function likeEscape(text: string): string {
  return text.replace(/[\\%_]/g, "\\$&");
}

/** The URL without its password, for messages and stats. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === "") return url;
    u.password = "";
    return u.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1@");
  }
}

// An error's text with the URL's password cut out (a URL the client could not parse is quoted back whole).
function scrub(text: string, url: string): string {
  const password = /^[^:]+:\/\/[^:/@]*:([^@]*)@/.exec(url)?.[1];
  return password ? text.replaceAll(password, "***") : text;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
