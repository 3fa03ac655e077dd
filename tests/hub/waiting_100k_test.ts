/**
 * No cap on durable waiting (issue 18): 100,000 messages from 1,000 users arrive while no agent is online; all are
 * kept, memory stays bounded, and the agent who connects pages through them and gets every one, once.
 */
import assert from "node:assert/strict";
import type { Message } from "../../src/core/message.ts";
import { Hub } from "../../src/hub/hub.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import { Peer } from "./peer.ts";

const USERS = 1000;
const PER_USER = 100;

Deno.test("100,000 messages waiting with nobody online: all kept, and all reach the agent who connects", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kefu-100k-" });
  const store = new SqliteStore({ path: `${dir}/kefu.db` });
  try {
    const hub = new Hub({ store, redeliverPage: 1000 });
    const rssBefore = Deno.memoryUsage().rss;
    const batch: Promise<unknown>[] = [];
    for (let i = 0; i < USERS * PER_USER; i++) {
      const user = `u${i % USERS}`;
      const m: Message = {
        id: `m${i}`,
        direction: "in",
        channel: "test",
        account: "t1",
        contact: user,
        agent: "",
        company: "",
        type: "text",
        content: `message ${i}`,
        media: "",
        sendTime: 1_700_000_000 + i,
        name: user,
        avatar: "",
      };
      batch.push(hub.accept(m).then((r) => assert.equal(r.status, "queued")));
      if (batch.length === 500) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
    const rssWaiting = Deno.memoryUsage().rss;
    assert.equal(await hub.waiting(), USERS * PER_USER);

    const peer = new Peer();
    const seen = new Set<string>();
    // The peer reads as fast as kefu writes: each page it gets is taken off (and counted) before the next.
    const send = peer.send.bind(peer);
    peer.send = (data: string) => {
      send(data);
      for (const m of peer.take()) seen.add(m.id);
    };
    await hub.connect("agent1", peer);
    assert.equal(seen.size, USERS * PER_USER);
    const rssAfter = Deno.memoryUsage().rss;
    console.log(
      `RSS: ${(rssBefore / 2 ** 20).toFixed(0)} MB before, ${(rssWaiting / 2 ** 20).toFixed(0)} MB with 100,000 ` +
        `waiting, ${(rssAfter / 2 ** 20).toFixed(0)} MB after they were delivered`,
    );
    // Waiting messages are in the store, not in this process: memory does not grow with them.
    assert.ok(rssWaiting - rssBefore < 200 * 2 ** 20, "memory stays bounded while 100,000 messages wait");
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
