import assert from "node:assert/strict";
import { AgentClient, agentUrl, eventually, getJson, post, SEED_XML, startService, userXml } from "./helpers.ts";

const SEND = "/im_component/wx_official_account/send";
const SEND_XML = "/im_component/wx_official_account/send_xml";
const CONTACTS = "/im_component/wx_official_account/contacts";

Deno.test("seed procedure: XML posted to /send reaches the agent on ws://HOST:PORT?userId=1 with subprotocol echo", async () => {
  await using t = await startService();
  await using agent = await AgentClient.open(`${t.ws}?userId=1`, "echo");
  assert.equal(agent.socket.protocol, "echo");
  const r = await post(`${t.http}/send`, SEED_XML);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, {
    data: { id: "19", status: "delivered", agent_id: "1", contact_id: "魏秀兰", sockets: 1 },
    result: { code: 0, message: "delivered" },
  });
  const e = await agent.next();
  assert.deepEqual(e, {
    data: {
      id: "19",
      name: "魏秀兰",
      avatar: "",
      msg_type: "enim",
      contact_id: "魏秀兰",
      company_id: "",
      send_time: Date.UTC(1976, 3, 10, 4, 21, 47) / 1000,
      msg: { content: "occaecat ut in fugiat dolor" },
    },
    result: { code: 1000, message: "common" },
  });
  // WeChat-style retry of the same MsgId: answered, not delivered twice.
  const again = await post(`${t.http}/send`, SEED_XML);
  assert.equal(again.body.data.status, "duplicate");
  assert.deepEqual(await agent.settle(), []);
});

Deno.test("agents connect on either path with either spelling of the query key; no subprotocol offered, none chosen", async () => {
  await using t = await startService();
  await using a = await AgentClient.open(`${t.ws}/im_component/wx_official_account/msg?userId=a`);
  await using b = await AgentClient.open(`${t.ws}/?userid=b`, ["x-first", "x-second"]);
  assert.equal(a.socket.protocol, "");
  assert.equal(b.socket.protocol, "x-first");
  await post(`${t.http}${SEND_XML}`, userXml("u1", "to a", { to: "a" }));
  await post(`${t.http}${SEND_XML}`, userXml("u2", "to b", { to: "b" }));
  assert.equal((await a.next(1001)).data.msg.content, "to a");
  assert.equal((await b.next(1001)).data.msg.content, "to b");
});

Deno.test("a 64-bit MsgId arrives unchanged, as a string", async () => {
  await using t = await startService();
  await using agent = await AgentClient.open(agentUrl(t, "1"));
  const r = await post(`${t.http}${SEND_XML}`, userXml("u", "big", { to: "1", id: "9223372036854775807" }));
  assert.equal(r.body.data.id, "9223372036854775807");
  const e = await agent.next(1001);
  assert.equal(e.data.id, "9223372036854775807");
});

Deno.test("JSON push: new users are split across online agents by fewest contacts, and stick", async () => {
  await using t = await startService();
  await using a = await AgentClient.open(agentUrl(t, "a"));
  await using b = await AgentClient.open(agentUrl(t, "b"));
  const push = (from: string, content: string) =>
    post(
      `${t.http}${SEND}`,
      JSON.stringify({
        data: { msg_type: "text", contact_id: "", from_id: from, msg: { content } },
        result: { code: 1001 },
      }),
      { "content-type": "application/json" },
    );
  const owners = [];
  for (const u of ["u1", "u2", "u3", "u4"]) owners.push((await push(u, `hi from ${u}`)).body.data.agent_id);
  assert.deepEqual(owners.toSorted(), ["a", "a", "b", "b"]);
  assert.equal((await push("u1", "again")).body.data.agent_id, owners[0]);
  const got = [...await a.settle(), ...await b.settle()];
  assert.equal(got.length, 5);
  const { body } = await getJson(`${t.http}${CONTACTS}?userid=a`);
  assert.equal(body.data.contacts.length, 2);
  assert.equal(body.data.online, true);
});

Deno.test("messages for an offline agent are held (202) and delivered in order when it connects", async () => {
  await using t = await startService();
  for (const [i, u] of ["u1", "u2", "u1"].entries()) {
    const r = await post(`${t.http}/send`, userXml(u, `held ${i}`, { to: "9" }));
    assert.equal(r.status, 202);
    assert.equal(r.body.data.status, "queued");
  }
  assert.equal((await getJson(`${t.http}/healthz`)).body.held, 3);
  await using agent = await AgentClient.open(agentUrl(t, "9"));
  const got = [await agent.next(1001), await agent.next(1001), await agent.next(1001)];
  assert.deepEqual(got.map((e) => e.data.msg.content), ["held 0", "held 1", "held 2"]);
  const { body } = await getJson(`${t.http}${CONTACTS}?userid=9`);
  assert.deepEqual(body.data.contacts.map((c: { contact_id: string }) => c.contact_id).sort(), ["u1", "u2"]);
  assert.equal(body.data.contacts[0].last_message_time, 1700000000);
  // Read once the backlog has left kefu for a socket without read receipts.
  await eventually("nothing held", async () => (await getJson(`${t.http}/healthz`)).body.held === 0);
});

