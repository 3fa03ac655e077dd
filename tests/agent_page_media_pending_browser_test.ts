/**
 * A user's file still being fetched when the agent opens the conversation (a real headless Chromium): the history
 * has it in state `media`, the page shows 正在获取文件… in its place, and when kefu has the file (delivered live under
 * the same id) the photo takes that place — once, not beside it. WeChat's media/get is held by a gate in front of
 * the simulated API until the test opens it. A supervisor watching the conversation from the team view sees the same. Ignored (not passed) when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../src/agents/auth/passwords.ts";
import { Browser, CHROMIUM_PATH, hasChromium, type Page } from "./browser/cdp.ts";
import { clickContact, openAgent, startKefu, uncaught, wechat } from "./browser/page_helpers.ts";
import { eventually, startWechat } from "./helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const APPID = "wx00000000000000pp";
const OPENID = "oPendingPhoto";

/** A real 320×240 PNG (ffmpeg's test pattern). */
async function png(): Promise<Uint8Array> {
  const out = await new Deno.Command("ffmpeg", {
    args: [
      "-nostdin",
      "-v",
      "error",
      "-f",
      "lavfi",
      "-i",
      "testsrc2=size=320x240",
      "-frames:v",
      "1",
      "-f",
      "image2",
      "-c:v",
      "png",
      "pipe:1",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`ffmpeg could not make a PNG: ${new TextDecoder().decode(out.stderr)}`);
  return out.stdout;
}

/** Once the photo has loaded in `box` (the conversation, or the team view's): how many files it shows, and its width. */
function photoIn(page: Page, box: string): Promise<{ media: number; natural: number }> {
  return page.waitForExpression(
    `the photo in the placeholder's place in ${box}`,
    `(() => {
      const all = document.querySelectorAll('${box} [data-testid="media"]');
      const img = document.querySelector('${box} [data-kind="image"] img');
      return img?.complete && img.naturalWidth > 0 && { media: all.length, natural: img.naturalWidth };
    })()`,
    15_000,
  );
}

Deno.test({
  name: `browser: a file still being fetched shows as such, then the file takes its place${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    await using api = startWechat({ appId: APPID, appSecret: "pending-secret" });
    // The gate: media/get waits until the test opens it; everything else goes straight to the simulated API.
    const { promise: opened, resolve: open } = Promise.withResolvers<void>();
    let held = 0;
    const gate = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/cgi-bin/media/get") {
        held++;
        await opened;
      }
      return fetch(`${api.url}${url.pathname}${url.search}`, {
        method: req.method,
        headers: req.headers,
        body: req.body,
      });
    });
    // a1 takes the user; sup (a supervisor) watches the same conversation from the team view.
    const dir = await Deno.makeTempDir({ prefix: "kefu-pending-" });
    const hash = await hashPassword("not used: sign-in is off");
    await Deno.writeTextFile(
      `${dir}/kefu.json`,
      JSON.stringify({
        agents: [{ id: "a1", password_hash: hash }, { id: "sup", role: "supervisor", password_hash: hash }],
      }),
    );
    const { svc, http } = await startKefu({
      WECHAT_APPID: APPID,
      WECHAT_APPSECRET: "pending-secret",
      WECHAT_API_BASE: `http://127.0.0.1:${gate.addr.port}`,
      CONFIG_FILE: `${dir}/kefu.json`,
    });
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${http}/?userid=a1`);
      await wechat(http, OPENID, "text", `<Content><![CDATA[我发张截图]]></Content><MsgId>7001</MsgId>`);
      // Only a1 is routed to (sup comes after the user has an agent).
      await page.waitForExpression("the user in a1's list", `!!document.querySelector("#contacts .contact")`);
      const sup = await openAgent(browser, `${http}/?userid=sup`);
      const media = api.sim.addMedia("image", await png(), "shot.png", "image/png");
      await wechat(
        http,
        OPENID,
        "image",
        `<PicUrl><![CDATA[http://127.0.0.1:9/pic]]></PicUrl><MediaId><![CDATA[${media}]]></MediaId><MsgId>7002</MsgId>`,
      );
      await eventually("kefu to ask WeChat for the photo", () => held > 0, 10_000);
      assert.equal(held, 1, "kefu asked media/get for the photo once");

      // The agent opens the conversation while the photo is still on its way: it shows as being fetched.
      await clickContact(page, OPENID);
      const preparing = await page.waitForExpression<string>(
        "the photo shown as being fetched",
        `document.querySelector('#conversation [data-testid="media"][data-state="preparing"]')?.textContent`,
      );
      assert.equal(preparing, "正在获取文件…");
      // The supervisor opens it too, from the team view: the same placeholder.
      await sup.waitForExpression("the 团队 button", `!document.querySelector("#team-toggle").hidden`, 10_000);
      await sup.evaluate(`document.querySelector("#team-toggle").click()`);
      const row = `#team-contacts [data-contact-id="${OPENID}"]`;
      await sup.waitForExpression("the user in the team's list", `!!document.querySelector('${row}')`, 10_000);
      await sup.evaluate(`document.querySelector('${row}').click()`);
      await sup.waitForExpression(
        "the photo shown as being fetched in the team view",
        `document.querySelector('#team-conversation [data-testid="media"][data-state="preparing"]')?.textContent
          === "正在获取文件…"`,
      );

      // WeChat answers: the photo takes the placeholder's place, and there is one photo, not two.
      open();
      assert.deepEqual(await photoIn(page, "#conversation"), { media: 1, natural: 320 });
      assert.deepEqual(await photoIn(sup, "#team-conversation"), { media: 1, natural: 320 });
      assert.equal(
        await page.evaluate<number>(`document.querySelectorAll('#conversation [data-state="preparing"]').length`),
        0,
      );
      // The agent has it on screen (its tab in front again): it is read, so a reconnect does not send it again.
      await page.send("Page.bringToFront");
      await eventually("both messages read", async () => (await svc.hub.stats()).held === 0, 10_000);
      assert.deepEqual([...uncaught(page), ...uncaught(sup)], []);
    } finally {
      open();
      await browser.close();
      await svc.shutdown();
      await gate.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
