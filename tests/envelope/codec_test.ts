import assert from "node:assert/strict";
import fc from "fast-check";
import { KefuError } from "../../src/core/errors.ts";
import { decodeEnvelope, encodeEnvelope } from "../../src/envelope/codec.ts";
import { MAX_ID_LENGTH, type Message } from "../../src/core/message.ts";
import { codeForType, errorEnvelope, HEARTBEAT, sentEnvelope, systemEnvelope } from "../../src/envelope/protocol.ts";

// The seed's envelopes (seed 004 §1.1–1.4), comments removed, values as written.
const SEED = {
  system: {
    data: {
      id: "",
      name: "系统消息",
      avatar: "",
      msg_type: "system",
      contact_id: "system01",
      company_id: "",
      send_time: 1678688556,
      msg: {},
    },
    result: { code: "102", message: "common" },
  },
  text: {
    data: {
      id: "",
      name: "",
      avatar: "",
      msg_type: "text",
      contact_id: "",
      company_id: "",
      send_time: 1678688556,
      msg: { content: "" },
    },
    result: { code: 1001, message: "common" },
  },
  heartbeat: { data: {}, result: { code: 101, message: "heartbeat" } },
  error: { data: {}, result: { code: -1, message: "error" } },
};

function media(type: string, code: number) {
  return {
    data: { ...SEED.text.data, msg_type: type, msg: { media_path: "" } },
    result: { code, message: "common" },
  };
}

// Field names at every depth, in order: what "byte-for-byte field names" means.
function shape(v: unknown): unknown {
  if (v === null || typeof v !== "object") return typeof v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]));
}

function message(over: Partial<Message>): Message {
  return {
    id: "9223372036854775807",
    direction: "in",
    channel: "wx_official_account",
    contact: "oUser1",
    agent: "1",
    company: "c9",
    type: "text",
    content: "你好",
    media: "",
    sendTime: 1678688556,
    name: "魏秀兰",
    avatar: "http://a/1.png",
    ...over,
  };
}

function rejects(text: string, kind: string, pattern?: RegExp, direction: "in" | "out" = "in") {
  assert.throws(() => decodeEnvelope(text, { direction, agent: "1" }), (e) => {
    assert.ok(e instanceof KefuError, `expected KefuError, got ${e}`);
    assert.equal(e.kind, kind, e.message);
    if (pattern) assert.match(e.message, pattern);
    return true;
  }, text);
}

Deno.test("json: text/image/voice/video envelopes have the seed's field names, in order, and its codes", () => {
  const text = JSON.parse(encodeEnvelope(message({})));
  assert.deepEqual(shape(text), shape(SEED.text));
  assert.deepEqual(text, {
    data: {
      id: "9223372036854775807",
      name: "魏秀兰",
      avatar: "http://a/1.png",
      msg_type: "text",
      contact_id: "oUser1",
      company_id: "c9",
      send_time: 1678688556,
      msg: { content: "你好" },
    },
    result: { code: 1001, message: "common" },
  });
  for (const [type, code] of [["image", 1002], ["voice", 1003], ["video", 1004]] as const) {
    const e = JSON.parse(encodeEnvelope(message({ type, content: "", media: "http://m/1" })));
    assert.deepEqual(shape(e), shape(media(type, code)));
    assert.equal(e.result.code, code);
    assert.deepEqual(e.data.msg, { media_path: "http://m/1" });
  }
});

Deno.test("json: heartbeat and error envelopes are the seed's; errors say what was wrong in data", () => {
  assert.deepEqual(JSON.parse(HEARTBEAT), SEED.heartbeat);
  const err = JSON.parse(errorEnvelope("invalid_json", "cannot parse JSON"));
  assert.deepEqual(err.result, SEED.error.result);
  assert.deepEqual(err.data, { error: "invalid_json", detail: "cannot parse JSON" });
});

Deno.test("json: system envelopes have the seed's fields, contact system01 and an integer code 102", () => {
  const sys = JSON.parse(systemEnvelope("agent 2 joined", "c1"));
  assert.deepEqual(Object.keys(sys.data), Object.keys(SEED.system.data));
  assert.equal(sys.data.contact_id, "system01");
  assert.equal(sys.data.msg_type, "system");
  assert.equal(sys.data.name, "系统消息");
  assert.equal(sys.data.company_id, "c1");
  assert.deepEqual(sys.data.msg, { content: "agent 2 joined" });
  assert.deepEqual(sys.result, { code: 102, message: "common" });
});

Deno.test("json: a type the seed has no code for keeps its msg_type and gets code 1000", () => {
  const e = JSON.parse(encodeEnvelope(message({ type: "enim", content: "occaecat" })));
  assert.equal(e.data.msg_type, "enim");
  assert.deepEqual(e.data.msg, { content: "occaecat" });
  assert.equal(e.result.code, 1000);
  const both = JSON.parse(encodeEnvelope(message({ type: "shortvideo", content: "c", media: "m" })));
  assert.deepEqual(both.data.msg, { content: "c", media_path: "m" });
});

