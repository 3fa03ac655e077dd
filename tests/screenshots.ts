/**
 * `deno task screenshots`: kefu with demo data in a temporary DATA_DIR, the agent page in headless Chromium at
 * 1280×800, and PNGs of its main views written to docs/screenshots/ (the contact list with a conversation in
 * Chinese, the transfer dialog, search results, a closed reply window, the waiting queue, the English page; the
 * supervisor's team view and an internal note on the agent's page); then a working day on a second kefu with the
 * simulator's WeChat API (capacity 1 each, a supervisor, automatic messages): a welcome and a canned reply, the queue
 * at capacity with kefu's please-wait, a conversation auto-resolved (README's "A working day"; about two minutes, as
 * kefu looks for idle conversations once a minute); and the reports page over 30 days of a team's work (a kefu of its
 * own with a supervisor in CONFIG_FILE). `deno task screenshots --only day` (or `--only reports`) makes those alone.
 *
 * @module
 */

import { CONTACTS_PATH } from "../src/envelope/protocol.ts";
import { SqliteStore, storePath } from "../src/store/sqlite_store.ts";
import { seedInbound } from "./store/seed.ts";
import { Browser, type Page } from "./browser/cdp.ts";
import { click, clickContact, openAgent, reload } from "./browser/page_helpers.ts";
import { eventually, signedQuery, startService, startWechat, wechatText } from "./helpers.ts";
import { hashPassword } from "../src/agents/auth/passwords.ts";

const OUT = new URL("../docs/screenshots/", import.meta.url);
const APPID = "wx5a1b2c3d4e5f6a7b";
const AGENT = "wang";
/** The team's supervisor (CONFIG_FILE `agents[].role`), for the team view. */
const SUPERVISOR = "zhou";

type Line = [minutesAgo: number, direction: "in" | "out", content: string];

/** Users of the demo: name, minutes since their last message, the conversation, unread count. */
const USERS: { id: string; name: string; lines: Line[]; unread?: number }[] = [
  {
    id: "oUser_zhang",
    name: "张女士",
    lines: [
      [1500, "in", "你好，我上周买的空气炸锅还没发货"],
      [1495, "out", "您好，我帮您查一下订单，请提供订单号"],
      [1490, "in", "订单号 20240611883"],
      [1480, "out", "查到了，仓库昨天已经出库，快递单号 SF1409275533"],
      [40, "in", "快递显示停在杭州转运中心两天了"],
      [38, "out", "我联系一下顺丰，稍后给您回复"],
      [5, "in", "好的，麻烦尽快，周末要用"],
    ],
  },
  {
    id: "oUser_li",
    name: "李先生",
    lines: [[12, "in", "发票可以开公司抬头吗？"], [11, "in", "税号 91330106MA2xxxxx"]],
    unread: 2,
  },
  { id: "oUser_chen", name: "陈同学", lines: [[90, "in", "学生优惠还有吗"], [85, "out", "有的，凭学生证九折"]] },
  { id: "oUser_zhao", name: "赵师傅", lines: [[3000, "in", "安装师傅什么时候上门？"]] },
  { id: "oUser_wu", name: "吴小姐", lines: [[600, "in", "退款到账了，谢谢！"], [598, "out", "不客气，祝您生活愉快"]] },
];

async function seed(dir: string): Promise<void> {
  const store = new SqliteStore({ path: storePath(dir) });
  const now = Math.floor(Date.now() / 1000);
  let n = 0;
  for (const u of USERS) {
    const lastIn = now - u.lines.findLast((l) => l[1] === "in")![0] * 60;
    for (const [i, [ago, direction, content]] of u.lines.entries()) {
      const m = {
        id: `demo-${++n}`,
        direction,
        channel: "wx_official_account" as const,
        contact: u.id,
        agent: AGENT,
        company: "demo",
        account: APPID,
        type: "text",
        content,
        media: "",
        sendTime: now - ago * 60,
        name: u.name,
        avatar: "",
      };
      const unread = direction === "in" && i >= u.lines.length - (u.unread ?? 0);
      // The contact's id is the user's (the store's first choice), so replies name it by that id.
      if (direction === "in") await seedInbound(store, m, { agent: AGENT, state: unread ? "accepted" : "acked" });
      else await store.saveOutbound(m, "sent");
    }
    const replies = u.lines.filter((l) => l[1] === "out" && l[0] < (now - lastIn) / 60).length;
    await store.saveWindow({
      account: APPID,
      openid: u.id,
      lastMessageAt: lastIn * 1000,
      messageUsed: replies,
      lastEventAt: -Infinity,
      eventUsed: 0,
    });
  }
  await store.close();
}

