/**
 * The nodes' shared state (issue 19): the {@link SharedState} contract on memory and on a real redis-server; one
 * access_token fetch among many concurrent getters on two Redis clients (as on two nodes), also after a rejection and
 * when a lock holder died; the webhook's taken nonces and the media_ids seen from another client; and each falling
 * back to what one process does alone when Redis is away.
 */

import assert from "node:assert/strict";
import { MemorySharedState, type SharedState } from "../../src/cluster/shared_state.ts";
import { type RedisSharedState, redisSharedState } from "../../src/cluster/redis_shared_state.ts";
import { type SharedToken, SharedTokens } from "../../src/cluster/shared_tokens.ts";
import { SharedNonces } from "../../src/channels/wx_official/nonce_memory.ts";
import { Uploads } from "../../src/media/uploads.ts";
import { startRedis } from "../support/redis.ts";
import { eventually } from "../helpers.ts";

// Bounded: this many concurrent getters per client.
const GETTERS = 25;

/** Two clients of one Redis, as two nodes have; stopped together. */
async function twoClients(url: string): Promise<[RedisSharedState, RedisSharedState] & AsyncDisposable> {
  const clients = [redisSharedState({ url }), redisSharedState({ url })] as const;
  for (const c of clients) await c.start();
  return Object.assign([...clients] as [RedisSharedState, RedisSharedState], {
    [Symbol.asyncDispose]: async () => void await Promise.all(clients.map((c) => c.stop())),
  });
}

/** A token fetch that counts its calls and takes a little while, as WeChat's does. */
function counter() {
  let n = 0;
  return {
    get fetches() {
      return n;
    },
    fetch: async (): Promise<SharedToken> => {
      n++;
      await new Promise((resolve) => setTimeout(resolve, 30));
      return { value: `token-${n}`, refreshAt: Date.now() + 60_000, expiresAt: Date.now() + 120_000 };
    },
  };
}

async function contract(state: SharedState, key: (k: string) => string) {
  assert.equal(await state.get(key("a")), undefined);
  await state.set(key("a"), "1", 60_000);
  assert.equal(await state.get(key("a")), "1");
  assert.equal(await state.add(key("a"), "2", 60_000), "1", "add answers the value already there");
  assert.equal(await state.get(key("a")), "1", "and leaves it");
  assert.equal(await state.add(key("b"), "x", 60_000), undefined, "add sets an absent key");
  assert.equal(await state.removeIf(key("b"), "y"), false, "another value is not removed");
  assert.equal(await state.get(key("b")), "x");
  assert.equal(await state.removeIf(key("b"), "x"), true);
  assert.equal(await state.get(key("b")), undefined);
  await state.set(key("c"), "short", 50);
  assert.equal(await state.add(key("d"), "short", 50), undefined);
  await new Promise((resolve) => setTimeout(resolve, 120));
  assert.equal(await state.get(key("c")), undefined, "set's value expires");
  assert.equal(await state.get(key("d")), undefined, "add's value expires");
}

Deno.test("shared state: the contract in memory", async () => {
  await contract(new MemorySharedState(), (k) => k);
});

Deno.test("shared state: memory is bounded in keys, the oldest going first", async () => {
  const state = new MemorySharedState({ maxEntries: 3 });
  for (const k of ["a", "b", "c", "d"]) await state.set(k, k, 60_000);
  assert.deepEqual(await Promise.all(["a", "b", "c", "d"].map((k) => state.get(k))), [undefined, "b", "c", "d"]);
});

