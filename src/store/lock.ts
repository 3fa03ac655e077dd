/**
 * One kefu per data directory: an exclusive advisory lock (`flock`) on `kefu.lock` in it, holding the pid of its
 * holder. The operating system drops the lock when the process ends, however it ends (`kill -9` included), so a
 * stale file never blocks a start; the file itself stays (deleting a lock file races with the next opener).
 *
 * @module
 */

/** The lock file's name inside the directory. */
export const LOCK_FILE = "kefu.lock";

/** Why a directory cannot be locked: it cannot be created or opened, or another process holds it. */
export class DirLockError extends Error {
  /** The directory. */
  readonly dir: string;
  /** The message without the directory: what went wrong with it. */
  readonly reason: string;
  /** The holder's pid, when the lock is held and its file names it. */
  readonly holder?: number;
  constructor(dir: string, reason: string, options: { cause?: unknown; holder?: number } = {}) {
    super(`cannot use the directory ${JSON.stringify(dir)}: ${reason}`, { cause: options.cause });
    this.name = "DirLockError";
    this.dir = dir;
    this.reason = reason;
    this.holder = options.holder;
  }
}

/** A held lock. */
export interface DirLock {
  /** The lock file. */
  readonly path: string;
  /** Let the next process in. Idempotent. */
  release(): void;
}

/**
 * Create `dir` if needed and take its lock without waiting. Throws `DirLockError` naming the directory when it
 * cannot be created or opened, or when another process (or another lock in this one) holds it.
 */
export function lockDir(dir: string): DirLock {
  const path = `${dir.replace(/\/+$/, "") || "."}/${LOCK_FILE}`;
  let file: Deno.FsFile;
  try {
    Deno.mkdirSync(dir, { recursive: true });
    // Not truncated on open: the holder's pid must stay readable until this process holds the lock.
    file = Deno.openSync(path, { read: true, write: true, create: true });
  } catch (e) {
    throw new DirLockError(dir, errorText(e), { cause: e });
  }
  let locked;
  try {
    locked = file.tryLockSync(true);
  } catch (e) {
    file.close();
    throw new DirLockError(dir, `cannot lock ${JSON.stringify(path)}: ${errorText(e)}`, { cause: e });
  }
  if (!locked) {
    const holder = readPid(file);
    file.close();
    const who = holder === undefined ? "another process" : `another process (pid ${holder})`;
    throw new DirLockError(dir, `${who} holds its lock ${JSON.stringify(path)}`, { holder });
  }
  try {
    file.truncateSync(0);
    file.writeSync(new TextEncoder().encode(`${Deno.pid}\n`));
  } catch {
    // The pid is only for the message a second process prints; the lock is what matters.
  }
  let held = true;
  return {
    path,
    release() {
      if (!held) return;
      held = false;
      try {
        // No stale pid left for the next reader.
        file.truncateSync(0);
      } catch { /* the lock goes with the file anyway */ }
      file.close();
    },
  };
}

function readPid(file: Deno.FsFile): number | undefined {
  try {
    const buf = new Uint8Array(32);
    file.seekSync(0, Deno.SeekMode.Start);
    const n = file.readSync(buf) ?? 0;
    const pid = Number(new TextDecoder().decode(buf.subarray(0, n)).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    // Windows refuses to read a range another process has locked: the pid stays unknown.
    return undefined;
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
