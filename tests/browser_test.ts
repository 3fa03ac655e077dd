/**
 * End-to-end tests in a real headless Chromium, driven over the DevTools
 * protocol: the seed's own WebSocket test page, and kefu's agent page.
 * Ignored (not passed) when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { start } from "../main.ts";
import { parseConfig } from "../src/config/config.ts";
import { cdata } from "../src/core/xml.ts";
import { Browser, CHROMIUM_PATH, delay, hasChromium, type Page, waitFor } from "./browser/cdp.ts";
import { SEED_XML } from "./helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const SCREENSHOT = "/tmp/kefu-agent-page.png";

// SHA-256 of the seed's page as the seed wrote it (tab-indented). `deno fmt` would rewrite it, so it must stay excluded.
const SEED_PAGE_SHA256 = "c0d878e39b02e77eb88de7fbd9d4921340ff002ab40d8663fd0b6aa3485f5df3";

/** kefu, with replies to pushed users POSTed to a receiver of the test's own (PUSH_REPLY_URL). */
async function startService() {
  const replies: { data: { contact_id: string; msg: { content?: string } } }[] = [];
  const receiver = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    replies.push(await req.json());
    return new Response("ok");
  });
  const svc = await start(parseConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    LOG_LEVEL: "silent",
    STORE: "memory",
    PUSH_REPLY_URL: `http://127.0.0.1:${receiver.addr.port}/replies`,
  }));
  return {
    port: svc.port,
    hub: svc.hub,
    replies,
    async shutdown() {
      await svc.shutdown();
      await receiver.shutdown();
    },
  };
}

/** POST a simplified WeChat XML message to `/send` and return the status code and JSON answer. */
async function pushXml(
  port: number,
  m: { to: string; from: string; type?: string; content: string; id: string },
): Promise<{ status: number; body: { data: Record<string, unknown> } }> {
  const xml = `<xml><ToUserName>${cdata(m.to)}</ToUserName><FromUserName>${cdata(m.from)}</FromUserName>` +
    `<CreateTime>${Math.floor(Date.now() / 1000)}</CreateTime><MsgType>${cdata(m.type ?? "text")}</MsgType>` +
    `<Content>${cdata(m.content)}</Content><MsgId>${m.id}</MsgId></xml>`;
  const res = await fetch(`http://127.0.0.1:${port}/send`, { method: "POST", body: xml });
  return { status: res.status, body: await res.json() };
}

// The DOM state the assertions look at, read in one evaluation so that it is consistent.
function messageState(page: Page, id: string) {
  return page.evaluate<{ status?: string; direction?: string; text?: string; badge?: string; error?: string } | null>(
    `(() => {
      const m = document.querySelector(${JSON.stringify(`#conversation [data-id="${id}"]`)});
      if (!m) return null;
      return {
        status: m.dataset.status,
        direction: m.dataset.direction,
        text: m.querySelector(".msg-text")?.textContent,
        badge: m.querySelector(".badge")?.textContent,
        error: m.querySelector(".msg-error")?.textContent,
      };
    })()`,
  );
}

function click(page: Page, selector: string): Promise<unknown> {
  return page.evaluate(`document.querySelector(${JSON.stringify(selector)}).click()`);
}

Deno.test("browser/seed_page.html is the seed's page byte for byte", async () => {
  const bytes = await Deno.readFile(new URL("./browser/seed_page.html", import.meta.url));
  const hash = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
  assert.equal(
    hash,
    SEED_PAGE_SHA256,
    "tests/browser/seed_page.html changed: restore the seed's text (was it reformatted by deno fmt?)",
  );
});

Deno.test({
  name: `browser: the seed's WebSocket test page gets the seed XML and an error for "pong"${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const svc = await startService();
    // The page stays the seed's text; only the address it dials is pointed at this test's port.
    const seed = await Deno.readTextFile(new URL("./browser/seed_page.html", import.meta.url));
    assert.ok(seed.includes("localhost:1234"), "the seed page dials ws://localhost:1234");
    const html = seed.replace("localhost:1234", `127.0.0.1:${svc.port}`);
    const pageServer = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } }),
    );
    let browser: Browser | undefined;
    try {
      browser = await Browser.launch();
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${pageServer.addr.port}/`);
      const wsuri = `ws://127.0.0.1:${svc.port}?userId=1`;
      await page.waitForConsole(`"connected to ${wsuri}"`, (l) => l === `connected to ${wsuri}`);

      const pushed = await fetch(`http://127.0.0.1:${svc.port}/send`, { method: "POST", body: SEED_XML });
      const answer = await pushed.json();
      assert.equal(pushed.status, 200, `POST /send answered ${JSON.stringify(answer)}`);
      assert.equal(answer.data.status, "delivered");

      const prefix = "message received: ";
      const line = await page.waitForConsole(
        `"${prefix}{…}" with data.id "19"`,
        (l) => l.startsWith(prefix) && JSON.parse(l.slice(prefix.length))?.data?.id === "19",
      );
      const env = JSON.parse(line.slice(prefix.length));
      assert.equal(env.data.name, "魏秀兰");
      assert.equal(env.data.contact_id, "魏秀兰");
      assert.equal(env.data.msg.content, "occaecat ut in fugiat dolor");
      assert.equal(env.data.msg_type, "enim");
      assert.equal(env.data.id, "19");
      assert.equal(env.result.code, 1000);

      const before = page.console.length;
      await page.evaluate(
        `[...document.querySelectorAll("button")].find((b) => b.textContent === "Send Message").click()`,
      );
      const errorLine = await page.waitForConsole(
        "an error envelope (result.code -1) after clicking Send Message",
        (l) =>
          page.console.indexOf(l, before) >= 0 && l.startsWith(prefix) &&
          JSON.parse(l.slice(prefix.length))?.result?.code === -1,
      );
      const error = JSON.parse(errorLine.slice(prefix.length));
      assert.equal(error.data.error, "invalid_envelope");
      assert.match(error.data.detail, /pong/);
      // A close would follow the error at once if the server dropped the socket.
      await delay(300);
      const closed = page.console.filter((l) => l.startsWith("connection closed"));
      assert.deepEqual(closed, [], "the socket stays open after a bad frame");
      await page.close();
    } finally {
      await browser?.close();
      await pageServer.shutdown();
      await svc.shutdown();
    }
  },
});

