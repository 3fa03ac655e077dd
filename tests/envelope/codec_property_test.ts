/** Property: whatever text arrives, a codec answers a Message or a typed KefuError, never another exception. */

import assert from "node:assert/strict";
import fc from "fast-check";
import { KefuError } from "../../src/core/errors.ts";
import { decodeEnvelope } from "../../src/envelope/codec.ts";
import { decodeXml } from "../../src/channels/wx_official/xml_codec.ts";

function messageOrKefuError(decode: () => unknown): void {
  try {
    const m = decode() as { id: unknown; contact: unknown; type: unknown };
    assert.equal(typeof m.id, "string");
    assert.equal(typeof m.contact, "string");
    assert.equal(typeof m.type, "string");
  } catch (e) {
    if (!(e instanceof KefuError)) throw e;
    assert.ok(e.status >= 400 && e.status < 500, `a 4xx: ${e.status}`);
  }
}

// Strings near the formats find more than random text: fragments of WeChat XML and of envelopes, mixed.
const xmlish = fc.array(
  fc.oneof(
    fc.constantFrom(
      "<xml>",
      "</xml>",
      "<ToUserName>",
      "</ToUserName>",
      "<FromUserName><![CDATA[oU]]></FromUserName>",
      "<MsgType>text</MsgType>",
      "<MsgType><![CDATA[event]]></MsgType>",
      "<Event>subscribe</Event>",
      "<CreateTime>1700000000</CreateTime>",
      "<CreateTime>x</CreateTime>",
      "<Content><![CDATA[",
      "]]>",
      "<MsgId>1</MsgId>",
      "<!DOCTYPE x>",
      "<!ENTITY a 'b'>",
      "&amp;",
      "&#0;",
      "\u0000",
      "\u001f",
      "<",
      ">",
    ),
    fc.string(),
  ),
  { maxLength: 12 },
).map((parts) => parts.join(""));

const jsonish = fc.oneof(
  fc.json(),
  fc.jsonValue().map((v) => JSON.stringify({ data: v })),
  fc.record({
    data: fc.record({
      id: fc.oneof(fc.string(), fc.integer(), fc.constant(null)),
      from_id: fc.oneof(fc.string(), fc.integer()),
      contact_id: fc.oneof(fc.string(), fc.constant(undefined)),
      msg_type: fc.oneof(fc.constantFrom("text", "image", "voice", "video", "enim", ""), fc.string(), fc.integer()),
      send_time: fc.oneof(fc.integer(), fc.string(), fc.double(), fc.constant(null)),
      msg: fc.oneof(fc.record({ content: fc.jsonValue(), media_path: fc.jsonValue() }), fc.jsonValue()),
    }, { requiredKeys: [] }),
    result: fc.oneof(fc.record({ code: fc.jsonValue() }), fc.jsonValue()),
  }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
  fc.string(),
);

Deno.test("property: decodeXml answers a Message or a KefuError for any input", () => {
  fc.assert(
    fc.property(fc.oneof(xmlish, fc.string(), fc.string({ unit: "grapheme" })), (text) => {
      messageOrKefuError(() => decodeXml(text));
    }),
    { numRuns: 3000 },
  );
});

Deno.test("property: decodeEnvelope answers a Message or a KefuError for any input, both directions", () => {
  fc.assert(
    fc.property(jsonish, fc.constantFrom("in" as const, "out" as const), (text, direction) => {
      messageOrKefuError(() => decodeEnvelope(text, { direction, agent: "a" }));
    }),
    { numRuns: 3000 },
  );
});
