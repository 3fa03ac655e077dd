/**
 * Automatic messages on the agent page (issue 22), in a real headless Chromium: kefu's welcome to a user who
 * followed is in the conversation's history as kefu's own line — labelled 自动回复 (Automatic reply in English) and
 * drawn apart from the agents' replies; with the conversation open, kefu's lines appear live (code 110) and the
 * auto-resolve moves it to 已解决 live, without a reload. The messages go to the simulator's WeChat API. Ignored
 * (not passed) when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { start } from "../main.ts";
import { AutomaticConfig } from "../src/automation/config.ts";
import { parseConfig } from "../src/config/config.ts";
import { Browser, CHROMIUM_PATH, hasChromium } from "./browser/cdp.ts";
import {
  click,
  clickContact,
  inConversation,
  openAgent,
  PAGE_TOKEN,
  startKefu,
  typeInto,
  uncaught,
  wechat,
} from "./browser/page_helpers.ts";
import { eventually, freePort, startWechat } from "./helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const APPID = "wx00000000000000ac";

Deno.test({
  name: `browser: kefu's welcome shows in the history labelled 自动回复, apart from agents' replies${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kefu-automatic-page-" });
    await Deno.writeTextFile(`${dir}/kefu.json`, JSON.stringify({ automatic: [{ welcome: "欢迎关注！" }] }));
    const sim = startWechat({ appId: APPID, appSecret: "s3cr3t-for-tests" });
    const kefu = await startKefu({
      WECHAT_APPID: APPID,
      WECHAT_APPSECRET: "s3cr3t-for-tests",
      WECHAT_API_BASE: sim.url,
      CONFIG_FILE: `${dir}/kefu.json`,
    });
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=W`);
      sim.sim.recordInteraction("oFan", "follow");
      await wechat(kefu.http, "oFan", "event", "<Event><![CDATA[subscribe]]></Event>");
      await eventually("the welcome reached the phone", () => sim.sim.inbox("oFan").length === 1, 15_000);
      await clickContact(page, "oFan");
      const shown = await page.waitForExpression<{ badge: string; text: string; direction: string }>(
        "the welcome in the conversation",
        `(() => {
          const m = document.querySelector('#conversation .msg.automatic');
          return m && { badge: m.querySelector('.badge.automatic').textContent, text: m.querySelector('.msg-text').textContent,
            direction: m.dataset.direction, kind: m.dataset.automatic };
        })()`,
      );
      assert.deepEqual(shown, { badge: "自动回复", text: "欢迎关注！", direction: "out", kind: "welcome" });
      // The agent's own reply (the follow's window allows two more) is not labelled.
      await page.waitForExpression("the reply box enabled", `!document.querySelector("#reply-text").disabled`);
      await typeInto(page, "#reply-text", "您好，我是客服小王");
      await click(page, "#reply-send");
      await page.waitForExpression(
        "the agent's reply sent",
        `!!document.querySelector('#conversation [data-direction="out"][data-status="sent"]:not(.automatic)')`,
      );
      assert.equal(
        await page.evaluate(
          `document.querySelectorAll('#conversation [data-direction="out"] .badge.automatic').length`,
        ),
        1,
        "only kefu's own line has the label",
      );
      await page.evaluate(`kefu.setLang("en")`);
      await page.waitForExpression(
        "the label in English",
        `document.querySelector('#conversation .msg.automatic .badge.automatic')?.textContent === "Automatic reply"`,
      );
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await kefu.svc.shutdown();
      await sim[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    `browser: kefu's lines appear live in the open conversation, labelled 自动回复; auto-resolve moves it live${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const sim = startWechat({ appId: APPID, appSecret: "s3cr3t-for-tests" });
    const port = freePort();
    // The rule built as CONFIG_FILE's would be, with an idle time of seconds (the file's least is a minute) and the
    // job looking every half second: the test waits seconds, not minutes.
    const automatic = new AutomaticConfig([{
      closedReply: "",
      welcome: "欢迎关注！",
      autoResolve: { afterMs: 20_000, text: "本次会话已结束，感谢您的咨询。" },
    }]);
    const svc = await start(
      parseConfig({
        PORT: String(port),
        HOST: "127.0.0.1",
        LOG_LEVEL: "silent",
        STORE: "memory",
        WECHAT_TOKEN: PAGE_TOKEN,
        WECHAT_APPID: APPID,
        WECHAT_APPSECRET: "s3cr3t-for-tests",
        WECHAT_API_BASE: sim.url,
      }),
      { settings: { automatic }, automaticJob: { everyMs: 500, resolveEveryMs: 500 } },
    );
    const http = `http://127.0.0.1:${port}`;
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${http}/?userid=W`);
      // Set once: a reload would lose it.
      await page.evaluate(`window.sameLoad = true`);
      sim.sim.recordInteraction("oLive", "message");
      await wechat(http, "oLive", "text", "<Content><![CDATA[你好]]></Content><MsgId>7001</MsgId>");
      await clickContact(page, "oLive");
      await inConversation(page, "oLive", "7001");
      assert.equal(await page.evaluate(`document.querySelectorAll('#conversation .msg.automatic').length`), 0);

      // The user follows while the agent has the conversation open: the welcome appears there by itself.
      sim.sim.recordInteraction("oLive", "follow");
      await wechat(http, "oLive", "event", "<Event><![CDATA[subscribe]]></Event>");
      const welcome = await page.waitForExpression<{ badge: string; text: string; kind: string; status: string }>(
        "the welcome drawn live",
        `(() => {
          const m = document.querySelector('#conversation .msg.automatic[data-automatic="welcome"]');
          return m && { badge: m.querySelector('.badge.automatic').textContent,
            text: m.querySelector('.msg-text').textContent, kind: m.dataset.automatic, status: m.dataset.status };
        })()`,
      );
      assert.deepEqual(welcome, { badge: "自动回复", text: "欢迎关注！", kind: "welcome", status: "sent" });
      // The list previews it as kefu's, not as the agent's ("我：…").
      await page.waitForExpression(
        "the welcome previewed as 自动回复",
        `document.querySelector('#contacts [data-contact-id="oLive"] .contact-preview')?.textContent === "自动回复：欢迎关注！"`,
      );
      assert.equal(
        await page.evaluate(`document.querySelector('#contacts [data-contact-id="oLive"]').dataset.status`),
        "open",
        "resolved before the test could watch it: the machine was slower than the idle time",
      );

      // Nobody writes for the idle time: resolved, with the closing line, both live.
      await page.waitForExpression(
        "the conversation resolved live",
        `document.querySelector('#contacts [data-contact-id="oLive"]')?.dataset.status === "resolved"`,
        60_000,
      );
      await page.waitForExpression(
        "the resolve line and the closing message live",
        `!!document.querySelector('#conversation [data-action="resolved"]') &&
          document.querySelector('#conversation .msg.automatic[data-automatic="auto_resolve"] .msg-text')
            ?.textContent === "本次会话已结束，感谢您的咨询。"`,
        30_000,
      );
      assert.equal(
        await page.evaluate(`document.querySelector('#conversation [data-action="resolved"] .msg-text').textContent`),
        "会话长时间无新消息，已自动解决",
      );
      assert.equal(await page.evaluate(`window.sameLoad === true`), true, "the page was not reloaded");
      assert.deepEqual(sim.sim.inbox("oLive").map((b) => (b.text as { content: string }).content), [
        "欢迎关注！",
        "本次会话已结束，感谢您的咨询。",
      ]);
      assert.deepEqual(uncaught(page), []);
      await page.close();
    } finally {
      await browser.close();
      await svc.shutdown();
      await sim[Symbol.asyncDispose]();
    }
  },
});
