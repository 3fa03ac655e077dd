import assert from "node:assert/strict";
import { KefuError } from "../../src/core/errors.ts";
import {
  decodeUtf8,
  readAtMost,
  readBody,
  readBytes,
  startDeadlineSweeper,
  stopDeadlineSweeper,
} from "../../src/core/body.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: (string | number[])[]) => {
  const chunks = parts.map((p) => typeof p === "string" ? enc(p) : new Uint8Array(p));
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
};

/** A request whose body has a declared length (the fast path). */
function declared(bytes: Uint8Array): Request {
  return new Request("http://kefu.test/", {
    method: "POST",
    body: bytes.slice().buffer,
    headers: { "content-length": String(bytes.length) },
  });
}

/** A request streamed in `chunks`, no length declared (the bounded reader's path). */
function streamed(...chunks: Uint8Array[]): Request {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < chunks.length) c.enqueue(chunks[i++]);
      else c.close();
    },
  });
  return new Request("http://kefu.test/", { method: "POST", body });
}

async function refused(p: Promise<unknown>, kind: string, status: number, pattern?: RegExp): Promise<KefuError> {
  const e = await p.then(() => undefined, (e) => e);
  assert.ok(e instanceof KefuError, `expected a KefuError, got ${e}`);
  assert.equal(e.kind, kind);
  assert.equal(e.status, status);
  if (pattern) assert.match(e.message, pattern);
  return e;
}

Deno.test("body: valid UTF-8 reads the same on both paths; a BOM is dropped, a real U+FFFD kept", async () => {
  const text = "<xml><Content><![CDATA[你好 👋 é ]]></Content></xml>";
  assert.equal(await readBody(declared(enc(text)), 1000), text);
  assert.equal(await readBody(streamed(enc(text)), 1000), text);
  const bytes = enc(text);
  // A character split between chunks is put back together.
  assert.equal(await readBody(streamed(bytes.subarray(0, 25), bytes.subarray(25, 26), bytes.subarray(26)), 1000), text);
  assert.equal(await readBody(declared(cat([0xef, 0xbb, 0xbf], "<xml/>")), 100), "<xml/>");
  assert.equal(await readBody(streamed(cat([0xef, 0xbb, 0xbf], "<xml/>")), 100), "<xml/>");
  // U+FFFD written by the sender (EF BF BD) is text like any other.
  assert.equal(await readBody(declared(cat("a", [0xef, 0xbf, 0xbd], "b")), 100), "a\uFFFDb");
  assert.equal(await readBody(declared(new Uint8Array(0)), 100), "");
  assert.equal(await readBody(new Request("http://kefu.test/", { method: "POST" }), 100), "");
});

Deno.test("body: bytes that are not UTF-8 are a 400 invalid_utf8 naming the offset, not U+FFFD", async () => {
  const cases: [Uint8Array, RegExp][] = [
    [cat("ab", [0xff], "cd"), /byte 0xff at offset 2 \(of 5 bytes\)/],
    [cat("<xml>", [0xc0, 0xaf], "</xml>"), /byte 0xc0 at offset 5/], // overlong "/"
    [cat("x", [0xed, 0xa0, 0x80]), /byte 0xa0 at offset 2/], // a UTF-16 surrogate
    [cat("GBK ", [0xc4, 0xe3, 0xba, 0xc3]), /byte 0xe3 at offset 5/], // 你好 in GBK
    [cat("y".repeat(100_000), [0x80]), /byte 0x80 at offset 100000 \(of 100001 bytes\)/],
    [cat("cut ", [0xe4, 0xbd]), /its 6 bytes end inside a character/],
    // A real U+FFFD before the bad byte does not hide it.
    [cat([0xef, 0xbf, 0xbd], "ok", [0xfe]), /byte 0xfe at offset 5/],
  ];
  for (const [bytes, pattern] of cases) {
    for (const req of [declared(bytes), streamed(bytes)]) {
      const e = await refused(readBody(req, 200_000), "invalid_utf8", 400, pattern);
      assert.match(e.message, /^the request body is not valid UTF-8: .*/);
    }
    assert.throws(() => decodeUtf8(bytes), (e) => e instanceof KefuError && e.kind === "invalid_utf8");
  }
  // The shared decoder is left clean by a refusal.
  assert.equal(decodeUtf8(cat([0xef, 0xbf, 0xbd], "後")), "\uFFFD後");
});

