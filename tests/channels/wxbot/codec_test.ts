/**
 * AddMsg → Message, pure: the seed's frame shape with WeChat's `{"string":…}`
 * and plain strings, every MsgType the channel reads, groups, the account's
 * own messages, and NewMsgId past 2^53 kept to the digit.
 */

import assert from "node:assert/strict";
import { decodeAddMsg, decodeBody, frameType, parseFrame, readAuthResult } from "../../../src/channels/wxbot/codec.ts";
import { KefuError } from "../../../src/core/errors.ts";
import { addMsgFrame } from "../../../src/simulator/wxbot.ts";

const BOT = "wxid_bot";

function decode(frame: string) {
  return decodeAddMsg(parseFrame(frame));
}

Deno.test("wxbot codec: the seed's two AuthCheckResult answers, one named in type and one in eventType", () => {
  const ok = parseFrame(
    '{"type":"AuthCheckResult","msg":"鉴权成功，本账号下所有已登录微信号的消息均会同步","retCode":0}',
  );
  const refused = parseFrame('{"eventType":"AuthCheckResult","msg":"鉴权失败，无效key","retCode":1000}');
  assert.deepEqual([frameType(ok), readAuthResult(ok).retCode], ["AuthCheckResult", 0]);
  assert.deepEqual(readAuthResult(refused), { retCode: 1000, msg: "鉴权失败，无效key" });
  assert.equal(frameType(refused), "AuthCheckResult");
  // An older README of the platform compares retCode as a string: digits in a string are read too.
  assert.equal(readAuthResult(parseFrame('{"type":"AuthCheckResult","retCode":"0"}')).retCode, 0);
  assert.throws(() => readAuthResult(parseFrame('{"type":"AuthCheckResult","msg":"?"}')), /no retCode/);
});

Deno.test("wxbot codec: a text message as WeChat writes it ({string}) and with plain strings", () => {
  for (const plainStrings of [false, true]) {
    const { message: m, own } = decode(
      addMsgFrame({ wxid: BOT, from: "wxid_user1", content: "你好", newMsgId: "1234567890123", plainStrings }),
    );
    assert.equal(own, false);
    assert.deepEqual(
      [m.id, m.direction, m.account, m.contact, m.type, m.content, m.media, m.name],
      ["1234567890123", "in", BOT, "wxid_user1", "text", "你好", "", "wxid_user1"],
    );
  }
});

Deno.test("wxbot codec: NewMsgId above 2^53, a bare JSON number, stays exact (JSON.parse would round it)", () => {
  const big = "9223372036854775807";
  const frame = addMsgFrame({ wxid: BOT, from: "wxid_user1", content: "hi", newMsgId: big });
  assert.match(frame, /"NewMsgId":9223372036854775807\b/, "written as a number, not a string");
  assert.notEqual(String(JSON.parse(frame).event.NewMsgId), big, "the round-off this guards against");
  assert.equal(decode(frame).message.id, big);
  // Neighbours a double cannot tell apart stay apart.
  const a = decode(addMsgFrame({ wxid: BOT, from: "u", content: "a", newMsgId: "9007199254740993" })).message.id;
  const b = decode(addMsgFrame({ wxid: BOT, from: "u", content: "b", newMsgId: "9007199254740992" })).message.id;
  assert.deepEqual([a, b], ["9007199254740993", "9007199254740992"]);
});

Deno.test("wxbot codec: without NewMsgId the MsgId is the id; without either kefu makes one", () => {
  const noNew = `{"userInfo":{"wxid":"${BOT}"},"eventType":"AddMsg","event":{"MsgId":42,"FromUserName":"u",` +
    `"ToUserName":"${BOT}","MsgType":1,"Content":"x","CreateTime":1700000000}}`;
  const m = decode(noNew).message;
  assert.deepEqual([m.id, m.sendTime, m.extra?.MsgId], ["42", 1700000000, "42"]);
  const none = decode(noNew.replace('"MsgId":42,', "")).message;
  assert.match(none.id, /^[0-9a-f-]{36}$/);
});

Deno.test("wxbot codec: a group message names its sender in the content; the group is the contact", () => {
  const { message: m, own } = decode(addMsgFrame({
    wxid: BOT,
    from: "12345678@chatroom",
    content: "wxid_member:\n大家好",
    newMsgId: "77",
  }));
  assert.equal(own, false);
  assert.deepEqual(
    [m.contact, m.name, m.content, m.extra?.sender],
    ["12345678@chatroom", "12345678@chatroom", "wxid_member: 大家好", "wxid_member"],
  );
  // A group notice has no sender prefix: nothing is taken off.
  const notice = decode(addMsgFrame({ wxid: BOT, from: "1@chatroom", msgType: 10000, content: '"张三"加入了群聊' }));
  assert.deepEqual([notice.message.type, notice.message.content], ["system", '"张三"加入了群聊']);
});

