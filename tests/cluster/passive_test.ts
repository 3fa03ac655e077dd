/**
 * Passive replies across three nodes on one PostgreSQL and one Redis (issue 19): WeChat's request is held by the node
 * that took it while the agent's socket is on another; the reply goes into the held request's answer once (not also
 * through the customer-service API), a retry of WeChat's reaching a third node carries it, with the holder killed
 * the reply goes in a retry's answer on another node or, with no retry, is refused with the reason (nothing sent),
 * and a draining holder leaves WeChat's request to be retried elsewhere.
 */

import assert from "node:assert/strict";
import { XMLParser } from "fast-xml-parser";
import { UPLOAD_PATH } from "../../src/envelope/protocol.ts";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { eventually, signedQuery, startWechat, wechatText } from "../helpers.ts";
import { Agent, type Node, onlineOn, startNodes } from "./cluster_support.ts";

const parser = new XMLParser({ parseTagValue: false });
const CUSTOM_SEND = "/cgi-bin/message/custom/send";
const WECHAT_GIVES_UP_MS = 3500;

/** Post a user's message to a node's webhook as WeChat does; the answer's text (rejects when dropped). */
async function webhook(node: Node, xml: string, signal?: AbortSignal): Promise<string> {
  const r = await fetch(`${node.http}/wechat${await signedQuery("tok")}`, { method: "POST", body: xml, signal });
  return await r.text();
}

/** The agent's reply to `contact` (the contact id of the message it got). */
function reply(agent: Agent, contact: string, id: string, content: string): void {
  agent.socket!.send(JSON.stringify({ data: { id, msg_type: "text", contact_id: contact, msg: { content } } }));
}

/** The contact id of the message the agent got from `openid` (after waiting for it). */
async function contactOf(agent: Agent, openid: string): Promise<string> {
  let contact = "";
  await eventually(`${agent.id} got ${openid}'s message`, () => {
    const e = agent.withCode(1001).find((x) => x.data.from_id === openid || x.data.contact_id?.includes(openid));
    contact = e?.data.contact_id ?? "";
    return contact !== "";
  }, 15_000);
  return contact;
}

