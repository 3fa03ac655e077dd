import assert from "node:assert/strict";
import { bodyDigest, InMemoryNonces, nonceKey } from "../../../src/channels/wx_official/nonce_memory.ts";

Deno.test("nonce memory: a pair is known with its digest until it expires; forget takes back only its own digest", async () => {
  let now = 1_000_000;
  const m = new InMemoryNonces({ now: () => now });
  const key = nonceKey("wx1", "1000", "42");
  const [a, b] = [bodyDigest("<xml>a</xml>"), bodyDigest("<xml>b</xml>")];
  assert.notEqual(a, b);
  assert.equal(await m.remember(key, a, now + 300_000), undefined);
  assert.equal(await m.remember(key, b, now + 300_000), a);
  await m.forget(key, b); // not its digest: still known
  assert.equal(await m.remember(key, b, now + 300_000), a);
  await m.forget(key, a);
  assert.equal(await m.remember(key, b, now + 300_000), undefined);
  // Other accounts' pairs are their own.
  assert.equal(await m.remember(nonceKey("wx2", "1000", "42"), a, now + 300_000), undefined);
  now += 300_001;
  assert.equal(await m.remember(key, a, now + 300_000), undefined);
});

Deno.test("nonce memory: bounded — past maxEntries the oldest go first and are counted", async () => {
  const m = new InMemoryNonces({ maxEntries: 100, now: () => 0 });
  for (let i = 0; i < 250; i++) await m.remember(nonceKey("wx", "1", String(i)), "d", 1_000);
  assert.equal(m.size, 100);
  assert.equal(m.evicted, 150);
  assert.equal(await m.remember(nonceKey("wx", "1", "249"), "x", 1_000), "d");
});
