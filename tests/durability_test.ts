/**
 * Nothing accepted is lost: the real service on a real SQLite file, restarted,
 * with agents that acknowledge (or not), stall, and page their history.
 */

import assert from "node:assert/strict";
import { AgentClient, agentUrl, eventually, getJson, post, signedQuery, startService, wechatText } from "./helpers.ts";

async function tempDir(): Promise<string & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "kefu-durable-" });
  return Object.assign(path, { [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) }) as
    & string
    & AsyncDisposable;
}

function ack(contact: string, ids: string[]) {
  return { data: { msg_type: "ack", contact_id: contact, ids }, result: { code: 105, message: "ack" } };
}

async function pushWechat(http: string, openid: string, content: string, id: string): Promise<string> {
  const r = await fetch(`${http}/wechat${await signedQuery("tok")}`, {
    method: "POST",
    body: wechatText(openid, content, id),
  });
  return await r.text();
}

Deno.test("durable: messages held for an offline agent arrive after a restart", async () => {
  await using dir = await tempDir();
  const env = { DATA_DIR: String(dir), WECHAT_TOKEN: "tok" };
  {
    await using t = await startService(env);
    // The agent is known (it owned the user) but offline when the messages come.
    await using a = await AgentClient.open(`${agentUrl(t, "a1")}&ack=1`);
    assert.equal(await pushWechat(t.http, "oU1", "first", "9001"), "success");
    assert.equal((await a.next(1001)).data.id, "9001");
    a.send(ack("oU1", ["9001"]));
    await a.close();
    for (const [i, text] of ["while", "you", "were", "away"].entries()) {
      assert.equal(await pushWechat(t.http, "oU1", text, `910${i}`), "success");
    }
    assert.equal((await getJson(`${t.http}/healthz`)).body.held, 4);
  }
  await using t = await startService(env);
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  const got = [];
  for (let i = 0; i < 4; i++) got.push((await a.next(1001)).data.msg.content);
  assert.deepEqual(got, ["while", "you", "were", "away"]);
  // The acknowledged one did not come back; WeChat's retry of an old MsgId is still a duplicate after the restart.
  assert.equal(await pushWechat(t.http, "oU1", "first", "9001"), "success");
  assert.deepEqual((await a.settle()).filter((e) => e.result.code === 1001), []);
});

Deno.test("durable: an agent that disconnects before acknowledging gets exactly the unacknowledged again", async () => {
  await using t = await startService();
  const first = await AgentClient.open(`${agentUrl(t, "a1")}&ack=1`);
  for (let i = 1; i <= 5; i++) {
    assert.equal(
      (await post(
        `${t.http}/send`,
        JSON.stringify({
          data: { id: `m${i}`, from_id: "oU2", contact_id: "a1", msg_type: "text", msg: { content: `n${i}` } },
        }),
      )).status,
      200,
    );
  }
  for (let i = 1; i <= 5; i++) assert.equal((await first.next(1001)).data.id, `m${i}`);
  first.send(ack("oU2", ["m1", "m3"]));
  // seed 003's read receipt, by id alone.
  first.send({ event: 3, data: { msg_id: "m5" } });
  // A bad receipt is answered; a good one is not.
  first.send({ data: { msg_type: "ack", contact_id: "oU2", ids: [] } });
  assert.equal((await first.next(-1)).data.error, "missing_field");
  assert.deepEqual(await first.settle(), []);
  // Receipts are kept as they come, not in line with the socket's close: a receipt still being written when the agent
  // reconnects brings its message again (at least once). Here they are kept before the reconnect.
  await eventually("the receipts kept", async () => {
    const c = (await getJson(`${t.http}/im_component/wx_official_account/contacts?userid=a1`)).body;
    return c.data.contacts[0]?.unread === 2;
  });
  await first.close();
  await using again = await AgentClient.open(`${agentUrl(t, "a1")}&ack=1`);
  assert.deepEqual([(await again.next(1001)).data.id, (await again.next(1001)).data.id], ["m2", "m4"]);
  assert.deepEqual((await again.settle()).filter((e) => e.result.code !== 101), []);
  const contacts = (await getJson(`${t.http}/im_component/wx_official_account/contacts?userid=a1`)).body;
  assert.equal(contacts.data.contacts[0].unread, 2, "m5's receipt named no contact and still counts: m2, m4 are left");
});

