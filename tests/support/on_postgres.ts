/**
 * Run end-to-end tests on PostgreSQL: a test file that imports this module first, then the test files, makes every
 * `startService` of theirs use a PostgreSQL database instead of SQLite — the same database for the same DATA_DIR
 * (a restart finds what it kept), a fresh one otherwise. One server for the whole file; `stopPostgres` ends it.
 *
 * @module
 */

import { type PostgresServer, startPostgres } from "./postgres.ts";

let wanted = false;
let server: Promise<PostgresServer> | undefined;
const byDir = new Map<string, string>();

/** Whether the tests of this file run on PostgreSQL. */
export function onPostgres(): boolean {
  return wanted;
}

/**
 * Use PostgreSQL for every service the tests start (call before any test runs). The server starts with the first
 * service, inside a test: its processes run and end within it.
 */
export function usePostgres(): void {
  wanted = true;
}

/** Start the server now (a test of its own, so that the first service's test does not pay for initdb). */
export async function startServer(): Promise<void> {
  await (server ??= startPostgres());
}

/** The configuration that points a service at its database: per DATA_DIR, or a fresh one. */
export async function postgresEnv(dataDir: string | undefined): Promise<Record<string, string>> {
  const pg = await (server ??= startPostgres());
  let url = dataDir === undefined ? undefined : byDir.get(dataDir);
  if (url === undefined) {
    url = (await pg.createDatabase()).url;
    if (dataDir !== undefined) byDir.set(dataDir, url);
  }
  return { STORE: "postgres", DATABASE_URL: url };
}

/** Stop the server (the file's last test). */
export async function stopPostgres(): Promise<void> {
  wanted = false;
  if (server === undefined) return;
  await (await server).close();
  server = undefined;
  byDir.clear();
}
