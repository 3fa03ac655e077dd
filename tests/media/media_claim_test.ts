/**
 * Media work among several processes (issue 19): two pipelines over one store, each resuming every waiting message
 * (as each node does at start and every minute), fetch each file once — the one that claims a message's lease does
 * it, the other leaves it; a file whose lease another process holds is not touched here.
 */

import assert from "node:assert/strict";
import type { ChannelAdapter } from "../../src/channels/channel.ts";
import { silentLogger } from "../../src/core/log.ts";
import type { Message } from "../../src/core/message.ts";
import { Hub } from "../../src/hub/hub.ts";
import { Converter } from "../../src/media/convert.ts";
import { MediaFiles } from "../../src/media/files.ts";
import { MediaPipeline } from "../../src/media/pipeline.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import { eventually } from "../helpers.ts";

// A 1×1 PNG: kept as it is (no conversion).
const PNG = Uint8Array.from(
  atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="),
  (c) => c.charCodeAt(0),
);

function image(id: string, user: string): Message {
  return {
    id,
    direction: "in",
    channel: "test",
    account: "acc",
    contact: user,
    agent: "",
    company: "",
    type: "image",
    content: "",
    media: `source-of-${id}`,
    sendTime: 1,
    name: user,
    avatar: "",
  };
}

Deno.test("media: two processes resuming the same waiting files fetch each once; a file claimed elsewhere is left", async () => {
  await using store = { s: new SqliteStore({ path: ":memory:" }), [Symbol.asyncDispose]: () => store.s.close() };
  const fetched: string[] = [];
  const channel = {
    name: "test",
    send: () => Promise.resolve("sent"),
    fetchMedia: async (m: Message) => {
      fetched.push(m.id);
      // A moment, so that both pipelines have the message in hand at once.
      await new Promise((r) => setTimeout(r, 20));
      return { bytes: PNG, contentType: "image/png" };
    },
  } as unknown as ChannelAdapter;
  const node = (holder: string) => {
    const hub = new Hub({ store: store.s });
    return new MediaPipeline({
      hub,
      files: new MediaFiles(undefined),
      converter: new Converter({ ffmpeg: "ffmpeg", timeoutMs: 10_000, maxOutputBytes: 1 << 20 }),
      log: silentLogger,
      timeoutMs: 10_000,
      maxBytes: () => 1 << 20,
      leases: { store: store.s, holder },
    });
  };
  const [a, b] = [node("n1"), node("n2")];
  const hub = new Hub({ store: store.s });
  for (let i = 0; i < 6; i++) {
    const r = await hub.accept(image(`img${i}`, `u${i % 2}`), { holdForMedia: true });
    assert.equal(r.status, "pending");
  }
  const waiting = await store.s.waitingMedia();
  assert.equal(waiting.length, 6);
  // Another process is at work on img5: its lease is held elsewhere.
  assert.equal(await store.s.lease(`media:${waiting[5].contact}/img5`, "n3", Date.now() + 60_000), true);
  const channelOf = () => channel;
  a.resume(waiting, channelOf);
  b.resume(structuredClone(waiting), channelOf);
  // A second look from the same process while its work is queued or under way adds nothing.
  a.resume(structuredClone(waiting), channelOf);
  await eventually("the five free files are done", async () => (await store.s.waitingMedia()).length === 1);
  await Promise.all([a.stop(1000), b.stop(1000)]);
  assert.deepEqual(fetched.sort(), ["img0", "img1", "img2", "img3", "img4"], "each free file fetched once");
  assert.deepEqual((await store.s.waitingMedia()).map((m) => m.id), ["img5"], "the one claimed elsewhere waits");
  // The leases were given back with the work done.
  assert.equal(await store.s.leaseOf(`media:${waiting[0].contact}/img0`), undefined);
});
