import assert from "node:assert/strict";
import { recoverOutbox, REPLY_LEASE_MS, resumeMedia, startJobs } from "../../src/jobs/jobs.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import { createLogger } from "../../src/core/log.ts";
import type { ChannelAdapter } from "../../src/channels/channel.ts";
import type { Message } from "../../src/core/message.ts";

const log = createLogger({ level: "silent" });

// A store with nothing under way, whose retention lease is always free.
const noOutbox = {
  outbox: () => Promise.resolve([]),
  setOutboundState: () => Promise.resolve(true),
  lease: () => Promise.resolve(true),
};

Deno.test("jobs: the retention sweep runs at start and on demand, one at a time; stop waits for it", async () => {
  const cutoffs: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  let windowSweeps = 0;
  const jobs = startJobs({
    store: {
      sweep: async (cutoff) => {
        cutoffs.push(cutoff);
        await gate;
        return 3;
      },
      mediaInUse: () => Promise.resolve(new Set(["a"])),
      ...noOutbox,
    },
    media: { sweepFiles: (_cutoff, inUse) => Promise.resolve(inUse.has("a") ? 1 : 0) },
    windows: { sweep: () => windowSweeps++ },
    log,
    retentionDays: 2,
    now: () => 10 * 86_400_000,
  });
  // The start's sweep is under way (once it has its lease): asking again joins it.
  await new Promise((r) => setTimeout(r, 0));
  const joined = jobs.sweep();
  assert.deepEqual(cutoffs, [8 * 86_400_000]);
  release();
  assert.equal(await joined, 3);
  assert.equal(windowSweeps, 1);
  assert.equal(await jobs.sweep(), 3);
  assert.equal(cutoffs.length, 2);
  await jobs.stop();
  await jobs.stop();
});

Deno.test("jobs: a failed sweep is a warning, not a crash", async () => {
  const lines: string[] = [];
  const logger = { ...log, warn: (event: string) => void lines.push(event) } as typeof log;
  const jobs = startJobs({
    store: {
      sweep: () => Promise.reject(new Error("disk")),
      mediaInUse: () => Promise.resolve(new Set()),
      ...noOutbox,
    },
    media: { sweepFiles: () => Promise.resolve(0) },
    log: logger,
    retentionDays: 1,
  });
  assert.equal(await jobs.sweep(), 0);
  await jobs.stop();
  assert.ok(lines.includes("retention_sweep_failed"));
});

Deno.test("jobs: replies left under way whose lease ran out are marked failed with why, never resent; younger ones are another process's; media work resumes", async () => {
  const marked: unknown[] = [];
  const now = 1_000_000;
  const n = await recoverOutbox({
    replyState: (m, state, detail) => {
      marked.push([m.id, state, detail]);
      return Promise.resolve(true);
    },
  }, [
    { id: "r1", contact: "u", storedAt: now - REPLY_LEASE_MS },
    { id: "r2", contact: "u", storedAt: now - REPLY_LEASE_MS + 1 },
  ], now);
  assert.equal(n, 1);
  assert.deepEqual(marked.map((m) => (m as unknown[]).slice(0, 2)), [["r1", "failed"]]);
  assert.match(String((marked[0] as unknown[])[2]), /stopped before the channel confirmed/);

  const resumed: [string, string | undefined][] = [];
  const channels = [{ name: "wxbot" }, { name: "pc_hook" }] as ChannelAdapter[];
  resumeMedia(
    {
      resume: (messages, channelOf) => {
        for (const m of messages) resumed.push([m.id, channelOf(m.channel)?.name]);
      },
    },
    [{ id: "m1", channel: "pc_hook" }, { id: "m2", channel: "gone" }] as Message[],
    channels,
  );
  assert.deepEqual(resumed, [["m1", "pc_hook"], ["m2", undefined]]);
});

Deno.test("jobs: processes sharing a store sweep one at a time (a lease in the store); a reply left under way is failed by the job", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  try {
    let swept = 0;
    const sweep = () => (swept++, Promise.resolve(0));
    const options = {
      media: { sweepFiles: () => Promise.resolve(0) },
      log,
      retentionDays: 30,
    };
    const reply = {
      id: "r-old",
      direction: "out" as const,
      channel: "test",
      account: "",
      contact: "u",
      agent: "a",
      company: "",
      type: "text",
      content: "hello",
      media: "",
      sendTime: 1,
      name: "a",
      avatar: "",
    };
    await store.saveOutbound(reply, "queued");
    // Two processes, past the reply's lease; the look for replies left under way is one process's too.
    const later = () => Date.now() + REPLY_LEASE_MS;
    let looked = 0;
    const outbox = () => (looked++, store.outbox());
    const a = startJobs({ ...options, store: { ...bind(store), sweep, outbox }, holder: "node-a", now: later });
    const b = startJobs({ ...options, store: { ...bind(store), sweep, outbox }, holder: "node-b", now: later });
    await a.sweep();
    await b.sweep();
    await Promise.all([a.stop(), b.stop()]);
    assert.equal(swept, 1, "one sweep for the period, whichever node took the lease");
    assert.equal(looked, 1, "one look at the outbox for the period");
    const [kept] = await store.history("u", { limit: 1 });
    assert.deepEqual([kept.id, kept.state], ["r-old", "failed"]);
  } finally {
    await store.close();
  }
});

// The store's methods the jobs call, bound to it.
function bind(store: SqliteStore) {
  return {
    sweep: store.sweep.bind(store),
    mediaInUse: store.mediaInUse.bind(store),
    outbox: store.outbox.bind(store),
    setOutboundState: store.setOutboundState.bind(store),
    lease: store.lease.bind(store),
  };
}
