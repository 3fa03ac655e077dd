/**
 * `kefu check-config`: read the configuration as `kefu serve` would, report every problem at once, and reach what
 * it names — the store (SQLite read-only, never taking DATA_DIR's lock from a running kefu; PostgreSQL by a TCP
 * connection, or its Unix socket) and Redis (its version, `INFO server`) — without starting anything.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";
import { checkCluster } from "../cluster/check.ts";
import { type Config, ConfigError, readConfig, redactUrl } from "../config/config.ts";
import { postgresAddress } from "../config/postgres_url.ts";
import { configWarnings } from "../config/warnings.ts";
import { probeRedis, requireRedisVersion } from "../cluster/redis_version.ts";
import { storePath } from "../store/sqlite_store.ts";
import { KNOWN_VARIABLES } from "./variables.ts";

/** What `check-config` found. */
export interface CheckReport {
  /** Each would stop the start (exit 2). */
  problems: string[];
  /** Each is worth knowing; none stops the start. */
  warnings: string[];
  /** What was reached, one line each. */
  reached: string[];
}

/** What check-config needs of the composition root. */
export interface CheckDeps {
  /** Ask each channel for its settings (main.ts's `channelSettings`); throws `ConfigError`. */
  channelSettings(config: Pick<Config, "channelSources">): unknown;
}

/** How long a connection to PostgreSQL or Redis may take. */
export const CONNECT_TIMEOUT_MS = 3_000;

/** Check the configuration of `env` (CONFIG_FILE read with `readFile`). */
export async function checkConfig(
  env: Record<string, string | undefined>,
  deps: CheckDeps,
  readFile?: (path: string) => string,
): Promise<CheckReport> {
  const report: CheckReport = { problems: [], warnings: [], reached: [] };
  const { config, problems } = readConfig(env, readFile);
  report.problems.push(...problems);
  try {
    deps.channelSettings(config);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    report.problems.push(...e.problems);
  }
  // What the start refuses of several nodes (REDIS_URL with SQLite, or without MEDIA_DIR), once what it reads was read.
  if (!problems.some((p) => /\b(STORE|REDIS_URL|MEDIA_DIR)\b/.test(p))) {
    try {
      checkCluster(config);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      report.problems.push(...e.problems);
    }
  }
  report.warnings.push(...configWarnings(env, config, KNOWN_VARIABLES).map((w) => w.detail));
  // The store only when STORE (and DATABASE_URL) could be read: otherwise the problem is already said.
  if (!problems.some((p) => /\b(STORE|DATABASE_URL)\b/.test(p))) await checkStore(config, report);
  if (config.redisUrl !== undefined) await checkRedis(config.redisUrl, report);
  // A channel may read a variable of the service's too (the PC hook reads PORT): each problem once.
  report.problems = [...new Set(report.problems)];
  return report;
}

async function checkStore(config: Config, report: CheckReport): Promise<void> {
  if (config.store === "memory") {
    report.reached.push("store: memory (nothing is kept across restarts)");
    return;
  }
  if (config.store === "postgres") {
    const { host, port, socket } = postgresAddress(config.databaseUrl!);
    const said = `PostgreSQL at ${redactUrl(config.databaseUrl!)}`;
    const error = socket === undefined ? await tcpReach(host, port) : await socketReach(socket);
    const how = socket === undefined ? `TCP ${host}:${port}` : `Unix socket ${JSON.stringify(socket)}`;
    if (error === undefined) report.reached.push(`store: ${said} (${how} answers)`);
    else report.problems.push(`cannot reach ${said} (DATABASE_URL) by ${how}: ${error}`);
    return;
  }
  const problem = checkSqlite(config.dataDir);
  if (problem.startsWith("store: ")) report.reached.push(problem);
  else report.problems.push(problem);
}