Deno.test({
  name: `browser: the agent page connects, receives, replies and shows sent and failed replies${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    const svc = await startService();
    const port = svc.port;
    let browser: Browser | undefined;
    try {
      // Held while agent 7 is offline; it must show up once the page connects.
      const early = await pushXml(port, { to: "7", from: "early_user", content: "are you there?", id: "5001" });
      assert.equal(early.status, 202, JSON.stringify(early.body));
      assert.equal(early.body.data.status, "queued");

      browser = await Browser.launch();
      const page = await browser.newPage();
      await page.send("Emulation.setDeviceMetricsOverride", {
        width: 1200,
        height: 800,
        deviceScaleFactor: 1,
        mobile: false,
      });
      await page.goto(`http://127.0.0.1:${port}/?userid=7`);
      assert.equal(await page.evaluate(`document.querySelector("#agent-id").value`), "7", "agent id from ?userid=");
      assert.equal(await page.evaluate(`document.querySelector("#sim-to").value`), "7");

      // ?userid= connects by itself.
      await page.waitForExpression("#status to be open", `document.querySelector("#status").dataset.state === "open"`);
      // Chinese first, on any browser (this headless one says en-US).
      assert.equal(await page.evaluate(`document.querySelector("#connect").textContent`), "断开");
      // Nothing opens by itself (reads are the agent's): the agent opens the held message's conversation.
      await page.waitForExpression(
        "early_user listed",
        `!!document.querySelector('#contacts [data-contact-id="early_user"]')`,
      );
      await click(page, '#contacts [data-contact-id="early_user"]');
      await page.waitForExpression(
        "the held message of early_user in the conversation",
        `!!document.querySelector('#contacts [data-contact-id="early_user"]') &&
          !!document.querySelector('#conversation[data-contact-id="early_user"] [data-id="5001"]')`,
      );
      assert.equal((await messageState(page, "5001"))?.text, "are you there?");

      // A user message through the page's own simulate panel; markup in it must stay text.
      const content = "你好 <b>not bold</b> ]]> still content";
      await page.evaluate(`(() => {
        document.querySelector("#simulate").open = true;
        document.querySelector("#sim-from").value = "wx_alice";
        document.querySelector("#sim-content").value = ${JSON.stringify(content)};
        document.querySelector("#sim-send").click();
      })()`);
      const simStatus = await page.waitForExpression<string>(
        "#sim-result to show the answer",
        `(() => { const s = document.querySelector("#sim-result").dataset.status; return s !== "sending" && s; })()`,
      );
      assert.equal(simStatus, "delivered", await page.evaluate(`document.querySelector("#sim-result").textContent`));
      const unread = await page.waitForExpression<string>(
        "an unread badge on wx_alice",
        `document.querySelector('#contacts [data-contact-id="wx_alice"] [data-testid="unread"]')?.textContent`,
      );
      assert.equal(unread, "1");

      // The seed's kind of message: a type without a code, shown with its type as a badge.
      const other = await pushXml(port, { to: "7", from: "wx_alice", type: "enim", content: "occaecat", id: "19" });
      assert.equal(other.body.data.status, "delivered");

      await page.evaluate(`document.querySelector('#contacts [data-contact-id="wx_alice"]').click()`);
      await page.waitForExpression(
        "wx_alice's conversation with two messages",
        `document.querySelectorAll('#conversation[data-contact-id="wx_alice"] [data-direction="in"]').length === 2`,
      );
      const incoming = await page.evaluate<{ text: string; bold: number; badge: string | null }>(`(() => {
        const msgs = document.querySelectorAll('#conversation [data-direction="in"]');
        return {
          text: msgs[0].querySelector(".msg-text").textContent,
          bold: document.querySelectorAll("#conversation b").length,
          badge: msgs[1].querySelector(".badge")?.textContent ?? null,
        };
      })()`);
      assert.equal(incoming.text, content);
      assert.equal(incoming.bold, 0, "message text must not be parsed as HTML");
      assert.equal(incoming.badge, "enim");
      assert.equal(
        await page.evaluate(`document.querySelector('#contacts [data-contact-id="wx_alice"] [data-testid="unread"]')`),
        null,
        "selecting a contact clears its unread count",
      );

      // Redelivery of the same id (after a reconnect) must not show twice.
      await page.evaluate(`(() => {
        const e = { data: { id: "19", name: "wx_alice", msg_type: "enim", contact_id: "wx_alice", send_time: 1,
          msg: { content: "occaecat" } }, result: { code: "1000", message: "common" } };
        handleFrame(JSON.stringify(e));
      })()`);
      assert.equal(await page.evaluate(`document.querySelectorAll('#conversation [data-id="19"]').length`), 1);

      // Media through the JSON push: an image URL becomes an <img> and a link, anything else stays text.
      const image = `http://127.0.0.1:${port}/static/missing.png`;
      for (const [id, media] of [["img-1", image], ["img-2", "javascript:alert(1)"]]) {
        const res = await fetch(`http://127.0.0.1:${port}/send`, {
          method: "POST",
          body: JSON.stringify({
            data: { id, msg_type: "image", contact_id: "7", from_id: "wx_alice", msg: { media_path: media } },
            result: { code: 1002, message: "common" },
          }),
        });
        assert.equal((await res.json()).data.status, "delivered");
      }
      // A later type with fields of its own (location), as the server may send it.
      await page.evaluate(`handleFrame(JSON.stringify({ data: { id: "loc-1", name: "wx_alice", msg_type: "location",
        contact_id: "wx_alice", send_time: 1, msg: { content: "", latitude: "23.1", label: "广州" } },
        result: { code: 1000, message: "common" } }))`);
      const media = await page.waitForExpression<
        { img: string; href: string; code: string; anchors: number; extra: string }
      >(
        "the image messages and the location",
        `(() => {
          const one = document.querySelector('#conversation [data-id="img-1"]');
          const two = document.querySelector('#conversation [data-id="img-2"]');
          const loc = document.querySelector('#conversation [data-id="loc-1"]');
          return one && two && loc && {
            img: one.querySelector("img")?.getAttribute("src"),
            href: one.querySelector("a")?.getAttribute("href"),
            code: two.querySelector("code")?.textContent,
            anchors: two.querySelectorAll("a, img").length,
            extra: loc.querySelector('[data-testid="location"]').textContent,
          };
        })()`,
      );
      assert.deepEqual(media, {
        img: image,
        href: image,
        code: "javascript:alert(1)",
        anchors: 0,
        extra: "广州",
      });

      // Reply with the button: pending until the 103 comes back (never within the same task).
      const first = await page.evaluate<{ id: string; status: string }>(`(() => {
        document.querySelector("#reply-text").value = "Hello Alice, 我来帮您";
        document.querySelector("#reply-send").click();
        const out = [...document.querySelectorAll('#conversation [data-direction="out"]')].at(-1);
        return { id: out.dataset.id, status: out.dataset.status };
      })()`);
      assert.equal(first.status, "pending");
      await page.waitForExpression(
        `reply ${first.id} to be marked sent`,
        `document.querySelector('#conversation [data-id="${first.id}"]')?.dataset.status === "sent"`,
      );
      // Pushed over HTTP, the user's replies went to PUSH_REPLY_URL, addressed to the user.
      assert.deepEqual(
        svc.replies.map((r) => [r.data.contact_id, r.data.msg.content]),
        [["wx_alice", "Hello Alice, 我来帮您"]],
      );
      assert.equal(await page.evaluate(`document.querySelector("#reply-text").value`), "", "the box is cleared");

      // Reply with the keyboard: Shift+Enter is a newline, Enter sends.
      await page.evaluate(`document.querySelector("#reply-text").focus()`);
      await page.send("Input.insertText", { text: "line one" });
      await page.send("Input.dispatchKeyEvent", {
        type: "keyDown",
        key: "Enter",
        code: "Enter",
        windowsVirtualKeyCode: 13,
        modifiers: 8,
        text: "\r",
      });
      await page.send("Input.dispatchKeyEvent", { type: "keyUp", key: "Enter", code: "Enter", modifiers: 8 });
      await page.send("Input.insertText", { text: "line two" });
      assert.equal(await page.evaluate(`document.querySelector("#reply-text").value`), "line one\nline two");
      await page.send("Input.dispatchKeyEvent", {
        type: "keyDown",
        key: "Enter",
        code: "Enter",
        windowsVirtualKeyCode: 13,
        text: "\r",
      });
      await page.send("Input.dispatchKeyEvent", { type: "keyUp", key: "Enter", code: "Enter" });
      const second = await page.waitForExpression<string>(
        "the Enter reply to be marked sent",
        `(() => {
          const out = [...document.querySelectorAll('#conversation [data-direction="out"]')].at(-1);
          return out.dataset.status === "sent" && out.querySelector(".msg-text").textContent;
        })()`,
      );
      assert.equal(second, "line one\nline two");

      // wx_alice writes to agent 8 (offline): the contact moves, so agent 7's next reply is refused.
      const moved = await pushXml(port, { to: "8", from: "wx_alice", content: "switching agent", id: "5002" });
      assert.equal(moved.body.data.status, "queued");
      await page.evaluate(`(() => {
        document.querySelector("#reply-text").value = "are you still there?";
        document.querySelector("#reply-send").click();
      })()`);
      // Said in the agent's words; the server's detail in the tooltips (issue 20).
      const failed = await page.waitForExpression<{ why: string; detail: string; toast: string }>(
        "the refused reply to be marked failed with the server's detail",
        `(() => {
          const out = [...document.querySelectorAll('#conversation [data-direction="out"]')].at(-1);
          return out.dataset.status === "failed" && {
            why: out.querySelector(".msg-error .failure-text").textContent,
            detail: out.querySelector(".msg-error .failure-text").title,
            toast: document.querySelector("#toasts [data-testid=toast]")?.title ?? "",
          };
        })()`,
      );
      assert.equal(failed.why, "回复没有发出：这位联系人已由其他客服接待");
      assert.match(failed.detail, /belongs to another agent/);
      assert.match(failed.toast, /not_your_contact/);

      await page.evaluate(`handleFrame('{"data":{},"result":{"code":101,"message":"heartbeat"}}')`);
      assert.match(
        await page.evaluate<string>(`document.querySelector("#heartbeat").textContent`),
        /^最近心跳 \d\d:\d\d:\d\d$/,
      );
      await page.evaluate(`handleFrame(JSON.stringify({ data: { id: "", name: "系统消息", msg_type: "system",
        contact_id: "system01", send_time: 0, msg: { content: "agent 8 went offline" } },
        result: { code: "102", message: "common" } }))`);
      assert.match(
        await page.evaluate<string>(`document.querySelector("#system").textContent`),
        /agent 8 went offline/,
      );

      await Deno.writeFile(SCREENSHOT, await page.screenshot());

      // The server drops the socket: the page says why and comes back after the first back-off step (1 s).
      svc.hub.closeAll(1001, "test restart");
      const dropped = await page.waitForExpression<string>(
        "#status to show the drop and a reconnect",
        `document.querySelector("#status").dataset.state === "reconnecting" && document.querySelector("#status").textContent`,
      );
      assert.match(dropped, /代码 1001.*test restart.*1 秒后重连/);
      await page.waitForExpression(
        "#status to be open again",
        `document.querySelector("#status").dataset.state === "open"`,
      );
      assert.ok(svc.hub.isOnline("7"), "agent 7 is back online");

      // Disconnect closes with 1000 and does not come back.
      await click(page, "#connect");
      const status = await page.waitForExpression<string>(
        "#status to be closed after Disconnect",
        `document.querySelector("#status").dataset.state === "closed" && document.querySelector("#status").textContent`,
      );
      assert.match(status, /代码 1000/);
      await waitFor("agent 7 to be offline", () => !svc.hub.isOnline("7"));
      await page.close();
    } finally {
      await browser?.close();
      await svc.shutdown();
    }
  },
});
