import assert from "node:assert/strict";
import { XMLParser } from "fast-xml-parser";
import { msgSignature, signature, WechatCipher } from "../../../src/channels/wx_official/crypto.ts";
import { AgentClient, agentUrl, startService } from "../../helpers.ts";
import { startPostgres } from "../../support/postgres.ts";

const AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const APPID = "wx2c2769f8efd9abc2";
const parser = new XMLParser({ parseTagValue: false });

function userXml(from: string, content: string, id: string, createTime = "1409735668") {
  return `<xml><ToUserName><![CDATA[gh_account]]></ToUserName><FromUserName><![CDATA[${from}]]></FromUserName>` +
    `<CreateTime>${createTime}</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[${content}]]></Content>` +
    `<MsgId>${id}</MsgId></xml>`;
}

async function signedQuery(token: string, timestamp: string, nonce = "1320562132", extra = "") {
  return `?signature=${await signature(token, timestamp, nonce)}&timestamp=${timestamp}&nonce=${nonce}${extra}`;
}

Deno.test("webhook: URL verification echoes echostr verbatim as text/plain; a bad signature gets 401, never the echo", async () => {
  await using t = await startService({ WECHAT_TOKEN: "test" });
  const good = await fetch(
    `${t.http}/wechat?signature=f21891de399b4e33a1a93c9a7b8a8fffb5a443ff&timestamp=1410685589&nonce=test&echostr=5837397520665436492`,
  );
  assert.equal(good.status, 200);
  assert.match(good.headers.get("content-type") ?? "", /^text\/plain/);
  assert.equal(await good.text(), "5837397520665436492");
  const bad = await fetch(
    `${t.http}/wechat?signature=f21891de399b4e33a1a93c9a7b8a8fffb5a443fe&timestamp=1410685589&nonce=test&echostr=ECHO`,
  );
  assert.equal(bad.status, 401);
  const body = await bad.json();
  assert.equal(body.data.error, "bad_signature");
  assert.ok(!JSON.stringify(body).includes("ECHO"));
});

Deno.test("webhook: a signed plaintext message reaches the agent; WeChat's retries reach it once", async () => {
  await using t = await startService({ WECHAT_TOKEN: "bench", WECHAT_COMPANY_ID: "c1" });
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const ts = String(Math.floor(Date.now() / 1000));
  const url = `${t.http}/wechat${await signedQuery("bench", ts)}`;
  const xml = userXml("oUser", "hello", "23000000000000001");
  for (let i = 0; i < 4; i++) {
    const r = await fetch(url, { method: "POST", body: xml });
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "success");
  }
  const e = await agent.next(1001);
  assert.equal(e.data.id, "23000000000000001");
  assert.equal(e.data.contact_id, "oUser");
  assert.equal(e.data.company_id, "c1");
  assert.deepEqual(await agent.settle(), []);
  // An unsigned or tampered POST is refused and delivers nothing.
  const unsigned = await fetch(`${t.http}/wechat?timestamp=${ts}&nonce=1`, {
    method: "POST",
    body: userXml("x", "y", "9"),
  });
  assert.equal(unsigned.status, 401);
  await unsigned.body?.cancel();
  assert.deepEqual(await agent.settle(), []);
});

Deno.test("webhook: a stale timestamp is refused (replays)", async () => {
  await using t = await startService({ WECHAT_TOKEN: "bench", WECHAT_MAX_SKEW_SECONDS: "300" });
  const old = String(Math.floor(Date.now() / 1000) - 301);
  const r = await fetch(`${t.http}/wechat${await signedQuery("bench", old)}`, {
    method: "POST",
    body: userXml("u", "late", "1"),
  });
  assert.equal(r.status, 401);
  assert.equal((await r.json()).data.error, "stale_timestamp");
});

Deno.test("webhook safe mode: Tencent's official sample decrypts and reaches the agent", async () => {
  await using t = await startService({
    WECHAT_TOKEN: "spamtest",
    WECHAT_APPID: APPID,
    WECHAT_ENCODING_AES_KEY: AES_KEY,
    WECHAT_MAX_SKEW_SECONDS: String(10 * 365 * 86400 * 2),
  });
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const encrypt =
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
  const q = await signedQuery(
    "spamtest",
    "1409735669",
    "1320562132",
    "&encrypt_type=aes&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa",
  );
  const body =
    `<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`;
  const r = await fetch(`${t.http}/wechat${q}`, { method: "POST", body });
  assert.equal(await r.text(), "success");
  const e = await agent.next(1001);
  assert.equal(e.data.contact_id, "oyORnuP8q7ou2gfYjqLzSIWZf0rs");
  assert.equal(e.data.msg.content, "abcdteT");
  assert.equal(e.data.id, "6054768590064713728");

  // A tampered msg_signature is refused before any decryption.
  const tampered = q.replace("5d197aaffba7e9b25a30732f161a50dee96bd5fa", "5d197aaffba7e9b25a30732f161a50dee96bd5fb");
  const bad = await fetch(`${t.http}/wechat${tampered}`, { method: "POST", body });
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).data.error, "bad_signature");
});