Deno.test("durable: history pages a conversation, both directions, newest first", async () => {
  await using t = await startService();
  await using a = await AgentClient.open(agentUrl(t, "a1"));
  for (let i = 1; i <= 5; i++) {
    const r = await post(
      `${t.http}/send`,
      JSON.stringify({
        data: { id: `h${i}`, from_id: "oH", contact_id: "a1", msg_type: "text", msg: { content: `q${i}` } },
      }),
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await a.next(1001).catch((e) => {
      throw new Error(`${e} after ${JSON.stringify(r.body)}`);
    });
  }
  a.send({ data: { id: "r1", msg_type: "text", contact_id: "oH", msg: { content: "answer" } } });
  // A pushed user has no way back: the reply is kept as failed (no_route), and pages like any message.
  assert.equal((await a.next(-1)).data.error, "no_route");
  const url = `${t.http}/im_component/wx_official_account/history?userid=a1&contact_id=oH`;
  const page1 = (await getJson(`${url}&limit=3`)).body.data;
  assert.deepEqual(page1.messages.map((m: { id: string }) => m.id), ["r1", "h5", "h4"]);
  assert.deepEqual([page1.messages[0].direction, page1.messages[0].state], ["out", "failed"]);
  assert.equal(page1.messages[1].msg.content, "q5");
  assert.equal(page1.has_more, true);
  const page2 = (await getJson(`${url}&limit=3&before=h4`)).body.data;
  assert.deepEqual(page2.messages.map((m: { id: string }) => m.id), ["h3", "h2", "h1"]);
  assert.equal(page2.has_more, false);
  // Someone else's conversation, a bad limit, an unknown `before`: clear errors.
  assert.equal((await getJson(`${url.replace("a1", "a2")}`)).body.data.error, "not_your_contact");
  assert.equal((await getJson(`${url}&limit=0`)).status, 400);
  assert.equal((await getJson(`${url}&before=nope`)).status, 404);
});

Deno.test("durable: a socket that never reads is closed (4001) and loses nothing; memory stays bounded", async () => {
  await using t = await startService({ MAX_BUFFERED_BYTES: "262144", MAX_BODY_BYTES: "131072" });
  // A raw WebSocket client that completes the handshake and then never reads a byte. It asked for read receipts
  // (ack=1): what sits unread in the kernel's buffers when it is closed is not lost either.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
  const key = btoa("0123456789abcdef");
  await conn.write(new TextEncoder().encode(
    `GET /im_component/wx_official_account/msg?userid=stall&ack=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const head = new Uint8Array(1024);
  assert.match(new TextDecoder().decode(head.subarray(0, (await conn.read(head)) ?? 0)), /101 Switching/);
  const big = "x".repeat(60_000);
  const ids: string[] = [];
  let closedAt = -1;
  for (let i = 0; i < 400 && closedAt < 0; i++) {
    const id = `s${i}`;
    const r = await post(
      `${t.http}/send`,
      JSON.stringify({
        data: { id, from_id: "oStall", contact_id: "stall", msg_type: "text", msg: { content: `${i} ${big}` } },
      }),
    );
    assert.ok(r.status === 200 || r.status === 202, `accepted: ${r.status}`);
    ids.push(id);
    if (!t.svc.hub.isOnline("stall")) closedAt = i;
  }
  assert.ok(closedAt > 0, "the stalled socket was closed before 400 messages of 60 KB (24 MB)");
  conn.close();
  // A reader gets every accepted message, in order.
  await using reader = await AgentClient.open(agentUrl(t, "stall"));
  const got: string[] = [];
  while (got.length < ids.length) got.push((await reader.next(1001)).data.id);
  assert.deepEqual(got, ids);
});
