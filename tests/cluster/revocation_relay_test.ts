/**
 * Revocations among nodes, over the memory engine: two {@link Auth}s on one store (two nodes on one database) joined
 * by a {@link MemoryBroker}. A sign-out on A refuses the token on B at once and closes B's socket of it; a revocation
 * whose notice was lost (the broker away) reaches B at its next read of the store. (With Redis and node processes: token_test.ts.)
 */

import assert from "node:assert/strict";
import { Auth } from "../../src/agents/auth/auth.ts";
import { MemoryBroker, memoryEngine } from "../../src/cluster/engine.ts";
import { RevocationRelay } from "../../src/cluster/revocation_relay.ts";
import { silentLogger } from "../../src/core/log.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import { eventually } from "../helpers.ts";

async function twoNodes(options: { reloadMs?: number } = {}) {
  const store = new SqliteStore({ path: ":memory:" });
  const broker = new MemoryBroker();
  const relays: RevocationRelay[] = [];
  const auths = ["A", "B"].map((nodeId) => {
    const auth: Auth = new Auth({
      secret: "s3cret-of-the-cluster",
      tokenSeconds: 3600,
      maxSkewSeconds: 300,
      revocations: store,
      onRevoked: () => relay.told(),
    });
    const relay = new RevocationRelay({
      engine: memoryEngine(broker),
      nodeId,
      reload: () => auth.load(),
      log: silentLogger,
      reloadMs: options.reloadMs,
    });
    relays.push(relay);
    return auth;
  });
  for (const relay of relays) await relay.start();
  return {
    a: auths[0],
    b: auths[1],
    broker,
    async [Symbol.asyncDispose]() {
      for (const relay of relays) await relay.stop();
      await store.close();
    },
  };
}

function refused(auth: Auth, token: string): boolean {
  try {
    auth.verify(token);
    return false;
  } catch {
    return true;
  }
}

Deno.test("revocations: a sign-out on node A refuses the token on node B and closes B's socket of it", async () => {
  await using nodes = await twoNodes();
  const { a, b } = nodes;
  const signedOut = a.issue("agent-1");
  const other = a.issue("agent-1");
  // B takes A's tokens (one secret) and has a socket open with the first.
  const claims = b.verify(signedOut.token);
  const closed: string[] = [];
  b.watch(claims, (reason) => closed.push(reason));

  await a.revoke("agent-1", signedOut.tokenId, signedOut.expiresAt);
  await eventually("B refuses the signed-out token", () => refused(b, signedOut.token));
  assert.deepEqual(closed.map((r) => r.split(":")[0]), ["token_revoked"], "B's socket of it is closed");
  assert.equal(b.verify(other.token).agent, "agent-1", "the agent's other token still works");

  // An administrator's revocation of every token of the agent, made on B, reaches A.
  await b.revoke("agent-1");
  await eventually("A refuses every earlier token of agent-1", () => refused(a, other.token));
});

Deno.test("revocations: one whose notice was lost (the broker away) reaches the other node at its next read", async () => {
  await using nodes = await twoNodes({ reloadMs: 50 });
  const { a, b, broker } = nodes;
  const t = a.issue("agent-2");
  broker.up = false;
  await a.revoke("agent-2", t.tokenId, t.expiresAt);
  await eventually("B refuses it without a notice", () => refused(b, t.token));
  broker.up = true;
});
