/**
 * Bounded reading of request bodies, shared by the HTTP routes and the
 * simulator: never more than `max` bytes are buffered, a body over the limit
 * is cancelled rather than left open (the resource sanitizer checks), a body
 * read as text must be valid UTF-8, and a request body must arrive whole
 * within a deadline (`BODY_TIMEOUT_MS`, 30 s): a client trickling a byte every
 * few seconds is answered 408 and kefu's handler and buffer are let go. (Deno
 * keeps the socket itself until the client finishes or leaves, and has no
 * header timeout: a proxy in front, nginx's client_header_timeout and
 * client_body_timeout, closes those.)
 *
 * @module
 */

import { KefuError } from "./errors.ts";

/** The longest a request body may take to arrive, whatever its size. */
export const BODY_TIMEOUT_MS = 30_000;

/** A body that did not arrive within its deadline (408 `body_timeout`); the rest was cancelled. */
export function bodyTimeout(ms: number): KefuError {
  return new KefuError("body_timeout", `the request body did not arrive within ${ms} ms: send it at once`, 408);
}

// The bodies' deadlines. A timer per request cost 3 % of the webhook's CPU under load (Deno's setTimeout is
// node's, with a Timeout object): while a service runs it starts one sweeper that looks at every pending deadline each
// SWEEP_MS (a deadline of 30 s fires within 30–31 s); without one (a library use, a test), each read arms its own.
const SWEEP_MS = 1000;
interface Deadline {
  /** performance.now() ms: a clock stepped back or forward moves no deadline. */
  at: number;
  fire: () => void;
  timer?: ReturnType<typeof setTimeout>;
}
const pending = new Set<Deadline>();
let sweeper: ReturnType<typeof setInterval> | undefined;
let sweepers = 0;

function sweep(): void {
  const now = performance.now();
  for (const d of pending) {
    if (d.at > now) continue;
    pending.delete(d);
    d.fire();
  }
}

/** One sweeper for every body read until {@link stopDeadlineSweeper} (counted: several services in one process). */
export function startDeadlineSweeper(): void {
  if (sweepers++ === 0) sweeper = setInterval(sweep, SWEEP_MS);
}

/** The service stops: when it was the last, the sweeper stops, and pending deadlines get timers of their own. */
export function stopDeadlineSweeper(): void {
  if (sweepers === 0 || --sweepers > 0) return;
  clearInterval(sweeper);
  sweeper = undefined;
  for (const d of pending) d.timer = setTimeout(d.fire, Math.max(0, d.at - performance.now()));
  pending.clear();
}

function arm(ms: number, fire: () => void): Deadline {
  const d: Deadline = { at: performance.now() + ms, fire };
  if (sweeper !== undefined) pending.add(d);
  else d.timer = setTimeout(fire, ms);
  return d;
}

function disarm(d: Deadline | undefined): void {
  if (d === undefined) return;
  if (d.timer !== undefined) clearTimeout(d.timer);
  else pending.delete(d);
}

/**
 * Read a body up to `max` bytes; undefined (and the rest cancelled) when it is longer. With `timeoutMs`, a body
 * not read whole by then is cancelled and {@link bodyTimeout} thrown.
 */
export async function readAtMost(
  body: ReadableStream<Uint8Array> | null,
  max: number,
  timeoutMs?: number,
): Promise<Uint8Array | undefined> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let late = false;
  // The deadline cancels the stream, which ends the pending read; cancelled is then told apart from done.
  const deadline = timeoutMs === undefined ? undefined : arm(timeoutMs, () => {
    late = true;
    reader.cancel().catch(() => {});
  });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (late) throw bodyTimeout(timeoutMs!);
      if (done) break;
      size += value.length;
      if (size > max) {
        await reader.cancel();
        return undefined;
      }
      chunks.push(value);
    }
  } catch (e) {
    if (late) throw bodyTimeout(timeoutMs!);
    throw e;
  } finally {
    // The reader is not released: the stream is done or cancelled, and nothing reads it again. (Releasing a lock
    // makes a TypeError with its stack for the reader's closed promise: 5.6 % of the webhook's CPU under load.)
    disarm(deadline);
  }
  if (chunks.length === 1) return chunks[0];
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return all;
}

/**
 * Read a request body as text, refusing more than `max` bytes (413 `body_too_large`) whether the client
 * declared a Content-Length or streams it chunked, and bytes that are not UTF-8 (400 `invalid_utf8`)
 * rather than turning them into U+FFFD. A leading BOM is dropped. A refused body is cancelled, so the
 * connection's resources are released.
 */
export async function readBody(req: Request, max: number, timeoutMs = BODY_TIMEOUT_MS): Promise<string> {
  return decodeUtf8(await readBytes(req, max, timeoutMs));
}

/** Read a request body as bytes, with the limit, the deadline and the cancelling of {@link readBody}. */
export async function readBytes(req: Request, max: number, timeoutMs = BODY_TIMEOUT_MS): Promise<Uint8Array> {
  const tooLarge = () => new KefuError("body_too_large", `the request body is over the limit of ${max} bytes`, 413);
  if (Number(req.headers.get("content-length") ?? 0) > max) {
    await req.body?.cancel();
    throw tooLarge();
  }
  const bytes = await readAtMost(req.body, max, timeoutMs);
  if (bytes === undefined) throw tooLarge();
  return bytes;
}

// Every sequence that is not UTF-8 comes out of the lenient decoder as U+FFFD, so text without one was valid
// UTF-8. Only text holding a U+FFFD (legitimately written as EF BF BD, or a replaced bad sequence) goes
// through the fatal decoder, which tells the two apart: in Deno it is 4–10 times slower than the lenient one
// on large bodies, and the lenient decode plus the scan costs no more than `Request.text()`. Neither keeps
// state between calls (no `stream` option), so one of each serves every request; both drop a leading BOM.
const lenient = new TextDecoder("utf-8");
const strict = new TextDecoder("utf-8", { fatal: true });

/** Decode a body's bytes as UTF-8 (a leading BOM dropped); throws `invalid_utf8` (400) naming where it fails. */
export function decodeUtf8(bytes: Uint8Array): string {
  const text = lenient.decode(bytes);
  if (!text.includes("\uFFFD")) return text;
  try {
    return strict.decode(bytes);
  } catch {
    const at = firstBadByte(bytes);
    throw new KefuError(
      "invalid_utf8",
      at === bytes.length
        ? `the request body is not valid UTF-8: its ${bytes.length} bytes end inside a character`
        : `the request body is not valid UTF-8: byte 0x${bytes[at].toString(16).padStart(2, "0")} at offset ${at} ` +
          `(of ${bytes.length} bytes) cannot be decoded; send text as UTF-8`,
      400,
    );
  }
}

// The offset of the byte at which decoding fails; `bytes.length` when only the last character is cut short.
// Error path only: a binary search over prefixes, each decoded in streaming mode (where a character cut
// short at the end of a prefix is not an error yet), so the first failing prefix ends at the bad byte.
function firstBadByte(bytes: Uint8Array): number {
  let ok = 0; // bytes[0, ok) decode
  let bad = bytes.length + 1; // bytes[0, bad) do not
  while (bad - ok > 1) {
    const mid = (ok + bad) >>> 1;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(0, mid), { stream: true });
      ok = mid;
    } catch {
      bad = mid;
    }
  }
  return ok;
}
