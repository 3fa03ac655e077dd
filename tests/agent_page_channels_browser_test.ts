/**
 * The agent page names each contact's channel: an Official Account user, a personal-WeChat user through the PC hook
 * and a pushed user, side by side in one agent's contact list, in a real headless Chromium. Ignored (not passed)
 * when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { start } from "../main.ts";
import { parseConfig } from "../src/config/config.ts";
import { startPcHookSimulator } from "../src/simulator/pc_hook.ts";
import { Browser, CHROMIUM_PATH, hasChromium } from "./browser/cdp.ts";
import { freePort, signedQuery, userXml, wechatText } from "./helpers.ts";
import { setLanguage } from "./browser/page_helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const SCREENSHOT = "/tmp/kefu-channels.png";

Deno.test({
  name: `browser: the agent page shows which channel each contact wrote from${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const hook = startPcHookSimulator({ reconnectMs: 50, wxid: "wxid_shop" });
    const port = freePort();
    const svc = await start(parseConfig({
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "silent",
      STORE: "memory",
      WECHAT_TOKEN: "tok",
      HOOK_API_URL: hook.apiUrl,
    }));
    let browser: Browser | undefined;
    try {
      const http = `http://127.0.0.1:${port}`;
      browser = await Browser.launch();
      const page = await browser.newPage();
      await setLanguage(page, "zh-CN");
      await page.goto(`${http}/?userid=7`);
      // ?userid= connects by itself.
      await page.waitForExpression("the page to connect", `document.querySelector("#status").dataset.state === "open"`);
      await hook.waitConnected(1);
      const r = await fetch(`${http}/wechat${await signedQuery("tok")}`, {
        method: "POST",
        body: wechatText("oOfficial", "来自公众号", "7101"),
      });
      assert.equal(await r.text(), "success");
      await hook.text("wxid_friend", "来自个人号", { nickName: "老朋友" });
      await fetch(`${http}/send`, { method: "POST", body: userXml("pushed_user", "via HTTP", { to: "7" }) })
        .then((x) => x.body?.cancel());
      const tags = await page.waitForExpression<Record<string, string>>(
        "a channel tag on each of the three contacts",
        `(() => {
          const tags = [...document.querySelectorAll('#contacts [data-testid="channel"]')];
          if (tags.length < 3) return undefined;
          return Object.fromEntries(tags.map((t) => [t.closest("[data-contact-id]").dataset.contactId, t.textContent]));
        })()`,
      );
      assert.deepEqual(tags, { oOfficial: "公众号", wxid_friend: "个人号 · PC", pushed_user: "HTTP" });
      await Deno.writeFile(SCREENSHOT, await page.screenshot());
    } finally {
      await browser?.close();
      await svc.shutdown();
      await hook.shutdown();
    }
  },
});
