/**
 * The SQL of the PostgreSQL store (postgres_store.ts), apart from its logic: each statement is prepared once per
 * connection and named by what it does. Parameters are positional; the comments say why a statement is shaped so.
 *
 * @module
 */

/** A contact row as `ContactRow` names its fields (table alias `c`). */
export const CONTACT_FIELDS =
  `c.id, c.user_id AS "user", c.agent, c.name, c.avatar, c.company, c.account, c.channel, ` +
  `c.status, c.display_name AS "displayName", c.note, c.version`;

/** A message row as `StoredMessage` names its fields (table alias `m`). */
export const MESSAGE_FIELDS =
  `m.seq, m.id, m.direction, m.channel, m.account, m.contact, m.agent, m.company, m.type, ` +
  `m.content, m.media, m.send_time AS "sendTime", m.name, m.avatar, m.extra, m.state, m.detail, ` +
  `m.stored_at AS "storedAt"`;

/** A message's 16 values, in the order of `messageParams`. */
export const INSERT_MESSAGE = "INSERT INTO messages (id, direction, channel, account, contact, agent, company, type, " +
  "content, media, send_time, name, avatar, extra, state, stored_at) " +
  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

// A message's values for INSERT … SELECT, where a parameter has no column to take its type from.
const MESSAGE_VALUES = "$1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, " +
  "$10::text, $11::bigint, $12::text, $13::text, $14::text, $15::text, $16::bigint";
const MESSAGE_COLUMNS = "(id, direction, channel, account, contact, agent, company, type, content, media, send_time, " +
  "name, avatar, extra, state, stored_at)";

// The message of a known contact ($1–$16, contact $5), kept only if the contact is still at version $17 (locked for
// the statement: a decision another process commits meanwhile is waited for, then seen as another version); with a
// decision ($6 the owner, $18–$21 name, avatar, company, status), the row changes only if the message was new.
function acceptKnown(deciding: boolean): string {
  return "WITH c AS MATERIALIZED (SELECT id FROM contacts WHERE id = $5 AND version = $17 FOR UPDATE), " +
    `m AS (INSERT INTO messages ${MESSAGE_COLUMNS} SELECT ${MESSAGE_VALUES} FROM c ` +
    "ON CONFLICT (id, contact, account) WHERE direction = 'in' DO NOTHING RETURNING seq)" +
    (deciding
      ? ", u AS (UPDATE contacts SET agent = $6, name = $18, avatar = $19, company = $20, status = $21, " +
        "version = version + 1 WHERE id = $5 AND EXISTS (SELECT 1 FROM m) RETURNING version) " +
        "SELECT (SELECT count(*) FROM c) AS found, (SELECT seq FROM m) AS seq, (SELECT version FROM u) AS version"
      : " SELECT (SELECT count(*) FROM c) AS found, (SELECT seq FROM m) AS seq");
}

/**
 * The accept path: the contact read without a lock, the owner decided in JS, then ONE statement that writes the
 * decision only if it still holds — no transaction held open across round trips.
 */
export const ACCEPT = {
  byIdentity: `SELECT ${CONTACT_FIELDS} FROM contacts c WHERE c.channel = $1 AND c.account = $2 AND c.user_id = $3`,
  // A new contact ($5 its id, $17 the user id; name, avatar, company, channel, account and time from the message) and
  // its first message. Any unique conflict makes neither: the identity was made by another process meanwhile, or the
  // id is another identity's.
  create: "WITH c AS (INSERT INTO contacts (id, user_id, agent, name, avatar, company, account, channel, status, " +
    "created_at) VALUES ($5, $17, $6, $12, $13, $7, $4, $3, 'open', $11) ON CONFLICT DO NOTHING RETURNING id), " +
    `m AS (INSERT INTO messages ${MESSAGE_COLUMNS} SELECT ${MESSAGE_VALUES} FROM c RETURNING seq) ` +
    "SELECT (SELECT seq FROM m) AS seq",
  known: acceptKnown(false),
  deciding: acceptKnown(true),
} as const;

/**
 * Issue 22's statements: availability, the queue, assignment. Assignment decisions run in a transaction under
 * {@link ASSIGN_LOCK}, so that the counts they read are every process's; each user's move is conditional (`agent = ''`).
 */
