/**
 * The hook's pushes → `Message`: the vendor's own examples, both spellings it
 * uses, ids beyond 2^53, group senders, pushes that are not kept, media bodies
 * and what cannot be read.
 */

import assert from "node:assert/strict";
import { decodePush, parseHookJson } from "../../../src/channels/pc_hook/codec.ts";
import { KefuError } from "../../../src/core/errors.ts";
import type { Message } from "../../../src/core/message.ts";

// docs/research/channels.md §1.4: doc/处理消息/消息类型.md, the vendor's comments removed.
const VENDOR_PRIVATE = `{"data": {
  "content": "Hello!", "createtime": 123456789, "from": "wxid_", "isChatroomMsg": 0, "isSender": 0,
  "msgSvrID": 1234567812342, "reversed1": "<msgsource>\\n\\t</msgsource>\\n", "syncFromMobile": false,
  "talkerInfo": {"alias": "", "nickName": "小明", "smallHeadImgUrl": "https://wx.qlogo.cn/mmhead/2", "userName": "wxid_xxxxxx"},
  "to": "wechatapi", "type": 1}}`;
const VENDOR_GROUP = `{"data": {
  "content":"你好", "createtime": 1713224148, "from": "387222221088@chatroom", "isChatroomMsg": 1, "isSender": 0,
  "msgSvrID": 91188511912362423, "reversed1": "<msgsource></msgsource>\\n", "syncFromMobile": false,
  "talkerInfo": {"alias": "", "nickName": "XXX用户群", "smallHeadImgUrl": "https://wx.qlogo.cn/mmcrhead/78EkX665csAHNYzqUg5/0", "userName": "387222221088@chatroom"},
  "chatroomMemberInfo": {"alias": "lonconst", "nickName": "昵称昵称", "smallHeadImgUrl": "https://wx.qlogo.cn/mmhead/ver_1/VNv", "userName": "longlong0203"},
  "to": "wechatapi", "type": 1}}`;

function message(text: string, account = "wxid_fallback"): Message {
  const d = decodePush(text, account, () => 42);
  assert.equal(d.kind, "message");
  return (d as { message: Message }).message;
}

function push(data: Record<string, unknown>, more: Record<string, unknown> = {}): string {
  return JSON.stringify({
    pushType: 1,
    robot: { userName: "wxid_me" },
    data: { from: "wxid_u", type: 1, ...data },
    ...more,
  });
}

Deno.test("pc_hook codec: the vendor's private example, without pushType or robot", () => {
  const m = message(VENDOR_PRIVATE);
  assert.deepEqual(
    [m.id, m.channel, m.account, m.contact, m.type, m.content, m.sendTime, m.name, m.avatar],
    [
      "1234567812342",
      "pc_hook",
      "wxid_fallback",
      "wxid_",
      "text",
      "Hello!",
      123456789,
      "小明",
      "https://wx.qlogo.cn/mmhead/2",
    ],
  );
  assert.deepEqual(m.extra, { from: "wxid_", to: "wechatapi", msgSvrID: "1234567812342" });
});

Deno.test("pc_hook codec: the vendor's group example: the room is the contact, msgSvrID beyond 2^53 kept exact", () => {
  const m = message(VENDOR_GROUP);
  assert.equal(m.id, "91188511912362423", "JSON.parse alone would give 91188511912362420");
  assert.deepEqual([m.contact, m.name], ["387222221088@chatroom", "XXX用户群"]);
  assert.equal(m.content, "昵称昵称 (longlong0203):\n你好");
  assert.deepEqual([m.extra?.room, m.extra?.sender, m.extra?.sender_name], [
    "387222221088@chatroom",
    "longlong0203",
    "昵称昵称",
  ]);
});

Deno.test("pc_hook codec: a group message with WeChat's 'wxid:\\n' prefix and no member info", () => {
  const m = message(push({ from: "9@chatroom", content: "wxid_m:\n在吗", isChatroomMsg: 1 }));
  assert.deepEqual([m.contact, m.content, m.extra?.sender], ["9@chatroom", "wxid_m:\n在吗", "wxid_m"]);
});

Deno.test("pc_hook codec: robot.userName is the account; szMsgSvrID wins; createTime is read too; ms become s", () => {
  const m = message(push({ szMsgSvrID: "18446744073709551615", msgSvrID: 1, createTime: "1713224148123" }));
  assert.deepEqual([m.account, m.id, m.sendTime], ["wxid_me", "18446744073709551615", 1713224148]);
  // No id at all: a digest of the message, the same for the same push (a resend is a repeat).
  const a = message(push({ content: "x" }));
  assert.match(a.id, /^h:[0-9a-f]{32}$/);
  assert.equal(message(push({ content: "x" })).id, a.id);
  assert.equal(a.sendTime, 42, "no time: now");
});

