/**
 * REDIS_URL's server version (src/cluster/redis_version.ts, src/cluster/check.ts): asked of a real redis-server, and
 * refused below 6.2. Debian's redis-server is newer than 6.2, so the refusal is tested through
 * `requireRedisVersion` — the one function the start and check-config both call with the version they read.
 */

import assert from "node:assert/strict";
import { checkRedisServer } from "../../src/cluster/check.ts";
import { probeRedis, redisVersionOf, requireRedisVersion } from "../../src/cluster/redis_version.ts";
import { ConfigError } from "../../src/config/config.ts";
import { createLogger } from "../../src/core/log.ts";
import { freePort, run } from "../support/process.ts";
import { REDIS_SERVER, startRedis } from "../support/redis.ts";

function logLines(): { lines: Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger({ level: "debug", write: (l) => lines.push(JSON.parse(l)) }) };
}

Deno.test("redis version: read from INFO server; older than 6.2 is refused naming both versions, never the password", () => {
  assert.equal(redisVersionOf("# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n"), "7.0.15");
  assert.equal(redisVersionOf("# Server\r\nredis_mode:standalone\r\n"), undefined);
  for (const ok of ["6.2.0", "6.2.14", "7.0.15", "10.0.1"]) requireRedisVersion(ok, "redis://127.0.0.1:6379");
  for (const old of ["6.0.16", "5.0.14", "4.0.9"]) {
    assert.throws(() => requireRedisVersion(old, "redis://:hunter2-secret@redis.internal:6379/0"), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(
        e.message,
        `cannot use REDIS_URL="redis://:***@redis.internal:6379/0": it is Redis ${old}, and kefu needs 6.2 or newer ` +
          "(GETDEL, which hands a passive reply to exactly one node); upgrade Redis",
      );
      return true;
    });
  }
});

Deno.test({
  name: "redis version: the real redis-server's version is read at start and logged; Redis away leaves it unchecked",
  ignore: !(() => {
    try {
      return Deno.statSync(REDIS_SERVER).isFile;
    } catch {
      return false;
    }
  })(),
  async fn() {
    await using redis = await startRedis();
    // What the package says of itself: "Redis server v=7.0.15 sha=…".
    const installed = /v=(\d+\.\d+\.\d+)/.exec((await run(REDIS_SERVER, ["--version"])).stdout)?.[1];
    assert.ok(installed, "redis-server --version names its version");
    assert.deepEqual(await probeRedis(redis.url, 5_000), { version: installed });
    const up = logLines();
    await checkRedisServer(redis.url, up.log, 5_000);
    assert.deepEqual(up.lines.map((l) => [l.event, l.version]), [["cluster_redis", installed]]);

    // Nothing listens there: the start goes on (its client keeps trying), and says the version went unchecked.
    const closed = `redis://127.0.0.1:${freePort()}`;
    const probe = await probeRedis(closed, 5_000);
    assert.ok("error" in probe && probe.error.length > 0, JSON.stringify(probe));
    const down = logLines();
    await checkRedisServer(closed, down.log, 5_000);
    assert.deepEqual(down.lines.map((l) => l.event), ["cluster_redis_unchecked"]);
  },
});
