/**
 * Agent dialects: the seed 004 envelope byte for byte as before the split, the
 * choice of dialect per socket, and a dialect registered by a test that needs
 * nothing but its own module and its registration.
 */

import assert from "node:assert/strict";
import { start } from "../../main.ts";
import { type AgentDialect, selectDialect } from "../../src/agents/dialect.ts";
import { seed004 } from "../../src/agents/dialects/seed004.ts";
import { parseConfig } from "../../src/config/config.ts";
import { KefuError } from "../../src/core/errors.ts";
import type { Message } from "../../src/core/message.ts";
import { encodeEnvelope } from "../../src/envelope/codec.ts";
import { errorEnvelope, HEARTBEAT, sentEnvelope, systemEnvelope, typingEnvelope } from "../../src/envelope/protocol.ts";
import { AgentClient, post, userXml } from "../helpers.ts";

const M: Message = {
  id: "42",
  direction: "in",
  channel: "wx_official_account",
  contact: "oUser",
  agent: "a1",
  company: "c1",
  type: "text",
  content: "你好",
  media: "",
  sendTime: 1700000000,
  name: "Ann",
  avatar: "",
};

Deno.test("seed004 dialect: every event encodes to the envelope the seed protocol had before dialects", () => {
  assert.equal(seed004.encode({ kind: "message", message: M }), encodeEnvelope(M));
  assert.equal(seed004.encode({ kind: "heartbeat" }), HEARTBEAT);
  assert.equal(
    seed004.encode({ kind: "reply_status", id: "r1", contact: "oUser", sendTime: 5, status: "sent" }),
    sentEnvelope("r1", "oUser", 5, "sent"),
  );
  assert.equal(
    seed004.encode({ kind: "typing", contact: "oUser", status: "skipped", detail: "no" }),
    typingEnvelope("oUser", "skipped", "no"),
  );
  assert.equal(
    seed004.encode({ kind: "error", error: "no_route", detail: "d", data: { id: "r1" } }),
    errorEnvelope("no_route", "d", { id: "r1" }),
  );
  assert.equal(JSON.parse(seed004.encode({ kind: "notice", content: "hi" })).data.msg.content, "hi");
  assert.equal(
    JSON.parse(seed004.encode({ kind: "notice", content: "hi" })).result.code,
    JSON.parse(systemEnvelope("hi")).result.code,
  );
  // The backlog is one envelope per message, as live.
  assert.deepEqual(seed004.backlog([M, { ...M, id: "43" }]), [encodeEnvelope(M), encodeEnvelope({ ...M, id: "43" })]);
});

Deno.test("seed004 dialect: frames decode to commands; bad ones are typed errors carrying the reply's id", () => {
  assert.deepEqual(seed004.decode(" ping ", "a1"), { kind: "ping" });
  assert.deepEqual(seed004.decode(`{"event":3,"data":{"msg_id":7}}`, "a1"), {
    kind: "ack",
    refs: [{ contact: "", id: "7" }],
  });
  assert.deepEqual(seed004.decode(`{"data":{"msg_type":"ack","contact_id":"u","ids":["1","2"]}}`, "a1"), {
    kind: "ack",
    refs: [{ contact: "u", id: "1" }, { contact: "u", id: "2" }],
  });
  assert.deepEqual(seed004.decode(`{"data":{"msg_type":"typing","contact_id":"u"}}`, "a1"), {
    kind: "typing",
    contact: "u",
  });
  const reply = seed004.decode(`{"data":{"id":"r1","msg_type":"text","contact_id":"u","msg":{"content":"x"}}}`, "a1");
  assert.equal(reply.kind, "reply");
  if (reply.kind === "reply") assert.deepEqual([reply.message.agent, reply.message.contact], ["a1", "u"]);
  assert.throws(
    () => seed004.decode(`{"data":{"id":"r2","msg_type":"text","contact_id":"u","msg":{"content":5}}}`, "a1"),
    (e) => e instanceof KefuError && e.kind === "wrong_type" && e.data?.id === "r2",
  );
  assert.throws(() => seed004.decode("pong", "a1"), (e) => e instanceof KefuError && e.kind === "invalid_envelope");
});

// A dialect of plain lines, "contact: text" out and "contact: text" in: nothing but this and its registration.
const lines: AgentDialect = {
  name: "lines",
  paths: ["/lines"],
  acks: false,
  encode: (e) => e.kind === "message" ? `${e.message.contact}: ${e.message.content}` : `* ${e.kind}`,
  backlog: (ms) => ms.map((m) => `${m.contact}: ${m.content}`),
  decode(text, agent) {
    const [contact, ...rest] = text.split(": ");
    return {
      kind: "reply",
      message: {
        id: crypto.randomUUID(),
        direction: "out",
        channel: "",
        contact,
        agent,
        company: "",
        type: "text",
        content: rest.join(": "),
        media: "",
        sendTime: Math.floor(Date.now() / 1000),
        name: contact,
        avatar: "",
      },
    };
  },
};

Deno.test("dialects: a socket speaks the dialect of its path, of ?dialect=, or the default", () => {
  const all = [seed004, lines];
  const pick = (url: string) => selectDialect(all, new URL(url)).name;
  assert.equal(pick("ws://h/im_component/wx_official_account/msg?userid=1"), "seed004");
  assert.equal(pick("ws://h/?userId=1"), "seed004");
  assert.equal(pick("ws://h/lines?userid=1"), "lines");
  assert.equal(pick("ws://h/?userid=1&dialect=lines"), "lines");
  assert.throws(() => pick("ws://h/?dialect=nope"), (e) => e instanceof KefuError && e.kind === "unknown_dialect");
});

Deno.test("dialects: a dialect registered at start speaks to agents on its own path, beside the seed's", async () => {
  const config = parseConfig({ PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "silent", STORE: "memory" });
  const svc = await start(config, { dialects: [lines] });
  try {
    const http = `http://127.0.0.1:${svc.port}`;
    await using plain = await AgentClient.open(`ws://127.0.0.1:${svc.port}/lines?userid=a1`);
    await using seed = await AgentClient.open(`ws://127.0.0.1:${svc.port}/?userid=a1`);
    const got = new Promise<string>((resolve) =>
      plain.socket.addEventListener("message", (e) => resolve(e.data), { once: true })
    );
    await post(`${http}/send`, userXml("u1", "hello", { to: "a1" }));
    assert.equal(await got, "u1: hello");
    assert.equal((await seed.next(1001)).data.msg.content, "hello", "the same message, in the seed's envelope");
    // The reply comes back through the same accept/reply path: the push has no way back, said in the dialect.
    const answer = new Promise<string>((resolve) =>
      plain.socket.addEventListener("message", (e) => resolve(e.data), { once: true })
    );
    plain.send("u1: hi there");
    assert.equal(await answer, "* error");
  } finally {
    await svc.shutdown();
  }
});
