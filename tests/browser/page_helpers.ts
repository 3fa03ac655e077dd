/**
 * Shared set-up of the agent page's browser tests: a tab on the agent page in a given language and time zone,
 * waiting for its socket, clicking a contact, reading the page's state (`globalThis.kefu`, set by
 * static/js/main.js).
 *
 * @module
 */

import type { Browser, Page } from "./cdp.ts";

/** Options of {@link openAgent}. */
export interface OpenOptions {
  /** The browser's language (navigator.language, Accept-Language); the page speaks Chinese whatever it is. */
  lang?: string;
  /** Wait until the socket is open (Connect clicked if the page does not connect by itself). Default true. */
  connect?: boolean;
  width?: number;
  height?: number;
  timezone?: string;
}

/** The browser's language for this tab, as an agent's desktop would set it. */
export async function setLanguage(page: Page, lang: string): Promise<void> {
  const { userAgent } = await page.send("Browser.getVersion") as { userAgent: string };
  await page.send("Network.setUserAgentOverride", { userAgent, acceptLanguage: lang });
}

/** A tab with the agent page at `url`, on Beijing time in Chinese unless told otherwise. */
export async function openAgent(browser: Browser, url: string, options: OpenOptions = {}): Promise<Page> {
  const page = await browser.newPage();
  await page.send("Emulation.setDeviceMetricsOverride", {
    width: options.width ?? 1200,
    height: options.height ?? 800,
    deviceScaleFactor: 1,
    mobile: false,
  });
  await page.send("Emulation.setTimezoneOverride", { timezoneId: options.timezone ?? "Asia/Shanghai" });
  await setLanguage(page, options.lang ?? "zh-CN");
  await page.goto(url);
  if (options.connect ?? true) await connected(page);
  return page;
}

/** The socket is open: by itself (`?userid=`), or after Connect for a page that does not connect by itself. */
export async function connected(page: Page): Promise<void> {
  await page.waitForExpression("the page to learn whether sign-in is on", `globalThis.kefu?.state.auth !== ""`);
  await page.evaluate(`kefu.state.wanted || document.querySelector("#connect").click()`);
  await page.waitForExpression("the socket to open", `document.querySelector("#status").dataset.state === "open"`);
}

export async function reload(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await connected(page);
}

export async function clickContact(page: Page, id: string): Promise<void> {
  const selector = `#contacts [data-contact-id=${JSON.stringify(id)}]`;
  await page.waitForExpression(`${id} under Contacts`, `!!document.querySelector(${JSON.stringify(selector)})`);
  await page.evaluate(`document.querySelector(${JSON.stringify(selector)}).click()`);
}

/** Click the element `selector` (it must exist). */
export function click(page: Page, selector: string): Promise<unknown> {
  return page.evaluate(`document.querySelector(${JSON.stringify(selector)}).click()`);
}

/** The text of `selector` ("" when absent). */
export function textOf(page: Page, selector: string): Promise<string> {
  return page.evaluate<string>(`document.querySelector(${JSON.stringify(selector)})?.textContent ?? ""`);
}

/** Uncaught page errors so far (none expected). */
export function uncaught(page: Page): string[] {
  return page.console.filter((l) => l.startsWith("uncaught"));
}
