/**
 * Media files across three nodes sharing one MEDIA_DIR (issue 19): a user's image fetched and stored by the node that
 * took the message is served by every node, and a file an agent uploads through one node is sent to WeChat from the
 * node its socket is on. A node in cluster mode without MEDIA_DIR refuses to start.
 */

import assert from "node:assert/strict";
import { UPLOAD_PATH } from "../../src/envelope/protocol.ts";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { eventually, signedQuery, startWechat } from "../helpers.ts";
import { Agent, type Node, onlineOn, startNodes } from "./cluster_support.ts";

const APPID = "wx00000000000000d1";

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

function image(bytes: number): Uint8Array {
  const b = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 65_536) crypto.getRandomValues(b.subarray(i, Math.min(bytes, i + 65_536)));
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return b;
}

async function webhook(node: Node, xml: string): Promise<string> {
  const r = await fetch(`${node.http}/wechat${await signedQuery("tok")}`, { method: "POST", body: xml });
  return await r.text();
}

Deno.test("cluster: media files on every node", async (t) => {
  await using pg = await startPostgres();
  await using db = await pg.createDatabase();
  await using redis = await startRedis();
  await using wechat = startWechat({ appId: APPID, appSecret: "secret" });

  await t.step("a node in cluster mode without MEDIA_DIR refuses to start, saying why", async () => {
    const dataDir = await Deno.makeTempDir({ prefix: "kefu_no_media_dir_" });
    try {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", "main.ts"],
        cwd: new URL("../..", import.meta.url).pathname,
        env: {
          HOST: "127.0.0.1",
          PORT: "0",
          STORE: "postgres",
          DATABASE_URL: db.url,
          REDIS_URL: redis.url,
          NODE_ID: "lonely",
          DATA_DIR: dataDir,
        },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      // Bounded: a node that started after all is killed after a minute (and the test fails).
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      const out = await child.output();
      clearTimeout(timer);
      assert.equal(out.code, 2, "refused as a configuration problem");
      assert.match(new TextDecoder().decode(out.stderr), /cannot use REDIS_URL without MEDIA_DIR/);
    } finally {
      await Deno.remove(dataDir, { recursive: true });
    }
  });

  await using nodes = await startNodes(3, { databaseUrl: db.url, redisUrl: redis.url }, {
    WECHAT_TOKEN: "tok",
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: "secret",
    WECHAT_API_BASE: wechat.url,
  });
  const [n1, n2, n3] = nodes;
  await using agent = new Agent("A");
  await agent.connect(n2);
  for (const node of nodes) {
    await eventually(`${node.id} sees A online`, async () => (await onlineOn(node)).get("A") === true, 15_000);
  }

  await t.step("an image accepted by n1 is served by n2 and n3, the same bytes", async () => {
    const png = image(300_000);
    const mediaId = wechat.sim.addMedia("image", png, "cat.png", "image/png");
    const xml = `<xml><ToUserName><![CDATA[gh_media]]></ToUserName><FromUserName><![CDATA[oM1]]></FromUserName>` +
      `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType><![CDATA[image]]></MsgType>` +
      `<PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl><MediaId>${mediaId}</MediaId><MsgId>7001</MsgId></xml>`;
    assert.equal(await webhook(n1, xml), "success");
    await eventually("A got the image", () => agent.withCode(1002).length > 0, 15_000);
    const msg = agent.withCode(1002)[0].data.msg;
    assert.equal(msg.media_error, undefined);
    assert.equal(msg.media_path, `/media/${await sha256(png)}.png`);
    for (const node of [n2, n3, n1]) {
      const r = await fetch(`${node.http}${msg.media_path}`);
      assert.equal(r.status, 200, `${node.id} serves it`);
      assert.equal(await sha256(new Uint8Array(await r.arrayBuffer())), await sha256(png), `${node.id}: same bytes`);
    }
  });

  await t.step("a file A uploads through n1 is sent from n2, where A's socket is", async () => {
    const png = image(120_000);
    const up = await fetch(`${n1.http}${UPLOAD_PATH}?userid=A&filename=photo.png`, {
      method: "POST",
      body: png as Uint8Array<ArrayBuffer>,
      headers: { "content-type": "image/png" },
    });
    assert.equal(up.status, 200);
    const mediaPath = (await up.json()).data.media_path as string;
    // The user wrote within 48 hours (WeChat's window, on the simulator's side too).
    wechat.sim.recordInteraction("oM1", "message");
    const contact = agent.withCode(1002)[0].data.contact_id;
    agent.socket!.send(JSON.stringify({
      data: { id: "img-1", msg_type: "image", contact_id: contact, msg: { media_path: mediaPath } },
    }));
    await eventually("the reply was sent (103)", () => agent.withCode(103).some((e) => e.data.id === "img-1"), 15_000);
    assert.deepEqual(agent.withCode(-1).filter((e) => e.data.id === "img-1"), []);
    const sent = wechat.sim.inbox("oM1");
    assert.equal(sent.length, 1);
    const mediaId = (sent[0].image as { media_id: string }).media_id;
    assert.equal(await sha256(wechat.sim.media(mediaId)!.bytes), await sha256(png), "WeChat got the uploaded bytes");
    // And n3 serves the upload to its owner too.
    const back = await fetch(`${n3.http}${mediaPath}?userid=A`);
    assert.equal(back.status, 200);
    assert.equal(await sha256(new Uint8Array(await back.arrayBuffer())), await sha256(png));
  });
});
