/**
 * The shared harness's load generator (`../shared/bench/load/loadgen.mjs`, Node and `ws`) for the cluster benchmark:
 * found, copied with one change (a signed nonce per request) and its `ws` installed outside the shared directory,
 * and run once per phase with a time cap.
 *
 * @module
 */

/** Where the harness's loader is looked for, in order, unless `LOADGEN` names it. */
export function loadgenCandidates(root: string): string[] {
  return [`${root}/../shared/bench/load/loadgen.mjs`, "/work/shared/bench/load/loadgen.mjs"];
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The line of loadgen.mjs that signs every request with one of 64 reused (timestamp, nonce) pairs. */
const REUSED_PAIRS = "function buildReq(seq, t, target = SIGNED[seq & 63]) {";

/**
 * Each request signed with a (timestamp, nonce) pair of its own, as WeChat signs them. kefu takes a pair once and
 * refuses the same pair with another body (401: a signed URL seen anywhere would otherwise carry any body), so the
 * harness's 64 reused pairs measure kefu at 64 messages. One SHA-1 more per request for the loader (about 1 µs).
 */
const OWN_PAIRS = `const RUN_NONCE = String(randomInt(1e9)) + String(opt.idBase);
const RUN_TS = String(Math.floor(Date.now() / 1000));
function signedFor(seq) {
  const nonce = RUN_NONCE + String(seq).padStart(9, '0');
  const sig = createHash('sha1').update([opt.token, RUN_TS, nonce].sort().join('')).digest('hex');
  return \`\${opt.path}?signature=\${sig}&timestamp=\${RUN_TS}&nonce=\${nonce}\`;
}
function buildReq(seq, t, target = signedFor(seq)) {`;

/**
 * A runnable copy of loadgen.mjs in `cacheDir` (the shared directory belongs to the harness, not to us): the same
 * file with one change, a signed pair per request (above), and its `ws` installed there by `npm ci` once.
 */
export async function prepareLoadgen(script: string, cacheDir: string): Promise<string> {
  if (!(await exists(script))) {
    throw new Error(`cannot find the shared harness's load generator at ${JSON.stringify(script)}; set LOADGEN=path`);
  }
  const src = script.slice(0, script.lastIndexOf("/"));
  await Deno.mkdir(cacheDir, { recursive: true });
  const lock = `${src}/package-lock.json`;
  const cachedLock = `${cacheDir}/package-lock.json`;
  const sameLock = await exists(cachedLock) &&
    (await Deno.readTextFile(lock)) === (await Deno.readTextFile(cachedLock));
  const code = await Deno.readTextFile(script);
  if (code.split(REUSED_PAIRS).length !== 2) {
    throw new Error(`cannot give each request its own nonce: ${JSON.stringify(REUSED_PAIRS)} is not once in ${script}`);
  }
  await Deno.writeTextFile(`${cacheDir}/loadgen.mjs`, code.replace(REUSED_PAIRS, OWN_PAIRS));
  for (const f of ["package.json", "package-lock.json"]) await Deno.copyFile(`${src}/${f}`, `${cacheDir}/${f}`);
  if (!sameLock || !(await exists(`${cacheDir}/node_modules/ws`))) {
    const out = await new Deno.Command("npm", {
      args: ["ci", "--no-audit", "--no-fund"],
      cwd: cacheDir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(180_000),
    }).output();
    if (!out.success) {
      throw new Error(`npm ci in ${cacheDir} failed: ${new TextDecoder().decode(out.stderr).trim().slice(-500)}`);
    }
  }
  return `${cacheDir}/loadgen.mjs`;
}

/** What one loadgen invocation printed (snake_case, as loadgen.mjs names it), plus our own error when it failed. */
// deno-lint-ignore no-explicit-any
export type LoadgenResult = Record<string, any> & { error?: string };

/** A running loader: its pid (for its CPU time) and its result once it exits. */
export interface LoadgenRun {
  pid: number;
  child: Deno.ChildProcess;
  result: Promise<LoadgenResult>;
}

/**
 * Start `node loadgen.mjs args…` (after `prefix`, e.g. `taskset -c 1`), killed after `capS` seconds. The result is
 * its last stdout line as JSON, or `{error}` when there is none.
 */
export function startLoadgen(script: string, prefix: string[], args: string[], capS: number): LoadgenRun {
  const argv = [...prefix, "node", script, ...args];
  // sh: raise the open-files limit for 10k sockets' worth of headroom, then exec so that the pid is node's own.
  const child = new Deno.Command("sh", {
    args: ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', "sh", ...argv],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, capS * 1000);
  const result = child.output().then((out) => {
    clearTimeout(timer);
    const text = new TextDecoder().decode(out.stdout).trim();
    const line = text.split("\n").at(-1) ?? "";
    try {
      return JSON.parse(line) as LoadgenResult;
    } catch {
      const err = new TextDecoder().decode(out.stderr).trim().slice(-300);
      return { error: `loadgen exited with ${out.code}${out.signal ? ` (${out.signal})` : ""} and no result: ${err}` };
    }
  });
  return { pid: child.pid, child, result };
}
