import assert from "node:assert/strict";
import { recoverOutbox, resumeMedia, startJobs } from "../../src/jobs/jobs.ts";
import { createLogger } from "../../src/core/log.ts";
import type { ChannelAdapter } from "../../src/channels/channel.ts";
import type { Message } from "../../src/core/message.ts";

const log = createLogger({ level: "silent" });

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
    },
    media: { sweepFiles: (_cutoff, inUse) => Promise.resolve(inUse.has("a") ? 1 : 0) },
    windows: { sweep: () => windowSweeps++ },
    log,
    retentionDays: 2,
    now: () => 10 * 86_400_000,
  });
  // The start's sweep is under way: asking again joins it.
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
    store: { sweep: () => Promise.reject(new Error("disk")), mediaInUse: () => Promise.resolve(new Set()) },
    media: { sweepFiles: () => Promise.resolve(0) },
    log: logger,
    retentionDays: 1,
  });
  assert.equal(await jobs.sweep(), 0);
  await jobs.stop();
  assert.ok(lines.includes("retention_sweep_failed"));
});

Deno.test("jobs: replies under way at the last stop are marked failed with why, never resent; media work resumes", async () => {
  const marked: unknown[] = [];
  const n = await recoverOutbox({
    replyState: (m, state, detail) => {
      marked.push([m.id, state, detail]);
      return Promise.resolve(true);
    },
  }, [{ id: "r1", channel: "wx_official_account" }, { id: "r2", channel: "wxbot" }] as never);
  assert.equal(n, 2);
  assert.deepEqual(marked.map((m) => (m as unknown[]).slice(0, 2)), [["r1", "failed"], ["r2", "failed"]]);
  assert.match(String((marked[0] as unknown[])[2]), /restarted before WeChat confirmed/);

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
