/**
 * The file-system permissions of `deno task start`, `dev` and `demo`, worked out from the same variables the
 * service reads, and printed as `deno run` flags when this module is run as a script (see the end).
 *
 * @module
 */

import { ConfigError, dataDirOf } from "./config.ts";
import { postgresSocket } from "./postgres_url.ts";

/** The modules of the store's background worker (`src/store/background.ts`), which Deno loads only with read access. */
export const WORKER_MODULES: readonly string[] = ["../store/background_worker.ts", "../store/search.ts"]
  .map((m) => new URL(m, import.meta.url).pathname);

/**
 * The file-system permissions `deno task start` (and `dev`, `demo`) grants, from the same variables the service
 * reads: reading the static files, the store worker's modules (Deno asks read access to load a worker),
 * DATA_DIR, MEDIA_DIR and CONFIG_FILE; writing DATA_DIR (the store, its WAL, the lock) and MEDIA_DIR,
 * nothing else (ffmpeg's scratch files are under DATA_DIR too). Relative paths are taken from the working directory,
 * as the service takes them. Running: ffmpeg only (`FFMPEG_PATH`, else `ffmpeg` on PATH), for media conversion.
 */
export function fsPermissions(
  env: Record<string, string | undefined>,
  staticDir: string = `${import.meta.dirname}/../../static`,
  workerModules: readonly string[] = WORKER_MODULES,
): { read: string[]; write: string[] } {
  const dataDir = dataDirOf(env);
  const mediaDir = env.MEDIA_DIR?.trim();
  // Deno connects to a Unix socket only with read and write access to it: PostgreSQL's, when DATABASE_URL names one.
  const socket = postgresSocket(env.DATABASE_URL);
  const sockets = socket === undefined ? [] : [socket];
  const read = [staticDir, ...workerModules, dataDir, ...mediaDir ? [mediaDir] : []];
  if (env.CONFIG_FILE) read.push(env.CONFIG_FILE);
  read.push(...sockets);
  return { read, write: [dataDir, ...mediaDir ? [mediaDir] : [], ...sockets] };
}

/**
 * One `--allow-read=…` or `--allow-write=…` flag for {@link fsPermissions}; throws `ConfigError` for a path Deno's
 * flag cannot name (its lists are comma-separated, with no escape).
 */
export function permissionFlag(
  kind: "read" | "write" | "run" | "socket",
  env: Record<string, string | undefined>,
): string {
  if (kind === "run") return `--allow-run=${env.FFMPEG_PATH?.trim() || "ffmpeg"}`;
  // check-config writes nothing, but Deno wants write access to connect to a socket; with no socket, a flag that
  // grants nothing (Deno refuses an empty --allow-write= list).
  const socket = postgresSocket(env.DATABASE_URL);
  if (kind === "socket" && socket === undefined) return "--no-prompt";
  const paths = kind === "socket" ? [socket!] : fsPermissions(env)[kind];
  const bad = paths.find((p) => p.includes(","));
  if (bad !== undefined) {
    const what = `${kind === "socket" ? "write" : kind} access to ${JSON.stringify(bad)}`;
    throw new ConfigError(
      `cannot grant ${what}: Deno's --allow-${kind} cannot name a path with a comma; rename it, or run main.ts with ` +
        `--allow-read --allow-write`,
    );
  }
  return `--allow-${kind === "socket" ? "write" : kind}=${paths.join(",")}`;
}

// `deno run --allow-env=DATA_DIR,MEDIA_DIR,CONFIG_FILE,FFMPEG_PATH,DATABASE_URL src/config/permissions.ts read|write|run|socket` prints the flag the
// tasks pass to `deno run main.ts` (deno task has `$(…)` but no `${VAR:-default}`, and deno.json permission sets
// cannot read variables). `… permissions.ts check` runs first in the tasks (`check && deno run …`): on a path no flag
// can name it says why in one `kefu: …` line and exits 2, so the task stops there — a failed `$(…)` would not stop
// it, and `deno run` would go on to fail on the empty flag with a backtrace. The three flag calls print an empty
// list in that case, which would stop `deno run` too.
if (import.meta.main) {
  const env = {
    DATA_DIR: Deno.env.get("DATA_DIR"),
    MEDIA_DIR: Deno.env.get("MEDIA_DIR"),
    CONFIG_FILE: Deno.env.get("CONFIG_FILE"),
    FFMPEG_PATH: Deno.env.get("FFMPEG_PATH"),
    DATABASE_URL: Deno.env.get("DATABASE_URL"),
  };
  if (Deno.args[0] === "check") {
    try {
      for (const kind of ["read", "write", "run", "socket"] as const) permissionFlag(kind, env);
    } catch (e) {
      console.error(`kefu: ${(e as Error).message}`);
      Deno.exit(2);
    }
  } else {
    const kind = (["write", "run", "socket"] as const).find((k) => k === Deno.args[0]) ?? "read";
    try {
      console.log(permissionFlag(kind, env));
    } catch {
      // `check` has said why.
      console.log(`--allow-${kind === "socket" ? "write" : kind}=`);
    }
  }
}
