/**
 * Issue 20, tried again: a signed-in agent reads and sends only its own files. Users' media and uploads share one
 * content-addressed store, so another agent's user's image must not open under either path, nor go out as a reply.
 */

import assert from "node:assert/strict";
import { seedSign } from "../../src/agents/auth/auth.ts";
import { AgentClient, signedQuery, startService, startWechat } from "../helpers.ts";

const APPID = "wx0000000000000020";
const TOKEN = "owntok";
const SECRET = "media-ownership-secret-0123";
const BASE = "/im_component/wx_official_account";
const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 20, 20, 20]);
const MINE = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 1, 1]);

function xml(openid: string, type: string, body: string, id: string): string {
  return `<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[${openid}]]></FromUserName>` +
    `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType><![CDATA[${type}]]></MsgType>${body}` +
    `<MsgId>${id}</MsgId></xml>`;
}

async function tokenFor(http: string, uid: string): Promise<string> {
  const ts = String(Math.floor(Date.now() / 1000));
  const r = await fetch(`${http}/auth/websocket?uid=${uid}&timestamp=${ts}&sign=${seedSign(uid, ts, SECRET)}`);
  return (await r.json()).content.token;
}

Deno.test("security: another agent's user's image opens by neither media route and cannot be sent as media_path", async () => {
  const dir = await Deno.makeTempDir();
  await using wechat = startWechat({ appId: APPID, appSecret: "s" });
  await using t = await startService({
    WECHAT_TOKEN: TOKEN,
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: "s",
    WECHAT_API_BASE: wechat.url,
    AGENT_SECRET: SECRET,
    DATA_DIR: dir,
  });
  const push = async (body: string) => {
    const r = await fetch(`${t.http}/wechat${await signedQuery(TOKEN)}`, { method: "POST", body });
    assert.equal(await r.text(), "success");
  };
  const [a, b] = [await tokenFor(t.http, "a1"), await tokenFor(t.http, "b1")];
  // A's user sends an image; A sees it under /media/<sha256>.png.
  const alice = await AgentClient.open(`${t.ws}${BASE}/msg?token=${a}`);
  const mediaId = wechat.sim.addMedia("image", PNG, "secret.png", "image/png");
  await push(
    xml("oVictim", "image", `<PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl><MediaId>${mediaId}</MediaId>`, "1"),
  );
  const path: string = (await alice.next(1002)).data.msg.media_path;
  const name = path.slice("/media/".length);
  assert.match(name, /^[0-9a-f]{64}\.png$/);
  alice.socket.close();
  await alice.closed;
  // B has a user of its own (A is offline, so the new user is B's).
  await using bob = await AgentClient.open(`${t.ws}${BASE}/msg?token=${b}`);
  wechat.sim.recordInteraction("oAttacker", "message");
  await push(xml("oAttacker", "text", "<Content><![CDATA[hi]]></Content>", "2"));
  assert.equal((await bob.next(1001)).data.contact_id, "oAttacker");

  // B reads it by neither route, nor through a signed link.
  const viaMedia = await fetch(`${t.http}${path}?token=${b}`);
  assert.deepEqual([viaMedia.status, (await viaMedia.json()).data.error], [403, "not_your_contact"]);
  const viaUploads = await fetch(`${t.http}${BASE}/media/${name}?token=${b}`);
  assert.deepEqual([viaUploads.status, (await viaUploads.json()).data.error], [404, "media_not_found"]);
  const link = await fetch(`${t.http}${path}/link?token=${b}`, { method: "POST" });
  assert.equal(link.status, 403);
  await link.body?.cancel();
  // Nor does it go out as B's reply, by either path: nothing reaches WeChat, and it is not "owned" afterwards.
  for (const [id, media] of [["r1", `${BASE}/media/${name}`], ["r2", path]]) {
    bob.send({
      data: { id, msg_type: "image", contact_id: "oAttacker", msg: { media_path: media } },
      result: { code: 1002 },
    });
    const err = await bob.next(-1);
    assert.deepEqual([err.data.error, err.data.id], ["media_not_found", id]);
  }
  assert.deepEqual(wechat.sim.inbox("oAttacker"), []);
  const after = await fetch(`${t.http}${BASE}/media/${name}?token=${b}`);
  assert.equal(after.status, 404);
  await after.body?.cancel();

  // A still opens its user's file by both routes; B opens and sends its own upload.
  const own = await fetch(`${t.http}${BASE}/media/${name}?token=${a}`);
  assert.deepEqual([own.status, new Uint8Array(await own.arrayBuffer())], [200, PNG]);
  const up = await fetch(`${t.http}${BASE}/media?token=${b}&filename=mine.png`, {
    method: "POST",
    body: MINE,
    headers: { "content-type": "image/png" },
  });
  const mine: string = (await up.json()).data.media_path;
  const back = await fetch(`${t.http}${mine}?token=${b}`);
  assert.deepEqual([back.status, new Uint8Array(await back.arrayBuffer())], [200, MINE]);
  bob.send({
    data: { id: "r3", msg_type: "image", contact_id: "oAttacker", msg: { media_path: mine } },
    result: { code: 1002 },
  });
  // The reply's status comes after kefu read the file and called WeChat (token, upload, send): waited for, not timed.
  let sent = await bob.next(undefined, 15_000);
  while (sent.data?.id !== "r3") sent = await bob.next(undefined, 15_000);
  assert.equal(sent.result.code, 103, JSON.stringify(sent));
  assert.equal(wechat.sim.inbox("oAttacker").length, 1);
  // A cannot open B's upload either.
  const theirs = await fetch(`${t.http}${mine}?token=${a}`);
  assert.equal(theirs.status, 404);
  await theirs.body?.cancel();
  await t.svc.shutdown();
  await Deno.remove(dir, { recursive: true });
});