Deno.test("pc_hook codec: self-sent, pushType 0/2/3/4/5 and the phone's status messages are read but not kept", () => {
  const cases: [string, string][] = [
    [push({ isSender: 1 }), "self_sent"],
    [push({}, { pushType: 4 }), "self_sent"],
    [push({}, { pushType: 0 }), "async_result"],
    [push({}, { pushType: 2 }), "login"],
    [push({}, { pushType: 3 }), "logout"],
    [push({}, { pushType: 5 }), "group_change"],
    [push({ type: 51 }), "phone_status"],
  ];
  for (const [text, reason] of cases) {
    const d = decodePush(text, "x");
    assert.deepEqual([d.kind, d.kind === "skip" ? d.reason : "", d.account], ["skip", reason, "wxid_me"], text);
  }
});

Deno.test("pc_hook codec: media bodies are named, not downloaded; location, link, file and quote are read", () => {
  assert.match(message(push({ type: 3, content: "<msg><img cdnmidimgurl='x'/></msg>" })).content, /^\[图片\] 未下载/);
  assert.equal(message(push({ type: 34 })).type, "voice");
  const loc = message(push({
    type: 48,
    content:
      '<?xml version="1.0"?>\n<msg><location x="39.9" y="116.3" scale="16" label="北京市" poiname="天安门" /></msg>',
  }));
  assert.deepEqual([loc.type, loc.content, loc.extra?.Location_X, loc.extra?.Label], [
    "location",
    "天安门 北京市",
    "39.9",
    "北京市",
  ]);
  const link = message(push({
    type: 49,
    content:
      "<msg><appmsg><title>标题</title><des>描述</des><type>5</type><url>https://a.example/</url></appmsg></msg>",
  }));
  assert.deepEqual([link.type, link.content, link.extra?.Url], ["link", "标题", "https://a.example/"]);
  const file = message(push({ type: 49, content: "<msg><appmsg><title>a.pdf</title><type>6</type></appmsg></msg>" }));
  assert.match(file.content, /^\[文件\] a\.pdf 未下载/);
  const quote = message(push({
    type: 49,
    content:
      "<msg><appmsg><title>好的</title><type>57</type><refermsg><displayname>Ann</displayname><content>明天见</content></refermsg></appmsg></msg>",
  }));
  assert.deepEqual([quote.type, quote.content, quote.extra?.quoted], ["text", "好的", "Ann: 明天见"]);
  const recall = message(push({
    type: 10002,
    content:
      '<sysmsg type="revokemsg"><revokemsg><replacemsg><![CDATA["Ann" 撤回了一条消息]]></replacemsg></revokemsg></sysmsg>',
  }));
  assert.deepEqual([recall.type, recall.content, recall.extra?.Event], ["event", '"Ann" 撤回了一条消息', "recall"]);
  const odd = message(push({ type: 9999, content: "??" }));
  assert.deepEqual([odd.type, odd.content], ["wx_type_9999", "[未知类型 9999 的消息] ??"]);
  const bad = message(push({ type: 48, content: "<msg><location" }));
  assert.match(bad.content, /^\[未能解析的类型 48 消息\] <msg><location/);
  assert.equal(message(push({ type: 49, content: "<!DOCTYPE x><msg/>" })).type, "app", "declarations are not parsed");
});

Deno.test("pc_hook codec: what cannot be read throws, naming the problem", () => {
  const cases: [string, RegExp][] = [
    ["not json", /cannot parse the push as JSON/],
    ["[1,2]", /expected a push \{"pushType","robot","data"\}, got array/],
    [JSON.stringify({ pushType: 9 }), /cannot read pushType 9/],
    [JSON.stringify({ pushType: 1 }), /the push has no "data" object/],
    [JSON.stringify({ data: { from: "u" } }), /data\.type is required/],
    [JSON.stringify({ data: { type: 1 } }), /data\.from is required/],
    [JSON.stringify({ data: { type: "x", from: "u" } }), /data\.type must be an integer, got string "x"/],
    [JSON.stringify({ data: { type: 1, from: "u", content: 5 } }), /data\.content must be a string, got number "5"/],
    [JSON.stringify({ data: { type: 1, from: "u", createtime: true } }), /data\.createtime must be epoch seconds/],
    [JSON.stringify({ data: { type: 1, from: "u".repeat(200) } }), /data\.from is 200 characters long/],
  ];
  for (const [text, re] of cases) {
    assert.throws(() => decodePush(text, "x"), (e) => e instanceof KefuError && re.test(e.message), text);
  }
});

Deno.test("pc_hook codec: big numbers stay exact anywhere", () => {
  assert.deepEqual(parseHookJson('{"a":[12345678901234567890,1.5,-9007199254740993,1e300]}'), {
    a: ["12345678901234567890", 1.5, "-9007199254740993", 1e300],
  });
});
