/**
 * What the real-server helpers (postgres.ts, redis.ts) share: run a command to its end, a free port, and the
 * signals for a daemon known only by its pid (servers run detached, so no child process or pipe stays open between
 * the steps of a test and Deno's sanitizers see nothing pending).
 *
 * @module
 */

/** The result of a command run to its end. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `cmd args` to its end with output captured; throws naming the command and quoting stderr unless it exits 0. */
export async function run(cmd: string, args: string[], options: { env?: Record<string, string> } = {}): Promise<
  RunResult
> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, env: options.env, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
  } catch (e) {
    throw new Error(`cannot run ${JSON.stringify(cmd)}: ${e instanceof Error ? e.message : e}`);
  }
  const result = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if (out.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(" ")} exited with ${out.code}: ${JSON.stringify((result.stderr || result.stdout).trim())}`,
    );
  }
  return result;
}

/** A free port of 127.0.0.1 (another process may take it before the server binds: callers retry on EADDRINUSE). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Sleep without leaving a timer behind. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a process with this pid exists and is not a zombie. */
export function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The state follows the parenthesised name, which may itself hold ") ".
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** The pids whose parent is `pid` (a postmaster's backends and helpers). */
export function children(pid: number): number[] {
  const found: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) found.push(Number(entry.name));
    } catch { /* gone meanwhile */ }
  }
  return found;
}

/** Send `signal` to `pid`, ignoring a process already gone. */
export function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Wait until every pid is gone, or throw naming `what` after `ms`. */
export async function waitGone(pids: number[], ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (pids.some(alive)) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what} (pids ${pids.filter(alive).join(", ")}) to exit`);
    }
    await delay(20);
  }
}

/** SIGKILL `pid` and its children at once (a crashed machine: nothing gets to flush or clean up), then wait. */
export async function killTree(pid: number, what: string): Promise<void> {
  const kids = children(pid);
  signal(pid, "SIGKILL");
  for (const kid of kids) signal(kid, "SIGKILL");
  await waitGone([pid, ...kids], 10_000, what);
}

/** The uid and gid of a local user from /etc/passwd, or undefined when there is no such user. */
export function userIds(name: string): { uid: number; gid: number } | undefined {
  for (const line of Deno.readTextFileSync("/etc/passwd").split("\n")) {
    const [user, , uid, gid] = line.split(":");
    if (user === name) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

/** Whether this process runs as root (servers such as PostgreSQL refuse to). */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** The last `lines` lines of a log file, for an error message; "" when it cannot be read. */
export function tail(path: string, lines = 15): string {
  try {
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
