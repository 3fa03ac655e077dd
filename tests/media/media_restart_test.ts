/**
 * Media work is durable: kefu killed with SIGKILL while it fetches a user's voice note; after a restart on the same
 * DATA_DIR the work resumes and the agent gets the message once, with its converted file.
 */

import assert from "node:assert/strict";
import { AgentClient, signedQuery, startService, startWechat } from "../helpers.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const APPID = "wx0000000000000043";
const SECRET = "restart-secret";
const VOICE = await Deno.readFile(new URL("../fixtures/media/voice.amr", import.meta.url));

Deno.test("media: kill -9 while a voice note is being fetched; after a restart it arrives once, converted", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "kefu-media-restart-" });
  await using wechat = startWechat({ appId: APPID, appSecret: SECRET });
  const mediaId = wechat.sim.addMedia("voice", VOICE, "note.amr", "audio/amr");
  // WeChat's API, except that media/get never answers while the first kefu runs.
  let seen!: () => void;
  const fetching = new Promise<void>((resolve) => seen = resolve);
  let release!: () => void;
  const released = new Promise<void>((resolve) => release = resolve);
  const gate = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname === "/cgi-bin/media/get") {
      seen();
      await released;
      return new Response("gone", { status: 503 });
    }
    return await fetch(`${wechat.url}${url.pathname}${url.search}`, { method: req.method, body: req.body });
  });
  const env = {
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "info",
    DATA_DIR: dataDir,
    WECHAT_TOKEN: "tok",
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: SECRET,
  };
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "--allow-run", "main.ts"],
      cwd: ROOT,
      env: { ...env, WECHAT_API_BASE: `http://127.0.0.1:${gate.addr.port}` },
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const out = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let log = "";
    let port = 0;
    while (port === 0) {
      const { value, done } = await out.read();
      if (done) throw new Error(`the service exited before listening: ${log}`);
      log += value;
      port = Number(/"event":"listening".*?"port":(\d+)/.exec(log)?.[1] ?? 0);
    }
    const body = `<xml><ToUserName><![CDATA[gh]]></ToUserName><FromUserName><![CDATA[oKill]]></FromUserName>` +
      `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType><![CDATA[voice]]></MsgType>` +
      `<MediaId>${mediaId}</MediaId><Format>amr</Format><MsgId>777</MsgId></xml>`;
    const r = await fetch(`http://127.0.0.1:${port}/wechat${await signedQuery("tok")}`, { method: "POST", body });
    assert.equal(await r.text(), "success", "answered at once, before the file is fetched");
    await fetching;
    child.kill("SIGKILL");
    await child.status;
    await out.cancel().catch(() => undefined);
    release();

    // The same data, WeChat answering now.
    await using t = await startService({ ...env, LOG_LEVEL: "silent", WECHAT_API_BASE: wechat.url });
    await using agent = await AgentClient.open(`${t.ws}/im_component/wx_official_account/msg?userid=a1`);
    const e = await agent.next(1003, 15_000);
    assert.equal(e.data.id, "777");
    assert.match(e.data.msg.media_path, /^\/media\/[0-9a-f]{64}\.ogg$/);
    assert.equal(e.data.msg.media_error, undefined);
    // Once: nothing else comes.
    assert.deepEqual((await agent.settle(300)).filter((x) => x.result.code === 1003), []);
  } finally {
    release();
    await gate.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
});
