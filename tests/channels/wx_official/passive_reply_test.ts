/** Passive mode through the real service: WeChat's request is held and the agent's reply goes in its answer. */

import assert from "node:assert/strict";
import { XMLParser } from "fast-xml-parser";
import { AgentClient, agentUrl, signedQuery, startService, wechatText } from "../../helpers.ts";

const parser = new XMLParser({ parseTagValue: false });

// attemptMs plays WeChat's 5-second timeout: a request held longer is presumed dropped.
async function passiveService(holdMs: number, attemptMs = 2000) {
  return await startService({
    WECHAT_TOKEN: "tok",
    WECHAT_REPLY_MODE: "passive",
    WECHAT_PASSIVE_HOLD_MS: String(holdMs),
    WECHAT_PASSIVE_ATTEMPT_MS: String(attemptMs),
  });
}

async function push(http: string, xml: string, signal?: AbortSignal): Promise<string> {
  const r = await fetch(`${http}/wechat${await signedQuery("tok")}`, { method: "POST", body: xml, signal });
  return await r.text();
}

function text(contact: string, content: string, id: string) {
  return { data: { id, msg_type: "text", contact_id: contact, msg: { content } }, result: { code: 1001 } };
}

Deno.test("passive: the agent's reply goes out in the answer to WeChat's request", async () => {
  await using t = await passiveService(3000);
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const answer = push(t.http, wechatText("oP1", "在吗", "8001"));
  assert.equal((await agent.next(1001)).data.msg.content, "在吗");
  agent.send(text("oP1", "在的，请讲", "p1"));
  const xml = parser.parse(await answer).xml;
  assert.deepEqual([xml.ToUserName, xml.FromUserName, xml.MsgType, xml.Content], [
    "oP1",
    "gh_account",
    "text",
    "在的，请讲",
  ]);
  const ok = await agent.next(103);
  assert.deepEqual([ok.data.id, ok.data.status], ["p1", "passive"]);
});

Deno.test("passive: a reply that comes after WeChat dropped its request goes out in the retry", async () => {
  await using t = await passiveService(3000, 150);
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const xml = wechatText("oP2", "hello", "8002");
  // WeChat gives up on a request (5 s in real life) and sends the same message again.
  await assert.rejects(push(t.http, xml, AbortSignal.timeout(200)));
  await agent.next(1001);
  agent.send(text("oP2", "sorry, I was away", "p2"));
  const retry = parser.parse(await push(t.http, xml)).xml;
  assert.equal(retry.Content, "sorry, I was away");
  assert.equal((await agent.next(103)).data.status, "passive");
  // The retry was a duplicate: the agent saw the message once.
  assert.deepEqual((await agent.settle()).filter((e) => e.result.code === 1001), []);
});

Deno.test("passive: no reply in time answers success; a late reply is refused with the reason", async () => {
  await using t = await passiveService(300);
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const started = Date.now();
  assert.equal(await push(t.http, wechatText("oP3", "anyone?", "8003")), "success");
  assert.ok(Date.now() - started >= 250, "the request was held for the reply");
  await agent.next(1001);
  agent.send(text("oP3", "too late", "p3"));
  const err = await agent.next(-1);
  assert.deepEqual([err.data.error, err.data.id], ["passive_window_closed", "p3"]);
  assert.match(err.data.detail, /passively/);
  // One reply per message: the second is refused while the first waits.
  const answer = push(t.http, wechatText("oP3", "again", "8004"));
  await agent.next(1001);
  agent.send(text("oP3", "one", "p4"));
  agent.send(text("oP3", "two", "p5"));
  assert.equal(parser.parse(await answer).xml.Content, "one");
  assert.equal((await agent.next(103)).data.id, "p4");
  assert.deepEqual([(await agent.next(-1)).data.id], ["p5"]);
});
