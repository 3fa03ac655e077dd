/**
 * The supervisor watching the team across nodes (issue 22): two kefu nodes on one PostgreSQL and one Redis, the
 * supervisor's socket on one, the agent's on the other. A user's message taken by the agent's node, the agent's reply
 * and an internal note written there all reach the supervisor on the other node (code 109, the watchers topic), the
 * note reaches the agent (108), and an assignment made on the supervisor's node moves the contact for the agent.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../../src/agents/auth/passwords.ts";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { AgentClient, eventually } from "../helpers.ts";
import { onlineOn, push, startNodes } from "./cluster_support.ts";

const BASE = "/im_component/wx_official_account";

Deno.test("cluster: a supervisor on one node watches an agent's conversation on another", async () => {
  await using pg = await startPostgres();
  await using db = await pg.createDatabase();
  await using redis = await startRedis();
  const dir = await Deno.makeTempDir({ prefix: "kefu_team_cluster_" });
  try {
    const hash = await hashPassword("not used: sign-in is off");
    await Deno.writeTextFile(
      `${dir}/kefu.json`,
      JSON.stringify({
        agents: [{ id: "sup", role: "supervisor", password_hash: hash }, { id: "A", password_hash: hash }, {
          id: "B",
          password_hash: hash,
        }],
      }),
    );
    await using nodes = await startNodes(2, { databaseUrl: db.url, redisUrl: redis.url }, {
      CONFIG_FILE: `${dir}/kefu.json`,
    });
    const [n1, n2] = nodes;
    await using sup = await AgentClient.open(`${n1.ws}${BASE}/msg?userid=sup&ack=1&watch=1`);
    await using a = await AgentClient.open(`${n2.ws}${BASE}/msg?userid=A&ack=1`);
    for (const node of nodes) {
      await eventually(`${node.id} sees sup and A online`, async () => {
        const online = await onlineOn(node);
        return online.get("sup") === true && online.get("A") === true;
      }, 15_000);
    }

    // The user's message, taken by A's node: A gets it, the supervisor on n1 watches it.
    assert.ok(await push(n2, "u1", "A", "w1"));
    assert.equal((await a.next(1001, 15_000)).data.id, "w1");
    const seen = await sup.next(109, 15_000);
    assert.deepEqual([seen.data.agent_id, seen.data.item.id, seen.data.item.direction], ["A", "w1", "in"]);

    // A note written on A's node: A hears it (108), the supervisor on n1 too (109).
    const res = await fetch(`${n2.http}${BASE}/contacts/u1/notes?userid=A`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ content: "需要主管确认" }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const note = (await res.json()).data.note;
    assert.equal((await a.next(108, 15_000)).data.id, note.id);
    const watchedNote = await sup.next(109, 15_000);
    assert.deepEqual([watchedNote.data.item.id, watchedNote.data.item.direction], [note.id, "note"]);

    // The supervisor assigns the contact on n1 to B: A (on n2) is told it left; the watchers see the transfer.
    const assigned = await fetch(`${n1.http}${BASE}/contacts/u1/assign?userid=sup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ to_agent_id: "B", from_agent_id: "A" }),
    });
    assert.equal(assigned.status, 200, await assigned.clone().text());
    await assigned.body?.cancel();
    const told = await a.next(106, 15_000);
    assert.deepEqual([told.data.action, told.data.from_agent_id, told.data.to_agent_id], ["transferred", "A", "B"]);
    const transfer = await sup.next(109, 15_000);
    assert.deepEqual([transfer.data.type, transfer.data.action, transfer.data.agent_id], [
      "contact",
      "transferred",
      "B",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