Deno.test("two tabs of one agent both receive its messages", async () => {
  await using t = await startService();
  await using tab1 = await AgentClient.open(agentUrl(t, "7"));
  await using tab2 = await AgentClient.open(agentUrl(t, "7"));
  const r = await post(`${t.http}/send`, userXml("u", "both", { to: "7" }));
  assert.equal(r.body.data.sockets, 2);
  assert.equal((await tab1.next(1001)).data.msg.content, "both");
  assert.equal((await tab2.next(1001)).data.msg.content, "both");
});

Deno.test("agent replies: refused for others' contacts; to a pushed user no_route, never sent; bad frames get an error, socket stays open", async () => {
  await using t = await startService();
  await using a = await AgentClient.open(agentUrl(t, "a"));
  await using b = await AgentClient.open(agentUrl(t, "b"));
  await post(`${t.http}/send`, userXml("mine", "hello", { to: "a" }));
  await a.next(1001);
  const reply = (contact: string) => ({
    data: { id: `r-${contact}`, msg_type: "text", contact_id: contact, msg: { content: "您好" } },
    result: { code: 1001, message: "common" },
  });
  // The push is one-way: the reply is kept, marked failed, and the agent told why.
  a.send(reply("mine"));
  const unroutable = await a.next(-1);
  assert.equal(unroutable.data.error, "no_route");
  assert.equal(unroutable.data.id, "r-mine");
  assert.equal(unroutable.data.channel, "http_push");
  assert.match(unroutable.data.detail, /"mine".*no way back.*kept, not sent/);
  const history = await getJson(`${t.http}/im_component/wx_official_account/history?userid=a&contact_id=mine`);
  const kept = history.body.data.messages.find((m: { id: string }) => m.id === "r-mine");
  assert.equal(kept.state, "failed");
  b.send(reply("mine"));
  const refused = await b.next(-1);
  assert.equal(refused.data.error, "not_your_contact");
  assert.equal(refused.data.id, "r-mine");
  assert.match(refused.data.detail, /"mine"/);

  a.send("pong");
  const err = await a.next(-1);
  assert.equal(err.data.error, "invalid_envelope");
  assert.match(err.data.detail, /"pong"/);
  a.send("hello");
  assert.equal((await a.next(-1)).data.error, "invalid_envelope");
  a.send("{not json");
  assert.equal((await a.next(-1)).data.error, "invalid_json");
  a.send(JSON.stringify({ data: { msg_type: "text", contact_id: "mine", msg: { content: 5 } } }));
  assert.equal((await a.next(-1)).data.error, "wrong_type");
  a.send("ping");
  assert.deepEqual(await a.next(101), { data: {}, result: { code: 101, message: "heartbeat" } });
  // Still open and still routed to.
  await post(`${t.http}/send`, userXml("mine", "still here", { to: "a" }));
  assert.equal((await a.next(1001)).data.msg.content, "still here");
});

Deno.test("heartbeat envelopes arrive every HEARTBEAT_SECONDS", async () => {
  await using t = await startService({ HEARTBEAT_SECONDS: "1" });
  await using agent = await AgentClient.open(agentUrl(t, "h"));
  const t0 = Date.now();
  assert.deepEqual(await agent.next(101, 3000), { data: {}, result: { code: 101, message: "heartbeat" } });
  await agent.next(101, 3000);
  assert.ok(Date.now() - t0 >= 900, "two heartbeats cannot come within one interval");
});

Deno.test("a dead peer that never answers protocol pings is dropped after IDLE_TIMEOUT_SECONDS", async () => {
  await using t = await startService({ IDLE_TIMEOUT_SECONDS: "1" });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
  try {
    await conn.write(new TextEncoder().encode(
      "GET /im_component/wx_official_account/msg?userid=dead HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "Sec-WebSocket-Version: 13\r\n\r\n",
    ));
    const buf = new Uint8Array(4096);
    const first = await conn.read(buf);
    assert.match(new TextDecoder().decode(buf.subarray(0, first ?? 0)), /^HTTP\/1.1 101/);
    await waitFor(() => t.svc.hub.isOnline("dead"), 2000, "agent registered");
    // Read (and never answer) whatever comes until the server gives up on us.
    const deadline = Date.now() + 8000;
    let eof = false;
    while (!eof && Date.now() < deadline) {
      const n = await conn.read(buf).catch(() => null);
      eof = n === null;
    }
    assert.ok(eof, "the server should close a connection that never answers pings");
    await waitFor(() => !t.svc.hub.isOnline("dead"), 2000, "agent dropped");
  } finally {
    conn.close();
  }
});

Deno.test("shutdown closes agent sockets with 1001", async () => {
  const t = await startService();
  const agent = await AgentClient.open(agentUrl(t, "1"));
  await t.svc.shutdown();
  const e = await agent.closed;
  assert.equal(e.code, 1001);
  assert.equal(e.reason, "server shutting down");
});

Deno.test("the agent page is served at / and /static/*, nothing outside static/", async () => {
  await using t = await startService();
  const page = await fetch(`${t.http}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(await page.text(), /<html/i);
  for (const path of ["/static/../main.ts", "/static/%2e%2e/main.ts", "/static/nope.js", "/static/main.ts"]) {
    const r = await fetch(`${t.http}${path}`);
    assert.equal(r.status, 404, path);
    assert.equal((await r.json()).data.error, "not_found");
  }
});

async function waitFor(cond: () => boolean, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
