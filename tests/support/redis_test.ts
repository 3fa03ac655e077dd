import assert from "node:assert/strict";
import { createClient } from "redis";
import { startRedis } from "./redis.ts";
import { alive } from "./process.ts";

function existsSync(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("startRedis: a server on 127.0.0.1 with no persistence; a restart starts empty; close removes all", async (t) => {
  const redis = await startRedis();
  let pid = 0;
  try {
    await t.step("answers on its URL", async () => {
      assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(await redis.cli("SET", "k", "v"), "OK");
      assert.equal(await redis.cli("GET", "k"), "v");
      assert.equal(await redis.cli("CONFIG", "GET", "appendonly"), "appendonly\nno");
      assert.equal(await redis.cli("CONFIG", "GET", "bind"), "bind\n127.0.0.1");
    });
    await t.step("stop, then restart on the same port: nothing kept", async () => {
      await redis.stop();
      assert.equal(redis.running, false);
      await assert.rejects(redis.cli("PING"));
      await redis.restart();
      assert.equal(await redis.cli("EXISTS", "k"), "0");
    });
    await t.step("kill is a SIGKILL; restart brings it back", async () => {
      pid = Number(Deno.readTextFileSync(`${redis.dir}/redis.pid`));
      await redis.kill();
      assert.equal(await alive(pid), false);
      await redis.restart();
      assert.equal(await redis.cli("PING"), "PONG");
      pid = Number(Deno.readTextFileSync(`${redis.dir}/redis.pid`));
    });
  } finally {
    await redis.close();
  }
  assert.equal(await alive(pid), false);
  assert.equal(existsSync(redis.dir), false);
});

Deno.test("startRedis appendonly: a stopped server keeps its data", async () => {
  await using redis = await startRedis({ appendonly: true });
  assert.equal(await redis.cli("CONFIG", "GET", "appendonly"), "appendonly\nyes");
  await redis.cli("SET", "k", "kept");
  await redis.restart();
  assert.equal(await redis.cli("GET", "k"), "kept");
});

Deno.test("startRedis: the chosen client takes a lease once (SET NX PX) and hears a publish", async () => {
  await using redis = await startRedis();
  const client = createClient({ url: redis.url });
  const sub = client.duplicate();
  await client.connect();
  await sub.connect();
  try {
    const lease = { condition: "NX", expiration: { type: "PX", value: 15_000 } } as const;
    assert.equal(await client.set("lease:hook", "node-a", lease), "OK");
    assert.equal(await client.set("lease:hook", "node-b", lease), null);
    assert.equal(await client.get("lease:hook"), "node-a");
    let hear: (message: string) => void = () => {};
    const heard = new Promise<string>((resolve) => hear = resolve);
    await sub.subscribe("events", (message) => hear(message));
    assert.equal(await client.publish("events", "hello"), 1);
    assert.equal(await heard, "hello");
  } finally {
    await Promise.all([client.close(), sub.close()]);
  }
});
