import assert from "node:assert/strict";
import { KefuError } from "../../../src/core/errors.ts";
import type { Message } from "../../../src/core/message.ts";
import { decodeXml, encodeReplyXml, encodeXml } from "../../../src/channels/wx_official/xml_codec.ts";
import { MAX_ID_LENGTH } from "../../../src/core/message.ts";
import { SEED_XML } from "../../helpers.ts";

function rejects(text: string, kind: string, pattern?: RegExp) {
  assert.throws(() => decodeXml(text), (e) => {
    assert.ok(e instanceof KefuError, `expected KefuError, got ${e}`);
    assert.equal(e.kind, kind);
    assert.equal(e.status, 400);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("xml: the seed's test message decodes with its unknown type, date CreateTime and extra fields", () => {
  const m = decodeXml(SEED_XML);
  assert.equal(m.id, "19");
  assert.equal(m.direction, "in");
  assert.equal(m.channel, "", "the channel that decoded it names itself");
  assert.equal(m.to, "1", "ToUserName: whom the source addressed");
  assert.equal(m.agent, "", "the hub sets the owner");
  assert.equal(m.contact, "魏秀兰");
  assert.equal(m.name, "魏秀兰");
  assert.equal(m.type, "enim");
  assert.equal(m.content, "occaecat ut in fugiat dolor");
  assert.equal(m.media, "");
  // 1976-04-10 12:21:47 Beijing time (UTC+08:00).
  assert.equal(m.sendTime, Date.UTC(1976, 3, 10, 4, 21, 47) / 1000);
  assert.deepEqual(m.extra, { MsgDataId: "27", Idx: "74" });
});

Deno.test("xml: the decoded message keeps no copy of the source text, and leaves the channel to its caller", () => {
  const m = decodeXml(SEED_XML);
  assert.equal("raw" in m, false, "nothing reads Message.raw: the decoder must not keep the source");
  assert.equal(m.channel, "");
  // One argument: no `channel` or `keepRaw` option (the caller sets the channel on the message).
  assert.equal(decodeXml.length, 1);
});

Deno.test("xml: the seed's §2.2 text message with CDATA and epoch CreateTime", () => {
  const m = decodeXml(`<xml>
  <ToUserName><![CDATA[toUser]]></ToUserName>
  <FromUserName><![CDATA[fromUser]]></FromUserName>
  <CreateTime>1348831860</CreateTime>
  <MsgType><![CDATA[text]]></MsgType>
  <Content><![CDATA[this is a test]]></Content>
  <MsgId>1234567890123456</MsgId>
</xml>`);
  assert.equal(m.to, "toUser");
  assert.equal(m.contact, "fromUser");
  assert.equal(m.type, "text");
  assert.equal(m.content, "this is a test");
  assert.equal(m.sendTime, 1348831860);
  assert.equal(m.id, "1234567890123456");
});

Deno.test("xml: a 64-bit MsgId and numeric-looking content stay strings, unchanged", () => {
  const m = decodeXml(
    "<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>007</Content><MsgId>9223372036854775807</MsgId><Idx>0012</Idx></xml>",
  );
  assert.equal(m.id, "9223372036854775807");
  assert.equal(m.content, "007");
  assert.equal(m.extra?.Idx, "0012");
});

Deno.test("xml: content keeps its whitespace, entities and control characters", () => {
  const m = decodeXml(
    "<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content><![CDATA[  a\u0001b <tag> ]]></Content></xml>",
  );
  assert.equal(m.content, "  a\u0001b <tag> ");
  const e = decodeXml(
    "<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>a &lt;&amp;&gt; b</Content></xml>",
  );
  assert.equal(e.content, "a <&> b");
});

Deno.test("xml: media messages carry PicUrl or MediaId as the media reference", () => {
  const img = decodeXml(
    "<xml><FromUserName>u</FromUserName><MsgType>image</MsgType><PicUrl>http://x/p.jpg</PicUrl><MediaId>m1</MediaId><MsgId>5</MsgId></xml>",
  );
  assert.equal(img.media, "http://x/p.jpg");
  assert.equal(img.extra?.MediaId, "m1");
  const voice = decodeXml(
    "<xml><FromUserName>u</FromUserName><MsgType>voice</MsgType><MediaId>v1</MediaId><Format>amr</Format></xml>",
  );
  assert.equal(voice.media, "v1");
  assert.equal(voice.extra?.Format, "amr");
});

Deno.test("xml: missing CreateTime means now; missing MsgId gets a generated id", () => {
  const before = Math.floor(Date.now() / 1000);
  const m = decodeXml("<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>x</Content></xml>");
  assert.ok(m.sendTime >= before && m.sendTime <= before + 2);
  assert.match(m.id, /^[0-9a-f-]{36}$/);
});

Deno.test("xml: bad input is a typed error that says what was wrong", () => {
  rejects("<xml><FromUserName>u</FromUserName", "invalid_xml", /line 1/);
  rejects("<xml><A>1</B></xml>", "invalid_xml");
  // Elements left open: named in a sentence, not the validator's JSON array (issue 20).
  rejects("<xml><bad>", "invalid_xml", /^cannot parse XML: the elements <xml>, <bad> are opened and never closed$/);
  rejects("hello", "invalid_xml");
  rejects("", "invalid_xml");
  rejects("<root><FromUserName>u</FromUserName></root>", "invalid_xml", /<xml>/);
  rejects("<xml/>", "invalid_xml");
  rejects("<xml><MsgType>text</MsgType></xml>", "missing_field", /FromUserName/);
  rejects("<xml><FromUserName>u</FromUserName></xml>", "missing_field", /MsgType/);
  rejects(
    "<xml><FromUserName>u</FromUserName><FromUserName>v</FromUserName><MsgType>text</MsgType></xml>",
    "wrong_type",
    /FromUserName.*2 elements/,
  );
  rejects(
    "<xml><FromUserName><a>u</a></FromUserName><MsgType>text</MsgType></xml>",
    "wrong_type",
    /nested/,
  );
  rejects(
    "<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><CreateTime>yesterday</CreateTime></xml>",
    "invalid_time",
    /"yesterday"/,
  );
});

Deno.test("xml: DOCTYPE and ENTITY declarations are refused before parsing (no entity expansion)", () => {
  const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<xml><FromUserName>u</FromUserName><MsgType>text</MsgType><Content>&lol2;</Content></xml>`;
  rejects(bomb, "xml_doctype_forbidden");
  rejects(
    `<!doctype xml SYSTEM "file:///etc/passwd"><xml><FromUserName>u</FromUserName><MsgType>text</MsgType></xml>`,
    "xml_doctype_forbidden",
  );
  rejects(`<xml><!ENTITY x "y"><FromUserName>u</FromUserName><MsgType>text</MsgType></xml>`, "xml_doctype_forbidden");
});

Deno.test("xml: encode ∘ decode is the identity for inbound messages", () => {
  const cases: Message[] = [
    decodeXml(SEED_XML),
    decodeXml(
      "<xml><ToUserName>a</ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>image</MsgType><PicUrl>http://p</PicUrl><MediaId>m</MediaId><MsgId>2</MsgId></xml>",
    ),
    decodeXml(
      "<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content><![CDATA[a ]]> b]]></Content><MsgId>3</MsgId></xml>",
    ),
  ];
  for (const m of cases) {
    const again = decodeXml(encodeXml(m));
    assert.deepEqual(again, m);
  }
});

Deno.test("xml: an agent's reply encodes as a WeChat passive reply", () => {
  const base = {
    id: "r1",
    direction: "out" as const,
    channel: "wx_official_account" as const,
    contact: "oUser",
    agent: "7",
    company: "",
    content: "",
    media: "",
    sendTime: 1700000000,
    name: "oUser",
    avatar: "",
  };
  assert.equal(
    encodeReplyXml({ ...base, type: "text", content: "你好" }, "gh_7"),
    "<xml><ToUserName><![CDATA[oUser]]></ToUserName><FromUserName><![CDATA[gh_7]]></FromUserName>" +
      "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好]]></Content></xml>",
  );
  assert.match(
    encodeReplyXml({ ...base, type: "image", media: "MEDIA_ID" }, "gh_7"),
    /<MsgType><!\[CDATA\[image\]\]><\/MsgType><Image><MediaId><!\[CDATA\[MEDIA_ID\]\]><\/MediaId><\/Image><\/xml>$/,
  );
});

Deno.test("xml: documents the validator lets through but the parser cannot read are invalid_xml", () => {
  for (const text of ["<A/", "<xml/"]) {
    assert.throws(() => decodeXml(text), (e) => e instanceof KefuError && e.kind === "invalid_xml");
  }
});

Deno.test("xml: ids over MAX_ID_LENGTH (128) are refused, the length quoted; at the bound they pass", () => {
  assert.equal(MAX_ID_LENGTH, 128);
  const at = "o".repeat(MAX_ID_LENGTH);
  const over = "o".repeat(MAX_ID_LENGTH + 1);
  const doc = (from: string, to = "gh", msgId = "1") =>
    `<xml><ToUserName><![CDATA[${to}]]></ToUserName><FromUserName><![CDATA[${from}]]></FromUserName>` +
    `<CreateTime>1</CreateTime><MsgType>text</MsgType><Content>x</Content><MsgId>${msgId}</MsgId></xml>`;
  const ok = decodeXml(doc(at, at, "9".repeat(MAX_ID_LENGTH)));
  assert.equal(ok.contact, at);
  assert.equal(ok.to, at);
  assert.equal(ok.id.length, MAX_ID_LENGTH);
  // Surrounding whitespace is not part of the id.
  assert.equal(decodeXml(doc(`  ${at}\n`)).contact, at);
  rejects(doc("u".repeat(10_000)), "wrong_type", /^<FromUserName> is 10000 characters long: ids are at most 128$/);
  rejects(doc(over), "wrong_type", /<FromUserName> is 129 characters long/);
  rejects(doc("u", over), "wrong_type", /<ToUserName> is 129 characters long/);
  rejects(doc("u", "gh", "9".repeat(129)), "wrong_type", /<MsgId> is 129 characters long/);
  // An event's id, made from its fields when it has no MsgId, is bounded too.
  rejects(
    `<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>${
      "E".repeat(200)
    }</Event></xml>`,
    "wrong_type",
    /event's id .* is \d+ characters long: ids are at most 128/,
  );
});

Deno.test('xml: a "]]>" in any field survives the round trip through the shared CDATA writer', () => {
  const m = decodeXml(
    "<xml><ToUserName><![CDATA[a]]]]><![CDATA[>b]]></ToUserName><FromUserName>u</FromUserName><CreateTime>1</CreateTime>" +
      "<MsgType>text</MsgType><Content><![CDATA[x]]]]><![CDATA[>y]]></Content><MsgId>3</MsgId></xml>",
  );
  assert.equal(m.to, "a]]>b");
  assert.equal(m.content, "x]]>y");
  assert.match(encodeXml(m), /<Content><!\[CDATA\[x\]\]\]\]><!\[CDATA\[>y\]\]><\/Content>/);
  assert.deepEqual(decodeXml(encodeXml(m)), m);
});
