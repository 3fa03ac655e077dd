/**
 * `deno task screenshots`: kefu with demo data in a temporary DATA_DIR, the agent page in headless Chromium at
 * 1280×800, and PNGs of its main views written to docs/screenshots/ (the contact list with a conversation in
 * Chinese, the transfer dialog, search results, a closed reply window, the waiting queue, the English page; the
 * supervisor's team view and an internal note on the agent's page), and the reports page over 30 days of a team's work
 * (a kefu of its own with a supervisor in CONFIG_FILE).
 *
 * @module
 */

import { start } from "../main.ts";
import { hashPassword } from "../src/agents/auth/passwords.ts";
import { parseConfig } from "../src/config/config.ts";
import { CONTACTS_PATH } from "../src/envelope/protocol.ts";
import { SqliteStore, storePath } from "../src/store/sqlite_store.ts";
import { seedInbound } from "./store/seed.ts";
import { Browser, type Page } from "./browser/cdp.ts";
import { click, clickContact, openAgent } from "./browser/page_helpers.ts";
import { freePort } from "./helpers.ts";

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
  const port = freePort();
  const svc = await start(parseConfig({
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "silent",
    STORE: "sqlite",
    DATA_DIR: dir,
    WECHAT_TOKEN: "screenshots",
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: "not-used",
    WECHAT_API_BASE: "http://127.0.0.1:9",
    WECHAT_COMPANY_ID: "demo",
    CONFIG_FILE: `${dir}/team.json`,
  }));
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
  } finally {
    await browser.close();
    await svc.shutdown();
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
  const port = freePort();
  const svc = await start(parseConfig({
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "silent",
    STORE: "sqlite",
    DATA_DIR: dir,
    CONFIG_FILE: `${dir}/kefu.json`,
  }));
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
    await page.close();
  } finally {
    await svc.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

// `--only reports`: the reports page alone (the workplace's PNGs stay as they are).
if (import.meta.main) {
  if (!Deno.args.includes("reports")) await main();
  const browser = await Browser.launch();
  try {
    await reports(browser);
  } finally {
    await browser.close();
  }
}
