import assert from "node:assert/strict";
import { encodeEnvelope } from "../../../src/envelope/codec.ts";
import { decodeXml, encodeXml } from "../../../src/channels/wx_official/xml_codec.ts";

// Samples as WeChat's documentation writes them (Receiving standard messages / event pushes).
const head = (type: string) =>
  `<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName>` +
  `<CreateTime>1348831860</CreateTime><MsgType><![CDATA[${type}]]></MsgType>`;
const xml = (type: string, body: string) => `${head(type)}${body}</xml>`;

// deno-lint-ignore no-explicit-any
function envelope(text: string): any {
  return JSON.parse(encodeEnvelope(decodeXml(text)));
}

Deno.test("wechat types: text with MsgDataId/Idx and a menu answer's bizmsgmenuid", () => {
  const e = envelope(xml(
    "text",
    "<Content><![CDATA[this is a test]]></Content><MsgId>1234567890123456</MsgId><MsgDataId>xxxx</MsgDataId><Idx>1</Idx><bizmsgmenuid>101</bizmsgmenuid>",
  ));
  assert.deepEqual(e.result, { code: 1001, message: "common" });
  assert.deepEqual(e.data.msg, { content: "this is a test" });
  const m = decodeXml(xml("text", "<Content>x</Content><MsgId>1</MsgId><bizmsgmenuid>101</bizmsgmenuid>"));
  assert.equal(m.extra?.bizmsgmenuid, "101");
});

Deno.test("wechat types: image, voice (with Recognition), video and shortvideo", () => {
  const img = envelope(xml(
    "image",
    "<PicUrl><![CDATA[http://mmbiz/p.jpg]]></PicUrl><MediaId><![CDATA[media_id]]></MediaId><MsgId>1</MsgId>",
  ));
  assert.equal(img.result.code, 1002);
  assert.deepEqual(img.data.msg, { media_path: "http://mmbiz/p.jpg" });
  const voice = envelope(xml(
    "voice",
    "<MediaId><![CDATA[vid]]></MediaId><Format><![CDATA[amr]]></Format><Recognition><![CDATA[腾讯微信团队]]></Recognition><MsgId>2</MsgId>",
  ));
  assert.equal(voice.result.code, 1003);
  assert.deepEqual(voice.data.msg, { media_path: "vid", content: "腾讯微信团队" });
  const plainVoice = envelope(xml("voice", "<MediaId>v2</MediaId><Format>amr</Format><MsgId>3</MsgId>"));
  assert.deepEqual(plainVoice.data.msg, { media_path: "v2" });
  for (const t of ["video", "shortvideo"]) {
    const v = envelope(
      xml(t, "<MediaId><![CDATA[mv]]></MediaId><ThumbMediaId><![CDATA[th]]></ThumbMediaId><MsgId>4</MsgId>"),
    );
    assert.equal(v.result.code, 1004);
    assert.equal(v.data.msg_type, t);
    assert.deepEqual(v.data.msg, { media_path: "mv" });
  }
});

Deno.test("wechat types: location (1005), link (1006) and mini-program page (1007)", () => {
  const loc = envelope(xml(
    "location",
    "<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale><Label><![CDATA[位置信息]]></Label><MsgId>5</MsgId>",
  ));
  assert.deepEqual(loc.result, { code: 1005, message: "common" });
  assert.deepEqual(loc.data.msg, {
    content: "位置信息",
    latitude: "23.134521",
    longitude: "113.358803",
    scale: "20",
    label: "位置信息",
  });
  const link = envelope(xml(
    "link",
    "<Title><![CDATA[公众平台官网链接]]></Title><Description><![CDATA[公众平台官网链接]]></Description><Url><![CDATA[http://url]]></Url><MsgId>6</MsgId>",
  ));
  assert.equal(link.result.code, 1006);
  assert.deepEqual(link.data.msg, {
    content: "公众平台官网链接",
    title: "公众平台官网链接",
    description: "公众平台官网链接",
    url: "http://url",
  });
  const mini = envelope(xml(
    "miniprogrampage",
    "<Title><![CDATA[title]]></Title><AppId><![CDATA[wxapp]]></AppId><PagePath><![CDATA[pages/index]]></PagePath><ThumbUrl><![CDATA[http://t]]></ThumbUrl><ThumbMediaId><![CDATA[tm]]></ThumbMediaId><MsgId>7</MsgId>",
  ));
  assert.equal(mini.result.code, 1007);
  assert.deepEqual(mini.data.msg, {
    content: "title",
    title: "title",
    app_id: "wxapp",
    page_path: "pages/index",
    thumb_url: "http://t",
  });
});

