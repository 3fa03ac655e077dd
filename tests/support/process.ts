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

/** A process as `ps` lists it. */
interface ProcessRow {
  ppid: number;
  state: string;
}

/** Every process from `ps` (Deno reads /proc only with --allow-all, and `deno task test` does not grant it). */
async function processes(): Promise<Map<number, ProcessRow>> {
  const { stdout } = await run("ps", ["-e", "-o", "pid=,ppid=,stat="]);
  const rows = new Map<number, ProcessRow>();
  for (const line of stdout.split("\n")) {
    const [pid, ppid, state] = line.trim().split(/\s+/);
    if (pid) rows.set(Number(pid), { ppid: Number(ppid), state: state ?? "" });
  }
  return rows;
}

/** Whether a process with this pid exists and has not exited (a zombie has: it only waits to be reaped). */
export async function alive(pid: number): Promise<boolean> {
  const row = (await processes()).get(pid);
  return row !== undefined && !row.state.startsWith("Z");
}

/** The pids whose parent is `pid` (a postmaster's backends and helpers). */
export async function children(pid: number): Promise<number[]> {
  return [...(await processes())].filter(([, row]) => row.ppid === pid).map(([child]) => child);
}

/** Send `signal` to `pid`, ignoring a process already gone. */
export function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Wait until every pid has exited, or throw naming `what` after `ms`. */
export async function waitGone(pids: number[], ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const table = await processes();
    const left = pids.filter((pid) => {
      const row = table.get(pid);
      return row !== undefined && !row.state.startsWith("Z");
    });
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what} (pids ${left.join(", ")}) to exit`);
    }
    await delay(20);
  }
}

/** SIGKILL `pid` and its children at once (a crashed machine: nothing gets to flush or clean up), then wait. */
export async function killTree(pid: number, what: string): Promise<void> {
  const kids = await children(pid);
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

/** Whether this process runs as root (servers such as PostgreSQL refuse to); `id`, as Deno.uid() needs --allow-sys. */
export async function isRoot(): Promise<boolean> {
  return (await run("id", ["-u"])).stdout.trim() === "0";
}

/** The last `lines` lines of a log file, for an error message; "" when it cannot be read. */
export function tail(path: string, lines = 15): string {
  try {
    return Deno.readTextFileSync(path).trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}
