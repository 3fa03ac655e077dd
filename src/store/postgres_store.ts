/**
 * The {@link Store} on PostgreSQL, through `npm:postgres` (porsager/postgres): several kefu processes over one
 * database. Every decision is atomic and locks what it decides on: a user's message is written by one statement that
 * holds only while the contact is at the version it was decided on (else it is decided again), a reply is counted
 * under the contact row's lock (`FOR UPDATE`), a conditional change is the row's own `UPDATE … WHERE`; de-duplication
 * is the inbound key's unique index inside the insert. So no two processes contradict each other. Derived fields
 * are read from the messages in SQL (LATERAL lookups on the conversation's indexes), one query per list. The
 * statements are in postgres_sql.ts; exactly what each method does: docs/store_semantics.md.
 *
 * A write resolves once committed; there is no group commit (PostgreSQL commits concurrent transactions together by
 * itself). A call whose connection died before it could have committed is taken again on another; while the server
 * is down calls reject, and the pool reconnects by itself.
 *
 * @module
 */

import { observeCommit } from "../metrics/metrics.ts";
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
  pickAgent,
  UNLIMITED,
  windowType,
} from "./decisions.ts";
import type { WindowUse } from "./decisions.ts";
import { migrate, PG_MIGRATIONS, type PgMigration, URL_QUOTE } from "./postgres_schema.ts";
import { AUTOMATIC_SQL, idleParams, toIdle } from "./postgres_automatic.ts";
import { postgresReport } from "./postgres_reports.ts";
import { readStats } from "./postgres_stats.ts";
import type { ReportData, ReportQuery } from "./reports_sql.ts";
import { ACCEPT, ASSIGN_LOCK, CONTACT_FIELDS, Q, QUEUE_SQL, SUMMARY, TEAM } from "./postgres_sql.ts";
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

const SWEEP_CHUNK = 5000;
// A call is taken again from the start when it cannot have changed anything: its transaction lost a deadlock, or its
// connection died before the transaction was asked to commit (the server rolls back what a dead connection left).
// A connection found dead is dropped from the pool, so that each attempt meets another one; at most this often.
const ATTEMPTS = 5;
const RETRY_CODES = new Set(["40P01", "40001"]);
// postgres.js's codes for a connection that went away, the socket's own, and the server's "terminating connection".
const CONNECTION_LOST = new Set(["CONNECTION_CLOSED", "CONNECTION_DESTROYED", "ECONNRESET", "EPIPE", "57P01", "57P02"]);
// #tryAccept's answer when the user needs an agent picked: decided again under the assignment lock.
const PICK = Symbol("pick");
// Whether picking an agent for `input` must be serialized across processes: a capacity limits someone online, or
// the round-robin turn moves.
function constrained(input: InboundInput): boolean {
  if (input.online.length === 0) return false;
  if (input.policy === "round_robin") return true;
  const capacity = input.capacity;
  return capacity !== undefined && input.online.some((a) => Number.isFinite(capacity(a)));
}

// decideOwner's answer when it needs the fewest-open agent, which costs a query: asked only then.
const FEWEST = "\u0000fewest";
// Rows per page of the walk down a conversation for its reply windows (the first page nearly always decides).
const WALK_PAGE = 32;
// A user's message is decided again when its contact changed between the read and the write; at most this often.
const DECISION_ATTEMPTS = 10;

