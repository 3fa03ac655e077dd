/**
 * The store's background worker on its own: it checkpoints only when asked, and a worker that cannot do its work
 * tells the store (which then checkpoints by itself) and leaves no timer behind (the test sanitizers check that).
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { Background } from "../../src/store/background.ts";
import { eventually } from "../helpers.ts";

/** A store file in WAL mode with one table, written by this connection only (no checkpoints of its own). */
async function walFile() {
  const dir = await Deno.makeTempDir({ prefix: "kefu-background-" });
  const path = `${dir}/kefu.db`;
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA wal_autocheckpoint = 0");
  db.exec("CREATE TABLE t (x TEXT)");
  return {
    path,
    db,
    async [Symbol.asyncDispose]() {
      db.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("background worker: a file it cannot open is reported once; searches are refused; close ends it", async () => {
  const failures: string[] = [];
  const bg = new Background({
    path: "/nonexistent-kefu-dir/kefu.db",
    busyTimeoutMs: 100,
    checkpointMs: 5,
    backstopPages: 4000,
    failed: (reason) => failures.push(reason),
  });
  await eventually("the failure reported", () => failures.length > 0);
  assert.equal(bg.alive, false);
  assert.match(failures[0], /cannot open the file/);
  await assert.rejects(bg.search("a1", "x", 5), /cannot search the store/);
  await bg.close();
  assert.equal(failures.length, 1, "told once");
});

Deno.test("background worker: checkpoints copy the WAL back while a writer goes on", async () => {
  await using w = await walFile();
  const { path, db } = w;
  const failures: string[] = [];
  const bg = new Background({
    path,
    busyTimeoutMs: 1000,
    checkpointMs: 5,
    backstopPages: 4000,
    failed: (r) => failures.push(r),
  });
  try {
    const insert = db.prepare("INSERT INTO t VALUES (?)");
    for (let i = 0; i < 200; i++) insert.run("x".repeat(2000));
    await eventually("a checkpoint copied every frame", () => {
      const s = bg.stats();
      return s.checkpoints > 0 && s.walFrames > 0 && s.walCheckpointed === s.walFrames;
    });
    assert.deepEqual(failures, []);
    assert.equal(bg.alive, true);
  } finally {
    await bg.close();
  }
  assert.equal(bg.alive, false);
});

Deno.test("background worker: past the writer's backstop it waits for the writer's commit (or ten ticks) before the next checkpoint", async () => {
  await using w = await walFile();
  const { path, db } = w;
  db.prepare("INSERT INTO t VALUES (?)").run("x");
  // A backstop of one page: every report is past it.
  const bg = new Background({ path, busyTimeoutMs: 1000, checkpointMs: 50, backstopPages: 1, failed() {} });
  try {
    await eventually("the first checkpoint", () => bg.stats().checkpoints === 1);
    // The writer's turn: ten ticks of 50 ms; timers never fire early, so four of them cannot have ended it.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(bg.stats().checkpoints, 1, "not asked again during the writer's turn");
    // The writer committed: the worker's turn again.
    bg.committed();
    await eventually("asked again after the writer's commit", () => bg.stats().checkpoints === 2);
    // No commit comes: after ten ticks the worker is asked anyway (a store that stopped writing).
    await eventually("asked again after ten ticks", () => bg.stats().checkpoints === 3);
  } finally {
    await bg.close();
  }
});
