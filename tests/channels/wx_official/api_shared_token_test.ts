/**
 * Several API clients of one AppID sharing their access_token (as several kefu nodes do through Redis; here through
 * the memory state, the same algorithm): one fetch for all, one refresh when WeChat refuses the token (40001) or it
 * is due, in `token` and `stable_token` mode, and no token in any error.
 */

import assert from "node:assert/strict";
import { createWechatServer } from "../../../src/simulator/wechat_server.ts";
import { customText, WechatApi } from "../../../src/channels/wx_official/api.ts";
import { MemorySharedState } from "../../../src/cluster/shared_state.ts";
import { SharedTokens } from "../../../src/cluster/shared_tokens.ts";

const APP_ID = "wx0123456789abcdef";
const SECRET = "s3cr3t-0f-the-4pp-do-not-leak-9f8e7d6c";
// Bounded: this many clients, as nodes.
const NODES = 5;

async function withNodes(
  tokenMode: "token" | "stable_token",
  f: (ctx: { sim: ReturnType<typeof createWechatServer>; apis: WechatApi[]; clock: { t: number } }) => Promise<void>,
): Promise<void> {
  const clock = { t: Date.UTC(2024, 0, 1) };
  const now = () => clock.t;
  const sim = createWechatServer({ appId: APP_ID, appSecret: SECRET, now });
  const http = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, sim.app.fetch);
  const state = new MemorySharedState({ now });
  const apis = Array.from({ length: NODES }, () =>
    new WechatApi({
      appId: APP_ID,
      appSecret: SECRET,
      apiBase: `http://127.0.0.1:${http.addr.port}`,
      tokenMode,
      backoffMs: 5,
      now,
      // Each node its own SharedTokens over the one state: nothing shared but what Redis would hold.
      tokens: new SharedTokens({ state, now }),
    }));
  try {
    await f({ sim, apis, clock });
  } finally {
    await http.shutdown();
  }
}

for (const mode of ["token", "stable_token"] as const) {
  Deno.test(`shared token (${mode}): one fetch for every node; a 40001 is one refresh and every node sends`, async () => {
    await withNodes(mode, async ({ sim, apis }) => {
      sim.recordInteraction("oU", "message");
      await Promise.all(apis.map((api, i) => api.sendCustom(customText("oU", `hi ${i}`))));
      assert.equal(sim.tokenFetches, 1);
      const before = await apis[0].accessToken();

      sim.invalidateTokens();
      sim.recordInteraction("oU", "message");
      await Promise.all(apis.map((api, i) => api.sendCustom(customText("oU", `again ${i}`))));
      // stable_token: the normal fetch after an invalidation already answers a new token, so no forced one either.
      assert.equal(sim.tokenFetches, 2, "one refresh for every node that saw 40001");
      const after = await Promise.all(apis.map((api) => api.accessToken()));
      assert.notEqual(after[0], before);
      assert.deepEqual(new Set(after), new Set([after[0]]), "every node holds the new token");
      assert.equal(sim.inbox("oU").length, 2 * NODES);
    });
  });
}

Deno.test("shared token: a token due is fetched once among the nodes", async () => {
  await withNodes("token", async ({ sim, apis, clock }) => {
    sim.recordInteraction("oU", "message");
    await apis[0].sendCustom(customText("oU", "first"));
    const first = await apis[0].accessToken();
    // Past its refresh time (300 s before the end of 7200 s).
    clock.t += 7000 * 1000;
    sim.recordInteraction("oU", "message");
    // One node fetches; the others, finding it locked, go on with the old token (valid 200 s more) meanwhile.
    await Promise.all(apis.map((api) => api.accessToken()));
    assert.equal(sim.tokenFetches, 2);
    const tokens = await Promise.all(apis.map((api) => api.accessToken()));
    assert.equal(sim.tokenFetches, 2, "and then read its result");
    assert.ok(tokens.every((t) => t !== first), "the due token is replaced on every node");
    assert.equal(new Set(tokens).size, 1);
  });
});

Deno.test("shared token: another node's lock on a due token does not hold replies up (the old one still works)", async () => {
  const state = new MemorySharedState();
  await state.set(
    "wx_token:app",
    JSON.stringify({ value: "old", refreshAt: 0, expiresAt: Date.now() + 60_000 }),
    60_000,
  );
  await state.add("wx_token_lock:app", "another-node", 60_000);
  let fetches = 0;
  const got = await new SharedTokens({ state, waitMs: 60_000 }).get("app", () => {
    fetches++;
    return Promise.resolve({ value: "new", refreshAt: Date.now() + 1000, expiresAt: Date.now() + 2000 });
  });
  assert.deepEqual([got.value, fetches], ["old", 0]);
});