Deno.test("json: the seed §2.1 push exactly as written decodes: contact_id is the user, no agent named", () => {
  // Seed 004 §2.1, filled in, with no field the seed does not write.
  const seed = {
    data: { msg_type: "text", contact_id: "oUser", msg: { content: "this is a test" } },
    result: { code: 1001, message: "common" },
  };
  const m = decodeEnvelope(JSON.stringify(seed), { direction: "in" });
  assert.equal(m.direction, "in");
  assert.equal(m.contact, "oUser");
  assert.equal(m.to, undefined, "the contact list picks the agent");
  assert.equal(m.agent, "");
  assert.equal(m.name, "oUser");
  assert.equal(m.type, "text");
  assert.equal(m.content, "this is a test");
  assert.equal(m.channel, "", "the channel that decoded it names itself");
  assert.match(m.id, /^[0-9a-f-]{36}$/);
});

Deno.test("json: a push with from_id reads the other way: from_id is the user, contact_id the agent asked for", () => {
  const push = {
    data: { msg_type: "text", contact_id: "1", from_id: "oUser", msg: { content: "this is a test" } },
    result: { code: 1001, message: "common" },
  };
  const m = decodeEnvelope(JSON.stringify(push), { direction: "in" });
  assert.equal(m.contact, "oUser");
  assert.equal(m.to, "1");
  assert.equal(m.agent, "", "the hub sets the owner");
  // from_id with an empty contact_id: no agent asked for.
  const auto = decodeEnvelope(JSON.stringify({ ...push, data: { ...push.data, contact_id: "" } }), { direction: "in" });
  assert.equal(auto.contact, "oUser");
  assert.equal(auto.to, "");
});

Deno.test("json: ids are bounded to MAX_ID_LENGTH characters, the length quoted", () => {
  const long = "u".repeat(MAX_ID_LENGTH + 1);
  rejects(
    `{"data":{"msg_type":"text","contact_id":"${long}","msg":{"content":"x"}}}`,
    "wrong_type",
    /contact_id is 129/,
  );
  rejects(
    `{"data":{"msg_type":"text","contact_id":"1","from_id":"${long}","msg":{"content":"x"}}}`,
    "wrong_type",
    /from_id/,
  );
  rejects(
    `{"data":{"id":"${long}","msg_type":"text","contact_id":"1","msg":{"content":"x"}}}`,
    "wrong_type",
    /data\.id/,
  );
  const ok = "u".repeat(MAX_ID_LENGTH);
  assert.equal(
    decodeEnvelope(`{"data":{"msg_type":"text","contact_id":"${ok}","msg":{"content":"x"}}}`, { direction: "in" })
      .contact,
    ok,
  );
});

Deno.test("json: an agent's reply in the seed's own envelope decodes, contact_id = the user", () => {
  const reply = { ...SEED.text, data: { ...SEED.text.data, contact_id: "oUser", msg: { content: "您好" } } };
  const m = decodeEnvelope(JSON.stringify(reply), { direction: "out", agent: "1" });
  assert.equal(m.direction, "out");
  assert.equal(m.agent, "1");
  assert.equal(m.contact, "oUser");
  assert.equal(m.content, "您好");
  assert.equal(m.sendTime, 1678688556);
  const img = decodeEnvelope(
    JSON.stringify({
      ...media("image", 1002),
      data: { ...media("image", 1002).data, contact_id: "u", msg: { media_path: "MID" } },
    }),
    { direction: "out", agent: "1" },
  );
  assert.equal(img.type, "image");
  assert.equal(img.media, "MID");
});

Deno.test("json: ids stay strings; the type may come from result.code alone, as an integer or a string", () => {
  const m = decodeEnvelope(
    `{"data":{"id":"9223372036854775807","contact_id":"u","msg":{"media_path":"p"}},"result":{"code":"1003"}}`,
    { direction: "out", agent: "a" },
  );
  assert.equal(m.id, "9223372036854775807");
  assert.equal(m.type, "voice");
  const d = decodeEnvelope(
    `{"data":{"msg_type":"text","contact_id":"u","send_time":"1976-04-10 12:21:47","msg":{"content":"x"}}}`,
    { direction: "out", agent: "a" },
  );
  assert.equal(d.sendTime, Date.UTC(1976, 3, 10, 4, 21, 47) / 1000);
});

Deno.test("json: encode then decode keeps every field the envelope carries", () => {
  const m = message({ direction: "out", type: "image", content: "", media: "MID" });
  const back = decodeEnvelope(encodeEnvelope(m), { direction: "out", agent: m.agent });
  // The envelope does not carry the channel: the hub fills it in from the contact.
  assert.deepEqual(back, { ...m, channel: "" });
});

