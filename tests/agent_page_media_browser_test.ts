/**
 * Users' media on the agent page (issue 12, item 7) in a real headless Chromium, with sign-in on: the simulator's
 * phone page sends a photo (through its file input) and a voice note (its real AMR sample), a video and a voice note
 * with a MediaId WeChat does not know come through signed webhook POSTs; kefu fetches them with the simulator's
 * media/get. The agent page shows the photo inline and enlarges it on a click (Esc closes), plays the voice note
 * (Opus, converted by kefu's ffmpeg) with its length, plays the video, and shows the failed one's reason instead of a
 * player. Every kefu URL carries the agent's token. Ignored (not passed) when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { start } from "../main.ts";
import { hashPassword } from "../src/agents/auth/passwords.ts";
import { parseConfig } from "../src/config/config.ts";
import { createLogger } from "../src/core/log.ts";
import { parseSimulatorConfig, startSimulator } from "../src/simulator/simulator.ts";
import { Browser, CHROMIUM_PATH, hasChromium, type Page, waitFor } from "./browser/cdp.ts";
import { freePort, signedQuery } from "./helpers.ts";
import { clickContact, setLanguage } from "./browser/page_helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const SCREENSHOT = "/tmp/kefu-media.png";
const ENLARGED_SCREENSHOT = "/tmp/kefu-media-enlarged.png";
const PHONE_SCREENSHOT = "/tmp/kefu-media-phone.png";
const TOKEN = "mediapagetok";
const APPID = "wx00000000000000aa";
const APPSECRET = "media-page-secret";
const AGENT_SECRET = "kefu-media-page-secret-0123456789";
const PASSWORD = "语音 and pictures";
const OPENID = "oMediaUser";
const FIXTURES = new URL("./fixtures/media/", import.meta.url);
// The fixture voice note: 2.06 s as ffprobe reads the AMR (tests/fixtures/media/make_amr.ts); the clip: 1 s.
const VOICE_SECONDS = 2.06;
const CLIP_SECONDS = 1;

/** A real 640×480 PNG (ffmpeg's test pattern), to be seen at thumbnail size and enlarged. */
async function makePng(path: string): Promise<void> {
  const out = await new Deno.Command("ffmpeg", {
    args: ["-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x480", "-frames:v", "1", "-y", path],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`ffmpeg could not make a PNG: ${new TextDecoder().decode(out.stderr)}`);
}

function wechatXml(type: string, body: string, msgId: string): string {
  return `<xml><ToUserName><![CDATA[gh_media_page]]></ToUserName><FromUserName><![CDATA[${OPENID}]]></FromUserName>` +
    `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType><![CDATA[${type}]]></MsgType>${body}` +
    `<MsgId>${msgId}</MsgId></xml>`;
}

/** A real click (mouse pressed and released) on the element `selector` finds: `left` px in, else in its middle. */
async function click(page: Page, selector: string, left?: number): Promise<void> {
  const at = await page.evaluate<{ x: number; y: number }>(`(() => {
    const e = document.querySelector(${JSON.stringify(selector)});
    e.scrollIntoView({ block: "center" });
    const r = e.getBoundingClientRect();
    return { x: r.left + ${left ?? "r.width / 2"}, y: r.top + r.height / 2 };
  })()`);
  for (const type of ["mousePressed", "mouseReleased"]) {
    await page.send("Input.dispatchMouseEvent", { type, x: at.x, y: at.y, button: "left", clickCount: 1 });
  }
}

Deno.test({
  name: `browser: images enlarge on click, voice and video play with their length, failed files say why${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kefu-media-page-" });
    const configFile = `${dir}/kefu.json`;
    const photo = `${dir}/photo.png`;
    await makePng(photo);
    await Deno.writeTextFile(
      configFile,
      JSON.stringify({ agents: [{ id: "a1", name: "小王", password_hash: await hashPassword(PASSWORD) }] }),
    );
    const silent = createLogger({ level: "silent" });
    const kefuPort = freePort();
    const http = `http://127.0.0.1:${kefuPort}`;
    const wechat = { WECHAT_TOKEN: TOKEN, WECHAT_APPID: APPID, WECHAT_APPSECRET: APPSECRET };
    const sim = startSimulator(
      parseSimulatorConfig({
        ...wechat,
        SIM_PORT: "0",
        SIM_WEBHOOK_URL: `${http}/wechat`,
        SIM_ACCOUNT_ID: "gh_media_page",
      }),
      silent,
    );
    const kefu = await start(
      parseConfig({
        ...wechat,
        PORT: String(kefuPort),
        HOST: "127.0.0.1",
        STORE: "memory",
        WECHAT_API_BASE: `http://127.0.0.1:${sim.port}`,
        AGENT_SECRET,
        CONFIG_FILE: configFile,
      }),
      { log: silent },
    );
    let browser: Browser | undefined;
    try {
      browser = await Browser.launch();
      const agent = await browser.newPage();
      await agent.send("Emulation.setDeviceMetricsOverride", {
        width: 1200,
        height: 900,
        deviceScaleFactor: 1,
        mobile: false,
      });
      // The agents' language: the page speaks Chinese.
      await setLanguage(agent, "zh-CN");
      await agent.goto(`${http}/`);
      await agent.waitForExpression("the login form", `!document.getElementById("login-form").hidden`);
      await agent.evaluate(`(() => {
        document.getElementById("login-id").value = "a1";
        document.getElementById("login-password").value = ${JSON.stringify(PASSWORD)};
        document.getElementById("login").click();
      })()`);
      await agent.waitForExpression(
        "the socket to be open",
        `document.getElementById("status").dataset.state === "open"`,
      );
      await waitFor("agent a1 online", () => kefu.hub.isOnline("a1"));
      // The sign-in is the HttpOnly cookie (issue 20): the page keeps only the marker, and so do its media URLs.
      const token = await agent.evaluate<string>(`sessionStorage.getItem("kefu.token")`);
      assert.equal(token, "cookie");

      // The user's phone: a photo through the file input, then the voice button (the real AMR sample).
      const phone = await browser.newPage();
      await phone.goto(sim.url);
      await phone.waitForExpression(
        "the phone's live feed",
        `document.querySelector("#live").dataset.state === "open"`,
      );
      await phone.evaluate(`(() => {
        document.querySelector("#new-openid").value = ${JSON.stringify(OPENID)};
        document.querySelector("#new-nickname").value = "小李";
        document.querySelector("#add-user").requestSubmit();
      })()`);
      await phone.waitForExpression("the user to be chosen", `!document.querySelector("#text").disabled`);
      const { root } = await phone.send("DOM.getDocument", {}) as { root: { nodeId: number } };
      const { nodeId } = await phone.send("DOM.querySelector", { nodeId: root.nodeId, selector: "#image-file" });
      await phone.send("DOM.setFileInputFiles", { nodeId, files: [photo] });
      await phone.waitForExpression(
        "the photo delivered on the phone",
        `[...document.querySelectorAll("#chat .row.me")].some((r) => r.querySelector("img.photo")?.naturalWidth === 640
          && r.querySelector(".status")?.dataset.state === "accepted")`,
      );
      await click(phone, `[data-action="voice"]`);
      const voiceBubble = await phone.waitForExpression<string>(
        "the voice note delivered on the phone",
        `(() => {
          const r = [...document.querySelectorAll("#chat .row.me")].find((r) => r.querySelector(".voice-note"));
          return r?.querySelector(".status")?.dataset.state === "accepted" && r.querySelector(".voice-note").textContent;
        })()`,
      );
      assert.equal(voiceBubble, "语音 2″ )))");
      const voiceMedia = sim.simulator.feed.history(OPENID)
        .map((e) => (e.input as { type: string; mediaId: string } | undefined))
        .find((i) => i?.type === "voice")!;
      const kept = sim.simulator.wechat.media(voiceMedia.mediaId)!;
      assert.deepEqual(kept.bytes, await Deno.readFile(new URL("voice.amr", FIXTURES)), "the real AMR was sent");
      await Deno.writeFile(PHONE_SCREENSHOT, await phone.screenshot());

      // A video (media/get answers JSON {"video_url"}) and a voice note whose MediaId the simulator does not know.
      const clip = sim.simulator.wechat.addMedia(
        "video",
        await Deno.readFile(new URL("clip.mp4", FIXTURES)),
        "clip.mp4",
        "video/mp4",
      );
      for (
        const xml of [
          wechatXml("video", `<MediaId><![CDATA[${clip}]]></MediaId><ThumbMediaId>th</ThumbMediaId>`, "8801"),
          wechatXml("voice", `<MediaId><![CDATA[no-such-media]]></MediaId><Format>amr</Format>`, "8802"),
        ]
      ) {
        const r = await fetch(`${http}/wechat${await signedQuery(TOKEN)}`, { method: "POST", body: xml });
        assert.equal(await r.text(), "success");
      }

      // On the agent page: four messages from 小李's phone.
      // The agent's tab in front, as an agent at work has it: Chromium does not load media in a hidden tab.
      await agent.send("Page.bringToFront");
      await clickContact(agent, OPENID);
      await agent.waitForExpression(
        "the four media messages",
        `document.querySelectorAll('#conversation[data-contact-id="${OPENID}"] [data-testid="media"]').length === 4`,
        20_000,
      );
      // In the order each file was ready (the voice note is converted first). A file still being converted when the
      // history was read shows as 正在获取文件… until it comes live (agent_page_media_pending_browser_test.ts).
      const kinds = await agent.waitForExpression<string[]>(
        "the four files ready: an image, a voice note, a video and the one that failed",
        `(() => {
          const kinds = [...document.querySelectorAll('#conversation [data-testid="media"]')]
            .map((m) => m.dataset.kind ?? "error").sort();
          return JSON.stringify(kinds) === '["error","image","video","voice"]' && kinds;
        })()`,
        20_000,
      );
      assert.deepEqual(kinds, ["error", "image", "video", "voice"]);
      const tokenParam = `?token=${encodeURIComponent(token)}`;

      // The photo: a thumbnail of kefu's copy (with the token), no raw URL in the text.
      const image = await agent.waitForExpression<{ src: string; natural: number; shown: number; text: string }>(
        "the photo's thumbnail to load",
        `(() => {
          const m = document.querySelector('[data-kind="image"]');
          const img = m.querySelector("img");
          return img.complete && img.naturalWidth > 0 && { src: img.getAttribute("src"), natural: img.naturalWidth,
            shown: img.getBoundingClientRect().width, text: m.closest('[data-testid="message"]').textContent };
        })()`,
      );
      assert.match(image.src, /^\/media\/[0-9a-f]{64}\.png\?token=/);
      assert.ok(image.src.endsWith(tokenParam), image.src);
      assert.equal(image.natural, 640);
      assert.ok(image.shown <= 240, `thumbnail ${image.shown} px wide`);
      assert.ok(!image.text.includes("/media/"), `no raw URL shown: ${image.text}`);

      // The voice note: an <audio> whose metadata Chromium read, 2.06 s, shown as 0:02.
      const voice = await agent.waitForExpression<{ duration: number; label: string; src: string; type: string }>(
        "the voice note's loadedmetadata",
        `(() => {
          const m = document.querySelector('[data-kind="voice"]');
          const a = m.querySelector("audio");
          return a.readyState >= HTMLMediaElement.HAVE_METADATA && m.dataset.duration && {
            duration: a.duration, label: m.querySelector('[data-testid="duration"]').textContent,
            src: a.getAttribute("src"), type: a.closest('[data-testid="message"]').querySelector(".badge").textContent };
        })()`,
        15_000,
      );
      assert.ok(Number.isFinite(voice.duration), `duration ${voice.duration}`);
      assert.ok(Math.abs(voice.duration - VOICE_SECONDS) <= 0.2, `duration ${voice.duration}`);
      assert.equal(voice.label, "语音 0:02");
      assert.match(voice.src, /^\/media\/[0-9a-f]{64}\.ogg\?token=/);
      assert.ok(voice.src.endsWith(tokenParam));
      // The badge in the agent's language (图片/语音/视频…), not the type's name.
      assert.equal(voice.type, "语音");
      // It plays: a click on the player's own play button (at its left end), and Chromium decodes kefu's Opus.
      await click(agent, '[data-kind="voice"] audio', 20);
      await agent.waitForExpression(
        "the voice note to play",
        `document.querySelector('[data-kind="voice"] audio').currentTime > 0.2`,
      );
      await agent.evaluate(`document.querySelector('[data-kind="voice"] audio').pause()`);

      // The video: a <video> with its length.
      const video = await agent.waitForExpression<{ duration: number; label: string; width: number }>(
        "the video's metadata",
        `(() => {
          const m = document.querySelector('[data-kind="video"]');
          const v = m.querySelector("video");
          return v.readyState >= HTMLMediaElement.HAVE_METADATA && m.dataset.duration && {
            duration: v.duration, label: m.querySelector('[data-testid="duration"]').textContent, width: v.videoWidth };
        })()`,
      );
      assert.ok(Math.abs(video.duration - CLIP_SECONDS) <= 0.2, `duration ${video.duration}`);
      assert.deepEqual([video.label, video.width], ["视频 0:01", 64]);

      // The voice note WeChat had no file for: the reason, and no player.
      const failed = await agent.evaluate<{ line: string; players: number; links: number }>(`(() => {
        const m = document.querySelector('[data-testid="media"]:not([data-kind])');
        return { line: m.querySelector('[data-testid="media-error"]').textContent,
          players: m.querySelectorAll("audio, video, img").length, links: m.querySelectorAll("a").length };
      })()`);
      assert.match(failed.line, /^文件未能转存：.*40007/);
      assert.deepEqual([failed.players, failed.links], [0, 0]);
      // Retry: kefu asks WeChat again (which still has no such file) and the message comes back in its place, with
      // the reason and a retry button again.
      await agent.evaluate(`document.querySelector('[data-testid="media-retry"]').click()`);
      assert.equal(await agent.evaluate(`document.querySelector('[data-testid="media-retry"]').disabled`), true);
      const back = await agent.waitForExpression<string>(
        "the retried message to come back",
        `(() => {
          const b = document.querySelector('[data-testid="media-retry"]');
          return b && !b.disabled && b.closest('[data-testid="media"]').querySelector('[data-testid="media-error"]').textContent;
        })()`,
      );
      assert.match(back, /^文件未能转存：.*40007/);
      assert.equal(await agent.evaluate(`document.querySelectorAll('[data-testid="media-retry"]').length`), 1);
      await agent.evaluate(`document.getElementById("conversation").scrollTop = 0`);
      await Deno.writeFile(SCREENSHOT, await agent.screenshot());

      // A click enlarges the photo in the overlay; Esc closes it and gives the focus back.
      await click(agent, '[data-kind="image"] .thumb');
      const enlarged = await agent.waitForExpression<{ natural: number; shown: number; src: string }>(
        "the enlarged photo",
        `(() => {
          const img = document.getElementById("lightbox-img");
          return !document.getElementById("lightbox").hidden && img.complete && img.naturalWidth > 0 &&
            { natural: img.naturalWidth, shown: img.getBoundingClientRect().width, src: img.getAttribute("src") };
        })()`,
      );
      assert.equal(enlarged.src, image.src);
      assert.equal(enlarged.shown, 640, "shown at its own size, which fits the window");
      assert.equal(await agent.evaluate(`document.activeElement.id`), "lightbox-close");
      await Deno.writeFile(ENLARGED_SCREENSHOT, await agent.screenshot());
      for (const type of ["keyDown", "keyUp"]) {
        await agent.send("Input.dispatchKeyEvent", { type, key: "Escape", code: "Escape", windowsVirtualKeyCode: 27 });
      }
      await agent.waitForExpression("the overlay to close", `document.getElementById("lightbox").hidden`);
      assert.equal(await agent.evaluate(`document.activeElement.classList.contains("thumb")`), true);

      // A file kefu kept but could not convert: the reason and a link to the file (with the token), no player; a
      // file the browser cannot load: the player gives way to the reason.
      const original = `/media/${"ab".repeat(32)}.amr`;
      await agent.evaluate(`(() => {
        const frame = (id, msg) => handleFrame(JSON.stringify({ data: { id, name: "小李", msg_type: "voice",
          contact_id: ${JSON.stringify(OPENID)}, send_time: ${Math.floor(Date.now() / 1000)}, msg },
          result: { code: 1003, message: "common" } }));
        frame("kept-1", { media_path: "${original}", media_type: "audio/amr",
          media_error: "conversion unavailable (ffmpeg not found): the original file is kept as it came" });
        frame("gone-1", { media_path: "/media/${"cd".repeat(32)}.ogg", media_type: "audio/ogg" });
      })()`);
      const problems = await agent.waitForExpression<{ kept: string[]; gone: string[] }>(
        "the unconverted and the unloadable voice notes",
        `(() => {
          const read = (id) => {
            const m = document.querySelector('#conversation [data-id="' + id + '"] [data-testid="media"]');
            const line = m?.querySelector('[data-testid="media-error"]');
            return line && !m.querySelector("audio") && [line.textContent, m.querySelector("a").getAttribute("href")];
          };
          const [kept, gone] = [read("kept-1"), read("gone-1")];
          return kept && gone && { kept, gone };
        })()`,
      );
      assert.deepEqual(problems.kept, [
        "文件未能转换：conversion unavailable (ffmpeg not found): the original file is kept as it came",
        `${original}${tokenParam}`,
      ]);
      assert.match(problems.gone[0], /^无法播放：./);

      assert.deepEqual(agent.console.filter((l) => l.startsWith("uncaught")), []);
      assert.deepEqual(phone.console.filter((l) => l.startsWith("uncaught")), []);
      await phone.close();
      await agent.close();
    } finally {
      await browser?.close();
      await kefu.shutdown();
      await sim.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
