/**
 * Users' media through the real service and the simulator's WeChat API:
 * fetched with media/get (a video through its video_url), kept under kefu's
 * own URL, voice converted by ffmpeg to something a browser plays, errors told
 * to the agent, the URL's access rules and Range.
 */

import assert from "node:assert/strict";
import { seedSign } from "../../src/agents/auth/auth.ts";
import { hashPassword } from "../../src/agents/auth/passwords.ts";
import { parseRange } from "../../src/media/routes.ts";
import { fetchMedia, isAllowed } from "../../src/media/fetch.ts";
import { MediaFiles } from "../../src/media/files.ts";
import { AgentClient, agentUrl, getJson, signedQuery, startService, startWechat } from "../helpers.ts";

const APPID = "wx0000000000000042";
const SECRET = "media-secret";
const TOKEN = "mediatok";
const FIXTURES = new URL("../fixtures/media/", import.meta.url);
const VOICE = await Deno.readFile(new URL("voice.amr", FIXTURES));
const CLIP = await Deno.readFile(new URL("clip.mp4", FIXTURES));
const PNG = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 9, 8, 7, 6, 5]);

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

function xml(openid: string, type: string, body: string, id: string): string {
  return `<xml><ToUserName><![CDATA[gh_media]]></ToUserName><FromUserName><![CDATA[${openid}]]></FromUserName>` +
    `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType><![CDATA[${type}]]></MsgType>${body}` +
    `<MsgId>${id}</MsgId></xml>`;
}

async function setup(env: Record<string, string> = {}) {
  const wechat = startWechat({ appId: APPID, appSecret: SECRET });
  const t = await startService({
    WECHAT_TOKEN: TOKEN,
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: SECRET,
    WECHAT_API_BASE: wechat.url,
    ...env,
  });
  return {
    wechat,
    t,
    async push(body: string) {
      const r = await fetch(`${t.http}/wechat${await signedQuery(TOKEN)}`, { method: "POST", body });
      assert.equal(await r.text(), "success");
    },
    async [Symbol.asyncDispose]() {
      await t[Symbol.asyncDispose]();
      await wechat[Symbol.asyncDispose]();
    },
  };
}

Deno.test("media: an image is fetched with media/get and served under kefu's URL, the same bytes", async () => {
  await using s = await setup();
  await using agent = await AgentClient.open(agentUrl(s.t, "a1"));
  const mediaId = s.wechat.sim.addMedia("image", PNG, "cat.png", "image/png");
  await s.push(
    xml("oImg", "image", `<PicUrl><![CDATA[http://mmbiz.qpic.cn/x]]></PicUrl><MediaId>${mediaId}</MediaId>`, "1"),
  );
  const e = await agent.next(1002);
  assert.equal(e.data.msg.media_path, `/media/${await sha256(PNG)}.png`);
  assert.equal(e.data.msg.media_type, "image/png");
  assert.equal(e.data.msg.media_error, undefined);
  const got = await fetch(`${s.t.http}${e.data.msg.media_path}`);
  assert.deepEqual([got.status, got.headers.get("content-type"), got.headers.get("cache-control")], [
    200,
    "image/png",
    "private, max-age=31536000, immutable",
  ]);
  assert.equal(await sha256(new Uint8Array(await got.arrayBuffer())), await sha256(PNG));
  // Range: a part of it, as a browser's player asks.
  const part = await fetch(`${s.t.http}${e.data.msg.media_path}`, { headers: { range: "bytes=2-5" } });
  assert.deepEqual([part.status, part.headers.get("content-range")], [206, `bytes 2-5/${PNG.length}`]);
  assert.deepEqual(new Uint8Array(await part.arrayBuffer()), PNG.slice(2, 6));
  const bad = await fetch(`${s.t.http}${e.data.msg.media_path}`, { headers: { range: "bytes=99-" } });
  assert.equal(bad.status, 416);
  await bad.body?.cancel();
});