export const QUEUE_SQL = {
  lock: "SELECT pg_advisory_xact_lock($1)",
  agentRows: "SELECT agent, availability, since, assigned FROM agents",
  // The agents asked for (online now): availability (no row: online), round-robin turn and open contacts (kept by
  // triggers, postgres_open_counts.ts: a lookup by key, not a count, while the lock is held).
  candidates:
    "SELECT o.agent, coalesce(a.availability, 'online') AS availability, coalesce(a.assigned, 0) AS assigned, " +
    "coalesce(oc.n, 0) AS n FROM unnest($1::text[]) AS o(agent) LEFT JOIN agents a ON a.agent = o.agent " +
    "LEFT JOIN open_counts oc ON oc.agent = o.agent",
  turn: "INSERT INTO agents (agent, assigned) VALUES ($1, (SELECT coalesce(max(assigned), 0) + 1 FROM agents)) " +
    "ON CONFLICT (agent) DO UPDATE SET assigned = excluded.assigned",
  setAvailability: "INSERT INTO agents (agent, availability, since) VALUES ($1, $2, $3) ON CONFLICT (agent) " +
    "DO UPDATE SET availability = excluded.availability, since = excluded.since",
  // After everyone already waiting, even within one millisecond (run under the lock on the accept path).
  enqueue: "UPDATE contacts SET queued_at = greatest($2::bigint, (SELECT coalesce(max(queued_at), 0) + 1 " +
    "FROM contacts WHERE agent = '' AND status <> 'resolved')) WHERE id = $1 AND agent = ''",
  queue: `SELECT id, status, queued_at AS "queuedAt" FROM contacts WHERE agent = '' AND status <> 'resolved' ` +
    "ORDER BY queued_at, id",
  nextWaiting: `SELECT ${CONTACT_FIELDS} FROM contacts c WHERE c.agent = '' AND c.status = 'open' ` +
    "ORDER BY c.queued_at, c.id LIMIT 1",
  assign: `UPDATE contacts c SET agent = $2, version = version + 1 WHERE c.id = $1 AND c.agent = '' ` +
    `AND c.status = 'open' RETURNING ${CONTACT_FIELDS}`,
} as const;

/** The advisory lock of assignment decisions ("kefa" in ASCII: kefu's, beside the migrations' lock). */
export const ASSIGN_LOCK = 0x6b656661;

/** Every statement of the engine, by what it does. */
export const Q = {
  // The ids a new contact cannot have: the user id, the qualified one and its numbered forms, where others have them.
  idsTaken: "SELECT id FROM contacts WHERE id = $1 OR id = $2 OR id LIKE $3",
  openCountsOf: "SELECT agent, count(*) AS n FROM contacts WHERE agent = ANY($1::text[]) AND status <> 'resolved' " +
    "GROUP BY agent",
  openCountsAll: "SELECT agent, n FROM open_counts WHERE n > 0",
  insertOutbound: `${INSERT_MESSAGE} RETURNING seq`,
  inboundKey: "SELECT seq, state FROM messages WHERE id = $1 AND contact = $2 AND account = $3 AND direction = 'in'",
  lockContact: "SELECT 1 FROM contacts WHERE id = $1 FOR UPDATE",
  // The conversation newest first with a running count of the replies that use a window (not workflow lines, not
  // failed): a window's use is the count at its opening message. The running count streams, so LIMIT stops the scan.
  // An inbound row's `extra` is read only for events (`event:<Event>`).
  conversationNewestFirst: "SELECT seq, direction, type, CASE WHEN type = 'event' THEN extra END AS extra, " +
    `send_time AS "sendTime", stored_at AS "storedAt", count(*) FILTER (WHERE direction = 'out' ` +
    "AND type NOT IN ('system', 'note') AND state IN ('queued', 'sent')) OVER (ORDER BY seq DESC) AS replies " +
    "FROM messages WHERE contact = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
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
} as const;