Deno.test("cluster: passive replies across three nodes", async (t) => {
  await using pg = await startPostgres();
  await using db = await pg.createDatabase();
  await using redis = await startRedis();
  await using wechat = startWechat({ appId: "wx00000000000000c1", appSecret: "secret" });
  // WeChat waits 5 s per request; here a request held 3 s is presumed dropped (and WeChat, played by this test, drops
  // it at 3.5 s), and a user's requests are held 8 s.
  await using nodes = await startNodes(3, { databaseUrl: db.url, redisUrl: redis.url }, {
    WECHAT_TOKEN: "tok",
    WECHAT_APPID: "wx00000000000000c1",
    WECHAT_APPSECRET: "secret",
    WECHAT_API_BASE: wechat.url,
    WECHAT_REPLY_MODE: "passive",
    WECHAT_PASSIVE_HOLD_MS: "8000",
    WECHAT_PASSIVE_ATTEMPT_MS: "3000",
  });
  const [n1, n2, n3] = nodes;
  // The only agent, on n2: every user's message is its, whichever node takes it.
  await using agent = new Agent("A");
  await agent.connect(n2);
  for (const node of nodes) {
    await eventually(`${node.id} sees A online`, async () => (await onlineOn(node)).get("A") === true, 15_000);
  }

  await t.step("taken by n1, answered on n2: the reply is in n1's answer, once, not through the API", async () => {
    const answer = webhook(n1, wechatText("oU1", "在吗", "9001"));
    const contact = await contactOf(agent, "oU1");
    reply(agent, contact, "r1", "在的，请讲");
    const xml = parser.parse(await answer).xml;
    assert.deepEqual([xml.ToUserName, xml.MsgType, xml.Content], ["oU1", "text", "在的，请讲"]);
    await eventually(
      "the agent was told it went out passively",
      () => agent.withCode(103).some((e) => e.data.id === "r1"),
    );
    const ok = agent.withCode(103).filter((e) => e.data.id === "r1");
    assert.deepEqual(ok.map((e) => e.data.status), ["passive"], "confirmed once, as passive");
    assert.equal(wechat.sim.calls(CUSTOM_SEND), 0, "not also sent through the customer-service API");
    assert.deepEqual(agent.withCode(-1).filter((e) => e.data.id === "r1"), []);
  });

  await t.step("an image uploaded through n3, replied on n2, goes into n1's answer as WeChat's media", async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 4]);
    const up = await fetch(`${n3.http}${UPLOAD_PATH}?userid=A&filename=map.png`, {
      method: "POST",
      body: png,
      headers: { "content-type": "image/png" },
    });
    const mediaPath = (await up.json()).data.media_path as string;
    const answer = webhook(n1, wechatText("oU5", "where are you?", "9005"));
    const contact = await contactOf(agent, "oU5");
    agent.socket!.send(JSON.stringify({
      data: { id: "r5", msg_type: "image", contact_id: contact, msg: { media_path: mediaPath } },
    }));
    const xml = parser.parse(await answer).xml;
    assert.equal(xml.MsgType, "image");
    assert.deepEqual(wechat.sim.media(xml.Image.MediaId)?.bytes, png, "the answer names the uploaded file");
    await eventually("r5 confirmed", () => agent.withCode(103).some((e) => e.data.id === "r5"));
    assert.equal(wechat.sim.calls(CUSTOM_SEND), 0);
  });

  await t.step("WeChat's retry reaches n3 after n1's request was dropped: n3's answer carries the reply", async () => {
    const xml = wechatText("oU2", "hello?", "9002");
    // WeChat gives up on n1's request (5 s in real life; here 3.5 s, past the 3 s a request is presumed alive).
    await assert.rejects(webhook(n1, xml, AbortSignal.timeout(WECHAT_GIVES_UP_MS)));
    const contact = await contactOf(agent, "oU2");
    // The reply comes while no request is alive anywhere: it waits in the cluster for the retry.
    reply(agent, contact, "r2", "sorry, I was away");
    const retry = parser.parse(await webhook(n3, xml)).xml;
    assert.equal(retry.Content, "sorry, I was away");
    await eventually("the agent was told it went out", () => agent.withCode(103).some((e) => e.data.id === "r2"));
    assert.deepEqual(agent.withCode(103).filter((e) => e.data.id === "r2").map((e) => e.data.status), ["passive"]);
    // The message was accepted once (the retry is a duplicate) and nothing went through the API.
    assert.equal(agent.withCode(1001).filter((e) => e.data.msg?.content === "hello?").length, 1);
    assert.equal(wechat.sim.calls(CUSTOM_SEND), 0);
  });

  await t.step(
    "the holder killed: a retry on n3 carries the reply; without a retry it is refused, not lost",
    async () => {
      const xml = wechatText("oU3", "still there?", "9003");
      const held = webhook(n1, xml).catch((e) => e);
      const contact = await contactOf(agent, "oU3");
      const lone = webhook(n1, wechatText("oU4", "anyone?", "9004")).catch((e) => e);
      const loneContact = await contactOf(agent, "oU4");
      await n1.kill();
      assert.ok((await held) instanceof Error, "n1's held request died with it");
      assert.ok((await lone) instanceof Error);
      reply(agent, contact, "r3", "yes, here");
      reply(agent, loneContact, "r4", "nobody will carry this");
      // WeChat's retry of oU3's message (its request to n1 failed) reaches n3.
      const retry = parser.parse(await webhook(n3, xml)).xml;
      assert.equal(retry.Content, "yes, here");
      await eventually("r3 confirmed", () => agent.withCode(103).some((e) => e.data.id === "r3"), 15_000);
      // oU4's requests are held nowhere once the hold ends: the agent is told the reply did not go out.
      await eventually("r4 refused", () => agent.withCode(-1).some((e) => e.data.id === "r4"), 20_000);
      const refused = agent.withCode(-1).find((e) => e.data.id === "r4");
      assert.equal(refused.data.error, "passive_window_closed");
      assert.ok(!agent.withCode(103).some((e) => e.data.id === "r4"), "r4 was not also confirmed");
      assert.ok(!agent.withCode(-1).some((e) => e.data.id === "r3"), "r3 was not also refused");
      assert.equal(wechat.sim.calls(CUSTOM_SEND), 0);
    },
  );

  await t.step(
    "the holder drains (SIGTERM): it leaves WeChat's request unanswered, and the retry on n2 carries the reply",
    async () => {
      const xml = wechatText("oU6", "are you closing?", "9006");
      const first = webhook(n3, xml, AbortSignal.timeout(WECHAT_GIVES_UP_MS)).then((text) => text, (e) => e);
      const contact = await contactOf(agent, "oU6");
      const exit = n3.terminate();
      // Answered with nothing ("success"), WeChat would not retry: the draining node lets it give up instead.
      assert.ok((await first) instanceof Error, "n3 did not answer the request it held");
      reply(agent, contact, "r6", "no, n2 is here");
      const retry = parser.parse(await webhook(n2, xml)).xml;
      assert.equal(retry.Content, "no, n2 is here");
      await eventually("r6 confirmed", () => agent.withCode(103).some((e) => e.data.id === "r6"), 15_000);
      assert.equal(await exit, 0, "n3 drained and exited 0");
      assert.equal(wechat.sim.calls(CUSTOM_SEND), 0);
    },
  );
});
