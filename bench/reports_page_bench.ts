/**
 * The reports page in headless Chromium over a store with a month of data (issue 22): the page's weight (bytes
 * transferred, and gzipped as a proxy in front of kefu would send them), the time to load it and to draw the report
 * (the API's answer included), median of `--runs`. Run it on a file `deno task bench:reports --keep DIR` seeded
 * (1,000,000 messages over 2026-03-01..30):
 *
 *     deno run --allow-all bench/reports_page_bench.ts --data-dir DIR [--from 2026-03-01] [--to 2026-03-30] [--runs 3]
 *
 * @module
 */

import { start } from "../main.ts";
import { hashPassword } from "../src/agents/auth/passwords.ts";
import { parseConfig } from "../src/config/config.ts";
import { Browser } from "../tests/browser/cdp.ts";
import { openAgent } from "../tests/browser/page_helpers.ts";
import { freePort } from "../tests/helpers.ts";
import { parseFlags, round } from "./lib.ts";

const flags = parseFlags(Deno.args);
const DATA_DIR = flags.get("data-dir");
if (DATA_DIR === undefined) throw new Error("--data-dir DIR is required: a DATA_DIR with a seeded kefu.db");
const FROM = flags.get("from") ?? "2026-03-01";
const TO = flags.get("to") ?? "2026-03-30";
const RUNS = Number(flags.get("runs") ?? 3);
const STATIC = new URL("../static/", import.meta.url);
const FILES = [
  "reports.html",
  "base.css",
  "reports.css",
  "js/reports.js",
  "js/protocol.js",
  "js/i18n.js",
  "vendor/uplot/uplot.js",
  "vendor/uplot/uplot.css",
];

async function gzipSize(bytes: Uint8Array): Promise<number> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

const sizes: Record<string, { bytes: number; gzip: number }> = {};
for (const f of FILES) {
  const bytes = await Deno.readFile(new URL(f, STATIC));
  sizes[f] = { bytes: bytes.byteLength, gzip: await gzipSize(bytes) };
}
const total = (k: "bytes" | "gzip") => Object.values(sizes).reduce((n, s) => n + s[k], 0);
console.log(`static files: ${total("bytes")} bytes, ${total("gzip")} gzipped`, sizes);

const conf = await Deno.makeTempFile({ suffix: ".json" });
await Deno.writeTextFile(
  conf,
  JSON.stringify({ agents: [{ id: "sup", role: "supervisor", password_hash: await hashPassword("not used") }] }),
);
const port = freePort();
const svc = await start(parseConfig({
  PORT: String(port),
  HOST: "127.0.0.1",
  LOG_LEVEL: "silent",
  STORE: "sqlite",
  DATA_DIR,
  CONFIG_FILE: conf,
  // The seeded month is in the past: the retention sweep must not take it away.
  RETENTION_DAYS: "36500",
}));
const browser = await Browser.launch();
const runs: {
  load_ms: number;
  api_ms: number;
  drawn_ms: number;
  draw_ms: number;
  transferred: number;
  api_bytes: number;
}[] = [];
try {
  for (let i = 0; i < RUNS; i++) {
    const url = `http://127.0.0.1:${port}/static/reports.html?userid=sup&from=${FROM}&to=${TO}&tz=Asia/Shanghai`;
    const page = await openAgent(browser, url, { connect: false, width: 1280, height: 1400 });
    await page.waitForExpression(
      "the report drawn",
      `document.querySelector("#report").dataset.state === "ready"`,
      600_000,
    );
    const m = await page.evaluate<Record<string, number>>(`(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const res = performance.getEntriesByType("resource");
      const api = res.find((r) => r.name.includes("/reports?"));
      return {
        load_ms: nav.loadEventEnd,
        api_ms: api.responseEnd - api.startTime,
        api_bytes: api.transferSize,
        transferred: nav.transferSize + res.filter((r) => r !== api).reduce((n, r) => n + r.transferSize, 0),
        drawn_ms: performance.getEntriesByName("kefu:report-drawn")[0].startTime,
        draw_ms: Number(document.querySelector("#report").dataset.drawMs),
      };
    })()`);
    console.log(`run ${i + 1}:`, m);
    runs.push(m as never);
    await page.close();
  }
} finally {
  await browser.close();
  await svc.shutdown();
  await Deno.remove(conf);
}
const median = (k: keyof typeof runs[0]) =>
  round(runs.map((r) => r[k]).sort((a, b) => a - b)[Math.floor((runs.length - 1) / 2)], 0);
console.log(JSON.stringify({
  range: [FROM, TO],
  static_bytes: total("bytes"),
  static_gzip: total("gzip"),
  transferred: median("transferred"),
  api_bytes: median("api_bytes"),
  load_ms: median("load_ms"),
  api_ms: median("api_ms"),
  drawn_ms: median("drawn_ms"),
  draw_ms: median("draw_ms"),
}));
