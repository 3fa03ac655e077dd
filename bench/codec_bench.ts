/**
 * The codecs on the hot path: every inbound WeChat message is decoded from XML
 * and encoded once into the agents' envelope; every agent reply is decoded from
 * JSON. Flat XML (every message WeChat sends but a few events) is read in one
 * pass; the nested event shows the fallback, fast-xml-parser's validator and parser.
 *
 *     deno bench --allow-read bench/codec_bench.ts
 *
 * @module
 */

import { decodeEnvelope, encodeEnvelope } from "../src/envelope/codec.ts";
import type { Message } from "../src/core/message.ts";
import { decodeXml } from "../src/channels/wx_official/xml_codec.ts";

// The message the end-to-end benchmark posts (bench/load.ts), so both measure the same input.
const TEXT_XML =
  "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[oUSER_00042]]></FromUserName>" +
  "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType>" +
  "<Content><![CDATA[t=1732345678901.234 hello]]></Content><MsgId>23000000000000001</MsgId></xml>";

// A longer, non-ASCII text, as real users write.
const CHINESE_XML = TEXT_XML.replace(
  "t=1732345678901.234 hello",
  "您好，请问我上周下的订单什么时候发货？单号 20240601",
);

// An event with nested elements: not flat, so the validator and the full parser read it.
const NESTED_EVENT_XML =
  "<xml><ToUserName><![CDATA[gh_test]]></ToUserName><FromUserName><![CDATA[oUSER_00042]]></FromUserName>" +
  "<CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_push]]></Event>" +
  "<EventKey><![CDATA[6]]></EventKey><ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>" +
  "<ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo></xml>";

const MESSAGE: Message = decodeXml(TEXT_XML);

const REPLY = JSON.stringify({
  data: { id: "r-1", msg_type: "text", contact_id: "oUSER_00042", msg: { content: "您好，已经为您查询，明天发货。" } },
  result: { code: 1001, message: "common" },
});

const PUSH = JSON.stringify({
  data: { msg_type: "text", contact_id: "agent1", from_id: "oUSER_00042", msg: { content: "你好" } },
  result: { code: 1001, message: "common" },
});

Deno.bench({ name: "decodeXml: text message", group: "inbound", baseline: true }, () => {
  decodeXml(TEXT_XML);
});

Deno.bench({ name: "decodeXml: Chinese text message", group: "inbound" }, () => {
  decodeXml(CHINESE_XML);
});

Deno.bench({ name: "decodeXml: event with nested elements (full parser)", group: "inbound" }, () => {
  decodeXml(NESTED_EVENT_XML);
});

Deno.bench({ name: "encodeEnvelope: text message", group: "inbound" }, () => {
  encodeEnvelope(MESSAGE);
});

Deno.bench({ name: "decodeEnvelope: agent reply", group: "json" }, () => {
  decodeEnvelope(REPLY, { direction: "out", agent: "agent1" });
});

Deno.bench({ name: "decodeEnvelope: JSON push", group: "json" }, () => {
  decodeEnvelope(PUSH, { direction: "in" });
});
