/**
 * A real PostgreSQL for tests, from Debian's `postgresql` package: `initdb` into a fresh temporary directory, the
 * server on a free port of 127.0.0.1 (its socket in that directory), detached by `pg_ctl` so that no child process or
 * pipe stays open between steps. As root everything runs as the `postgres` user (initdb and postgres refuse root).
 *
 * The common case is one server per test file and a fresh database per test:
 *
 * ```ts
 * Deno.test("store on postgres", async (t) => {
 *   await using pg = await startPostgres();
 *   await t.step("one thing", async () => {
 *     await using db = await pg.createDatabase();
 *     // connect to db.url
 *   });
 * });
 * ```
 *
 * or `postgresTests(name, { "one thing": async (db) => {…} })`, which writes exactly that.
 *
 * @module
 */

import { delay, freePort, isRoot, killTree, run, signal, tail, userIds, waitGone } from "./process.ts";

/** How `startPostgres` sets the server up. */
export interface PostgresOptions {
  /**
   * Keep PostgreSQL's durability defaults (fsync, synchronous_commit, full_page_writes on), for crash and
   * durability tests. By default they are off: a test's data need not survive the machine, and a commit then costs
   * no disk flush.
   */
  durable?: boolean;
  /** More `postgresql.conf` settings, e.g. `{ max_connections: "200" }`. */
  settings?: Record<string, string>;
}

/** A database of its own for one test; disposing it drops it (with FORCE: connections left open are ended). */
export interface PostgresDatabase extends AsyncDisposable {
  name: string;
  /** `postgres://postgres@127.0.0.1:<port>/<name>` (trust authentication: no password). */
  url: string;
  drop(): Promise<void>;
}

/** A running test server; disposing it stops it and removes its directory. */
export interface PostgresServer extends AsyncDisposable {
  /** The URL of the database `startPostgres` created (`kefu`). */
  url: string;
  port: number;
  /** PGDATA, inside the temporary directory. */
  dataDir: string;
  /** The temporary directory: PGDATA, the log (`postgres.log`) and the Unix socket. */
  dir: string;
  /** The major version that runs, e.g. 15. */
  version: number;
  /** False after `stop` or `kill` until `restart`. */
  readonly running: boolean;
  /** A fresh database, `CREATE DATABASE <random> TEMPLATE template0`. */
  createDatabase(): Promise<PostgresDatabase>;
  /** Run SQL as the superuser through psql (`database` defaults to `kefu`); the rows, tab-separated. */
  sql(query: string, database?: string): Promise<string>;
  /** Fast shutdown (clients disconnected, a checkpoint); the directory stays for `restart`. */
  stop(): Promise<void>;
  /** SIGKILL the postmaster and all its processes at once, as a crash would. */
  kill(): Promise<void>;
  /** Start again on the same port and data (after `stop`, `kill`, or while running: stop first). */
  restart(): Promise<void>;
  /** Stop if running and remove the temporary directory. */
  close(): Promise<void>;
}

/** The settings that make a throwaway server fast; what `durable: true` leaves out. */
const FAST_SETTINGS: Record<string, string> = {
  fsync: "off", // no flush to disk: a crash of the machine may lose the cluster, a crash of postgres does not
  synchronous_commit: "off", // COMMIT answers before its WAL is written
  full_page_writes: "off", // no torn-page protection, only needed after an OS crash
};

const START_TIMEOUT_S = 60;

/** The newest `/usr/lib/postgresql/<major>/bin` with a server in it; throws naming the package when there is none. */
export function findPostgresBin(): { bin: string; version: number } {
  let best: { bin: string; version: number } | undefined;
  try {
    for (const entry of Deno.readDirSync("/usr/lib/postgresql")) {
      const version = Number(entry.name);
      const bin = `/usr/lib/postgresql/${entry.name}/bin`;
      if (!Number.isInteger(version) || (best && best.version >= version)) continue;
      try {
        if (Deno.statSync(`${bin}/postgres`).isFile && Deno.statSync(`${bin}/initdb`).isFile) best = { bin, version };
      } catch { /* a client-only major */ }
    }
  } catch { /* no /usr/lib/postgresql */ }
  if (!best) {
    throw new Error(
      "PostgreSQL is not installed: no /usr/lib/postgresql/<major>/bin/postgres; install Debian's package: apt-get install postgresql",
    );
  }
  return best;
}

