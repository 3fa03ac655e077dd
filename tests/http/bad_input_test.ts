import assert from "node:assert/strict";
import { AgentClient, agentUrl, getJson, post, SEED_XML, startService, userXml } from "../helpers.ts";

const SEND = "/im_component/wx_official_account/send";
const SEND_XML = "/im_component/wx_official_account/send_xml";

function assertError(
  r: { status: number; body: { data: { error: string; detail: string }; result: unknown } },
  status: number,
  kind: string,
  detail?: RegExp,
) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.data.error, kind);
  assert.deepEqual(r.body.result, { code: -1, message: "error" });
  assert.equal(typeof r.body.data.detail, "string");
  if (detail) assert.match(r.body.data.detail, detail);
}

Deno.test("bad HTTP input gets a 4xx JSON error that says what was wrong, and the service keeps working", async () => {
  await using t = await startService({ MAX_BODY_BYTES: "2048" });
  await using agent = await AgentClient.open(agentUrl(t, "1"));
  const cases: [string, BodyInit, number, string, RegExp?][] = [
    ["/send", "<xml><FromUserName>u</FromUserName>", 400, "invalid_xml", /line 1/],
    ["/send", '{"data":', 400, "invalid_json", /cannot parse JSON/],
    ["/send", "", 400, "empty_body"],
    ["/send", "  \n\t ", 400, "empty_body"],
    [SEND, "hello world", 415, "unsupported_body", /"hello world"/],
    ["/send", new Uint8Array([0, 159, 146, 150, 255, 1, 2]), 400, "invalid_utf8", /byte 0x9f at offset 1/],
    ["/send", userXml("u".repeat(1_000), "x"), 400, "wrong_type", /<FromUserName> is 1000 characters long/],
    [SEND_XML, `{"data":{}}`, 415, "unsupported_body", /WeChat XML/],
    [
      SEND,
      `{"data":{"msg_type":"text","contact_id":1,"from_id":"u","msg":{"content":"x"}}}`,
      400,
      "wrong_type",
      /contact_id/,
    ],
    [
      SEND,
      `{"data":{"msg_type":"text","contact_id":"1","from_id":"u","msg":{"content":"x"}},"result":{"code":1004}}`,
      400,
      "code_mismatch",
    ],
    [SEND, `[1,2,3]`, 400, "invalid_envelope"],
    [SEND_XML, "<xml><MsgType>text</MsgType></xml>", 400, "missing_field", /FromUserName/],
    [
      "/send",
      `<!DOCTYPE x [<!ENTITY a "b">]><xml><FromUserName>&a;</FromUserName><MsgType>text</MsgType></xml>`,
      400,
      "xml_doctype_forbidden",
    ],
    [
      "/send",
      `<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><xml><FromUserName>u</FromUserName><MsgType>text</MsgType></xml>`,
      400,
      "xml_doctype_forbidden",
    ],
    [
      "/send",
      "<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><CreateTime>soon</CreateTime></xml>",
      400,
      "invalid_time",
      /"soon"/,
    ],
    ["/send", `<xml><FromUserName>${"x".repeat(4096)}</FromUserName></xml>`, 413, "body_too_large", /2048 bytes/],
  ];
  for (const [path, body, status, kind, detail] of cases) {
    assertError(await post(`${t.http}${path}`, body), status, kind, detail);
  }
  // A chunked body (no Content-Length) over the limit is cut off too.
  const big = new TextEncoder().encode(userXml("u", "y".repeat(5000), { to: "1" }));
  const stream = new ReadableStream({
    start(c) {
      for (let i = 0; i < big.length; i += 1000) c.enqueue(big.subarray(i, i + 1000));
      c.close();
    },
  });
  assertError(await post(`${t.http}/send`, stream), 413, "body_too_large");

  // None of that reached the agent; a good message still does.
  assert.deepEqual((await agent.settle()).filter((e) => e.result.code !== 101), []);
  assert.equal((await post(`${t.http}/send`, SEED_XML)).status, 200);
  assert.equal((await agent.next()).data.id, "19");
});