Deno.test("wechat events: system envelopes (102, system01) with a readable text naming the user", () => {
  const cases: [string, RegExp, Record<string, string>?][] = [
    ["<Event><![CDATA[subscribe]]></Event>", /用户 oUser 关注了公众号/],
    [
      "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_123123]]></EventKey><Ticket><![CDATA[TICKET]]></Ticket>",
      /扫码关注.*场景 123123/,
      { event_key: "qrscene_123123", ticket: "TICKET" },
    ],
    ["<Event><![CDATA[unsubscribe]]></Event>", /取消关注/],
    [
      "<Event><![CDATA[SCAN]]></Event><EventKey><![CDATA[SCENE_VALUE]]></EventKey><Ticket><![CDATA[T]]></Ticket>",
      /场景 SCENE_VALUE/,
    ],
    [
      "<Event><![CDATA[LOCATION]]></Event><Latitude>23.137466</Latitude><Longitude>113.352425</Longitude><Precision>119.385040</Precision>",
      /纬度 23\.137466，经度 113\.352425/,
    ],
    [
      "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[V1001_TODAY_MUSIC]]></EventKey>",
      /点击了菜单（V1001_TODAY_MUSIC）/,
    ],
    ["<Event><![CDATA[VIEW]]></Event><EventKey><![CDATA[www.qq.com]]></EventKey>", /打开了菜单链接 www\.qq\.com/],
    [
      "<Event><![CDATA[kf_create_session]]></Event><KfAccount><![CDATA[test1@test]]></KfAccount>",
      /客服 test1@test 接入/,
    ],
    ["<Event><![CDATA[kf_close_session]]></Event><KfAccount><![CDATA[test1@test]]></KfAccount>", /关闭了/],
    [
      "<Event><![CDATA[kf_switch_session]]></Event><FromKfAccount><![CDATA[a@t]]></FromKfAccount><ToKfAccount><![CDATA[b@t]]></ToKfAccount>",
      /从客服 a@t 转接给了 b@t/,
    ],
    [
      "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>200163836</MsgID><Status><![CDATA[success]]></Status>",
      /200163836.*success/,
    ],
    ["<Event><![CDATA[something_new]]></Event>", /事件 something_new/],
  ];
  for (const [body, text, more] of cases) {
    const e = envelope(xml("event", body));
    assert.deepEqual(e.result, { code: 102, message: "common" });
    assert.equal(e.data.msg_type, "system");
    assert.equal(e.data.contact_id, "system01");
    assert.equal(e.data.name, "系统消息");
    assert.equal(e.data.msg.from_id, "oUser");
    assert.match(e.data.msg.content, text);
    for (const [k, v] of Object.entries(more ?? {})) assert.equal(e.data.msg[k], v);
  }
});

Deno.test("wechat events: a retry has the same id (user + CreateTime + Event); TEMPLATESENDJOBFINISH uses MsgID", () => {
  const a = decodeXml(xml("event", "<Event>subscribe</Event>"));
  const b = decodeXml(xml("event", "<Event>subscribe</Event>"));
  const c = decodeXml(xml("event", "<Event>unsubscribe</Event>"));
  assert.equal(a.id, b.id);
  assert.notEqual(a.id, c.id);
  assert.equal(
    decodeXml(xml("event", "<Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163836</MsgID>")).id,
    "tpl:200163836",
  );
});

Deno.test("wechat types: control characters inside CDATA do not break parsing", () => {
  const m = decodeXml(xml("text", "<Content><![CDATA[a\u0000b\u0001c\u001fd\u0008]]></Content><MsgId>8</MsgId>"));
  assert.equal(m.content, "a\u0000b\u0001c\u001fd\u0008");
  // And they survive the JSON envelope.
  assert.equal(JSON.parse(encodeEnvelope(m)).data.msg.content, m.content);
});

Deno.test("wechat types: every type survives encodeXml → decodeXml", () => {
  const samples = [
    xml("voice", "<MediaId>v</MediaId><Format>amr</Format><Recognition>hi</Recognition><MsgId>1</MsgId>"),
    xml(
      "location",
      "<Location_X>1</Location_X><Location_Y>2</Location_Y><Scale>3</Scale><Label>L</Label><MsgId>2</MsgId>",
    ),
    xml("link", "<Title>T</Title><Description>D</Description><Url>U</Url><MsgId>3</MsgId>"),
    xml("event", "<Event>CLICK</Event><EventKey>K</EventKey>"),
    xml("shortvideo", "<MediaId>m</MediaId><ThumbMediaId>t</ThumbMediaId><MsgId>4</MsgId>"),
  ];
  for (const s of samples) {
    const m = decodeXml(s);
    assert.deepEqual({ ...decodeXml(encodeXml(m)), raw: undefined }, { ...m, raw: undefined }, s);
  }
});