Deno.test("body: over the limit is 413, declared or streamed, and the rest of the body is cancelled", async () => {
  const bytes = enc("z".repeat(101));
  await refused(readBody(declared(bytes), 100), "body_too_large", 413, /over the limit of 100 bytes/);
  await refused(readBody(streamed(bytes.subarray(0, 60), bytes.subarray(60)), 100), "body_too_large", 413);
  await refused(readBytes(declared(bytes), 100), "body_too_large", 413);
  let cancelled = false;
  const endless = new ReadableStream<Uint8Array>({
    pull(c) {
      c.enqueue(new Uint8Array(64));
    },
    cancel() {
      cancelled = true;
    },
  });
  await refused(
    readBody(new Request("http://kefu.test/", { method: "POST", body: endless }), 1000),
    "body_too_large",
    413,
  );
  assert.equal(cancelled, true);
  assert.equal(await readBody(declared(enc("z".repeat(100))), 100), "z".repeat(100));
});

Deno.test("body: readBytes hands back any bytes (uploads are binary), within the limit", async () => {
  const bin = new Uint8Array([0xff, 0x00, 0xc0, 0x80, 0xfe]);
  assert.deepEqual(await readBytes(declared(bin), 5), bin);
  assert.deepEqual(await readBytes(streamed(bin.subarray(0, 2), bin.subarray(2)), 5), bin);
  assert.deepEqual(await readAtMost(null, 5), new Uint8Array(0));
});

Deno.test("body: over real HTTP, a Latin-1 body is refused and a UTF-8 one read", async () => {
  await using server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    try {
      return new Response(await readBody(req, 1000));
    } catch (e) {
      if (!(e instanceof KefuError)) throw e;
      return Response.json({ error: e.kind, message: e.message }, { status: e.status });
    }
  });
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const latin1 = await fetch(url, { method: "POST", body: new Uint8Array([0x63, 0x61, 0x66, 0xe9]) }); // "café"
  assert.equal(latin1.status, 400);
  assert.deepEqual(await latin1.json(), {
    error: "invalid_utf8",
    message: "the request body is not valid UTF-8: its 4 bytes end inside a character",
  });
  const chunked = await fetch(url, {
    method: "POST",
    body: ReadableStream.from([new Uint8Array([0x61, 0xff, 0x62])]),
  });
  assert.equal(chunked.status, 400);
  assert.match((await chunked.json()).message, /byte 0xff at offset 1/);
  const ok = await fetch(url, { method: "POST", body: "café ☕" });
  assert.equal(await ok.text(), "café ☕");
});

Deno.test("body: a body that trickles past its deadline is a 408 body_timeout and the stream is cancelled", async () => {
  // One byte now, then nothing more for longer than the deadline (a client sending a byte every few seconds).
  const { req, cancelled } = trickling();
  await assert.rejects(
    readBody(req, 1024, 100),
    (e) => e instanceof KefuError && e.kind === "body_timeout" && e.status === 408 && /100 ms/.test(e.message),
  );
  assert.ok(cancelled());
});

// Deno.serve keeps the connection open after the answer while the client still owes body bytes (it offers no way to
// close it, nor a header timeout): the deadline frees kefu's handler and memory; a proxy in front (nginx's
// client_body_timeout, client_header_timeout) lets the descriptor go. See the report of issue 20.
Deno.test("body: over real HTTP, a request body that trickles is answered 408 without waiting for the rest", async () => {
  await using server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    try {
      return new Response(await readBody(req, 1024, 200));
    } catch (e) {
      return Response.json({ error: (e as KefuError).kind }, { status: (e as KefuError).status });
    }
  });
  const c = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await c.write(new TextEncoder().encode("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nA"));
  // No more bytes: kefu answers by itself after the deadline.
  const buf = new Uint8Array(1024);
  const n = await c.read(buf);
  const head = new TextDecoder().decode(buf.subarray(0, n ?? 0));
  assert.match(head, /^HTTP\/1\.1 408/);
  assert.match(head, /body_timeout/);
  c.close();
});

/** A request whose body sends one byte, then nothing until cancelled; `cancelled()` says whether it was. */
function trickling(): { req: Request; cancelled: () => boolean } {
  let cancelled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new Uint8Array([0x41]));
    },
    pull: () => new Promise((resolve) => timer = setTimeout(resolve, 10_000)),
    cancel() {
      cancelled = true;
      clearTimeout(timer);
    },
  });
  return { req: new Request("http://x/", { method: "POST", body }), cancelled: () => cancelled };
}

Deno.test("body: while a service runs, one sweeper keeps the deadlines; a deadline pending at its stop still fires", async () => {
  startDeadlineSweeper();
  let stopped = false;
  try {
    const first = trickling();
    await assert.rejects(readBody(first.req, 1024, 100), (e) => e instanceof KefuError && e.kind === "body_timeout");
    assert.ok(first.cancelled());
    // Pending when the service stops: it gets a timer of its own and still ends.
    const second = trickling();
    const read = readBody(second.req, 1024, 300);
    stopDeadlineSweeper();
    stopped = true;
    await assert.rejects(read, (e) => e instanceof KefuError && e.kind === "body_timeout");
    assert.ok(second.cancelled());
  } finally {
    if (!stopped) stopDeadlineSweeper();
  }
});
