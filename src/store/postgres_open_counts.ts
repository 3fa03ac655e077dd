/**
 * Each agent's open contacts on PostgreSQL, kept as a number instead of counted (issue 19): the assignment path read
 * them with a `count(*)` per online agent under the cluster-wide lock (1.5–2.9 ms at 10,000 users, so a cluster took
 * at most a few hundred new users a second). Triggers on `contacts` keep `open_counts` in the same transaction as
 * every statement that changes a contact's agent or status, so no code path can forget it and a decision reads a
 * count that is exactly what its transaction would have counted.
 *
 * @module
 */

/** The schema step that adds the counts (appended to postgres_schema.ts's migrations). */
export const PG_OPEN_COUNTS_MIGRATION = {
  name: "open contacts per agent kept by triggers (issue 19): assignment reads them by key",
  // Row triggers, only when the agent or whether the contact is resolved changed (the accept of a known user's
  // message and an edit of a name fire nothing). A move from one agent to another changes both rows in name order,
  // so two moves crossing each other lock them in the same order. A separate table, not a column of `agents`: a row
  // there means an agent with a stored availability or turn.
  sql: `
    CREATE TABLE open_counts (agent text PRIMARY KEY, n bigint NOT NULL);
    INSERT INTO open_counts (agent, n)
      SELECT agent, count(*) FROM contacts WHERE agent <> '' AND status <> 'resolved' GROUP BY agent;
    CREATE FUNCTION kefu_open_counts() RETURNS trigger LANGUAGE plpgsql AS $fn$
    DECLARE
      was text := '';
      now_ text := '';
      r record;
    BEGIN
      IF TG_OP <> 'INSERT' AND OLD.status <> 'resolved' THEN was := OLD.agent; END IF;
      IF TG_OP <> 'DELETE' AND NEW.status <> 'resolved' THEN now_ := NEW.agent; END IF;
      IF was = now_ THEN RETURN NULL; END IF;
      FOR r IN SELECT x.who, x.delta FROM (VALUES (was, -1), (now_, 1)) AS x(who, delta)
          WHERE x.who <> '' ORDER BY x.who LOOP
        INSERT INTO open_counts AS oc (agent, n) VALUES (r.who, r.delta)
          ON CONFLICT (agent) DO UPDATE SET n = oc.n + excluded.n;
      END LOOP;
      RETURN NULL;
    END
    $fn$;
    CREATE TRIGGER contacts_open_insert AFTER INSERT ON contacts FOR EACH ROW
      WHEN (NEW.agent <> '' AND NEW.status <> 'resolved') EXECUTE FUNCTION kefu_open_counts();
    CREATE TRIGGER contacts_open_update AFTER UPDATE OF agent, status ON contacts FOR EACH ROW
      WHEN (OLD.agent IS DISTINCT FROM NEW.agent OR (OLD.status = 'resolved') <> (NEW.status = 'resolved'))
      EXECUTE FUNCTION kefu_open_counts();
    CREATE TRIGGER contacts_open_delete AFTER DELETE ON contacts FOR EACH ROW
      WHEN (OLD.agent <> '' AND OLD.status <> 'resolved') EXECUTE FUNCTION kefu_open_counts();`,
} as const;
