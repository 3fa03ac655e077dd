/**
 * The reports page and the conversation export (issue 22), in a real headless Chromium against a real kefu whose
 * CONFIG_FILE makes `sup` a supervisor: the workplace shows sup the 报表 link and the open conversation's export
 * links (a plain agent sees neither); the reports page draws its charts with uPlot — the right number of series and
 * points for a fixture of three days and two channels — fills its tables, and downloads a table as CSV (with the
 * BOM); an agent opening it is told the server's 403. Ignored (not passed) when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../src/agents/auth/passwords.ts";
import { Browser, CHROMIUM_PATH, hasChromium, type Page } from "./browser/cdp.ts";
import { eventually } from "./helpers.ts";
import { clickContact, openAgent, pushText, startKefu, textOf, uncaught, wechat } from "./browser/page_helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;

/** Epoch seconds of a local time in Asia/Shanghai (UTC+8) on 2026-03-`day`. */
const at = (day: number, hh: number, mm = 0) => Date.UTC(2026, 2, day, hh - 8, mm) / 1000;

/** kefu with sign-in off and a CONFIG_FILE naming sup a supervisor and a1 an agent. */
async function kefuWithTeam() {
  const dir = await Deno.makeTempDir();
  const hash = await hashPassword("not used: sign-in is off");
  await Deno.writeTextFile(
    `${dir}/kefu.json`,
    JSON.stringify({
      agents: [{ id: "sup", role: "supervisor", password_hash: hash }, { id: "a1", password_hash: hash }],
    }),
  );
  const kefu = await startKefu({ CONFIG_FILE: `${dir}/kefu.json` });
  return {
    ...kefu,
    [Symbol.asyncDispose]: async () => {
      await kefu.svc.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Three days in Shanghai: u1 (HTTP push, for a1) writes twice on 03-01, o1 (the Official Account, nobody online:
 * waits) once on 03-02, u2 (HTTP push) once on 03-03.
 */
async function fixture(http: string): Promise<void> {
  await pushText(http, { to: "a1", from: "u1", content: "您好，我的订单还没到", id: "9001", time: at(1, 10) });
  await pushText(http, { to: "a1", from: "u1", content: "单号 123", id: "9002", time: at(1, 10, 5) });
  await wechat(http, "o1", "text", "<Content><![CDATA[在吗]]></Content><MsgId>9003</MsgId>", at(2, 12));
  await pushText(http, { to: "a1", from: "u2", content: "退货怎么办", id: "9004", time: at(3, 9) });
}

function chartOf(page: Page, id: string): Promise<{ series: number; points: number; canvas: boolean }> {
  return page.evaluate(`(() => {
    const box = document.querySelector("#${id}");
    return { series: Number(box.dataset.series), points: Number(box.dataset.points), canvas: !!box.querySelector("canvas") };
  })()`);
}

/** The bytes at a blob or same-origin URL the page holds, as byte values. */
function bytesAt(page: Page, url: string): Promise<number[]> {
  return page.evaluate(
    `fetch(${JSON.stringify(url)}).then((r) => r.arrayBuffer()).then((b) => [...new Uint8Array(b)])`,
  );
}

function decode(bytes: number[]): string {
  return new TextDecoder("utf-8", { ignoreBOM: true }).decode(new Uint8Array(bytes));
}

Deno.test({
  name: `browser: the reports page draws its charts, fills its tables and downloads CSV; export links${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    await using kefu = await kefuWithTeam();
    await fixture(kefu.http);
    const browser = await Browser.launch();
    try {
      // The workplace: sup sees the reports link and, with a conversation open, its export links.
      const sup = await openAgent(browser, `${kefu.http}/?userid=sup`);
      await sup.waitForExpression("the reports link shown", `!document.querySelector("#reports-link").hidden`);
      assert.equal(await textOf(sup, "#reports-link"), "报表");
      await clickContact(sup, "o1");
      await sup.waitForExpression("the export links shown", `!document.querySelector("#export").hidden`);
      const csvHref = await sup.evaluate<string>(`document.querySelector("#export-csv").href`);
      const exported = decode(await bytesAt(sup, csvHref));
      assert.ok(exported.startsWith("\uFEFFseq,time,direction,type"), exported.slice(0, 40));
      assert.match(exported, /,2026-03-02 12:00:00,in,text,,o1,在吗,/);
      const json = JSON.parse(
        decode(await bytesAt(sup, await sup.evaluate<string>(`document.querySelector("#export-json").href`))),
      );
      // The user waited (nobody was online) and the queue gave them to sup when sup came: the export says so.
      assert.deepEqual(json.messages.map((m: { type: string; content: string }) => [m.type, m.content]), [
        ["text", "在吗"],
        ["system", "the queue assigned the conversation to sup"],
      ]);

      // A plain agent sees neither.
      const a1 = await openAgent(browser, `${kefu.http}/?userid=a1`);
      await clickContact(a1, "u1");
      await a1.waitForExpression("the conversation open", `kefu.state.selected === "u1"`);
      // The role is asked once the socket opens; the links stay hidden after the answer.
      await a1.waitForExpression(
        "the role read",
        `performance.getEntriesByType("resource").some((e) => e.name.includes("canned_replies"))`,
      );
      assert.equal(
        await a1.evaluate(`document.querySelector("#reports-link").hidden && document.querySelector("#export").hidden`),
        true,
      );

      // The reports page for the three days.
      const page = await openAgent(
        browser,
        `${kefu.http}/static/reports.html?userid=sup&from=2026-03-01&to=2026-03-03&tz=Asia/Shanghai`,
        { connect: false },
      );
      await page.waitForExpression("the report drawn", `document.querySelector("#report").dataset.state === "ready"`);
      // Two channels × in/out over 3 days and 72 hours; new conversations per channel over 3 days.
      assert.deepEqual(await chartOf(page, "chart-daily"), { series: 4, points: 3, canvas: true });
      assert.deepEqual(await chartOf(page, "chart-hourly"), { series: 4, points: 72, canvas: true });
      assert.deepEqual(await chartOf(page, "chart-new"), { series: 2, points: 3, canvas: true });
      const legend = await page.evaluate<string[]>(
        `[...document.querySelectorAll("#chart-daily .u-legend .u-series th")].map((e) => e.textContent.trim()).filter(Boolean)`,
      );
      assert.deepEqual(legend, ["时间", "HTTP 收", "HTTP 发", "公众号 收", "公众号 发"]);
      const rows = await page.evaluate<string[][]>(
        `[...document.querySelectorAll("#table-daily tbody tr")].map((r) => [...r.cells].map((c) => c.textContent))`,
      );
      assert.deepEqual(rows, [
        ["2026-03-01", "HTTP", "2", "0"],
        ["2026-03-02", "公众号", "1", "0"],
        ["2026-03-03", "HTTP", "1", "0"],
      ]);
      assert.match(await textOf(page, "#cards"), /新会话3未回复 3/);

      // In English (the workplace's switch, kept for the next visit): the report shown is drawn again, not fetched.
      const fetched = () =>
        page.evaluate<number>(
          `performance.getEntriesByType("resource").filter((e) => e.name.includes("/reports?")).length`,
        );
      const before = await fetched();
      await page.evaluate(`document.querySelector('[data-testid="lang"]').click()`);
      await page.waitForExpression(
        "the legend in English",
        `[...document.querySelectorAll("#chart-daily .u-legend .u-series th")].some((e) => e.textContent.trim() === "Time")`,
      );
      assert.deepEqual(
        await page.evaluate<string[]>(
          `[...document.querySelectorAll("#chart-daily .u-legend .u-series th")].map((e) => e.textContent.trim()).filter(Boolean)`,
        ),
        ["Time", "HTTP in", "HTTP out", "Official Account in", "Official Account out"],
      );
      assert.deepEqual(
        await page.evaluate<string[]>(
          `[...document.querySelectorAll("#table-daily thead th")].map((e) => e.textContent)`,
        ),
        ["Day", "Channel", "in", "out"],
      );
      assert.match(await textOf(page, "#cards"), /New conversations33 unanswered/);
      assert.equal(await textOf(page, '[data-testid="show"]'), "Show");
      assert.equal(await page.evaluate(`document.documentElement.lang`), "en");
      assert.equal(await page.evaluate(`document.title`), "kefu reports");
      assert.equal(await fetched(), before, "redrawn from the report shown");
      assert.equal(await page.evaluate(`localStorage.getItem("kefu.lang")`), "en");
      await page.evaluate(`document.querySelector('[data-testid="lang"]').click()`);
      await page.waitForExpression(
        "back in Chinese",
        `document.querySelector('[data-testid="show"]').textContent === "查询"`,
      );
      assert.match(await textOf(page, "#cards"), /新会话3未回复 3/);

      // A table as CSV: the file the browser saves, BOM first.
      const downloads = await Deno.makeTempDir();
      try {
        await page.send("Page.setDownloadBehavior", { behavior: "allow", downloadPath: downloads });
        await page.evaluate(`document.querySelector('[data-testid="csv-messages_daily"]').click()`);
        const file = `${downloads}/kefu-messages_daily-2026-03-01-2026-03-03.csv`;
        await page.waitForExpression(
          "the CSV saved",
          `document.querySelector("#download").dataset.table === "messages_daily"`,
        );
        await eventually(
          "the CSV file written",
          async () => (await Deno.stat(file).catch(() => null))?.isFile === true,
        );
        const bytes = [...await Deno.readFile(file)];
        assert.deepEqual(bytes.slice(0, 3), [0xef, 0xbb, 0xbf]);
        assert.equal(
          decode(bytes.slice(3)),
          "day,channel,inbound,outbound\n2026-03-01,http_push,2,0\n2026-03-02,wx_official_account,1,0\n" +
            "2026-03-03,http_push,1,0\n",
        );
      } finally {
        await Deno.remove(downloads, { recursive: true });
      }
      assert.deepEqual(uncaught(page), []);
      assert.deepEqual(uncaught(sup), []);

      // An agent is told the server's refusal.
      const refused = await openAgent(browser, `${kefu.http}/static/reports.html?userid=a1`, { connect: false });
      await refused.waitForExpression(
        "the refusal shown",
        `document.querySelector("#report").dataset.state === "error"`,
      );
      assert.match(await textOf(refused, "#message"), /^无法读取报表：cannot read the reports: agent "a1" is an agent/);
      // The status line follows the language too.
      await refused.evaluate(`document.querySelector('[data-testid="lang"]').click()`);
      assert.match(await textOf(refused, "#message"), /^Cannot read the report: cannot read the reports: agent "a1"/);
    } finally {
      await browser.close();
    }
  },
});
