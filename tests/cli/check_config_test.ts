/**
 * `check-config` says what the start refuses of several nodes: REDIS_URL without MEDIA_DIR, or with a store only one
 * process can hold. Called in-process: nothing is reached but closed ports of 127.0.0.1.
 */

import assert from "node:assert/strict";
import { checkConfig } from "../../src/cli/check_config.ts";
import { checkCluster } from "../../src/cluster/check.ts";
import { ConfigError, readConfig } from "../../src/config/config.ts";
import { freePort } from "../helpers.ts";

const deps = { channelSettings: () => undefined };

Deno.test("check-config: REDIS_URL without MEDIA_DIR is a problem, in the words the start refuses it with", async () => {
  const closed = freePort();
  const env = {
    STORE: "postgres",
    DATABASE_URL: `postgres://kefu@127.0.0.1:${closed}/kefu`,
    REDIS_URL: `redis://127.0.0.1:${closed}/0`,
  };
  const report = await checkConfig(env, deps);
  const said = report.problems.filter((p) => p.includes("MEDIA_DIR"));
  assert.equal(said.length, 1, report.problems.join("\n"));
  assert.match(said[0], /^cannot use REDIS_URL without MEDIA_DIR: /);
  // The very sentence `kefu serve` stops with.
  assert.throws(() => checkCluster(readConfig(env).config), (e) => e instanceof ConfigError && e.message === said[0]);

  // With MEDIA_DIR set, nothing is said of it (the closed ports still are).
  const shared = await checkConfig({ ...env, MEDIA_DIR: "/srv/kefu-media" }, deps);
  assert.deepEqual(shared.problems.filter((p) => p.includes("MEDIA_DIR")), []);
  assert.ok(shared.problems.some((p) => p.startsWith("cannot reach Redis")), shared.problems.join("\n"));
});

Deno.test("check-config: REDIS_URL with the SQLite store is a problem; without REDIS_URL neither is said", async () => {
  const closed = freePort();
  const report = await checkConfig({ STORE: "memory", REDIS_URL: `redis://127.0.0.1:${closed}/0` }, deps);
  assert.ok(
    report.problems.some((p) => p.startsWith("cannot use REDIS_URL with STORE=memory")),
    report.problems.join("\n"),
  );
  const alone = await checkConfig({ STORE: "memory" }, deps);
  assert.deepEqual(alone.problems, []);
});
