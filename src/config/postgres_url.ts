/**
 * Where a DATABASE_URL points, as libpq and postgres.js read it, for `check-config` and the start's file-system
 * permissions: a TCP host and port, or a Unix socket (`postgres:///kefu?host=/run/postgresql`).
 *
 * @module
 */

/** A DATABASE_URL's address; `socket` is set when the host is a directory (the server's Unix socket in it). */
export interface PostgresAddress {
  host: string;
  port: number;
  /** `<dir>/.s.PGSQL.<port>`, PostgreSQL's name for its socket in `unix_socket_directories`. */
  socket?: string;
}

/**
 * The host of the URL, else its `host` parameter (the first of a list), else localhost; a host that is a directory
 * (`?host=/run/postgresql`, or `%2Frun%2Fpostgresql` as the URL's host) means the Unix socket in it. The port is
 * the URL's, its `port` parameter, or 5432. Throws on a string that is no URL (readConfig has refused it already).
 */
export function postgresAddress(raw: string): PostgresAddress {
  const url = new URL(raw);
  const host = decodeURIComponent(url.hostname) || url.searchParams.get("host")?.split(",")[0] || "localhost";
  const port = Number(url.port || url.searchParams.get("port")?.split(",")[0] || 5432);
  if (!host.startsWith("/")) return { host, port };
  return { host, port, socket: `${host.replace(/\/+$/, "")}/.s.PGSQL.${port}` };
}

/** The Unix socket DATABASE_URL names, if it names one (undefined for TCP, an unset or unreadable URL). */
export function postgresSocket(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  try {
    return postgresAddress(raw.trim()).socket;
  } catch {
    return undefined;
  }
}

/**
 * What in a DATABASE_URL postgres.js would not take, or undefined: it reads `host`, `port`, `user` and the like from
 * the query, but passes any other parameter to the server as a setting, so libpq's `?password=` fails at connect
 * ("unrecognized configuration parameter").
 */
export function postgresUrlProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (!url.searchParams.has("password")) return undefined;
  return "the password goes in the URL's user part, not in ?password= (for a Unix socket: " +
    "postgres://kefu:PASSWORD@%2Frun%2Fpostgresql/kefu)";
}
