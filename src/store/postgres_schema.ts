/**
 * The PostgreSQL store's schema and how it is brought up to date: versioned steps recorded in `kefu_schema`, applied
 * in one transaction under an advisory lock, so that several kefu processes starting at once against one database
 * migrate it exactly once and none of them sees it half done.
 *
 * @module
 */

import type postgres from "postgres";
import { quote } from "../core/errors.ts";
import { PG_AUTOMATIC_MIGRATION } from "./postgres_automatic.ts";
import { PG_OPEN_COUNTS_MIGRATION } from "./postgres_open_counts.ts";

/** How much of a database URL an error message quotes (the whole of a usual one, so that it names the database). */
export const URL_QUOTE = 200;

/** One schema step; `sql` runs in the transaction that records `version` in `kefu_schema`. */
export interface PgMigration {
  version: number;
  name: string;
  sql: string;
}

/**
 * The lock every migrating process takes (`pg_advisory_xact_lock`): a constant of kefu's own ("kefu" in ASCII), so
 * that it is unlikely to collide with another application's advisory locks in a shared database.
 */
export const MIGRATION_LOCK = 0x6b656675;

/** The schema, oldest step first. Append only: a released step is never edited. */
export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: "contacts by identity with a version; messages with delivery state and the inbound key; leases; " +
      "reply windows",
    // The same tables as SQLite's (docs/store_semantics.md). Derived fields (unread, times, previews) are read from
    // the messages through these indexes: the conversation in seq order, each contact's unread messages, the newest
    // workflow line. The unacked backlog pages through `messages_waiting` in seq order, which stays small once agents
    // read their messages. Times are epoch numbers (bigint), as on SQLite, so that both engines compare them alike.
    sql: `
    CREATE TABLE contacts (
      id text PRIMARY KEY,
      channel text NOT NULL,
      account text NOT NULL,
      user_id text NOT NULL,
      agent text NOT NULL,
      name text NOT NULL,
      avatar text NOT NULL,
      company text NOT NULL,
      status text NOT NULL CHECK (status IN ('open', 'resolved', 'queued')),
      display_name text NOT NULL DEFAULT '',
      note text NOT NULL DEFAULT '',
      version bigint NOT NULL DEFAULT 1,
      created_at bigint NOT NULL,
      CONSTRAINT contacts_identity UNIQUE (channel, account, user_id)
    );
    CREATE INDEX contacts_agent ON contacts (agent);
    CREATE INDEX contacts_open ON contacts (agent) WHERE status <> 'resolved';
    CREATE TABLE messages (
      seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      id text NOT NULL,
      direction text NOT NULL CHECK (direction IN ('in', 'out')),
      channel text NOT NULL,
      account text NOT NULL,
      contact text NOT NULL,
      agent text NOT NULL,
      company text NOT NULL,
      type text NOT NULL,
      content text NOT NULL,
      media text NOT NULL,
      send_time bigint NOT NULL,
      name text NOT NULL,
      avatar text NOT NULL,
      extra text,
      state text NOT NULL,
      detail text NOT NULL DEFAULT '',
      stored_at bigint NOT NULL
    );
    CREATE UNIQUE INDEX messages_inbound_key ON messages (id, contact, account) WHERE direction = 'in';
    CREATE INDEX messages_conversation ON messages (contact, seq);
    CREATE INDEX messages_unread ON messages (contact, seq) WHERE direction = 'in' AND state <> 'acked';
    CREATE INDEX messages_waiting ON messages (seq) WHERE direction = 'in' AND state = 'accepted';
    CREATE INDEX messages_media_waiting ON messages (seq) WHERE direction = 'in' AND state = 'media';
    CREATE INDEX messages_outbox ON messages (seq) WHERE direction = 'out' AND state = 'queued';
    CREATE INDEX messages_media ON messages (media) WHERE media <> '';
    CREATE INDEX messages_system ON messages (contact, seq) WHERE type = 'system';
    CREATE TABLE leases (key text PRIMARY KEY, holder text NOT NULL, until bigint NOT NULL);
    -- The Official Account channel's reply windows; double precision keeps -Infinity (never) as it is.
    CREATE TABLE windows (
      account text NOT NULL,
      openid text NOT NULL,
      last_message_at double precision NOT NULL,
      message_used integer NOT NULL,
      last_event_at double precision NOT NULL,
      event_used integer NOT NULL,
      PRIMARY KEY (account, openid)
    );`,
  },
  {
    version: 2,
    name: "sign-in revocations",
    // Issue 20: a sign-out or an administrator's revocation survives restarts and reaches every process.
    sql: `
    CREATE TABLE revocations (agent text NOT NULL, token_id text NOT NULL DEFAULT '', at bigint NOT NULL,
      until bigint NOT NULL);
    CREATE INDEX revocations_until ON revocations (until);`,
  },
  {
    version: 3,
    name: "team (issue 22): agents' availability and capacity, the queue",
    // As SQLite's step 7: a user waits from `queued_at` (epoch ms, the queue's order) while no agent has them;
    // agents' availability and round-robin turn are rows every process reads.
    sql: `
    ALTER TABLE contacts ADD COLUMN queued_at bigint NOT NULL DEFAULT 0;
    UPDATE contacts SET queued_at = created_at * 1000 WHERE agent = '';
    CREATE INDEX contacts_queue ON contacts (queued_at, id) WHERE agent = '' AND status <> 'resolved';
    CREATE TABLE agents (
      agent text PRIMARY KEY,
      availability text NOT NULL DEFAULT 'online' CHECK (availability IN ('online', 'busy', 'away')),
      since bigint NOT NULL DEFAULT 0,
      assigned bigint NOT NULL DEFAULT 0
    );`,
  },
  {
    version: 4,
    name: "team (issue 22): canned replies and tags",
    // As on SQLite: a team reply has owner '' (one unique index keeps shortcuts apart per owner); tags are rows, a
    // contact's read with it, a tag's contacts found through the second index.
    sql: `
    CREATE TABLE canned_replies (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      scope text NOT NULL CHECK (scope IN ('team', 'personal')),
      owner text NOT NULL,
      shortcut text NOT NULL,
      text text NOT NULL,
      updated_by text NOT NULL,
      updated_at bigint NOT NULL,
      CHECK ((scope = 'team') = (owner = '')),
      CONSTRAINT canned_replies_shortcut UNIQUE (owner, shortcut)
    );
    CREATE TABLE contact_tags (contact text NOT NULL, tag text NOT NULL, PRIMARY KEY (contact, tag));
    CREATE INDEX contact_tags_tag ON contact_tags (tag);`,
  },
  { version: 5, ...PG_AUTOMATIC_MIGRATION },
  {
    version: 6,
    name: "reports (issue 22): messages by time",
    // As SQLite's step 10: a range's messages counted by hour, channel and direction from the index alone.
    sql: `CREATE INDEX messages_time ON messages (send_time, channel, direction, type, contact);`,
  },
  { version: 7, ...PG_OPEN_COUNTS_MIGRATION },
];

