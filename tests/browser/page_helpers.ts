/**
 * Shared set-up of the agent page's browser tests: a tab on the agent page in a given language and time zone,
 * waiting for its socket, clicking a contact, reading the page's state (`globalThis.kefu`, set by
 * static/js/main.js).
 *
 * @module
 */

import { type Service, start } from "../../main.ts";
import { parseConfig } from "../../src/config/config.ts";
import { cdata } from "../../src/core/xml.ts";
import { freePort, signedQuery } from "../helpers.ts";
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
  /** Script run in the page before its own, on every load (stubs of browser APIs the test records). */
  beforeLoad?: string;
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
  if (options.beforeLoad) await page.send("Page.addScriptToEvaluateOnNewDocument", { source: options.beforeLoad });
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

/** The webhook token {@link startKefu} gives kefu and {@link wechat} signs with. */
export const PAGE_TOKEN = "pagetests";

/** Epoch seconds now. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** kefu on a free port with an in-memory store (unless `extra` says otherwise), logging nothing. */
export async function startKefu(extra: Record<string, string> = {}): Promise<{ svc: Service; http: string }> {
  const port = freePort();
  const svc = await start(parseConfig({
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "silent",
    STORE: "memory",
    WECHAT_TOKEN: PAGE_TOKEN,
    ...extra,
  }));
  return { svc, http: `http://127.0.0.1:${port}` };
}

/** A user's text through the seed's XML push (POST /send), for agent `to`. */
export async function pushText(
  http: string,
  m: { to: string; from: string; content: string; id: string; time?: number },
): Promise<void> {
  const xml = `<xml><ToUserName>${cdata(m.to)}</ToUserName><FromUserName>${cdata(m.from)}</FromUserName>` +
    `<CreateTime>${m.time ?? Math.floor(Date.now() / 1000)}</CreateTime><MsgType>text</MsgType>` +
    `<Content>${cdata(m.content)}</Content><MsgId>${m.id}</MsgId></xml>`;
  const res = await fetch(`${http}/send`, { method: "POST", body: xml });
  const body = await res.text();
  if (!res.ok) throw new Error(`POST /send answered ${res.status}: ${body}`);
}

/** A signed webhook POST from WeChat user `openid` (plaintext mode) to a kefu of {@link startKefu}. */
export async function wechat(http: string, openid: string, type: string, fields: string, time = nowSeconds()) {
  const xml = `<xml><ToUserName><![CDATA[gh_page]]></ToUserName><FromUserName><![CDATA[${openid}]]></FromUserName>` +
    `<CreateTime>${time}</CreateTime><MsgType><![CDATA[${type}]]></MsgType>${fields}</xml>`;
  const res = await fetch(`${http}/wechat${await signedQuery(PAGE_TOKEN)}`, { method: "POST", body: xml });
  const body = await res.text();
  if (body !== "success") throw new Error(`the webhook answered ${res.status}: ${body}`);
}

/** Wait until message `id` shows in `contact`'s open conversation. */
export function inConversation(page: Page, contact: string, id: string): Promise<unknown> {
  return page.waitForExpression(
    `message ${id} in ${contact}'s conversation`,
    `!!document.querySelector('#conversation[data-contact-id=${JSON.stringify(contact)}] [data-id=${
      JSON.stringify(id)
    }]')`,
  );
}

/**
 * The agent opens `contact`'s conversation (a click on its row, as nothing opens by itself) and message `id` shows
 * in it.
 */
export async function openConversation(page: Page, contact: string, id: string): Promise<void> {
  await clickContact(page, contact);
  await inConversation(page, contact, id);
}

/** Set the text of an input or textarea as typing would (an input event follows). */
export function typeInto(page: Page, selector: string, value: string): Promise<unknown> {
  return page.evaluate(`(() => {
    const box = document.querySelector(${JSON.stringify(selector)});
    box.value = ${JSON.stringify(value)};
    box.dispatchEvent(new Event("input", { bubbles: true }));
  })()`);
}

/** The ids of the rows under `list` (#contacts, #queue), in order. */
export function idsIn(page: Page, list: string): Promise<string[]> {
  return page.evaluate<string[]>(
    `[...document.querySelectorAll(${JSON.stringify(`${list} [data-contact-id]`)})].map((li) => li.dataset.contactId)`,
  );
}