async function shot(page: Page, name: string): Promise<void> {
  // Fonts and images settle before the capture.
  await page.evaluate(`document.fonts.ready.then(() => new Promise((r) => setTimeout(r, 150)))`);
  const path = new URL(name, OUT);
  await Deno.writeFile(path, await page.screenshot());
  console.log(`wrote ${path.pathname}`);
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kefu-screenshots-" });
  await Deno.mkdir(OUT, { recursive: true });
  await seed(dir);
  // The team: two agents and a supervisor (sign-in is off; the hashes are not used).
  const hash = await hashPassword("not used: sign-in is off");
  await Deno.writeTextFile(
    `${dir}/team.json`,
    JSON.stringify({
      agents: [
        { id: AGENT, password_hash: hash },
        { id: "li", password_hash: hash },
        { id: SUPERVISOR, role: "supervisor", password_hash: hash },
      ],
    }),
  );
  const { svc, port } = await startService({
    STORE: "sqlite",
    DATA_DIR: dir,
    WECHAT_TOKEN: "screenshots",
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: "not-used",
    WECHAT_API_BASE: "http://127.0.0.1:9",
    WECHAT_COMPANY_ID: "demo",
    CONFIG_FILE: `${dir}/team.json`,
  });
  const browser = await Browser.launch();
  try {
    const url = `http://127.0.0.1:${port}/?userid=${AGENT}`;
    const size = { width: 1280, height: 800 };
    // A colleague online, to transfer to.
    const colleague = await openAgent(browser, `http://127.0.0.1:${port}/?userid=li`, size);
    const page = await openAgent(browser, url, size);
    await page.waitForExpression(
      "the contacts",
      `document.querySelectorAll("#contacts [data-contact-id]").length === 5`,
    );
    await clickContact(page, "oUser_zhang");
    await page.waitForExpression("the conversation", `document.querySelectorAll("#conversation .msg").length >= 7`);
    await page.evaluate(`(() => {
      const box = document.querySelector("#reply-text");
      box.value = "您好，顺丰那边回复今天下午会派送";
      box.dispatchEvent(new Event("input"));
    })()`);
    await shot(page, "contacts-conversation-zh.png");

    await click(page, "#open-transfer");
    await page.waitForExpression(
      "the colleague in the list",
      `[...document.querySelectorAll("#transfer-agents option")].some((o) => o.value === "li")`,
    );
    await page.evaluate(`(() => {
      document.querySelector("#transfer-agents").value = "li";
      document.querySelector("#transfer-note").value = "快递延误，已联系顺丰，请跟进派送结果";
    })()`);
    await shot(page, "transfer-dialog.png");
    await click(page, "#transfer-cancel");

    await page.evaluate(`(() => {
      const box = document.querySelector("#search");
      box.value = "快递";
      box.dispatchEvent(new Event("input"));
    })()`);
    await page.waitForExpression(
      "search results",
      `document.querySelectorAll('#search-results [data-testid="search-message"]').length > 0`,
    );
    await shot(page, "search-results.png");
    await page.evaluate(`(() => {
      const box = document.querySelector("#search");
      box.value = "";
      box.dispatchEvent(new Event("input"));
    })()`);

    await clickContact(page, "oUser_zhao");
    await page.waitForExpression(
      "the closed window",
      `document.querySelector('[data-testid="reply-window"]').dataset.state === "closed"`,
    );
    await shot(page, "reply-window-closed.png");

    // The waiting queue: the colleague puts a user back with a note; this agent sees them waiting, with Take.
    await page.evaluate(`localStorage.setItem("kefu.alerts", "off")`);
    const res = await fetch(`http://127.0.0.1:${port}${CONTACTS_PATH}/oUser_wu/transfer?userid=${AGENT}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ to_agent_id: "li" }),
    });
    if (!res.ok) throw new Error(`transfer: ${res.status} ${await res.text()}`);
    await colleague.waitForExpression(
      "oUser_wu with the colleague",
      `!!document.querySelector('#contacts [data-contact-id="oUser_wu"]')`,
    );
    await clickContact(colleague, "oUser_wu");
    await click(colleague, "#open-release");
    await colleague.evaluate(`document.querySelector("#release-note").value = "想换货，需要售后同事确认库存"`);
    await click(colleague, "#release-ok");
    await page.waitForExpression("the waiting user", `!!document.querySelector('#queue [data-contact-id="oUser_wu"]')`);
    await clickContact(page, "oUser_zhang");
    await page.evaluate(`document.querySelectorAll('[data-testid="toast"]').forEach((t) => t.remove())`);
    await shot(page, "queue.png");

    await click(page, "#open-details");
    await click(page, "#lang");
    await page.waitForExpression("English", `document.documentElement.lang === "en"`);
    await shot(page, "english.png");
    // The next visit starts in Chinese again.
    await click(page, "#lang");
    await page.waitForExpression("Chinese", `document.documentElement.lang === "zh-CN"`);
    await click(page, "#details-close");

    // The supervisor's team view (issue 22): every agent's state, the conversations, one watched with a note.
    const sup = await openAgent(browser, `http://127.0.0.1:${port}/?userid=${SUPERVISOR}`, size);
    await sup.evaluate(`localStorage.setItem("kefu.alerts", "off")`);
    await sup.waitForExpression("the 团队 button", `!document.querySelector("#team-toggle").hidden`);
    await click(sup, "#team-toggle");
    await sup.waitForExpression(
      "the team's conversations",
      `document.querySelectorAll("#team-contacts [data-contact-id]").length >= 5`,
    );
    await click(sup, '#team-contacts [data-contact-id="oUser_zhang"]');
    await sup.waitForExpression(
      "the watched conversation",
      `document.querySelectorAll('#team-conversation [data-testid="message"]').length >= 7`,
    );
    await sup.evaluate(`(() => {
      const box = document.querySelector("#team-note");
      box.value = "老客户，快递延误两次了，今天务必跟进到签收";
    })()`);
    await click(sup, "#team-note-add");
    await sup.waitForExpression("the note", `!!document.querySelector('#team-conversation [data-testid="note"]')`);
    await sup.evaluate(`document.querySelector("#team-assign-to").value = "li"`);
    await shot(sup, "team-view.png");
    // The note on the agent's page: yellow, the team's only.
    await page.waitForExpression(
      "the note on wang's page",
      `!!document.querySelector('#conversation [data-testid="note"]')`,
    );
    await page.evaluate(`document.querySelectorAll('[data-testid="toast"]').forEach((t) => t.remove())`);
    await shot(page, "internal-note.png");
    await sup.close();
    await page.close();
    await colleague.close();
    await workingDay(browser);
  } finally {
    await browser.close();
    await svc.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

const DAY_APPID = "wx0000000000000day";
const DAY_TOKEN = "screenshots-day";
const BASE = "/im_component/wx_official_account";

/** A follow, as WeChat posts it (plaintext mode). */
function follow(openid: string): string {
  return `<xml><ToUserName><![CDATA[gh_day]]></ToUserName><FromUserName><![CDATA[${openid}]]></FromUserName>` +
    `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType><![CDATA[event]]></MsgType>` +
    `<Event><![CDATA[subscribe]]></Event></xml>`;
}

/**
 * The README's working day on the real service and the simulator's WeChat API: two agents at capacity 1 and a
 * supervisor; a follow gets kefu's welcome, a team canned reply opens with `/`, a third user waits in the queue and
 * gets kefu's please-wait, an idle conversation is auto-resolved after a minute.
 */
async function workingDay(browser: Browser): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kefu-screenshots-day-" });
  const hash = await hashPassword("not used: sign-in is off");
  await Deno.writeTextFile(
    `${dir}/team.json`,
    JSON.stringify({
      agents: [
        { id: "wang", name: "小王", password_hash: hash, capacity: 1 },
        { id: "li", name: "小李", password_hash: hash, capacity: 1 },
        { id: SUPERVISOR, name: "周主管", password_hash: hash, role: "supervisor" },
      ],
      automatic: [{
        hours: [{ days: ["mon-sun"], from: "00:00", to: "24:00" }],
        welcome: "您好，欢迎关注！有问题请直接留言，客服会尽快回复。",
        please_wait: { after_seconds: 1, text: "客服正忙，请稍候。您前面还有 {position} 位。" },
        auto_resolve: { after_minutes: 1, text: "本次会话已结束，如需帮助请再次留言。" },
      }],
    }),
  );
  const wechat = startWechat({ appId: DAY_APPID, appSecret: "day-secret" });
  const { svc, port } = await startService({
    STORE: "sqlite",
    DATA_DIR: dir,
    WECHAT_TOKEN: DAY_TOKEN,
    WECHAT_APPID: DAY_APPID,
    WECHAT_APPSECRET: "day-secret",
    WECHAT_API_BASE: wechat.url,
    CONFIG_FILE: `${dir}/team.json`,
  });
  const http = `http://127.0.0.1:${port}`;
  const post = async (xml: string) => {
    const r = await fetch(`${http}/wechat${await signedQuery(DAY_TOKEN)}`, { method: "POST", body: xml });
    if ((await r.text()) !== "success") throw new Error(`webhook: ${r.status}`);
  };
  const api = async (method: string, path: string, agent: string, body: unknown) => {
    const r = await fetch(`${http}${BASE}${path}${path.includes("?") ? "&" : "?"}userid=${agent}`, {
      method,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  };
  const size = { width: 1280, height: 800 };
  const pages: Page[] = [];
  try {
    // Morning: 小王 signs in; a user follows (kefu's welcome) and writes.
    const wang = await openAgent(browser, `${http}/?userid=wang`, size);
    pages.push(wang);
    await wang.evaluate(`localStorage.setItem("kefu.alerts", "off")`);
    wechat.sim.recordInteraction("oUser_sun", "follow");
    await post(follow("oUser_sun"));
    await eventually("the welcome sent", () => wechat.sim.inbox("oUser_sun").length === 1, 15_000);
    // The user writes once the welcome is on 小王's page (code 110), as a person reading it would.
    await wang.waitForExpression(
      "the welcome on the page",
      `(document.querySelector('#contacts [data-contact-id="oUser_sun"]')?.textContent ?? "").includes("欢迎关注")`,
    );
    wechat.sim.recordInteraction("oUser_sun", "message");
    await post(wechatText("oUser_sun", "你好，我的订单 20261206017 能改地址吗？", "7001"));
    await api("PATCH", "/contacts/oUser_sun", "wang", { display_name: "孙女士", tags: ["老客户"] });
    // 小李 signs in and gets the next user (小王 is at capacity 1).
    const li = await openAgent(browser, `${http}/?userid=li`, size);
    pages.push(li);
    await li.evaluate(`localStorage.setItem("kefu.alerts", "off")`);
    await eventually("li online", async () => {
      const r = await fetch(`${http}${BASE}/agents?userid=li`);
      return JSON.stringify(await r.json()).includes('"online":true');
    }, 15_000);
    wechat.sim.recordInteraction("oUser_qian", "message");
    await post(wechatText("oUser_qian", "发票什么时候开？", "7002"));
    await li.waitForExpression("li's user", `!!document.querySelector('#contacts [data-contact-id="oUser_qian"]')`);
    // Both at capacity: the third user waits, and kefu tells them so.
    wechat.sim.recordInteraction("oUser_zhou", "message");
    await post(wechatText("oUser_zhou", "请问退货地址是哪里？", "7003"));
    await eventually("the please-wait sent", () => wechat.sim.inbox("oUser_zhou").length === 1, 30_000);

    // The team's canned reply, and 小王 answering with it: the welcome above, labelled 自动回复.
    await api("POST", "/canned_replies", SUPERVISOR, {
      scope: "team",
      shortcut: "/hi",
      text: "您好 {name}，我是{agent}，请问有什么可以帮您？",
    });
    await api("POST", "/canned_replies", SUPERVISOR, {
      scope: "team",
      shortcut: "/地址",
      text: "地址可以修改，请把新的收货地址发给我。",
    });
    await wang.waitForExpression("the user", `!!document.querySelector('#contacts [data-contact-id="oUser_sun"]')`);
    await clickContact(wang, "oUser_sun");
    await wang.waitForExpression("the welcome", `!!document.querySelector('#conversation [data-automatic="welcome"]')`);
    await wang.waitForExpression("the queue", `!!document.querySelector('#queue [data-contact-id="oUser_zhou"]')`);
    await wang.evaluate(`(() => {
      const box = document.querySelector("#reply-text");
      box.focus();
      box.value = "/";
      box.dispatchEvent(new Event("input", { bubbles: true }));
    })()`);
    await wang.waitForExpression("the canned list", `!document.querySelector("#canned-popup").hidden`);
    await wang.evaluate(`document.querySelectorAll('[data-testid="toast"]').forEach((t) => t.remove())`);
    await shot(wang, "day-welcome-canned.png");
    await wang.evaluate(`(() => {
      const box = document.querySelector("#reply-text");
      box.value = "";
      box.dispatchEvent(new Event("input", { bubbles: true }));
    })()`);

    // The supervisor's 团队: both agents at 1/1, the queue, the waiting user's conversation with kefu's 请稍候. A
    // supervisor is an agent too (no capacity: no limit): 忙碌 first, or the waiting user would go to them.
    await api("PATCH", "/agents/me", SUPERVISOR, { availability: "busy" });
    const sup = await openAgent(browser, `${http}/?userid=${SUPERVISOR}`, size);
    pages.push(sup);
    await sup.evaluate(`localStorage.setItem("kefu.alerts", "off")`);
    await sup.waitForExpression("the 团队 button", `!document.querySelector("#team-toggle").hidden`);
    await click(sup, "#team-toggle");
    await sup.waitForExpression(
      "the queued user",
      `!!document.querySelector('#team-contacts [data-contact-id="oUser_zhou"]')`,
    );
    await click(sup, '#team-contacts [data-contact-id="oUser_zhou"]');
    await sup.waitForExpression(
      "the please-wait",
      `!!document.querySelector('#team-conversation [data-automatic="please_wait"]')`,
    );
    await sup.evaluate(`document.querySelectorAll('[data-testid="toast"]').forEach((t) => t.remove())`);
    await shot(sup, "day-queue-please-wait.png");

    // Nothing more from 孙女士 for a minute: kefu resolves the conversation (the job looks once a minute) and 小王's
    // slot goes to the user waiting.
    await eventually("the auto-resolve's closing text sent", () => wechat.sim.inbox("oUser_sun").length === 2, 180_000);
    // 小王 comes back to the page (a reload) and looks under 已解决.
    await reload(wang, `${http}/?userid=wang`);
    await click(wang, '#filters [data-filter="resolved"]');
    await clickContact(wang, "oUser_sun");
    await wang.waitForExpression(
      "the closing text",
      `!!document.querySelector('#conversation [data-automatic="auto_resolve"]')`,
    );
    await wang.evaluate(`document.querySelectorAll('[data-testid="toast"]').forEach((t) => t.remove())`);
    await shot(wang, "day-auto-resolved.png");
  } finally {
    for (const p of pages) await p.close();
    await svc.shutdown();
    await wechat[Symbol.asyncDispose]();
    await Deno.remove(dir, { recursive: true });
  }
}

/** 30 days of a team: conversations on four channels, answered, resolved, some waiting in the queue first. */
async function seedTeam(dir: string, days: number): Promise<void> {
  const store = new SqliteStore({ path: storePath(dir) });
  const agents = ["wang", "li", "zhang", "liu", "chen", "yang"];
  const channels = [["wx_official_account", APPID], ["http_push", ""], ["pc_hook", "wxid_shop"], ["wxbot", "bot1"]];
  const texts = ["您好，我的订单什么时候发货？", "可以开发票吗", "退货地址是哪里", "谢谢！"];
  const end = Math.floor(Date.now() / 1000);
  let n = 0;
  let seed = 7;
  const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let day = days - 1; day >= 0; day--) {
    // More on weekdays' afternoons: 15–35 conversations a day.
    const count = 15 + Math.floor(rnd() * 20);
    for (let k = 0; k < count; k++) {
      const [channel, account] = channels[Math.floor(rnd() * rnd() * 4)];
      const agent = agents[Math.floor(rnd() * agents.length)];
      const user = `u${day}_${k}`;
      let t = end - day * 86400 - Math.floor((0.2 + rnd() * 0.6) * 86400);
      const waits = rnd() < 0.15;
      const base = { channel, account, contact: user, company: "demo", media: "", name: user, avatar: "" };
      const say = async (direction: "in" | "out", who: string, type = "text", extra?: Record<string, string>) => {
        const m = {
          ...base,
          id: `team-${++n}`,
          direction,
          agent: who,
          type,
          content: texts[n % 4],
          sendTime: t,
          extra,
        };
        if (direction === "in") await seedInbound(store, m, { agent: who, state: "acked" });
        else await store.saveOutbound(m, "sent");
      };
      await say("in", waits ? "" : agent);
      if (waits) {
        t += 60 + Math.floor(rnd() * 900);
        await say("out", agent, "system", { action: "taken", by: agent });
      }
      for (let turn = 0; turn < 2; turn++) {
        t += 20 + Math.floor(rnd() * 400);
        await say("out", agent);
        t += 30 + Math.floor(rnd() * 300);
        await say("in", agent);
      }
      t += 120;
      if (rnd() < 0.85) await say("out", agent, "system", { action: "resolved", by: agent });
    }
  }
  await store.close();
}

/** The reports page over the last 30 days, as the team's supervisor sees it. */
async function reports(browser: Browser): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kefu-screenshots-reports-" });
  await seedTeam(dir, 30);
  await Deno.writeTextFile(
    `${dir}/kefu.json`,
    JSON.stringify({ agents: [{ id: "zhao", role: "supervisor", password_hash: await hashPassword("not used") }] }),
  );
  const { svc, port } = await startService({
    STORE: "sqlite",
    DATA_DIR: dir,
    CONFIG_FILE: `${dir}/kefu.json`,
  });
  try {
    const page = await openAgent(browser, `http://127.0.0.1:${port}/static/reports.html?userid=zhao`, {
      width: 1280,
      height: 1400,
      connect: false,
    });
    await page.evaluate(`document.querySelector("#last30").click()`);
    await page.waitForExpression(
      "the report drawn",
      `document.querySelector("#report").dataset.state === "ready" && document.querySelector("#chart-daily").dataset.points === "30"`,
    );
    await shot(page, "reports.png");
    // The same report in English (the switch redraws it), then back: the choice is kept in the browser.
    await page.evaluate(`document.querySelector('[data-testid="lang"]').click()`);
    await page.waitForExpression("the report in English", `document.querySelector("#show").textContent === "Show"`);
    await shot(page, "reports-en.png");
    await page.evaluate(`document.querySelector('[data-testid="lang"]').click()`);
    await page.close();
  } finally {
    await svc.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

// `--only day` or `--only reports`: those alone (the other PNGs stay as they are).
if (import.meta.main) {
  const only = Deno.args.includes("--only") ? Deno.args[Deno.args.indexOf("--only") + 1] : undefined;
  if (only === undefined) await main();
  const browser = await Browser.launch();
  try {
    if (only === "day") await workingDay(browser);
    if (only === undefined || only === "reports") await reports(browser);
  } finally {
    await browser.close();
  }
}