/** Start a fresh server with a database `kefu`; the caller must `close()` it (or `await using`). */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const { bin, version } = findPostgresBin();
  const root = await isRoot();
  const owner = root ? userIds("postgres") : undefined;
  if (root && !owner) {
    throw new Error(
      "cannot start PostgreSQL as root: there is no 'postgres' user to run it as (Debian's package creates it: apt-get install postgresql)",
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "kefu_pg_" });
  const dataDir = `${dir}/data`;
  const log = `${dir}/postgres.log`;
  // As root, the server's tools run as postgres, who must own the directory (mode 0700 from makeTempDir).
  const asOwner = (tool: string, args: string[]) =>
    owner ? run("runuser", ["-u", "postgres", "--", `${bin}/${tool}`, ...args]) : run(`${bin}/${tool}`, args);
  let running = false;
  let port = 0;

  const pgCtl = (args: string[]) => asOwner("pg_ctl", ["-D", dataDir, ...args]);
  const start = async () => {
    await pgCtl(["-l", log, "-w", "-t", String(START_TIMEOUT_S), "start"]).catch((e) => {
      throw new Error(`cannot start PostgreSQL in ${dataDir}: ${e.message}\n${tail(log)}`);
    });
    running = true;
  };
  const writePort = async (p: number) => {
    port = p;
    await Deno.writeTextFile(`${dataDir}/postgresql.auto.conf`, `port = ${p}\n`);
  };

  try {
    if (owner) await Deno.chown(dir, owner.uid, owner.gid);
    // --no-sync: initdb's own fsyncs cost seconds and a test's cluster need not survive the machine.
    await asOwner("initdb", ["-D", dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
    const settings: Record<string, string> = {
      listen_addresses: "'127.0.0.1'",
      unix_socket_directories: `'${dir}'`,
      ...(options.durable ? {} : FAST_SETTINGS),
      ...options.settings,
    };
    await Deno.writeTextFile(
      `${dataDir}/postgresql.conf`,
      "\n# kefu tests\n" + Object.entries(settings).map(([k, v]) => `${k} = ${v}\n`).join(""),
      { append: true },
    );
    // The port is free when asked, but another process may bind it before the server does: try a few.
    for (let attempt = 1;; attempt++) {
      await writePort(freePort());
      try {
        await start();
        break;
      } catch (e) {
        if (attempt >= 3 || !tail(log).includes("Address already in use")) throw e;
      }
    }
  } catch (e) {
    if (running) await pgCtl(["-m", "immediate", "-w", "stop"]).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }

  const sql = async (query: string, database = "kefu") =>
    (await run(`${bin}/psql`, [
      "-X",
      "-q",
      "-A",
      "-t",
      "-F",
      "\t",
      "-v",
      "ON_ERROR_STOP=1",
      "-h",
      dir,
      "-p",
      String(port),
      "-U",
      "postgres",
      "-d",
      database,
      "-c",
      query,
    ])).stdout.replace(/\n$/, "");
  const urlOf = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  await sql("CREATE DATABASE kefu TEMPLATE template0", "postgres").catch(async (e) => {
    await pgCtl(["-m", "immediate", "-w", "stop"]).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  });

  const stop = async () => {
    if (!running) return;
    await pgCtl(["-m", "fast", "-w", "stop"]);
    running = false;
  };
  const server: PostgresServer = {
    get url() {
      return urlOf("kefu");
    },
    get port() {
      return port;
    },
    get running() {
      return running;
    },
    dataDir,
    dir,
    version,
    sql,
    async createDatabase() {
      // A name no other test uses; template0 so that nothing another test put in template1 leaks in.
      const name = `t_${crypto.randomUUID().replaceAll("-", "")}`;
      await sql(`CREATE DATABASE ${name} TEMPLATE template0`, "postgres");
      let dropped = false;
      const drop = async () => {
        if (dropped || !running) return;
        dropped = true;
        await sql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`, "postgres");
      };
      return { name, url: urlOf(name), drop, [Symbol.asyncDispose]: drop };
    },
    stop,
    async kill() {
      const pid = postmasterPid(dataDir);
      if (pid !== undefined) await killTree(pid, `PostgreSQL in ${dataDir}`);
      running = false;
      // The dead postmaster stays a zombie until init reaps it (about a second here), and PostgreSQL takes a zombie's
      // pid in its lock files for a live server. Every process is gone (killTree waited): the lock files are stale.
      for (const lock of [`${dataDir}/postmaster.pid`, `${dir}/.s.PGSQL.${port}.lock`]) {
        await Deno.remove(lock).catch(() => {});
      }
    },
    async restart() {
      await stop();
      await start();
    },
    async close() {
      try {
        await stop();
      } catch {
        // A server that will not stop in time is killed: a test must leave no process behind.
        const pid = postmasterPid(dataDir);
        if (pid !== undefined) {
          signal(pid, "SIGQUIT");
          await waitGone([pid], 5_000, `PostgreSQL in ${dataDir}`).catch(() => killTree(pid, "PostgreSQL"));
        }
        running = false;
      }
      // Backends may still be unlinking their files for a moment after the postmaster is gone.
      for (let i = 0;; i++) {
        try {
          await Deno.remove(dir, { recursive: true });
          break;
        } catch (e) {
          if (e instanceof Deno.errors.NotFound) break;
          if (i >= 10) throw e;
          await delay(50);
        }
      }
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
  return server;
}

/** The postmaster's pid from `postmaster.pid`, if a server runs (or ran and crashed) in `dataDir`. */
function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(Deno.readTextFileSync(`${dataDir}/postmaster.pid`).split("\n")[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A case of `postgresTests`: a fresh database of its own and the shared server (to stop, kill or restart it). */
export type PostgresCase = (db: PostgresDatabase, server: PostgresServer) => Promise<void>;

/**
 * One Deno test `name` that starts one server, runs each case as a step with a fresh database, and stops the server:
 * cases stay independent while the file pays for one initdb.
 */
export function postgresTests(
  name: string,
  cases: Record<string, PostgresCase>,
  options: PostgresOptions & { ignore?: boolean } = {},
): void {
  Deno.test({
    name,
    ignore: options.ignore,
    async fn(t) {
      await using server = await startPostgres(options);
      for (const [caseName, fn] of Object.entries(cases)) {
        await t.step(caseName, async () => {
          // A case that stopped or killed the server gets it back, so the next case does not inherit that.
          if (!server.running) await server.restart();
          await using db = await server.createDatabase();
          await fn(db, server);
        });
      }
    },
  });
}
