/**
 * Media timing: from WeChat's POST to the agent's envelope, for a 1 MB image and a 10 s voice note (converted to
 * Opus by ffmpeg), through the real service and the simulator's media/get. Five of each, medians.
 *
 *   deno run -A bench/media_bench.ts
 *
 * @module
 */

import { start } from "../main.ts";
import { parseConfig } from "../src/config/config.ts";
import { createWechatServer } from "../src/simulator/wechat_server.ts";
import { signature } from "../src/channels/wx_official/crypto.ts";

const APPID = "wx00000000000000b1";
const SECRET = "bench-secret";
const ROUNDS = 5;

// A real 1 MB-ish image: ffmpeg's noise source as PNG (noise does not compress).
async function image(): Promise<Uint8Array> {
  const out = await new Deno.Command("ffmpeg", {
    args: [
      "-v",
      "error",
      "-f",
      "lavfi",
      "-i",
      "nullsrc=s=900x820,geq=random(1)*255:128:128",
      "-frames:v",
      "1",
      "-f",
      "image2pipe",
      "-c:v",
      "png",
      "-",
    ],
    stdout: "piped",
  }).output();
  return out.stdout;
}

// A real 10 s AMR note: the 2 s fixture's frames five times over (AMR frames stand alone; one header).
async function voice(): Promise<Uint8Array> {
  const amr = await Deno.readFile(new URL("../tests/fixtures/media/voice.amr", import.meta.url));
  const frames = amr.subarray(6);
  const out = new Uint8Array(6 + frames.length * 5);
  out.set(amr.subarray(0, 6));
  for (let i = 0; i < 5; i++) out.set(frames, 6 + i * frames.length);
  return out;
}

const sim = createWechatServer({ appId: APPID, appSecret: SECRET });
const api = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, sim.app.fetch);
const dataDir = await Deno.makeTempDir({ prefix: "kefu-media-bench-" });
const kefu = await start(parseConfig({
  PORT: "0",
  HOST: "127.0.0.1",
  LOG_LEVEL: "silent",
  DATA_DIR: dataDir,
  WECHAT_TOKEN: "tok",
  WECHAT_APPID: APPID,
  WECHAT_APPSECRET: SECRET,
  WECHAT_API_BASE: `http://127.0.0.1:${api.addr.port}`,
}));
const ws = new WebSocket(`ws://127.0.0.1:${kefu.port}/im_component/wx_official_account/msg?userid=a1`);
await new Promise((resolve) => ws.onopen = resolve);
const waiting = new Map<string, (t: number) => void>();
ws.onmessage = (e) => waiting.get(JSON.parse(e.data).data?.id)?.(performance.now());

let seq = 0;
async function once(type: "image" | "voice", bytes: Uint8Array): Promise<number> {
  const mediaId = sim.addMedia(
    type,
    bytes,
    type === "image" ? "x.png" : "x.amr",
    type === "image" ? "image/png" : "audio/amr",
  );
  const id = String(900000 + ++seq);
  const got = new Promise<number>((resolve) => waiting.set(id, resolve));
  const ts = String(Math.floor(Date.now() / 1000));
  const body =
    `<xml><ToUserName>gh</ToUserName><FromUserName>oBench${seq}</FromUserName><CreateTime>${ts}</CreateTime>` +
    `<MsgType>${type}</MsgType><MediaId>${mediaId}</MediaId><Format>amr</Format><MsgId>${id}</MsgId></xml>`;
  const t0 = performance.now();
  const r = await fetch(
    `http://127.0.0.1:${kefu.port}/wechat?signature=${signature("tok", ts, "n")}&timestamp=${ts}&nonce=n`,
    { method: "POST", body },
  );
  await r.text();
  return await got - t0;
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const img = await image();
const note = await voice();
const results: Record<string, number[]> = { image: [], voice: [] };
for (let i = 0; i < ROUNDS; i++) {
  results.image.push(await once("image", img));
  results.voice.push(await once("voice", note));
}
console.log(
  `image ${(img.length / 1e6).toFixed(2)} MB: webhook → envelope median ${median(results.image).toFixed(1)} ms ` +
    `(${results.image.map((x) => x.toFixed(0)).join(", ")})`,
);
console.log(
  `voice 10.3 s AMR → Opus: webhook → envelope median ${median(results.voice).toFixed(1)} ms ` +
    `(${results.voice.map((x) => x.toFixed(0)).join(", ")})`,
);
ws.close();
await kefu.shutdown();
await api.shutdown();
await Deno.remove(dataDir, { recursive: true });