Deno.test("shared state on Redis", async (t) => {
  await using redis = await startRedis();

  await t.step("the contract", async () => {
    await using clients = await twoClients(redis.url);
    await contract(clients[0], (k) => `contract:${k}`);
    // What one client set, the other sees (two nodes).
    await clients[0].set("seen", "v", 60_000);
    assert.equal(await clients[1].get("seen"), "v");
    assert.equal(await redis.cli("GET", "kefu:seen"), "v", "keys carry the kefu: prefix");
  });

  await t.step("many concurrent getters on two clients: one fetch; a rejection: one refresh for all", async () => {
    await using clients = await twoClients(redis.url);
    const tokens = clients.map((state) => new SharedTokens({ state }));
    const c = counter();
    const getters = tokens.flatMap((s) => Array.from({ length: GETTERS }, () => s.get("app-1", c.fetch)));
    const got = await Promise.all(getters);
    assert.equal(c.fetches, 1, "one fetch among every getter of both clients");
    assert.deepEqual(new Set(got.map((x) => x.value)), new Set(["token-1"]));
    // Redis keeps it for as long as it lives.
    const ttl = Number(await redis.cli("PTTL", "kefu:wx_token:app-1"));
    assert.ok(ttl > 60_000 && ttl <= 120_000, `the token's key expires with the token (PTTL ${ttl})`);

    // WeChat refused token-1 (40001) on every node at once: exactly one refresh, everyone gets its result.
    const refreshed = await Promise.all(
      tokens.flatMap((s) => Array.from({ length: GETTERS }, () => s.get("app-1", c.fetch, "token-1"))),
    );
    assert.equal(c.fetches, 2, "one refresh for every node that saw the token refused");
    assert.deepEqual(new Set(refreshed.map((x) => x.value)), new Set(["token-2"]));
    // A node that saw token-1 refused late reads token-2 without fetching.
    assert.equal((await tokens[1].get("app-1", c.fetch, "token-1")).value, "token-2");
    assert.equal(c.fetches, 2);
    assert.equal(await redis.cli("EXISTS", "kefu:wx_token_lock:app-1"), "0", "the lock was released");
  });

  await t.step("a lock left by a node that died expires, then one getter fetches", async () => {
    await using clients = await twoClients(redis.url);
    await clients[0].add("wx_token_lock:app-2", "a-dead-node", 300);
    const tokens = clients.map((state) => new SharedTokens({ state, lockTtlMs: 300 }));
    const c = counter();
    const got = await Promise.all(tokens.flatMap((s) => [s.get("app-2", c.fetch), s.get("app-2", c.fetch)]));
    assert.equal(c.fetches, 1);
    assert.deepEqual(new Set(got.map((x) => x.value)), new Set(["token-1"]));
  });

  await t.step(
    "a waiter gives up naming the AppID when the lock outlives its wait; never quoting a token",
    async () => {
      await using clients = await twoClients(redis.url);
      await clients[0].set(
        "wx_token:app-3",
        JSON.stringify({ value: "secret-token", refreshAt: 0, expiresAt: 0 }),
        60_000,
      );
      await clients[0].add("wx_token_lock:app-3", "another-node", 60_000);
      const c = counter();
      await assert.rejects(
        new SharedTokens({ state: clients[1], waitMs: 200 }).get("app-3", c.fetch, "secret-token"),
        (e: Error) => /access_token of "app-3".*another node/.test(e.message) && !e.message.includes("secret-token"),
      );
      assert.equal(c.fetches, 0);
    },
  );

  await t.step("nonces: a pair taken through one client is known to the other; forgotten once failed", async () => {
    await using clients = await twoClients(redis.url);
    const [a, b] = clients.map((state) => new SharedNonces({ state }));
    // (kefu's keys separate their parts with NUL, which redis-cli cannot be given: this one uses colons.)
    const key = "acc:1700000000:n1";
    const until = Date.now() + 60_000;
    assert.equal(await a.remember(key, "body-1", until), undefined);
    assert.equal(await b.remember(key, "body-2", until), "body-1", "a replay elsewhere");
    assert.equal(await b.remember(key, "body-1", until), "body-1", "WeChat's retry");
    await a.forget(key, "body-2");
    assert.equal(await b.remember(key, "body-3", until), "body-1", "not forgotten: not its");
    await a.forget(key, "body-1");
    assert.equal(await b.remember(key, "body-1", until), undefined, "taken again");
    const ttl = Number(await redis.cli("PTTL", `kefu:wx_nonce:${key}`));
    assert.ok(ttl > 50_000 && ttl <= 60_000, `kept until the timestamp can no longer pass (PTTL ${ttl})`);
  });

  await t.step("media_ids: what one node's uploads got from WeChat, the other's know", async () => {
    await using clients = await twoClients(redis.url);
    const [a, b] = clients.map((shared) => new Uploads({ shared }));
    const file = await a.add(new Uint8Array([1, 2, 3]), "a.jpg", "image/jpeg");
    assert.equal(await b.mediaIdOf(file.id, "acc"), undefined);
    await a.setMediaId(file, "acc", "MEDIA-1");
    assert.equal(await b.mediaIdOf(file.id, "acc"), "MEDIA-1");
    assert.equal(await b.mediaIdOf(file.id, "other-account"), undefined, "per account");
  });

  await t.step(
    "Redis away: tokens fetched and nonces remembered by the node alone; told once, and when back",
    async () => {
      await using clients = await twoClients(redis.url);
      const told: string[] = [];
      const watched = redisSharedState({
        url: redis.url,
        onDown: () => told.push("down"),
        onUp: () => told.push("up"),
      });
      await watched.start();
      await using _watched = { [Symbol.asyncDispose]: () => watched.stop() };
      await redis.stop();
      try {
        await eventually("the outage is told", () => told.includes("down"));
        const unshared: string[] = [];
        const c = counter();
        const tokens = new SharedTokens({ state: clients[0], onUnshared: (e) => unshared.push(e) });
        assert.equal((await tokens.get("app-4", c.fetch)).value, "token-1");
        assert.equal(c.fetches, 1);
        assert.ok(unshared.length > 0, "told that the state was not shared");
        const nonces = new SharedNonces({ state: clients[0] });
        const until = Date.now() + 60_000;
        assert.equal(await nonces.remember("k", "body-1", until), undefined, "a webhook is not refused for Redis");
        assert.equal(await nonces.remember("k", "body-2", until), "body-1", "a replay to this node is still refused");
      } finally {
        await redis.restart();
      }
      await eventually("Redis back is told", () => told.includes("up"), 10_000);
      assert.deepEqual(told, ["down", "up"], "once each, however many reconnect attempts failed");
    },
  );
});
