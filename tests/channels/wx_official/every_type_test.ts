/**
 * Every WeChat message and event type through the real service's webhook, in
 * plaintext and in safe mode (encrypted as WeChat does), to a real agent socket.
 */

import assert from "node:assert/strict";
import { msgSignature, signature, WechatCipher } from "../../../src/channels/wx_official/crypto.ts";
import { AgentClient, agentUrl, startService } from "../../helpers.ts";

const TOKEN = "spamtest";
const APPID = "wx2c2769f8efd9abc2";
const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

// Bodies as WeChat's documentation writes them; [type, body, expected code, a check on the envelope].
// deno-lint-ignore no-explicit-any
type Check = (e: any) => void;
const CASES: [string, string, number, Check][] = [
  [
    "text",
    "<Content><![CDATA[你好]]></Content><MsgId>{id}</MsgId><MsgDataId>d</MsgDataId><Idx>1</Idx>",
    1001,
    (e) => assert.equal(e.data.msg.content, "你好"),
  ],
  [
    "image",
    "<PicUrl><![CDATA[http://mmbiz/p.jpg]]></PicUrl><MediaId><![CDATA[m1]]></MediaId><MsgId>{id}</MsgId>",
    1002,
    // kefu fetches the file first; this PicUrl's host is not one it may fetch from, and the agent is told so.
    (e) => {
      assert.equal(e.data.msg.media_path, "");
      assert.match(e.data.msg.media_error, /cannot fetch "http:\/\/mmbiz": the host is not on MEDIA_ALLOWED_HOSTS/);
    },
  ],
  [
    "voice",
    "<MediaId>v1</MediaId><Format>amr</Format><Recognition>语音</Recognition><MsgId>{id}</MsgId>",
    1003,
    // No AppSecret, so no media/get: the text WeChat recognised still comes, with why there is no file.
    (e) => {
      assert.deepEqual([e.data.msg.media_path, e.data.msg.content], ["", "语音"]);
      assert.match(e.data.msg.media_error, /no AppID\/AppSecret for media\/get/);
    },
  ],
  [
    "video",
    "<MediaId>mv</MediaId><ThumbMediaId>th</ThumbMediaId><MsgId>{id}</MsgId>",
    1004,
    (e) => assert.equal(e.data.msg_type, "video"),
  ],
  [
    "shortvideo",
    "<MediaId>ms</MediaId><ThumbMediaId>th</ThumbMediaId><MsgId>{id}</MsgId>",
    1004,
    (e) => assert.equal(e.data.msg_type, "shortvideo"),
  ],
  [
    "location",
    "<Location_X>23.13</Location_X><Location_Y>113.35</Location_Y><Scale>20</Scale><Label>广州</Label><MsgId>{id}</MsgId>",
    1005,
    (e) => assert.deepEqual([e.data.msg.latitude, e.data.msg.longitude, e.data.msg.label], ["23.13", "113.35", "广州"]),
  ],
  [
    "link",
    "<Title>标题</Title><Description>d</Description><Url>http://u</Url><MsgId>{id}</MsgId>",
    1006,
    (e) => assert.equal(e.data.msg.url, "http://u"),
  ],
  [
    "miniprogrampage",
    "<Title>t</Title><AppId>wxapp</AppId><PagePath>p/i</PagePath><ThumbUrl>http://t</ThumbUrl><MsgId>{id}</MsgId>",
    1007,
    (e) => assert.equal(e.data.msg.app_id, "wxapp"),
  ],
];
const EVENTS: [string, RegExp][] = [
  ["<Event>subscribe</Event><EventKey>qrscene_7</EventKey><Ticket>T</Ticket>", /扫码关注/],
  ["<Event>unsubscribe</Event>", /取消关注/],
  ["<Event>SCAN</Event><EventKey>7</EventKey><Ticket>T</Ticket>", /场景 7/],
  ["<Event>LOCATION</Event><Latitude>23.1</Latitude><Longitude>113.3</Longitude><Precision>1</Precision>", /纬度/],
  ["<Event>CLICK</Event><EventKey>K1</EventKey>", /K1/],
  ["<Event>VIEW</Event><EventKey>http://v</EventKey>", /http:\/\/v/],
  ["<Event>kf_create_session</Event><KfAccount>k@t</KfAccount>", /接入/],
  ["<Event>kf_close_session</Event><KfAccount>k@t</KfAccount>", /关闭/],
  ["<Event>kf_switch_session</Event><FromKfAccount>a@t</FromKfAccount><ToKfAccount>b@t</ToKfAccount>", /转接/],
  ["<Event>TEMPLATESENDJOBFINISH</Event><MsgID>{id}</MsgID><Status>success</Status>", /success/],
];

let seq = 0;
function doc(from: string, type: string, body: string): string {
  const id = String(6_000_000_000_000_000_000n + BigInt(++seq));
  // Events differ by CreateTime, as WeChat's retries of one event share it.
  return `<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[${from}]]></FromUserName>` +
    `<CreateTime>${Math.floor(Date.now() / 1000) + seq}</CreateTime><MsgType><![CDATA[${type}]]></MsgType>` +
    `${body.replaceAll("{id}", id)}</xml>`;
}

async function push(http: string, xml: string, safe: boolean): Promise<Response> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = String(++seq);
  let query = `signature=${signature(TOKEN, timestamp, nonce)}&timestamp=${timestamp}&nonce=${nonce}&openid=oEvery`;
  let body = xml;
  if (safe) {
    const encrypt = await (await WechatCipher.create(AES_KEY, APPID)).encrypt(xml);
    query += `&encrypt_type=aes&msg_signature=${msgSignature(TOKEN, timestamp, nonce, encrypt)}`;
    body = `<xml><ToUserName><![CDATA[gh_account]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`;
  }
  return await fetch(`${http}/wechat?${query}`, { method: "POST", body });
}

for (const safe of [false, true]) {
  Deno.test(`every type: ${safe ? "safe-mode" : "plaintext"} messages and events reach the agent`, async () => {
    // Safe mode takes only encrypted posts; plaintext ones go to the account in compatible mode (WeChat's modes).
    await using t = await startService({
      WECHAT_TOKEN: TOKEN,
      WECHAT_APPID: APPID,
      WECHAT_ENCODING_AES_KEY: AES_KEY,
      WECHAT_ENCRYPT_MODE: safe ? "safe" : "compatible",
    });
    await using agent = await AgentClient.open(agentUrl(t, "a1"));
    for (const [type, body, code, check] of CASES) {
      const r = await push(t.http, doc("oEvery", type, body), safe);
      assert.equal(await r.text(), "success", type);
      const e = await agent.next(code);
      assert.equal(e.data.contact_id, "oEvery", type);
      assert.equal(e.data.msg_type, type);
      check(e);
    }
    for (const [body, text] of EVENTS) {
      const r = await push(t.http, doc("oEvery", "event", body), safe);
      assert.equal(await r.text(), "success", body);
      const e = await agent.next(102);
      assert.equal(e.data.contact_id, "system01");
      assert.equal(e.data.msg.from_id, "oEvery");
      assert.match(e.data.msg.content, text);
    }
  });
}