Deno.test("webhook safe mode: a wrong appid is refused; with no agent online the auto-reply comes back encrypted", async () => {
  const token = "tok";
  await using t = await startService({
    WECHAT_TOKEN: token,
    WECHAT_APPID: APPID,
    WECHAT_ENCODING_AES_KEY: AES_KEY,
    WECHAT_AUTO_REPLY: "客服暂时不在，请稍候",
  });
  const ts = String(Math.floor(Date.now() / 1000));
  const nonce = "42";
  async function postEncrypted(cipher: WechatCipher, xml: string) {
    const encrypt = await cipher.encrypt(xml);
    const q = await signedQuery(
      token,
      ts,
      nonce,
      `&encrypt_type=aes&msg_signature=${msgSignature(token, ts, nonce, encrypt)}`,
    );
    return await fetch(`${t.http}/wechat${q}`, {
      method: "POST",
      body: `<xml><ToUserName><![CDATA[gh_account]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`,
    });
  }
  const wrong = await postEncrypted(await WechatCipher.create(AES_KEY, "wxOTHER"), userXml("u", "x", "1"));
  assert.equal(wrong.status, 400);
  assert.equal((await wrong.json()).data.error, "appid_mismatch");

  const cipher = await WechatCipher.create(AES_KEY, APPID);
  const r = await postEncrypted(cipher, userXml("oUser", "有人吗", "2"));
  assert.equal(r.status, 200);
  const envelope = parser.parse(await r.text()).xml;
  assert.equal(envelope.MsgSignature, msgSignature(token, String(envelope.TimeStamp), nonce, envelope.Encrypt));
  const reply = parser.parse(await cipher.decrypt(envelope.Encrypt)).xml;
  assert.equal(reply.ToUserName, "oUser");
  assert.equal(reply.FromUserName, "gh_account");
  assert.equal(reply.MsgType, "text");
  assert.equal(reply.Content, "客服暂时不在，请稍候");
  // The message itself is held for the first agent.
  await using agent = await AgentClient.open(agentUrl(t, "late"));
  assert.equal((await agent.next(1001)).data.msg.content, "有人吗");
});

// Issue 20: what an attacker with one signed URL (a proxy's log) could do, tried again.

Deno.test("webhook safe mode: a plaintext post reusing a genuine push's signature is refused (no downgrade)", async () => {
  const token = "spamtest";
  await using t = await startService({ WECHAT_TOKEN: token, WECHAT_APPID: APPID, WECHAT_ENCODING_AES_KEY: AES_KEY });
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const cipher = await WechatCipher.create(AES_KEY, APPID);
  const ts = String(Math.floor(Date.now() / 1000));
  const encrypt = cipher.encrypt(userXml("oGenuine", "hello", "24000000000000001", ts));
  const q = await signedQuery(
    token,
    ts,
    "777",
    `&encrypt_type=aes&msg_signature=${msgSignature(token, ts, "777", encrypt)}`,
  );
  const genuine = await fetch(`${t.http}/wechat${q}`, {
    method: "POST",
    body: `<xml><ToUserName><![CDATA[gh]]></ToUserName><Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`,
  });
  assert.equal(await genuine.text(), "success");
  assert.equal((await agent.next(1001)).data.msg.content, "hello");
  // The same signature, timestamp and nonce without encrypt_type, and a made-up body from a made-up openid.
  const downgraded = `${t.http}/wechat${await signedQuery(token, ts, "777")}`;
  const forged = await fetch(downgraded, { method: "POST", body: userXml("oCEO", "FORGED wire the money", "1", ts) });
  assert.equal(forged.status, 401);
  const body = await forged.json();
  assert.equal(body.data.error, "bad_signature");
  assert.match(body.data.detail, /safe mode/);
  // A fresh nonce does not help either: a plaintext post to a safe-mode account is refused as such.
  const fresh = await fetch(`${t.http}/wechat${await signedQuery(token, ts, "778")}`, {
    method: "POST",
    body: userXml("oCEO", "FORGED again", "2", ts),
  });
  assert.equal(fresh.status, 401);
  await fresh.body?.cancel();
  assert.deepEqual(await agent.settle(), []);
});

