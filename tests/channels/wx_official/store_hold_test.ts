/**
 * The webhook while the store fails (issue 19's follow-up): WeChat's push is held and the message tried again while
 * WeChat waits, instead of a 503 that shows the user WeChat's failure notice. A real SQLite store whose accept fails
 * a given number of times, the real hub and webhook routes, and the simulator's WeChat (its timeout and retries).
 */

import assert from "node:assert/strict";
import { Hono } from "hono";
import { KefuError } from "../../../src/core/errors.ts";
import { silentLogger } from "../../../src/core/log.ts";
import type { Message } from "../../../src/core/message.ts";
import { Hub } from "../../../src/hub/hub.ts";
import { SqliteStore } from "../../../src/store/sqlite_store.ts";
import type { InboundInput, InboundOutcome } from "../../../src/store/store.ts";
import { parseWxOfficialConfig } from "../../../src/channels/wx_official/config.ts";
import { PassiveReplies } from "../../../src/channels/wx_official/passive_reply.ts";
import { ReplyWindows } from "../../../src/channels/wx_official/reply_window.ts";
import { StoreHolds } from "../../../src/channels/wx_official/store_hold.ts";
import { wechatRoutes } from "../../../src/channels/wx_official/webhook.ts";
import { createWebhookSender, FAILURE_TEXT } from "../../../src/simulator/webhook_sender.ts";
import { eventually, signedQuery, wechatText } from "../../helpers.ts";

const TOKEN = "hold-token";

/** The real store, whose accept fails `failures` times (as a commit does with the database away) before it works. */
class FlakyStore extends SqliteStore {
  failures = 0;
  calls = 0;
  /** The first accept waits for this (a commit slow past WeChat's timeout); `firstDone` once it resolved. */
  slowFirst: Promise<void> | undefined;
  firstDone = false;
  override async acceptInbound(input: InboundInput): Promise<InboundOutcome> {
    const call = ++this.calls;
    if (call === 1 && this.slowFirst) await this.slowFirst;
    if (this.failures > 0) {
      this.failures--;
      throw new Error("connection refused (the test's store is away)");
    }
    const outcome = await super.acceptInbound(input);
    if (call === 1) this.firstDone = true;
    return outcome;
  }
}

interface Webhook extends AsyncDisposable {
  url: string;
  store: FlakyStore;
  holds: StoreHolds;
  passive: PassiveReplies;
}

function startWebhook(env: Record<string, string>, holds: StoreHolds): Webhook {
  const store = new FlakyStore({ path: ":memory:" });
  const hub = new Hub({ store });
  const passive = new PassiveReplies();
  const app = new Hono();
  app.route(
    "/",
    wechatRoutes({
      accept: (m) => hub.accept(m),
      log: silentLogger,
      accounts: parseWxOfficialConfig({ WECHAT_TOKEN: TOKEN, ...env }),
      maxBodyBytes: 1 << 20,
      windows: new ReplyWindows(),
      passive,
      holds,
    }),
  );
  // As the service's app answers a KefuError.
  app.onError((e, c) =>
    e instanceof KefuError
      ? c.json({ data: { error: e.kind, message: e.message } }, e.status as 503)
      : c.json({ data: { error: "internal", message: String(e) } }, 500)
  );
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  return {
    url: `http://127.0.0.1:${server.addr.port}/wechat`,
    store,
    holds,
    passive,
    async [Symbol.asyncDispose]() {
      holds.close();
      passive.close();
      await server.shutdown();
      await store.close();
    },
  };
}

/** An agent's text reply to oUser, as the hub offers it to the passive-reply mode. */
function agentReply(id: string, content: string): Message {
  return {
    id,
    direction: "out",
    channel: "wx_official_account",
    contact: "oUser",
    agent: "a1",
    company: "",
    type: "text",
    content,
    media: "",
    sendTime: Math.floor(Date.now() / 1000),
    name: "",
    avatar: "",
  };
}

Deno.test("webhook store hold: accept fails 3 times then works: kept once, WeChat sees success on its first try", async () => {
  await using w = startWebhook({}, new StoreHolds());
  w.store.failures = 3;
  const sender = createWebhookSender({ url: w.url, token: TOKEN, accountId: "gh_account" });
  const r = await sender.send("oUser", { type: "text", content: "hello" }, { msgId: "31000000000000001" });
  assert.equal(r.status, "accepted", JSON.stringify(r));
  assert.equal(r.attempts, 1, "answered within WeChat's first attempt");
  assert.equal(r.shown, undefined, "no failure shown to the user");
  assert.equal(w.store.calls, 4, "three failed tries and the one that kept it");
  const kept = await w.store.history("oUser", { limit: 10 });
  assert.deepEqual(kept.map((m) => m.id), ["31000000000000001"]);
  assert.equal(w.holds.held, 0);
});

