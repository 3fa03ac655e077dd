/**
 * A real Redis for tests, from Debian's `redis-server` package: a fresh temporary directory, a free port of
 * 127.0.0.1, no persistence unless asked. The server daemonizes (a pid file), so no child process or pipe stays open
 * between the steps of a test and `restart` inside a step leaves nothing for Deno's sanitizers.
 *
 * ```ts
 * await using redis = await startRedis();
 * // connect to redis.url
 * ```
 *
 * @module
 */

import { alive, delay, freePort, killTree, run, signal, tail, waitGone } from "./process.ts";

/** Where Debian's package installs the server (and redis-tools the CLI). */
export const REDIS_SERVER = "/usr/bin/redis-server";
const REDIS_CLI = "/usr/bin/redis-cli";

const START_TIMEOUT_MS = 10_000;

/** How `startRedis` sets the server up. */
export interface RedisOptions {
  /** Log every write to an append-only file (fsync every second), so that a restart, or a kill, keeps the data. */
  appendonly?: boolean;
  /** More settings as `redis-server --<name> <value>`, e.g. `{ maxmemory: "64mb" }`. */
  settings?: Record<string, string>;
}

/** A running test server; disposing it stops it and removes its directory. */
export interface RedisServer extends AsyncDisposable {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The temporary directory: the log (`redis.log`), the pid file and, with appendonly, the data. */
  dir: string;
  /** False after `stop` or `kill` until `restart`. */
  readonly running: boolean;
  /** Run a command through redis-cli (e.g. `cli("GET", "k")`); its output, trimmed. */
  cli(...args: string[]): Promise<string>;
  /** SIGTERM: Redis shuts down cleanly (with appendonly, the file is flushed). */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Start again on the same port and directory (stops first if running). */
  restart(): Promise<void>;
  /** Stop if running and remove the temporary directory. */
  close(): Promise<void>;
}

/** Throws naming the package when redis-server is not installed. */
export function findRedisServer(): string {
  try {
    if (Deno.statSync(REDIS_SERVER).isFile) return REDIS_SERVER;
  } catch { /* below */ }
  throw new Error(`Redis is not installed: no ${REDIS_SERVER}; install Debian's package: apt-get install redis-server`);
}

/** Start a fresh server; the caller must `close()` it (or `await using`). */
export async function startRedis(options: RedisOptions = {}): Promise<RedisServer> {
  const server = findRedisServer();
  const dir = await Deno.makeTempDir({ prefix: "kefu_redis_" });
  const log = `${dir}/redis.log`;
  const pidFile = `${dir}/redis.pid`;
  let port = 0;
  let running = false;

  const cli = async (...args: string[]) =>
    (await run(REDIS_CLI, ["-h", "127.0.0.1", "-p", String(port), ...args])).stdout.trim();
  const pid = () => {
    try {
      return Number(Deno.readTextFileSync(pidFile).trim()) || undefined;
    } catch {
      return undefined;
    }
  };
  const settings: Record<string, string> = {
    bind: "127.0.0.1",
    dir,
    daemonize: "yes",
    pidfile: pidFile,
    logfile: log,
    save: "", // no RDB snapshots: a test's data need not outlive the server unless appendonly is asked
    appendonly: options.appendonly ? "yes" : "no",
    ...options.settings,
  };
  const start = async () => {
    await Deno.remove(pidFile).catch(() => {});
    const args = Object.entries({ ...settings, port: String(port) }).flatMap(([k, v]) => [`--${k}`, v]);
    await run(server, args);
    // The daemon binds after it forked: ready once it answers (LOADING while it reads an append-only file).
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const answer = await cli("PING").catch(() => "");
      if (answer === "PONG") break;
      const p = pid();
      const dead = p !== undefined && !(await alive(p));
      if (dead || Date.now() > deadline || tail(log).includes("Address already in use")) {
        if (p !== undefined && await alive(p)) await killTree(p, `Redis in ${dir}`);
        throw new Error(
          `cannot start Redis on 127.0.0.1:${port}: ${dead ? "it exited" : "no PONG in time"}\n${tail(log)}`,
        );
      }
      await delay(20);
    }
    running = true;
  };

  try {
    // The port is free when asked, but another process may bind it before Redis does: try a few.
    for (let attempt = 1;; attempt++) {
      port = freePort();
      try {
        await start();
        break;
      } catch (e) {
        if (attempt >= 3 || !tail(log).includes("Address already in use")) throw e;
      }
    }
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }

  const stop = async () => {
    if (!running) return;
    const p = pid();
    if (p !== undefined) {
      signal(p, "SIGTERM");
      await waitGone([p], 10_000, `Redis in ${dir}`).catch(() => killTree(p, `Redis in ${dir}`));
    }
    running = false;
  };
  const redis: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get running() {
      return running;
    },
    cli,
    stop,
    async kill() {
      const p = pid();
      if (p !== undefined) await killTree(p, `Redis in ${dir}`);
      running = false;
    },
    async restart() {
      await stop();
      await start();
    },
    async close() {
      await stop();
      await Deno.remove(dir, { recursive: true }).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
  return redis;
}
