/**
 * The README's two-window walkthrough in a real headless Chromium: the
 * simulator's phone page and the agent page hold a conversation both ways, in
 * safe mode, with the demo account of `examples/demo.env`. Ignored (not passed)
 * when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { freePort } from "./helpers.ts";
import { start } from "../main.ts";
import { parseConfig } from "../src/config/config.ts";
import { createLogger } from "../src/core/log.ts";
import { parseSimulatorConfig, startSimulator } from "../src/simulator/simulator.ts";
import { Browser, CHROMIUM_PATH, hasChromium } from "./browser/cdp.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const SCREENSHOT = "/tmp/kefu-demo-two-windows.png";

// The README's demo settings, read the way `deno run --env-file` reads them.
async function demoEnv(): Promise<Record<string, string>> {
  const text = await Deno.readTextFile(new URL("../examples/demo.env", import.meta.url));
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

Deno.test({
  name: `browser: the phone page and the agent page talk both ways in safe mode (README walkthrough)${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const demo = await demoEnv();
    assert.ok(demo.WECHAT_ENCODING_AES_KEY, "the demo account is in safe mode");
    const kefuPort = freePort();
    const silent = createLogger({ level: "silent" });
    const sim = startSimulator(
      parseSimulatorConfig({ ...demo, SIM_PORT: "0", SIM_WEBHOOK_URL: `http://127.0.0.1:${kefuPort}/wechat` }),
      silent,
    );
    const kefu = await start(
      parseConfig({
        ...demo,
        PORT: String(kefuPort),
        HOST: "127.0.0.1",
        STORE: "memory",
        WECHAT_API_BASE: `http://127.0.0.1:${sim.port}`,
      }),
      { log: silent },
    );
    let browser: Browser | undefined;
    try {
      browser = await Browser.launch();
      const phone = await browser.newPage();
      const agent = await browser.newPage();
      await agent.goto(`http://127.0.0.1:${kefuPort}/?userid=1`);
      // ?userid= connects by itself.
      await agent.waitForExpression(
        "the agent page to connect",
        `document.querySelector("#status").dataset.state === "open"`,
      );

      await phone.goto(sim.url);
      await phone.waitForExpression(
        "the phone page's live feed",
        `document.querySelector("#live").dataset.state === "open"`,
      );
      await phone.evaluate(`(() => {
        document.querySelector("#new-openid").value = "oDemoUser1";
        document.querySelector("#new-nickname").value = "小明";
        document.querySelector("#add-user").requestSubmit();
      })()`);
      await phone.waitForExpression("the user to be chosen", `!document.querySelector("#text").disabled`);
      await phone.evaluate(`(() => {
        document.querySelector("#text").value = "你好，我的订单到哪了？";
        document.querySelector("#compose").requestSubmit();
      })()`);

      // The agent opens the user's conversation, sees the message (decrypted by kefu) and answers.
      await agent.waitForExpression(
        "the user listed",
        `!!document.querySelector('#contacts [data-contact-id="oDemoUser1"]')`,
      );
      await agent.evaluate(`document.querySelector('#contacts [data-contact-id="oDemoUser1"]').click()`);
      await agent.waitForExpression(
        "the user's message on the agent page",
        `[...document.querySelectorAll('#conversation [data-direction="in"] .msg-text')]
          .some((e) => e.textContent === "你好，我的订单到哪了？")`,
      );
      await agent.evaluate(`(() => {
        document.querySelector("#reply-text").value = "您好，包裹已发出，明天到。";
        document.querySelector("#reply-send").click();
      })()`);
      await agent.waitForExpression(
        "the reply to be marked sent (WeChat's customer-service API took it)",
        `[...document.querySelectorAll('#conversation [data-direction="out"]')].at(-1)?.dataset.status === "sent"`,
      );
      // And the phone shows it, as WeChat would.
      await phone.waitForExpression(
        "the agent's reply on the phone",
        `document.querySelector("#chat").textContent.includes("您好，包裹已发出，明天到。")`,
      );
      assert.deepEqual(sim.simulator.wechat.inbox("oDemoUser1"), [
        { touser: "oDemoUser1", msgtype: "text", text: { content: "您好，包裹已发出，明天到。" } },
      ]);
      await Deno.writeFile(SCREENSHOT, await phone.screenshot());
      await phone.close();
      await agent.close();
    } finally {
      await browser?.close();
      await kefu.shutdown();
      await sim.shutdown();
    }
  },
});