Deno.test("webhook store hold: the store away past WeChat's whole budget: WeChat shows its failure, nothing is kept", async () => {
  // Shortened: WeChat waits 300 ms, the push is held 600 ms (the real ones: 5 s and 5.5 s).
  await using w = startWebhook({}, new StoreHolds({ holdMs: 600 }));
  w.store.failures = 1_000_000;
  const sender = createWebhookSender({ url: w.url, token: TOKEN, accountId: "gh_account", timeoutMs: 300 });
  const r = await sender.send("oUser", { type: "text", content: "lost?" }, { msgId: "31000000000000002" });
  assert.equal(r.status, "failed");
  assert.equal(r.attempts, 4, "WeChat tried 4 times: no answer came in time to any");
  assert.equal(r.shown, FAILURE_TEXT);
  assert.ok(w.store.calls > 4, `tried again while held (${w.store.calls} tries)`);
  // The held pushes end (503 to nobody); the store then works and has nothing of the message.
  await eventually("the held pushes answered", () => w.holds.held === 0, 10_000);
  w.store.failures = 0;
  assert.deepEqual(await w.store.history("oUser", { limit: 10 }), []);
  assert.equal((await w.store.stats()).messages, 0);
});

Deno.test("webhook store hold: past the cap a push gets 503 at once; a shutdown answers the held one 503", async () => {
  await using w = startWebhook({}, new StoreHolds({ maxHeld: 1, holdMs: 60_000 }));
  w.store.failures = 1_000_000;
  const push = async (id: string) =>
    await fetch(`${w.url}${await signedQuery(TOKEN)}`, { method: "POST", body: wechatText("oUser", "x", id) });
  const first = push("31000000000000003");
  await eventually("the first push held", () => w.holds.held === 1, 10_000);
  const second = await push("31000000000000004");
  assert.equal(second.status, 503);
  const refused = await second.json();
  assert.equal(refused.data.error, "store_failed");
  assert.match(refused.data.message, /not held: 1 pushes are held for the store already/);
  assert.equal(w.holds.held, 1, "the first is still held");
  // The node stops (the channel's stop closes its holds): the held push is answered now, WeChat retries elsewhere.
  w.holds.close();
  const answered = await first;
  assert.equal(answered.status, 503);
  const body = await answered.json();
  assert.equal(body.data.error, "store_failed");
  assert.match(body.data.message, /this node is stopping/);
  assert.equal(w.holds.held, 0);
  // Stopping: a push meeting the store's failure now is not held at all.
  const third = await push("31000000000000005");
  assert.equal(third.status, 503);
  assert.match((await third.json()).data.message, /not held: this node is stopping/);
});

Deno.test("webhook store hold: a passive-reply account's push held for the store still carries the agent's reply", async () => {
  await using w = startWebhook({ WECHAT_REPLY_MODE: "passive" }, new StoreHolds());
  w.store.failures = 2;
  const sender = createWebhookSender({ url: w.url, token: TOKEN, accountId: "gh_account" });
  const sending = sender.send("oUser", { type: "text", content: "hi" }, { msgId: "31000000000000006" });
  await eventually("the message kept after two failed tries", () => w.store.calls >= 3, 10_000);
  const reply = agentReply("r1", "hello from the agent");
  // A token-only account is known by its webhook path.
  await w.passive.offer("/wechat", "oUser", reply);
  const r = await sending;
  assert.equal(r.status, "replied", JSON.stringify(r));
  assert.equal(r.reply?.content, "hello from the agent");
  assert.equal(r.shown, undefined);
  assert.deepEqual((await w.store.history("oUser", { limit: 10 })).map((m) => m.id), ["31000000000000006"]);
});

Deno.test("webhook store hold: a passive push kept after WeChat gave up on it never takes its retry's place", async () => {
  await using w = startWebhook({ WECHAT_REPLY_MODE: "passive" }, new StoreHolds());
  let release = () => {};
  w.store.slowFirst = new Promise((resolve) => release = resolve);
  // WeChat as it is: the first attempt is dropped after 5 s, the retry comes and is kept at once.
  const sender = createWebhookSender({ url: w.url, token: TOKEN, accountId: "gh_account" });
  const sending = sender.send("oUser", { type: "text", content: "slow" }, { msgId: "31000000000000007" });
  await eventually("the retry kept", async () => (await w.store.history("oUser", { limit: 10 })).length === 1, 15_000);
  // The first push's commit ends now, past WeChat's 5 s: it is answered (to nobody), the retry stays held.
  release();
  await eventually("the first push's accept resolved", () => w.store.firstDone, 10_000);
  const reply = agentReply("r2", "into the retry");
  await w.passive.offer("/wechat", "oUser", reply);
  const r = await sending;
  assert.equal(r.status, "replied", JSON.stringify(r));
  assert.equal(r.attempts, 2, "carried by WeChat's retry");
  assert.equal(r.reply?.content, "into the retry");
});