/** What a contact's list entry derives from its messages: one indexed lookup each, in the same query. */
function summarySql(where: string): string {
  const newest = (filter: string) =>
    `(SELECT row_to_json(x) AS j FROM (SELECT ${MESSAGE_FIELDS} FROM messages m WHERE m.contact = c.id ${filter} ` +
    "ORDER BY m.seq DESC LIMIT 1) x)";
  return `SELECT ${CONTACT_FIELDS}, coalesce(n.t, c.created_at) AS "lastMessageTime", ` +
    `coalesce(i.t, 0) AS "lastInboundTime", u.n AS unread, l.j AS last, e.j AS "lastEvent", ` +
    "coalesce(a.d = 'in', false) AS awaiting, " +
    '(SELECT array_agg(t.tag ORDER BY t.tag COLLATE "C") FROM contact_tags t WHERE t.contact = c.id) AS tags ' +
    "FROM contacts c " +
    "LEFT JOIN LATERAL (SELECT send_time AS t FROM messages WHERE contact = c.id ORDER BY seq DESC LIMIT 1) n ON true " +
    "LEFT JOIN LATERAL (SELECT send_time AS t FROM messages WHERE contact = c.id AND direction = 'in' " +
    "ORDER BY seq DESC LIMIT 1) i ON true " +
    "CROSS JOIN LATERAL (SELECT count(*) AS n FROM messages WHERE contact = c.id AND direction = 'in' " +
    "AND state <> 'acked') u " +
    `LEFT JOIN LATERAL ${newest("AND m.type NOT IN ('system', 'note')")} l ON true ` +
    `LEFT JOIN LATERAL ${newest("AND m.type = 'system'")} e ON true ` +
    // kefu's automatic messages (agent 'kefu', issue 22) answer nobody: the user still waits for an agent.
    "LEFT JOIN LATERAL (SELECT direction AS d FROM messages WHERE contact = c.id AND type NOT IN ('system', 'event', 'note') " +
    `AND NOT (direction = 'out' AND agent = 'kefu') ORDER BY seq DESC LIMIT 1) a ON true WHERE ${where}`;
}

/** The list entries of one contact, of an agent's contacts, and of those a text finds. */
export const SUMMARY = {
  one: summarySql("c.id = $1"),
  of: summarySql("c.agent = $1"),
  find: summarySql(
    `c.agent = $1 AND (c.id COLLATE "C" ILIKE $2 OR c.user_id COLLATE "C" ILIKE $2 OR c.name COLLATE "C" ILIKE $2 ` +
      `OR c.display_name COLLATE "C" ILIKE $2 OR c.note COLLATE "C" ILIKE $2 ` +
      `OR EXISTS (SELECT 1 FROM contact_tags t WHERE t.contact = c.id AND t.tag COLLATE "C" ILIKE $2))`,
  ),
};

/** A canned reply row as `CannedReply` names its fields. */
const CANNED_FIELDS = `id, scope, owner, shortcut, text, updated_by AS "updatedBy", updated_at AS "updatedAt"`;

/** Issue 22: canned replies and contacts' tags. */
export const TEAM = {
  cannedOf: `SELECT ${CANNED_FIELDS} FROM canned_replies WHERE owner = '' OR owner = $1 ` +
    `ORDER BY shortcut COLLATE "C", scope DESC, id`,
  cannedById: `SELECT ${CANNED_FIELDS} FROM canned_replies WHERE id = $1`,
  addCanned: "INSERT INTO canned_replies (scope, owner, shortcut, text, updated_by, updated_at) " +
    `VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (owner, shortcut) DO NOTHING RETURNING ${CANNED_FIELDS}`,
  // Locked, so that the shortcut check and the change see one row; a shortcut taken by another reply is the
  // constraint's to say (a concurrent insert of it waits on the index, then fails the update).
  cannedMine: "SELECT shortcut FROM canned_replies WHERE id = $1 AND scope = $2 AND owner = $3 FOR UPDATE",
  shortcutTaken: "SELECT 1 FROM canned_replies WHERE owner = $1 AND shortcut = $2 AND id <> $3",
  updateCanned: "UPDATE canned_replies SET shortcut = coalesce($1, shortcut), text = coalesce($2, text), " +
    `updated_by = $3, updated_at = $4 WHERE id = $5 RETURNING ${CANNED_FIELDS}`,
  deleteCanned: "DELETE FROM canned_replies WHERE id = $1 AND scope = $2 AND owner = $3",
  clearTags: "DELETE FROM contact_tags WHERE contact = $1",
  addTags: "INSERT INTO contact_tags (contact, tag) SELECT $1, t FROM unnest($2::text[]) AS t ON CONFLICT DO NOTHING",
} as const;