Deno.test("webhook: a (timestamp, nonce) pair is taken once — a replay with another body is refused, WeChat's retry is not", async () => {
  await using t = await startService({ WECHAT_TOKEN: "bench" });
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const ts = String(Math.floor(Date.now() / 1000));
  const url = `${t.http}/wechat${await signedQuery("bench", ts, "31337")}`;
  const genuine = userXml("oUser", "hello", "25000000000000001", ts);
  assert.equal(await (await fetch(url, { method: "POST", body: genuine })).text(), "success");
  const replay = await fetch(url, { method: "POST", body: userXml("oCEO", "FORGED", "25000000000000002", ts) });
  assert.equal(replay.status, 401);
  const refused = await replay.json();
  assert.equal(refused.data.error, "replayed_request");
  assert.match(refused.data.detail, /31337/);
  // WeChat's retry of the same request (same URL, same body) is answered, and the message comes once.
  const retry = await fetch(url, { method: "POST", body: genuine });
  assert.deepEqual([retry.status, await retry.text()], [200, "success"]);
  assert.equal((await agent.next(1001)).data.msg.content, "hello");
  assert.deepEqual(await agent.settle(), []);
});

Deno.test("webhook: WECHAT_REPLAY_GUARD=off takes a reused signed pair with another body (load generators)", async () => {
  await using t = await startService({ WECHAT_TOKEN: "bench", WECHAT_REPLAY_GUARD: "off" });
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const ts = String(Math.floor(Date.now() / 1000));
  const url = `${t.http}/wechat${await signedQuery("bench", ts, "31337")}`;
  for (const [id, text] of [["25000000000000011", "one"], ["25000000000000012", "two"]]) {
    const r = await fetch(url, { method: "POST", body: userXml("oUser", text, id, ts) });
    assert.deepEqual([r.status, await r.text()], [200, "success"]);
    assert.equal((await agent.next(1001)).data.msg.content, text);
  }
  // The signature and the timestamp are still checked.
  const forged = await fetch(url.replace(/signature=[^&]+/, "signature=0"), {
    method: "POST",
    body: userXml("oUser", "x", "25000000000000013", ts),
  });
  assert.equal(forged.status, 401);
  await forged.body?.cancel();
  assert.deepEqual(await agent.settle(), []);
});

Deno.test("webhook: a pair whose message could not be committed is not remembered, so WeChat's retry is taken", async () => {
  // The store of record goes away (PostgreSQL stopped): the message cannot be committed and is not remembered.
  await using pg = await startPostgres();
  await using t = await startService({ WECHAT_TOKEN: "bench", STORE: "postgres", DATABASE_URL: pg.url });
  const ts = String(Math.floor(Date.now() / 1000));
  const first = await fetch(`${t.http}/wechat${await signedQuery("bench", ts, "1")}`, {
    method: "POST",
    body: userXml("oA", "first", "26000000000000001", ts),
  });
  assert.equal(await first.text(), "success");
  await pg.stop();
  const url = `${t.http}/wechat${await signedQuery("bench", ts, "2")}`;
  const down = await fetch(url, { method: "POST", body: userXml("oB", "second", "26000000000000002", ts) });
  assert.deepEqual([down.status, (await down.json()).data.error], [503, "store_failed"]);
  // WeChat's retry of the same pair, once the store is back, is taken: it is not a replay.
  await pg.restart();
  const retry = await fetch(url, { method: "POST", body: userXml("oB", "second", "26000000000000002", ts) });
  assert.deepEqual([retry.status, await retry.text()], [200, "success"]);
});

Deno.test("webhook compatible mode (WECHAT_ENCRYPT_MODE=compatible) takes plaintext and encrypted posts", async () => {
  const token = "tok";
  await using t = await startService({
    WECHAT_TOKEN: token,
    WECHAT_APPID: APPID,
    WECHAT_ENCODING_AES_KEY: AES_KEY,
    WECHAT_ENCRYPT_MODE: "compatible",
  });
  await using agent = await AgentClient.open(agentUrl(t, "a1"));
  const ts = String(Math.floor(Date.now() / 1000));
  const plain = await fetch(`${t.http}/wechat${await signedQuery(token, ts, "10")}`, {
    method: "POST",
    body: userXml("oUser", "plain", "27000000000000001", ts),
  });
  assert.equal(await plain.text(), "success");
  const xml = userXml("oUser", "sealed", "27000000000000002", ts);
  const encrypt = (await WechatCipher.create(AES_KEY, APPID)).encrypt(xml);
  const q = await signedQuery(
    token,
    ts,
    "11",
    `&encrypt_type=aes&msg_signature=${msgSignature(token, ts, "11", encrypt)}`,
  );
  // Compatible mode's body: the plaintext fields and <Encrypt> side by side.
  const both = await fetch(`${t.http}/wechat${q}`, {
    method: "POST",
    body: `${xml.slice(0, -"</xml>".length)}<Encrypt><![CDATA[${encrypt}]]></Encrypt></xml>`,
  });
  assert.equal(await both.text(), "success");
  assert.equal((await agent.next(1001)).data.msg.content, "plain");
  assert.equal((await agent.next(1001)).data.msg.content, "sealed");
});
