/**
 * The store decides, across node processes (issue 19; tests/hub/two_hubs_postgres_test.ts does it in one process):
 * six replies to one Official Account user from one agent's tabs on two nodes at once are five sent (WeChat's
 * 48-hour window allows five per user message; the simulator's WeChat API counts what reaches it), and two takes
 * of one queued user on two nodes at once have one winner (200) and one loser (409).
 */

import assert from "node:assert/strict";
import { createWebhookSender } from "../../src/simulator/webhook_sender.ts";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { eventually, startWechat } from "../helpers.ts";
import { Agent, allOnline, onlineOn, startNodes } from "./cluster_support.ts";

const APPID = "wx00000000000000c2";
const SECRET = "cluster-secret";
const TOKEN = "cluster-token";
const SEND_PATH = "/cgi-bin/message/custom/send";

Deno.test("cluster: the store decides across three node processes", async (t) => {
  await using pg = await startPostgres();
  await using db = await pg.createDatabase();
  await using redis = await startRedis();
  await using wechat = startWechat({ appId: APPID, appSecret: SECRET });
  await using nodes = await startNodes(3, { databaseUrl: db.url, redisUrl: redis.url }, {
    WECHAT_TOKEN: TOKEN,
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: SECRET,
    WECHAT_API_BASE: wechat.url,
  });
  const webhook = (node: number) =>
    createWebhookSender({ url: `${nodes[node].http}/wechat`, token: TOKEN, accountId: "gh_account" });

  await t.step("six replies to one user from tabs on two nodes at once: five sent, one refused", async () => {
    // One agent with a tab on n1 and one on n2 (the load balancer put them there).
    await using tab1 = new Agent("R");
    await using tab2 = new Agent("R");
    await tab1.connect(nodes[0]);
    await tab2.connect(nodes[1]);
    await allOnline(nodes, ["R"]);
    // The user writes once, through n3: WeChat opens its 48-hour window of five replies.
    const openid = "oSix";
    wechat.sim.recordInteraction(openid, "message");
    const r = await webhook(2).send(openid, { type: "text", content: "anyone there?" }, { msgId: "8000001" });
    assert.equal(r.status, "accepted", r.error);
    await eventually("both tabs got the message", () => tab1.got.has("8000001") && tab2.got.has("8000001"), 15_000);

    const ids = [0, 1, 2, 3, 4, 5].map((i) => `six-${i}`);
    for (const [i, id] of ids.entries()) {
      (i % 2 === 0 ? tab1 : tab2).socket!.send(JSON.stringify({
        data: { id, msg_type: "text", contact_id: openid, msg: { content: `answer ${i}` } },
        result: { code: 1001 },
      }));
    }
    // Each reply is answered to the tab that sent it: 103 (sent) or an error naming the closed window.
    const answered = () =>
      ids.filter((id) =>
        [tab1, tab2].some((x) =>
          x.events.some((e) => e.data?.id === id && (Number(e.result?.code) === 103 || e.data?.error !== undefined))
        )
      );
    await eventually("every reply was answered", () => answered().length === 6, 20_000);
    const sent = ids.filter((id) => [tab1, tab2].some((x) => x.withCode(103).some((e) => e.data.id === id)));
    const refused = [tab1, tab2].flatMap((x) => x.events.filter((e) => e.data?.error !== undefined));
    assert.equal(sent.length, 5, `five replies sent: ${sent.join(",")}`);
    assert.deepEqual(refused.map((e) => e.data.error), ["reply_window_closed"]);
    // WeChat got five, and was never asked for a sixth.
    assert.equal(wechat.sim.inbox(openid).length, 5);
    assert.equal(wechat.sim.calls(SEND_PATH), 5);
  });

  await t.step("two takes of one queued user on two nodes at once: one 200, one 409", async () => {
    // Nobody is online anywhere (the step before closed its tabs): the user waits in the queue.
    for (const node of nodes) {
      await eventually(
        `${node.id} sees nobody online`,
        async () => ![...(await onlineOn(node)).values()].some(Boolean),
      );
    }
    const openid = "oQueued";
    const r = await webhook(2).send(openid, { type: "text", content: "hello?" }, { msgId: "8000002" });
    assert.equal(r.status, "accepted", r.error);
    const queue = await (await fetch(`${nodes[0].http}/im_component/wx_official_account/queue?userid=X`)).json();
    assert.ok(queue.data.contacts.some((c: { contact_id: string }) => c.contact_id === openid), "the user is queued");
    const take = (node: number, agent: string) =>
      fetch(`${nodes[node].http}/im_component/wx_official_account/contacts/${openid}/take?userid=${agent}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      }).then(async (res) => ({ agent, status: res.status, body: await res.json() }));
    const outcomes = await Promise.all([take(0, "X"), take(1, "Y")]);
    assert.deepEqual(outcomes.map((o) => o.status).sort(), [200, 409], JSON.stringify(outcomes));
    const winner = outcomes.find((o) => o.status === 200)!;
    const loser = outcomes.find((o) => o.status === 409)!;
    assert.equal(winner.body.data.contact.agent_id, winner.agent);
    assert.match(JSON.stringify(loser.body), /taken|already|another/i, "the loser is told why");
    // Every node says the winner has the user.
    for (const node of nodes) {
      const res = await fetch(
        `${node.http}/im_component/wx_official_account/contacts/${openid}?userid=${winner.agent}`,
      );
      const body = await res.json();
      assert.equal(body.data.contact.agent_id, winner.agent, `${node.id} says ${winner.agent} has the user`);
    }
  });
});