/** Connect to a Unix socket within {@link CONNECT_TIMEOUT_MS}; the error, or undefined. */
export async function socketReach(path: string): Promise<string | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let conn: Deno.UnixConn | undefined;
  const timeout = new Promise<string>((resolve) =>
    timer = setTimeout(() => resolve(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`), CONNECT_TIMEOUT_MS)
  );
  const attempt = Deno.connect({ transport: "unix", path }).then((c) => {
    conn = c;
    return undefined;
  }, (e) => e instanceof Deno.errors.NotFound ? "no such socket (is PostgreSQL listening there?)" : errorText(e));
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
    // A connection that came after the timeout is closed too.
    void attempt.then(() => conn?.close());
  }
}

/**
 * DATA_DIR and its store, read-only: the file opens and its tables answer, or (first start) the directory can be
 * made. Returns "store: …" when fine, else the problem.
 */
export function checkSqlite(dataDir: string): string {
  const path = storePath(dataDir);
  const where = `DATA_DIR=${JSON.stringify(dataDir)}`;
  let stat: Deno.FileInfo | undefined;
  try {
    stat = Deno.statSync(dataDir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) return `cannot use ${where}: ${errorText(e)}`;
  }
  if (stat === undefined) {
    // The first start creates it: its nearest existing parent must be a directory.
    let parent = dataDir.replace(/\/+$/, "");
    for (;;) {
      parent = parent.includes("/") ? parent.slice(0, parent.lastIndexOf("/")) || "/" : ".";
      try {
        const s = Deno.statSync(parent);
        if (!s.isDirectory) return `cannot use ${where}: ${JSON.stringify(parent)} is not a directory`;
        return `store: sqlite, ${where} does not exist yet (the first start creates it under ${
          JSON.stringify(parent)
        })`;
      } catch (e) {
        // Outside what this process may read (the tasks grant DATA_DIR alone): the start will say.
        if (e instanceof Deno.errors.NotCapable) {
          return `store: sqlite, ${where} does not exist yet (the first start creates it)`;
        }
        if (!(e instanceof Deno.errors.NotFound)) return `cannot use ${where}: ${errorText(e)}`;
        if (parent === "/" || parent === ".") return `cannot use ${where}: no parent directory exists`;
      }
    }
  }
  if (!stat.isDirectory) return `cannot use ${where}: not a directory`;
  try {
    Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return `store: sqlite, ${where} (no kefu.db yet: the first start makes it)`;
    return `cannot use ${where}: ${errorText(e)}`;
  }
  let db: DatabaseSync | undefined;
  try {
    // Read-only, without the lock: a running kefu keeps its store and its lock.
    db = new DatabaseSync(path, { readOnly: true });
    const version = (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
    const count = (table: string) => (db!.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return `store: sqlite ${JSON.stringify(path)} opens (schema v${version}, ${count("contacts")} contacts, ` +
      `${count("messages")} messages)`;
  } catch (e) {
    return `cannot open the store ${JSON.stringify(path)} (${where}): ${errorText(e)}`;
  } finally {
    db?.close();
  }
}

async function checkRedis(raw: string, report: CheckReport): Promise<void> {
  const said = `Redis at ${redactUrl(raw)}`;
  // node-redis, as kefu connects (TLS for rediss://, the URL's password): its version, which must be 6.2 or newer.
  const found = await probeRedis(raw, CONNECT_TIMEOUT_MS);
  if ("error" in found) {
    report.problems.push(`cannot reach ${said} (REDIS_URL): ${found.error}`);
    return;
  }
  try {
    requireRedisVersion(found.version, raw);
    report.reached.push(`${said} answers: Redis ${found.version}`);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    report.problems.push(e.message);
  }
}

/** Connect to host:port within {@link CONNECT_TIMEOUT_MS} (and run `then` on the connection); the error, or undefined. */
export async function tcpReach(
  host: string,
  port: number,
  then?: (conn: Deno.TcpConn) => Promise<void>,
): Promise<string | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let conn: Deno.TcpConn | undefined;
  const timeout = new Promise<string>((resolve) =>
    timer = setTimeout(() => resolve(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`), CONNECT_TIMEOUT_MS)
  );
  const attempt = (async (): Promise<string | undefined> => {
    try {
      conn = await Deno.connect({ hostname: host.replace(/^\[|\]$/g, ""), port });
      await then?.(conn);
      return undefined;
    } catch (e) {
      return errorText(e);
    }
  })();
  try {
    return await Promise.race([attempt, timeout]);
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch { /* closed */ }
    // A connection that came after the timeout is closed too.
    void attempt.then(() => {
      try {
        conn?.close();
      } catch { /* closed */ }
    });
  }
}

function errorText(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/** The report as an operator reads it: problems first, one line each. */
export function formatReport(report: CheckReport): string {
  const lines = [
    ...report.problems.map((p) => `kefu: ${p}`),
    ...report.warnings.map((w) => `warning: ${w}`),
    ...report.reached.map((r) => `ok: ${r}`),
  ];
  lines.push(
    report.problems.length === 0
      ? "kefu check-config: the configuration is good"
      : `kefu check-config: ${report.problems.length} problem${report.problems.length === 1 ? "" : "s"}`,
  );
  return lines.join("\n");
}
