/**
 * Automatic messages across nodes (issue 22): kefu's welcome, sent by the node that took the user's message, reaches
 * the owner's socket on another node live (code 110, through the Redis bus), with the message the welcome answers.
 * Two child-process nodes on one PostgreSQL and one Redis; the push channel's replies go to a receiver of the test's.
 */

import assert from "node:assert/strict";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { eventually } from "../helpers.ts";
import { Agent, onlineOn, push, startNodes } from "./cluster_support.ts";

Deno.test("cluster: kefu's welcome reaches the owner's socket on another node, live", async () => {
  await using pg = await startPostgres();
  await using db = await pg.createDatabase();
  await using redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "kefu-automatic-cluster-" });
  try {
    await Deno.writeTextFile(
      `${dir}/kefu.json`,
      JSON.stringify({ automatic: [{ channel: "http_push", welcome: "您好，这里是客服中心。" }] }),
    );
    const replies: { contact: string; content: string }[] = [];
    await using receiver = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const body = await req.json();
      replies.push({ contact: body.data.contact_id, content: body.data.msg.content });
      return Response.json({ ok: true });
    });
    await using nodes = await startNodes(2, { databaseUrl: db.url, redisUrl: redis.url }, {
      CONFIG_FILE: `${dir}/kefu.json`,
      PUSH_REPLY_URL: `http://127.0.0.1:${receiver.addr.port}/reply`,
    });
    await using a = new Agent("A");
    await a.connect(nodes[1]);
    await eventually("n1 sees A online", async () => (await onlineOn(nodes[0])).get("A") === true, 10_000);

    // The user's first message is taken by n1; A's socket is on n2.
    assert.equal(await push(nodes[0], "uNew", "A", "first-1"), "first-1");
    await eventually("A got the user's message", () => a.got.has("first-1"), 15_000);
    await eventually("A was told of kefu's welcome (110)", () => a.withCode(110).length > 0, 15_000);
    const [told] = a.withCode(110);
    assert.deepEqual(
      [told.data.contact_id, told.data.direction, told.data.state, told.data.automatic, told.data.msg.content],
      ["uNew", "out", "sent", "welcome", "您好，这里是客服中心。"],
    );
    assert.deepEqual(replies, [{ contact: "uNew", content: "您好，这里是客服中心。" }]);
    assert.equal(a.withCode(110).length, 1, "told once");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