Deno.test("wrong methods, paths and missing agent ids are JSON errors too", async () => {
  await using t = await startService();
  assertError(await getJson(`${t.http}/im_component/wx_official_account/msg?userid=1`), 426, "upgrade_required");
  assertError(await getJson(`${t.http}/im_component/wx_official_account/contacts`), 400, "missing_userid");
  assertError(await getJson(`${t.http}/im_component/wx_official_account/contacts?userid=%01`), 400, "invalid_userid");
  assertError(await getJson(`${t.http}/nope`), 404, "not_found", /GET "\/nope"/);
  // A path that exists with another method: 405, and Allow says which.
  const wrong = await fetch(`${t.http}/send`);
  assert.equal(wrong.headers.get("allow"), "POST");
  assertError(
    { status: wrong.status, body: await wrong.json() },
    405,
    "method_not_allowed",
    /GET \/send: it takes POST/,
  );
  const del = await fetch(`${t.http}/im_component/wx_official_account/contacts?userid=1`, { method: "DELETE" });
  assert.deepEqual([del.status, del.headers.get("allow")], [405, "GET, HEAD"]);
  await del.body?.cancel();
  // Someone else's contact, or none at all: 403 and 404, and the detail says what was being done.
  await post(`${t.http}/send`, userXml("theirs", "hi", { to: "2" }));
  const history = `${t.http}/im_component/wx_official_account/history?userid=1&contact_id=`;
  assertError(
    await getJson(`${history}theirs`),
    403,
    "not_your_contact",
    /cannot read the history of contact "theirs"/,
  );
  assertError(await getJson(`${history}nobody`), 404, "not_found", /no such contact/);
  // An upgrade without an agent id is refused before the upgrade.
  const res = await fetch(`${t.http}/im_component/wx_official_account/msg`, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  assertError({ status: res.status, body: await res.json() }, 400, "missing_userid");
  await assert.rejects(AgentClient.open(`${t.ws}/?nouser=1`));
  assert.equal((await getJson(`${t.http}/healthz`)).body.status, "ok");
});

Deno.test("a binary frame gets an error envelope and close 1003; nothing else is affected", async () => {
  await using t = await startService();
  await using other = await AgentClient.open(agentUrl(t, "2"));
  const agent = await AgentClient.open(agentUrl(t, "1"));
  agent.socket.send(new Uint8Array([1, 2, 3]));
  const err = await agent.next(-1);
  assert.equal(err.data.error, "binary_not_supported");
  const closed = await agent.closed;
  assert.equal(closed.code, 1003);
  assert.match(closed.reason, /binary/);
  await post(`${t.http}/send`, userXml("u", "fine", { to: "2" }));
  assert.equal((await other.next(1001)).data.msg.content, "fine");
});

Deno.test("a frame over MAX_WS_MESSAGE_BYTES gets an error envelope and close 1009; a huge one too", async () => {
  await using t = await startService({ MAX_WS_MESSAGE_BYTES: "2048" });
  for (const size of [2049, 4 * 1024 * 1024]) {
    const agent = await AgentClient.open(agentUrl(t, "1"));
    agent.send(JSON.stringify({ data: { msg_type: "text", contact_id: "u", msg: { content: "x".repeat(size) } } }));
    const err = await agent.next(-1);
    assert.equal(err.data.error, "message_too_big");
    assert.match(err.data.detail, /limit of 2048/);
    assert.equal((await agent.closed).code, 1009);
  }
  // Multi-byte text is measured in UTF-8 bytes: 700 × 3 bytes = 2100 > 2048.
  const agent = await AgentClient.open(agentUrl(t, "1"));
  agent.send("中".repeat(700));
  assert.equal((await agent.next(-1)).data.error, "message_too_big");
  assert.equal((await agent.closed).code, 1009);
  assert.equal((await getJson(`${t.http}/healthz`)).body.status, "ok");
});

Deno.test("no cap on waiting: 1,100 users writing while nobody is online are all accepted and reach the agent who connects", async () => {
  await using t = await startService();
  for (let i = 0; i < 1100; i++) {
    const r = await post(`${t.http}/send`, userXml(`u${i}`, `m${i}`, { id: String(1000 + i) }));
    assert.equal(r.status, 202, `message ${i}: ${JSON.stringify(r.body)}`);
  }
  assert.equal((await getJson(`${t.http}/healthz`)).body.held, 1100);
  await using agent = await AgentClient.open(`${agentUrl(t, "first")}&ack=1`);
  const ids = new Set<string>();
  for (let i = 0; i < 1100; i++) ids.add((await agent.next(1001)).data.id);
  assert.equal(ids.size, 1100);
});