Deno.test("json: bad envelopes are typed errors that say what was wrong", () => {
  rejects("{", "invalid_json", /cannot parse JSON/);
  rejects("[]", "invalid_envelope", /array/);
  rejects("null", "invalid_envelope");
  rejects(`{"result":{"code":1001}}`, "invalid_envelope", /no "data"/);
  rejects(`{"data":"x"}`, "invalid_envelope", /data must be an object/);
  rejects(`{"data":{"contact_id":"1","from_id":"u","msg":{"content":"x"}}}`, "missing_field", /msg_type/);
  rejects(
    `{"data":{"msg_type":5,"contact_id":"1","from_id":"u"}}`,
    "wrong_type",
    /data\.msg_type must be a string, got number "5"/,
  );
  rejects(
    `{"data":{"msg_type":"text","contact_id":1,"from_id":"u","msg":{"content":"x"}}}`,
    "wrong_type",
    /contact_id/,
  );
  rejects(
    `{"data":{"msg_type":"text","contact_id":"1","from_id":"u","msg":"x"}}`,
    "wrong_type",
    /data\.msg must be an object/,
  );
  rejects(`{"data":{"msg_type":"text","contact_id":"1","from_id":"u","msg":{"content":7}}}`, "wrong_type", /content/);
  rejects(`{"data":{"msg_type":"text","contact_id":"1","from_id":"u","msg":{}}}`, "missing_field", /content/);
  rejects(
    `{"data":{"msg_type":"image","contact_id":"1","from_id":"u","msg":{"content":"x"}}}`,
    "missing_field",
    /media_path/,
  );
  rejects(`{"data":{"msg_type":"text","from_id":"","msg":{"content":"x"}}}`, "missing_field", /contact_id/);
  rejects(`{"data":{"msg_type":"text","msg":{"content":"x"}}}`, "missing_field", /contact_id/, "out");
  rejects(
    `{"data":{"msg_type":"text","contact_id":"1","from_id":"u","msg":{"content":"x"}},"result":{"code":1002}}`,
    "code_mismatch",
    /1002.*"text".*1001/,
  );
  rejects(
    `{"data":{"msg_type":"text","contact_id":"1","from_id":"u","msg":{"content":"x"}},"result":{"code":"abc"}}`,
    "wrong_type",
    /result\.code/,
  );
  rejects(
    `{"data":{"msg_type":"text","contact_id":"1","from_id":"u","msg":{"content":"x"}},"result":7}`,
    "wrong_type",
    /result must be an object/,
  );
  rejects(
    `{"data":{"msg_type":"text","contact_id":"1","from_id":"u","send_time":true,"msg":{"content":"x"}}}`,
    "wrong_type",
    /send_time/,
  );
  rejects(
    `{"data":{"msg_type":"text","contact_id":"1","from_id":"u","send_time":"soon","msg":{"content":"x"}}}`,
    "invalid_time",
    /send_time/,
  );
  rejects(
    `{"data":{"contact_id":"1","from_id":"u","msg":{"content":"x"}},"result":{"code":102}}`,
    "missing_field",
    /102 names no message type/,
  );
});

Deno.test("json: the reply confirmation names the reply and the contact", () => {
  assert.deepEqual(JSON.parse(sentEnvelope("r1", "oUser", 5)), {
    data: { id: "r1", contact_id: "oUser", send_time: 5, status: "sent" },
    result: { code: 103, message: "sent" },
  });
});

Deno.test("json: encodeEnvelope writes the same bytes as stringifying the envelope object", () => {
  const text = fc.oneof(
    fc.string(),
    fc.string({ unit: "binary", maxLength: 8 }),
    fc.constantFrom("", "\ud800", 'a"b\\c\n\u2028\u0000', "系统消息"),
  );
  const type = fc.constantFrom("text", "image", "voice", "event", "location", "enim", "constructor", "__proto__");
  const time = fc.oneof(fc.nat(), fc.constantFrom(-0, 1.5, 1e21, Number.NaN, Infinity));
  const msg = fc.record({
    id: text,
    name: text,
    avatar: text,
    contact: text,
    company: text,
    content: text,
    media: text,
  })
    .chain((m) => fc.record({ type, sendTime: time }).map((t) => message({ ...m, ...t })));
  fc.assert(
    fc.property(msg, (m) => {
      const out = encodeEnvelope(m);
      const event = m.type === "event";
      const expected = {
        data: {
          id: m.id,
          name: event ? "系统消息" : m.name,
          avatar: event ? "" : m.avatar,
          msg_type: event ? "system" : m.type,
          contact_id: event ? "system01" : m.contact,
          company_id: m.company,
          send_time: m.sendTime,
          // msgBody's own output, unchanged by the rewrite, except text's, written out now.
          msg: m.type === "text" ? { content: m.content } : JSON.parse(out).data.msg,
        },
        result: { code: codeForType(m.type), message: "common" },
      };
      assert.equal(out, JSON.stringify(expected));
    }),
    { numRuns: 3000 },
  );
  // Not a well-formed Message at run time: still what stringifying the object gives.
  const odd = { ...message({}), company: undefined, sendTime: undefined } as unknown as Message;
  assert.equal(
    encodeEnvelope(odd),
    '{"data":{"id":"9223372036854775807","name":"魏秀兰","avatar":"http://a/1.png","msg_type":"text",' +
      '"contact_id":"oUser1","msg":{"content":"你好"}},"result":{"code":1001,"message":"common"}}',
  );
});