/** Open the store at `options.url`: connect and bring the schema up to date (under a lock); rejects naming the URL. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const where = redact(options.url);
  const log = options.log ?? silentLogger;
  let sql: Sql;
  try {
    sql = postgres(options.url, {
      max: options.max ?? 10,
      connect_timeout: 10,
      // After an outage the pool tries again within 1 s: postgres.js's default backoff grows to 20 s, which kept
      // every node refusing messages for ~6 s after a 3 s outage (tests/cluster/postgres_away_test.ts).
      backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
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
    return this.#statement(`save inbound message ${quote(input.message.id)}`, async (sql) => {
      const taken = new Set<string>();
      for (let attempt = 1; attempt <= DECISION_ATTEMPTS; attempt++) {
        const outcome = await this.#tryAccept(sql, input, taken, false);
        if (outcome === PICK) {
          // A user to give an agent (new, waiting, or their agent away): decided under the assignment lock, in one
          // transaction, so that capacity holds across processes (issue 22).
          return await this.#sql.begin(async (tx) => {
            await tx.unsafe(QUEUE_SQL.lock, [ASSIGN_LOCK], { prepare: true });
            for (let again = 1; again <= DECISION_ATTEMPTS; again++) {
              const o = await this.#tryAccept(tx, input, taken, true);
              if (o !== undefined && o !== PICK) return o;
            }
            throw new Error(`the user's contact changed under ${DECISION_ATTEMPTS} decisions in a row`);
          });
        }
        if (outcome !== undefined) return outcome;
      }
      throw new Error(`the user's contact changed under ${DECISION_ATTEMPTS} decisions in a row`);
    }, (o) => o.status === "stored");
  }

  // One try: read the contact, decide, and write the decision in one statement that holds only while the contact is
  // as it was read (its version) — undefined when it was not, and the caller decides again on what it is now. Two
  // round trips for a known user, and no transaction held open between them.
  async #tryAccept(
    sql: Db,
    input: InboundInput,
    taken: Set<string>,
    locked: boolean,
  ): Promise<InboundOutcome | undefined | typeof PICK> {
    const m = input.message;
    const account = m.account ?? "";
    const [found] = await sql.unsafe(ACCEPT.byIdentity, [m.channel, account, m.contact], { prepare: true });
    const row = found === undefined ? undefined : toContactRow(found);
    // Only a pick that a limit constrains (a capacity, the round-robin turn) waits for the lock: without one, two
    // picks at once cannot contradict each other, and new users keep the unlocked path (bench/store_pg_bench.ts, 32
    // callers, one new user in five: ~1,500 accepts/s with every pick under the lock, ~2,800–3,400 without).
    if (!locked && constrained(input) && decideOwner(row, input, () => FEWEST) === FEWEST) return PICK;
    const agent = await this.#decide(sql, row, input);
    let state: InboundState = input.state ?? "accepted";
    if (state === "accepted" && agent !== "" && input.readsOnWrite?.(agent) === true) state = "acked";
    if (row === undefined) {
      const created = await this.#create(sql, input.message, agent, state, taken);
      if (created !== undefined && agent === "") {
        await sql.unsafe(QUEUE_SQL.enqueue, [created.contact.id, this.#now()], { prepare: true });
      }
      return created;
    }
    const after: ContactRow = { ...row, agent };
    if (row.status === "resolved") after.status = "open";
    if (m.name !== m.contact && m.name !== "") after.name = m.name;
    if (m.avatar !== "") after.avatar = m.avatar;
    if (m.company !== "") after.company = m.company;
    const deciding = after.agent !== row.agent || after.status !== row.status || after.name !== row.name ||
      after.avatar !== row.avatar || after.company !== row.company;
    const params = [...messageParams({ ...m, contact: row.id, agent }, state, this.#now()), row.version];
    if (deciding) params.push(after.name, after.avatar, after.company, after.status);
    const [r] = await sql.unsafe(deciding ? ACCEPT.deciding : ACCEPT.known, params, { prepare: true });
    if (r.found === 0) return undefined;
    if (r.seq === null) {
      const [dup] = await sql.unsafe(Q.inboundKey, [m.id, row.id, account], { prepare: true });
      return { status: "duplicate", contact: row, state: dup.state, created: false, reopened: false, seq: dup.seq };
    }
    if (deciding) after.version = r.version;
    return {
      status: "stored",
      contact: after,
      state,
      created: false,
      movedFrom: row.agent !== agent ? row.agent : undefined,
      reopened: row.status === "resolved",
      seq: r.seq,
    };
  }

  // A new user: the contact and its first message in one statement, under the first id no contact has.
  async #create(
    sql: Db,
    m: Message,
    agent: string,
    state: InboundState,
    taken: Set<string>,
  ): Promise<InboundOutcome | undefined> {
    const account = m.account ?? "";
    let id = "";
    for (id of contactIds(m.contact, m.channel, account)) if (!taken.has(id)) break;
    const params = [...messageParams({ ...m, contact: id, agent }, state, this.#now()), m.contact];
    const [r] = await sql.unsafe(ACCEPT.create, params, { prepare: true });
    if (r.seq === null) {
      // Made meanwhile by another process (the next try finds it, and its owner stands), or the id is another
      // identity's (the next try takes the first one free).
      const qualified = `${m.contact}@${account || m.channel}`;
      const rows = await sql.unsafe(Q.idsTaken, [m.contact, qualified, `${likeEscape(qualified)}#%`], {
        prepare: true,
      });
      for (const t of rows) taken.add(String(t.id));
      return undefined;
    }
    const contact: ContactRow = {
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
    return { status: "stored", contact, state, created: true, reopened: false, seq: r.seq };
  }

  async #decide(tx: Db, row: ContactRow | undefined, input: InboundInput): Promise<string> {
    const agent = decideOwner(row, input, () => FEWEST);
    if (agent === FEWEST) return await this.#pick(tx, input);
    // Nobody available under capacity for a user whose agent is away: they stay (decideOwner's `|| current.agent`).
    return agent;
  }

  // The available agent under capacity the policy picks ("" when none); its round-robin turn is taken. Run under
  // ASSIGN_LOCK, so that the counts it reads are every process's.
  async #pick(tx: Db, input: AssignInput): Promise<string> {
    if (input.online.length === 0) return "";
    // One round trip: each online agent's availability, turn and open count (the pick may hold the lock meanwhile).
    const rows = await tx.unsafe(QUEUE_SQL.candidates, [input.online], { prepare: true });
    const available = new Set(rows.filter((r) => r.availability === "online").map((r) => String(r.agent)));
    const candidates = input.online.filter((a) => available.has(a));
    if (candidates.length === 0) return "";
    const open = new Map(rows.map((r) => [String(r.agent), Number(r.n)]));
    const turns = new Map(rows.filter((r) => Number(r.assigned) > 0).map((r) => [String(r.agent), Number(r.assigned)]));
    const policy = input.policy ?? "fewest";
    const agent = pickAgent(candidates, open, input.capacity ?? UNLIMITED, policy, turns);
    if (agent !== "" && policy === "round_robin") await tx.unsafe(QUEUE_SQL.turn, [agent], { prepare: true });
    return agent;
  }

  saveReply(message: Message, rules: readonly WindowRule[] = []): Promise<StoredMessage | WindowRefusal> {
    return this.#write(`save reply ${quote(message.id)}`, async (tx) => {
      // Replies to one user, from any process, are counted one at a time: the contact row is locked first. The
      // conversation's first page is asked for in the same round trip (pipelined); the server runs it once the lock
      // is held, so it sees every reply committed before.
      const lock = tx.unsafe(Q.lockContact, [message.contact], { prepare: true }).execute();
      if (rules.length > 0) {
        const first = this.#page(tx, message.contact, Number.MAX_SAFE_INTEGER);
        await lock;
        const uses = await this.#windowUses(tx, message.contact, rules, await first);
        const decision = decideWindow(rules, uses, this.#now());
        if (typeof decision !== "number") return decision;
      } else await lock;
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

  // One page of a conversation newest first, each row with the replies that count against a window from it on.
  #page(tx: Db, contact: string, before: number): Promise<Row[]> {
    // execute(): sent now, not when awaited (postgres.js queries are lazy), so that it follows the lock at once.
    return tx.unsafe(Q.conversationNewestFirst, [contact, before, WALK_PAGE], { prepare: true }).execute();
  }

  // Each rule's window: the newest inbound message that opens it (an unfollow after it closes it) and the replies
  // since, counted on the way down the conversation (the replies between two of the user's messages are few).
  async #windowUses(tx: Db, contact: string, rules: readonly WindowRule[], first: Row[]): Promise<WindowUse[]> {
    const uses: (WindowUse | undefined)[] = rules.map(() => undefined);
    const never = { openedAt: -Infinity, used: 0 };
    let left = rules.length;
    let rows = first;
    let counted = 0; // replies in the pages before this one
    walk: for (;;) {
      for (const r of rows) {
        if (r.direction !== "in") continue;
        const type = windowType(String(r.type), r.extra === null ? undefined : JSON.parse(String(r.extra)));
        if (type === CLOSES_WINDOWS) break walk;
        // The row's own count takes in the replies after it on this page (an inbound row is never one of them).
        const used = counted + Number(r.replies);
        rules.forEach((rule, i) => {
          if (uses[i] !== undefined || !opensWindow(rule.opens, type)) return;
          uses[i] = { openedAt: Math.min(Number(r.sendTime) * 1000, Number(r.storedAt)), used };
          left--;
        });
        if (left === 0) break walk;
      }
      if (rows.length < WALK_PAGE) break;
      const last = rows[rows.length - 1];
      counted += Number(last.replies);
      rows = await this.#page(tx, contact, Number(last.seq));
    }
    return uses.map((u) => u ?? never);
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
    // Back in the queue: the user waits from now (issue 22).
    if (change.agent === "") {
      // After everyone waiting already, even within one millisecond (as the accept path's enqueue).
      set.push(
        `queued_at = CASE WHEN c.agent = '' THEN c.queued_at ELSE greatest(${param(this.#now())}::bigint, ` +
          "(SELECT coalesce(max(w.queued_at), 0) + 1 FROM contacts w WHERE w.agent = '' AND w.status <> 'resolved')) END",
      );
    }
    if (change.status !== undefined) set.push(`status = ${param(change.status)}`);
    if (change.displayName !== undefined) set.push(`display_name = ${param(change.displayName)}`);
    if (change.note !== undefined) set.push(`note = ${param(change.note)}`);
    const where = ["c.id = $1"];
    // The row's own update checks the condition: a second update waiting on the row lock sees the first's result.
    if (change.expectAgent !== undefined) where.push(`c.agent = ${param(change.expectAgent)}`);
    if (change.expectStatus !== undefined) where.push(`c.status = ${param(change.expectStatus)}`);
    const quiet = change.expectNoMessageAfter;
    if (quiet !== undefined) where.push(AUTOMATIC_SQL.noMessageAfter(param(quiet)));
    const text = `UPDATE contacts c SET ${set.join(", ")} WHERE ${where.join(" AND ")} RETURNING ${CONTACT_FIELDS}`;
    const line = change.line;
    const tags = change.tags && [...change.tags];
    return this.#write(`update contact ${quote(id)}`, async (tx) => {
      // Locked first, so that the UPDATE's own snapshot (taken after) sees every message committed before it.
      if (quiet !== undefined) await tx.unsafe(Q.lockContact, [id], { prepare: true });
      const [r] = await tx.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
      if (r === undefined) return undefined;
      if (tags) {
        await tx.unsafe(TEAM.clearTags, [id], { prepare: true });
        if (tags.length > 0) await tx.unsafe(TEAM.addTags, [id, tags], { prepare: true });
      }
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

  // Issue 19, holders: one additive block.
  leaseOf(key: string): Promise<Lease | undefined> {
    return this.#read(`read the lease ${quote(key)}`, async (sql) => {
      const [r] = await sql.unsafe("SELECT holder, until FROM leases WHERE key = $1 AND until >= $2", [
        key,
        this.#now(),
      ], { prepare: true });
      return r === undefined ? undefined : { key, holder: String(r.holder), until: Number(r.until) };
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

  // Issue 22, reports: one additive block; the queries are postgres_reports.ts's.
  report(query: ReportQuery): Promise<ReportData> {
    return this.#read("compute a report", () => postgresReport(this.#sql, query));
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
      const r = await readStats(sql);
      return {
        kind: "postgres",
        path: this.#path,
        messages: r.messages,
        contacts: r.contacts,
        unread: r.unread,
        estimates: r.estimates,
        commits: this.#commits,
        // One write per transaction: PostgreSQL shares the WAL flush of concurrent commits by itself.
        writes: this.#commits,
        maxBatch: this.#commits > 0 ? 1 : 0,
        queued: this.#inFlight,
        fileBytes: r.bytes,
      };
    });
  }

  // Issue 22, canned replies: one additive block.

  cannedReplies(agent: string): Promise<CannedReply[]> {
    return this.#read(
      `list the canned replies of agent ${quote(agent)}`,
      async (sql) => (await sql.unsafe(TEAM.cannedOf, [agent], { prepare: true })).map(toCanned),
    );
  }

  cannedReply(id: number): Promise<CannedReply | undefined> {
    return this.#read(`read canned reply ${quote(id)}`, async (sql) => {
      const [r] = await sql.unsafe(TEAM.cannedById, [id], { prepare: true });
      return r === undefined ? undefined : toCanned(r);
    });
  }

  addCanned(input: CannedInput): Promise<CannedReply | "taken"> {
    const params = [input.scope, input.owner, input.shortcut, input.text, input.by, this.#now()];
    return this.#write(`add canned reply ${quote(input.shortcut)}`, async (tx) => {
      const [r] = await tx.unsafe(TEAM.addCanned, params, { prepare: true });
      return r === undefined ? "taken" : toCanned(r);
    }, (r) => r !== "taken");
  }

  updateCanned(
    id: number,
    expect: { scope: CannedScope; owner: string },
    change: { shortcut?: string; text?: string; by: string },
  ): Promise<CannedReply | "taken" | undefined> {
    return this.#write(`change canned reply ${quote(id)}`, async (tx) => {
      const [mine] = await tx.unsafe(TEAM.cannedMine, [id, expect.scope, expect.owner], { prepare: true });
      if (mine === undefined) return undefined;
      if (change.shortcut !== undefined && change.shortcut !== mine.shortcut) {
        const taken = await tx.unsafe(TEAM.shortcutTaken, [expect.owner, change.shortcut, id], { prepare: true });
        if (taken.length > 0) return "taken";
      }
      const params = [change.shortcut ?? null, change.text ?? null, change.by, this.#now(), id];
      const [r] = await tx.unsafe(TEAM.updateCanned, params, { prepare: true });
      return toCanned(r);
    }, (r) => typeof r === "object");
  }

  deleteCanned(id: number, expect: { scope: CannedScope; owner: string }): Promise<boolean> {
    return this.#write(
      `delete canned reply ${quote(id)}`,
      async (tx) => (await tx.unsafe(TEAM.deleteCanned, [id, expect.scope, expect.owner], { prepare: true })).count > 0,
      (gone) => gone,
    );
  }

  // Issue 22, automatic messages: one additive block (the statements are in postgres_automatic.ts).

  claimAutomatic(contact: string, kind: string, key: string): Promise<boolean> {
    const params = [contact, kind, key, this.#now()];
    return this.#statement(
      `record the automatic ${quote(kind)} message to contact ${quote(contact)}`,
      async (sql) => (await sql.unsafe(AUTOMATIC_SQL.claim, params, { prepare: true })).length > 0,
      (first) => first,
    );
  }

  forgetAutomatic(beforeMs: number): Promise<number> {
    return this.#statement(
      "forget old automatic message records",
      async (sql) => (await sql.unsafe(AUTOMATIC_SQL.forget, [beforeMs], { prepare: true })).count,
      (n) => n > 0,
    );
  }

  idleContacts(beforeMs: number, limit: number, scope?: IdleScope): Promise<IdleContact[]> {
    const params = idleParams(beforeMs, limit, scope);
    return this.#read(
      "list idle conversations",
      async (sql) => (await sql.unsafe(AUTOMATIC_SQL.idle, params, { prepare: true })).map(toIdle),
    );
  }

  // Issue 22, availability, capacity and the queue: one additive block.

  setAvailability(agent: string, availability: Availability): Promise<AgentState> {
    const since = this.#now();
    return this.#write(`set the availability of agent ${quote(agent)} to ${quote(availability)}`, async (tx) => {
      await tx.unsafe(QUEUE_SQL.setAvailability, [agent, availability, since], { prepare: true });
      return { agent, availability, since };
    });
  }

  agentStates(): Promise<AgentState[]> {
    return this.#read(
      "read the agents' availability",
      async (sql) =>
        (await sql.unsafe(QUEUE_SQL.agentRows, [], { prepare: true })).filter((r) => Number(r.since) > 0).map((r) => ({
          agent: String(r.agent),
          availability: r.availability as Availability,
          since: Number(r.since),
        })).sort((a, b) => (a.agent < b.agent ? -1 : 1)),
    );
  }

  queue(): Promise<QueueEntry[]> {
    return this.#read(
      "list the users waiting for an agent",
      async (sql) =>
        (await sql.unsafe(QUEUE_SQL.queue, [], { prepare: true })).map((r) => ({
          id: String(r.id),
          status: r.status as QueueEntry["status"],
          queuedAt: Number(r.queuedAt),
        })),
    );
  }

  assignWaiting(input: AssignInput): Promise<ContactRow[]> {
    // Under the assignment lock: every process's fills and new users' picks one at a time; each move is conditional
    // (`agent = ''`) besides, so an agent taking the user by hand meanwhile wins cleanly.
    return this.#write("assign the users waiting for an agent", async (tx) => {
      await tx.unsafe(QUEUE_SQL.lock, [ASSIGN_LOCK], { prepare: true });
      const assigned: ContactRow[] = [];
      for (let guard = 0; guard < 10_000; guard++) {
        const [next] = await tx.unsafe(QUEUE_SQL.nextWaiting, [], { prepare: true });
        if (next === undefined) break;
        const agent = await this.#pick(tx, input);
        if (agent === "") break;
        const [r] = await tx.unsafe(QUEUE_SQL.assign, [next.id, agent], { prepare: true });
        if (r === undefined) continue;
        const after = toContactRow(r);
        assigned.push(after);
        const line = input.line?.(after);
        if (line) await tx.unsafe(Q.insertOutbound, messageParams(line, "sent", this.#now()), { prepare: true });
      }
      return assigned;
    }, (r) => r.length > 0);
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

  // One write of a single statement (its own transaction), or of statements each of which holds on its own.
  // Taken again when its connection was lost: the accept path's writes are idempotent (a message kept already is a
  // duplicate the second time).
  async #statement<T>(action: string, run: (sql: Db) => Promise<T>, wrote: (result: T) => boolean): Promise<T> {
    if (this.#closed) throw this.#closedError(action);
    this.#inFlight++;
    try {
      for (let attempt = 1;; attempt++) {
        try {
          const result = await run(this.#sql);
          if (wrote(result)) this.#commits++;
          return result;
        } catch (e) {
          const code = codeOf(e);
          if (attempt < ATTEMPTS && (RETRY_CODES.has(code) || CONNECTION_LOST.has(code)) && !this.#closed) continue;
          throw failure(action, e);
        }
      }
    } finally {
      this.#inFlight--;
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
        const t0 = performance.now();
        try {
          const result = await this.#sql.begin(async (tx) => {
            const r = await run(tx);
            committing = true;
            return r;
          }) as T;
          observeCommit((performance.now() - t0) / 1000);
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
  if (Array.isArray(r.tags) && r.tags.length > 0) summary.tags = r.tags.map(String);
  if (r.last !== null) summary.last = toMessage(r.last as Row);
  if (r.lastEvent !== null) summary.lastEvent = toMessage(r.lastEvent as Row);
  return summary;
}

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
    // libpq's form for a Unix socket carries the password as a parameter: `postgres:///kefu?host=/run/…&password=…`.
    if (u.password === "" && !u.searchParams.has("password")) return url;
    u.password = "";
    u.searchParams.delete("password");
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