/**
 * Bring the database up to `migrations`' newest version: every missing step in one transaction under
 * {@link MIGRATION_LOCK}, each recorded in `kefu_schema`. A database newer than this kefu is refused, naming `where`
 * (the URL without its password). Resolves to the version the database is at.
 */
export async function migrate(sql: postgres.Sql, migrations: readonly PgMigration[], where: string): Promise<number> {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`cannot migrate the store schema: step ${quote(m.name)} has version ${m.version}, not ${i + 1}`);
    }
  });
  const latest = migrations.length;
  return await sql.begin(async (tx) => {
    // Held to the end of this transaction: a second process waits here, then finds the steps applied.
    await tx.unsafe("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await tx.unsafe(
      "CREATE TABLE IF NOT EXISTS kefu_schema (version integer PRIMARY KEY, name text NOT NULL, " +
        "applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const [{ current }] = await tx.unsafe("SELECT coalesce(max(version), 0) AS current FROM kefu_schema");
    if (current > latest) {
      throw new Error(
        `cannot open the store ${quote(where, URL_QUOTE)}: its schema version ${current} is newer than this kefu's ` +
          `(${latest}); run a newer kefu or restore a backup`,
      );
    }
    for (const step of migrations.slice(current)) {
      try {
        await tx.unsafe(step.sql);
        await tx.unsafe("INSERT INTO kefu_schema (version, name) VALUES ($1, $2)", [step.version, step.name]);
      } catch (e) {
        throw new Error(
          `cannot migrate the store schema of ${quote(where, URL_QUOTE)} to version ${step.version} (${step.name}): ` +
            (e instanceof Error ? e.message : String(e)),
          { cause: e },
        );
      }
    }
    return latest;
  });
}
