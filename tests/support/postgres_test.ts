import assert from "node:assert/strict";
import postgres from "postgres";
import { findPostgresBin, postgresTests, startPostgres } from "./postgres.ts";
import { alive } from "./process.ts";

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function postmasterPid(dataDir: string): number {
  return Number(Deno.readTextFileSync(`${dataDir}/postmaster.pid`).split("\n")[0]);
}

Deno.test("findPostgresBin finds the newest installed major", () => {
  const { bin, version } = findPostgresBin();
  assert.match(bin, /^\/usr\/lib\/postgresql\/\d+\/bin$/);
  assert.ok(version >= 13, `PostgreSQL ${version} is older than 13 (DROP DATABASE … WITH (FORCE) needs 13)`);
});

postgresTests("startPostgres: one server for the file, a database per case", {
  "a query on the server's own database": async (_db, server) => {
    assert.equal(await server.sql("SELECT 1 + 1"), "2");
    assert.match(server.url, /^postgres:\/\/postgres@127\.0\.0\.1:\d+\/kefu$/);
    assert.equal(
      await server.sql("SHOW server_version_num").then((v) => Math.floor(Number(v) / 10000)),
      server.version,
    );
  },
  "the chosen client connects to a fresh database and keeps rows across a restart": async (db, server) => {
    const sql = postgres(db.url, { max: 2, onnotice: () => {} });
    try {
      await sql`CREATE TABLE inbound (msg_id text PRIMARY KEY, body text NOT NULL)`;
      const first = await sql`INSERT INTO inbound VALUES (${"m1"}, ${"你好"}) ON CONFLICT DO NOTHING RETURNING msg_id`;
      const again = await sql`INSERT INTO inbound VALUES (${"m1"}, ${"你好"}) ON CONFLICT DO NOTHING RETURNING msg_id`;
      assert.deepEqual([first.length, again.length], [1, 0]);
    } finally {
      await sql.end();
    }
    await server.restart();
    const after = postgres(db.url, { max: 1 });
    try {
      assert.deepEqual([...await after`SELECT msg_id, body FROM inbound`], [{ msg_id: "m1", body: "你好" }]);
    } finally {
      await after.end();
    }
  },
  "speed settings are on unless durable": async (_db, server) => {
    assert.equal(await server.sql("SHOW fsync"), "off");
    assert.equal(await server.sql("SHOW synchronous_commit"), "off");
    assert.equal(await server.sql("SHOW listen_addresses"), "127.0.0.1");
  },
  "each case gets an empty database of its own": async (db, server) => {
    assert.match(db.url, new RegExp(`/${db.name}$`));
    assert.equal(await server.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", db.name), "0");
    await server.sql("CREATE TABLE leftover (x int); INSERT INTO leftover VALUES (1)", db.name);
    const other = await server.createDatabase();
    assert.notEqual(other.name, db.name);
    assert.equal(await server.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", other.name), "0");
    await other.drop();
    assert.equal(await server.sql(`SELECT count(*) FROM pg_database WHERE datname = '${other.name}'`, "postgres"), "0");
  },
  "restart after a stop keeps committed data": async (db, server) => {
    await server.sql("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)", db.name);
    await server.stop();
    assert.equal(server.running, false);
    await assert.rejects(server.sql("SELECT 1"), /psql/);
    await server.restart();
    assert.equal(await server.sql("SELECT x FROM kept", db.name), "42");
  },
  "kill is a SIGKILL of every server process; restart recovers": async (db, server) => {
    await server.sql("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)", db.name);
    const pid = postmasterPid(server.dataDir);
    await server.kill();
    assert.equal(await alive(pid), false);
    await server.restart();
    assert.notEqual(postmasterPid(server.dataDir), pid);
    // synchronous_commit=off may lose the newest commits in a crash; the table itself was checkpointed by nothing,
    // so ask only that recovery brings a working server back.
    assert.equal(await server.sql("SELECT 1", db.name), "1");
  },
  "a case after a kill gets a running server": async (_db, server) => {
    await server.kill();
  },
  "the next case still has one": async (_db, server) => {
    assert.equal(server.running, true);
    assert.equal(await server.sql("SELECT 1"), "1");
  },
});

Deno.test("startPostgres durable: durability defaults kept, committed rows survive a SIGKILL; close removes all", async () => {
  const server = await startPostgres({ durable: true });
  const { dir } = server;
  let pid = 0;
  try {
    assert.equal(await server.sql("SHOW fsync"), "on");
    assert.equal(await server.sql("SHOW synchronous_commit"), "on");
    await server.sql("CREATE TABLE kept (x int); INSERT INTO kept VALUES (1), (2)");
    await server.kill();
    await server.restart();
    assert.equal(await server.sql("SELECT sum(x) FROM kept"), "3");
    pid = postmasterPid(server.dataDir);
  } finally {
    await server.close();
  }
  assert.equal(await alive(pid), false);
  assert.equal(existsSync(dir), false);
});