Deno.test("media: an AMR voice note becomes Opus in Ogg of the same length, which ffprobe reads", async () => {
  await using s = await setup();
  await using agent = await AgentClient.open(agentUrl(s.t, "a1"));
  const mediaId = s.wechat.sim.addMedia("voice", VOICE, "note.amr", "audio/amr");
  await s.push(xml("oVoice", "voice", `<MediaId>${mediaId}</MediaId><Format>amr</Format>`, "2"));
  const e = await agent.next(1003, 15_000);
  assert.equal(e.data.msg.media_error, undefined);
  assert.match(e.data.msg.media_path, /^\/media\/[0-9a-f]{64}\.ogg$/);
  assert.equal(e.data.msg.media_type, "audio/ogg");
  const ogg = new Uint8Array(await (await fetch(`${s.t.http}${e.data.msg.media_path}`)).arrayBuffer());
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/v.ogg`, ogg);
    const probe = await new Deno.Command("ffprobe", {
      args: ["-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json", `${dir}/v.ogg`],
      stdout: "piped",
    }).output();
    const info = JSON.parse(new TextDecoder().decode(probe.stdout));
    assert.equal(info.streams[0].codec_name, "opus");
    // The fixture is 2.06 s of AMR (see tests/fixtures/media/make_amr.ts).
    assert.ok(Math.abs(Number(info.format.duration) - 2.06) <= 0.1, `duration ${info.format.duration}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("media: a video comes through media/get's video_url; an expired id reaches the agent as media_error", async () => {
  await using s = await setup({ MEDIA_ALLOWED_HOSTS: "" });
  await using agent = await AgentClient.open(agentUrl(s.t, "a1"));
  const mediaId = s.wechat.sim.addMedia("video", CLIP, "clip.mp4", "video/mp4");
  await s.push(xml("oVid", "video", `<MediaId>${mediaId}</MediaId><ThumbMediaId>th</ThumbMediaId>`, "3"));
  const v = await agent.next(1004);
  assert.equal(v.data.msg.media_path, `/media/${await sha256(CLIP)}.mp4`);
  await s.push(xml("oVid", "voice", "<MediaId>no-such-id</MediaId><Format>amr</Format>", "4"));
  const err = await agent.next(1003);
  assert.equal(err.data.msg.media_path, "");
  assert.match(err.data.msg.media_error, /40007/);
});

Deno.test("media: a video in another container than MP4 is converted to H.264/AAC MP4; the original is kept too", async () => {
  await using s = await setup();
  await using agent = await AgentClient.open(agentUrl(s.t, "a1"));
  // The bytes are an MP4; served as QuickTime, as a phone's .mov would be.
  const mediaId = s.wechat.sim.addMedia("video", CLIP, "clip.mov", "video/quicktime");
  await s.push(xml("oMov", "video", `<MediaId>${mediaId}</MediaId><ThumbMediaId>th</ThumbMediaId>`, "6"));
  const v = await agent.next(1004, 20_000);
  assert.equal(v.data.msg.media_error, undefined);
  assert.equal(v.data.msg.media_type, "video/mp4");
  assert.match(v.data.msg.media_path, /^\/media\/[0-9a-f]{64}\.mp4$/);
  assert.notEqual(v.data.msg.media_path, `/media/${await sha256(CLIP)}.mp4`, "a new file, not the original bytes");
  const mp4 = new Uint8Array(await (await fetch(`${s.t.http}${v.data.msg.media_path}`)).arrayBuffer());
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/v.mp4`, mp4);
    const probe = await new Deno.Command("ffprobe", {
      args: [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "stream=codec_name",
        "-of",
        "csv=p=0",
        `${dir}/v.mp4`,
      ],
      stdout: "piped",
    }).output();
    assert.equal(new TextDecoder().decode(probe.stdout).trim(), "h264");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("media: a failed file is tried again when the agent asks; the message comes again, now with its file", async () => {
  await using s = await setup();
  await using agent = await AgentClient.open(agentUrl(s.t, "a1"));
  const mediaId = s.wechat.sim.addMedia("image", PNG, "p.png", "image/png");
  // WeChat refuses once (as for an id it does not know yet), then serves the file.
  s.wechat.sim.failNext(1, 40007, "invalid media_id");
  await s.push(xml("oRetry", "image", `<MediaId>${mediaId}</MediaId>`, "31"));
  const failed = await agent.next(1002);
  assert.match(failed.data.msg.media_error, /40007/);
  agent.send({ data: { msg_type: "media_retry", contact_id: "oRetry", id: "31" } });
  const again = await agent.next(1002);
  assert.equal(again.data.id, "31");
  assert.equal(again.data.msg.media_error, undefined);
  assert.equal(again.data.msg.media_path, `/media/${await sha256(PNG)}.png`);
  // Nothing left to retry now; a message of nobody's is refused too.
  agent.send({ data: { msg_type: "media_retry", contact_id: "oRetry", id: "31" } });
  assert.equal((await agent.next(-1)).data.error, "not_found");
  agent.send({ data: { msg_type: "media_retry", contact_id: "oNobody", id: "1" } });
  assert.equal((await agent.next(-1)).data.error, "not_found");
});

Deno.test("media: with sign-in on, a file opens only with a token of the agent whose contact sent it", async () => {
  const secret = "kefu-demo-secret-0123";
  await using s = await setup({ AGENT_SECRET: secret });
  const token = async (uid: string) => {
    const ts = String(Math.floor(Date.now() / 1000));
    return (await getJson(`${s.t.http}/auth/websocket?uid=${uid}&timestamp=${ts}&sign=${seedSign(uid, ts, secret)}`))
      .body.content.token;
  };
  const [a1, b1] = [await token("a1"), await token("b1")];
  await using agent = await AgentClient.open(`${s.t.ws}/im_component/wx_official_account/msg?token=${a1}`);
  const mediaId = s.wechat.sim.addMedia("image", PNG, "p.png", "image/png");
  await s.push(xml("oSecret", "image", `<MediaId>${mediaId}</MediaId>`, "5"));
  const path = (await agent.next(1002)).data.msg.media_path;
  const status = async (q: string) => {
    const r = await fetch(`${s.t.http}${path}${q}`);
    await r.body?.cancel();
    return r.status;
  };
  assert.deepEqual([await status(""), await status(`?token=${b1}`), await status(`?token=${a1}`)], [401, 403, 200]);
  // A signed link: the owner asks for one, anyone opens it until it expires; a forged or expired one is 403.
  const link = async (token: string) =>
    await fetch(`${s.t.http}${path}/link?token=${token}`, { method: "POST" }).then((r) => r.json());
  assert.equal((await link(b1)).data.error, "not_your_contact");
  const { url, expires_at } = (await link(a1)).data;
  assert.ok(expires_at > Date.now() / 1000 + 3000);
  assert.equal(await status(url.slice(path.length)), 200);
  assert.equal(await status(`${url.slice(path.length)}x`), 403, "a forged signature");
  assert.equal(await status(`?exp=${Math.floor(Date.now() / 1000) - 1}&sig=${url.split("sig=")[1]}`), 403);
});

Deno.test("media: with PUBLIC_URL the agent gets an absolute URL, which the owner's token opens", async () => {
  const secret = "kefu-demo-secret-0123";
  await using s = await setup({ AGENT_SECRET: secret, PUBLIC_URL: "https://kefu.example.com/" });
  const ts = String(Math.floor(Date.now() / 1000));
  const token = (await getJson(`${s.t.http}/auth/websocket?uid=a1&timestamp=${ts}&sign=${seedSign("a1", ts, secret)}`))
    .body.content.token;
  await using agent = await AgentClient.open(`${s.t.ws}/im_component/wx_official_account/msg?token=${token}`);
  const mediaId = s.wechat.sim.addMedia("image", PNG, "p.png", "image/png");
  await s.push(xml("oPublic", "image", `<MediaId>${mediaId}</MediaId>`, "8"));
  const url = (await agent.next(1002)).data.msg.media_path;
  assert.equal(url, `https://kefu.example.com/media/${await sha256(PNG)}.png`);
  const r = await fetch(`${s.t.http}${new URL(url).pathname}?token=${token}`);
  assert.equal(r.status, 200);
  assert.deepEqual(new Uint8Array(await r.arrayBuffer()), PNG);
});

Deno.test("media files: content-addressed, the same bytes kept once; Range parsing; fetch limits", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = new MediaFiles(`${dir}/media`);
    const a = await files.put(PNG, "image/png");
    const b = await files.put(PNG, "image/png");
    assert.equal(a.name, b.name);
    assert.deepEqual(await files.read(a.name), PNG);
    await assert.rejects(files.read(`${"0".repeat(64)}.png`), /no media file/);
    await assert.rejects(files.read("../../etc/passwd"), /no media file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.deepEqual(parseRange("bytes=0-0", 10), [0, 0]);
  assert.deepEqual(parseRange("bytes=-3", 10), [7, 9]);
  assert.deepEqual(parseRange("bytes=5-", 10), [5, 9]);
  assert.equal(parseRange("bytes=10-", 10), "unsatisfiable");
  assert.equal(parseRange("items=1-2", 10), undefined);

  assert.equal(isAllowed(new URL("http://mmbiz.qpic.cn/a"), ["*.qpic.cn"]), true);
  assert.equal(isAllowed(new URL("http://evil.example/a"), ["*.qpic.cn"]), false);
  assert.equal(isAllowed(new URL("file:///etc/passwd"), ["*"]), false);
  // A server of our own: a redirect off the list is refused; an answer over the cap is cut off.
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    if (new URL(req.url).pathname === "/redirect") {
      return new Response(null, { status: 302, headers: { location: "http://metadata.example.invalid/latest" } });
    }
    return new Response(new Uint8Array(50 << 20));
  });
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const limits = { allowedHosts: ["127.0.0.1"], maxBytes: 1 << 20, timeoutMs: 5000 };
    await assert.rejects(
      fetchMedia(`${base}/redirect`, limits),
      /cannot fetch "http:\/\/metadata\.example\.invalid": the host is not on MEDIA_ALLOWED_HOSTS/,
    );
    await assert.rejects(fetchMedia(`${base}/big`, limits), /over the limit of 1048576/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("media retention: old files no message uses are deleted, used and new ones stay; usage is counted", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const files = new MediaFiles(`${dir}/media`);
    const used = await files.put(PNG, "image/png");
    const unused = await files.put(VOICE, "audio/amr");
    const fresh = await files.put(CLIP, "video/mp4");
    assert.deepEqual(files.usage(), { media_files: 3, media_bytes: PNG.length + VOICE.length + CLIP.length });
    const old = new Date(Date.now() - 40 * 86_400_000);
    for (const f of [used, unused]) await Deno.utime(`${dir}/media/${f.name.slice(0, 2)}/${f.name}`, old, old);
    const deleted = await files.sweep(Date.now() - 30 * 86_400_000, new Set([used.name]));
    assert.equal(deleted, 1);
    await assert.rejects(files.read(unused.name), /no media file/);
    assert.deepEqual(await files.read(used.name), PNG);
    assert.deepEqual(await files.read(fresh.name), CLIP);
    // A restart counts what is on disk.
    const again = new MediaFiles(`${dir}/media`);
    await again.scan();
    assert.deepEqual(again.usage(), files.usage());
    assert.deepEqual(files.usage(), { media_files: 2, media_bytes: PNG.length + CLIP.length });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("media retention: the store lists the files messages use, converted ones with their originals", async () => {
  await using s = await setup();
  await using agent = await AgentClient.open(agentUrl(s.t, "a1"));
  const mediaId = s.wechat.sim.addMedia("voice", VOICE, "note.amr", "audio/amr");
  await s.push(xml("oKeep", "voice", `<MediaId>${mediaId}</MediaId><Format>amr</Format>`, "9"));
  const e = await agent.next(1003, 15_000);
  const health = (await getJson(`${s.t.http}/healthz`)).body;
  assert.equal(health.media_files, 2, "the Opus file and the AMR original");
  assert.ok(health.media_bytes > VOICE.length);
  assert.equal(e.data.msg.media_type, "audio/ogg");
});

Deno.test("media: with sign-in on, a supervisor's token opens a file of any agent's conversation (issue 22)", async () => {
  const secret = "kefu-demo-secret-0123";
  const dir = await Deno.makeTempDir();
  try {
    const hash = await hashPassword("not used here");
    await Deno.writeTextFile(
      `${dir}/kefu.json`,
      JSON.stringify({
        agents: [{ id: "a1", password_hash: hash }, { id: "b1", password_hash: hash }, {
          id: "sup",
          role: "supervisor",
          password_hash: hash,
        }],
      }),
    );
    await using s = await setup({ AGENT_SECRET: secret, CONFIG_FILE: `${dir}/kefu.json` });
    const token = async (uid: string) => {
      const ts = String(Math.floor(Date.now() / 1000));
      return (await getJson(`${s.t.http}/auth/websocket?uid=${uid}&timestamp=${ts}&sign=${seedSign(uid, ts, secret)}`))
        .body.content.token;
    };
    const [a1, b1, sup] = [await token("a1"), await token("b1"), await token("sup")];
    await using agent = await AgentClient.open(`${s.t.ws}/im_component/wx_official_account/msg?token=${a1}`);
    const mediaId = s.wechat.sim.addMedia("image", PNG, "p.png", "image/png");
    await s.push(xml("oWatched", "image", `<MediaId>${mediaId}</MediaId>`, "6"));
    const path = (await agent.next(1002)).data.msg.media_path;
    const status = async (token: string) => {
      const r = await fetch(`${s.t.http}${path}?token=${token}`);
      await r.body?.cancel();
      return r.status;
    };
    assert.deepEqual([await status(a1), await status(b1), await status(sup)], [200, 403, 200]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