Deno.test("wxbot codec: what the account sent itself is marked own, with the user as the contact", () => {
  const one = decode(addMsgFrame({ wxid: BOT, from: BOT, to: "wxid_user1", content: "sent from my phone" }));
  assert.deepEqual([one.own, one.message.direction, one.message.contact], [true, "out", "wxid_user1"]);
  const group = decode(addMsgFrame({ wxid: BOT, from: BOT, to: "9@chatroom", content: "to the group" }));
  assert.deepEqual([group.own, group.message.contact], [true, "9@chatroom"]);
  // Reported as coming from the group, named by the account itself.
  const echoed = decode(addMsgFrame({ wxid: BOT, from: "9@chatroom", content: `${BOT}:\nmine` }));
  assert.equal(echoed.own, true);
});

Deno.test("wxbot codec: media and other types become something an agent can read", () => {
  const image = decodeBody(3, '<?xml version="1.0"?>\n<msg><img aeskey="k" length="1234" md5="m" /></msg>');
  assert.equal(image.type, "image");
  assert.match(image.content, /^\[图片\]/);
  assert.equal(
    decodeBody(34, '<msg><voicemsg voicelength="2300" length="4000" /></msg>').content.startsWith(
      "[语音 2.3 秒]",
    ),
    true,
  );
  assert.match(decodeBody(43, '<msg><videomsg playlength="12" length="99" /></msg>').content, /^\[视频 12 秒\]/);
  const emoji = decodeBody(47, '<msg><emoji cdnurl="http://emoji.example/a.gif" md5="x" /></msg>');
  assert.deepEqual([emoji.type, emoji.media], ["emoji", "http://emoji.example/a.gif"]);
  const loc = decodeBody(
    48,
    '<msg><location x="39.9" y="116.4" scale="15" label="北京市东城区" poiname="故宫" /></msg>',
  );
  assert.deepEqual([loc.type, loc.content, loc.extra], ["location", "[位置] 北京市东城区", {
    Location_X: "39.9",
    Location_Y: "116.4",
    Scale: "15",
    Label: "北京市东城区",
  }]);
  const link = decodeBody(
    49,
    "<msg><appmsg><title>标题</title><des>说明</des><type>5</type><url>https://a.example/x?a=1&amp;b=2</url></appmsg></msg>",
  );
  assert.deepEqual([link.type, link.content, link.extra?.Url], ["link", "标题", "https://a.example/x?a=1&b=2"]);
  const quote = decodeBody(
    49,
    "<msg><appmsg><title>好的</title><type>57</type><refermsg><content>原文</content></refermsg></appmsg></msg>",
  );
  assert.deepEqual([quote.type, quote.content, quote.extra?.quoted], ["text", "好的", "原文"]);
  assert.match(
    decodeBody(49, "<msg><appmsg><title>a.pdf</title><type>6</type></appmsg></msg>").content,
    /^\[文件\] a\.pdf/,
  );
  // XML kefu cannot read still gives a message, never an error.
  assert.equal(decodeBody(48, "not xml").type, "location");
  assert.equal(decodeBody(49, "<!DOCTYPE x><msg/>").type, "app");
  const unknown = decodeBody(9999, "whatever");
  assert.deepEqual([unknown.type, unknown.content], ["msgtype_9999", "[未识别的消息类型 9999] whatever"]);
});

Deno.test("wxbot codec: frames it cannot read are refused with a KefuError saying what is wrong", () => {
  const cases: [string, RegExp][] = [
    ["not json", /cannot parse the WXBot frame/],
    ["[1,2]", /expected a JSON object/],
    ['{"eventType":"AddMsg","event":{}}', /userInfo\.wxid is required/],
    [`{"userInfo":{"wxid":"${BOT}"},"eventType":"AddMsg"}`, /expected "event"/],
    [`{"userInfo":{"wxid":"${BOT}"},"eventType":"AddMsg","event":{"MsgType":1}}`, /FromUserName is empty/],
    [`{"userInfo":{"wxid":"${BOT}"},"eventType":"AddMsg","event":{"FromUserName":"u"}}`, /MsgType is required/],
    [`{"userInfo":{"wxid":"${BOT}"},"eventType":"AddMsg","event":{"FromUserName":"u","MsgType":"x"}}`, /MsgType/],
    [
      `{"userInfo":{"wxid":"${BOT}"},"eventType":"AddMsg","event":{"FromUserName":"u","MsgType":1,"NewMsgId":1.5e300}}`,
      /NewMsgId/,
    ],
    [`{"userInfo":{"wxid":"${BOT}"},"eventType":"AddMsg","event":{"FromUserName":7,"MsgType":1}}`, /FromUserName/],
  ];
  for (const [frame, re] of cases) {
    assert.throws(() => decode(frame), (e: unknown) => e instanceof KefuError && re.test(e.message), frame);
  }
});

Deno.test("wxbot codec: the older flat form (wxid at the top level) is read too", () => {
  const flat = `{"wxid":"${BOT}","nickname":"n","eventType":"AddMsg","event":{"FromUserName":{"string":"u"},` +
    `"ToUserName":{"string":"${BOT}"},"MsgType":1,"Content":{"string":"hi"},"NewMsgId":5}}`;
  assert.deepEqual([decode(flat).message.account, decode(flat).message.id], [BOT, "5"]);
});
