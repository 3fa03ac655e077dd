/**
 * Canned replies and tags on the agent page (issue 22), in a real headless Chromium against a real kefu whose
 * CONFIG_FILE makes `sup` a supervisor: "/" in the reply box finds a reply by shortcut and by text, ↑ ↓ Enter, Esc
 * and the mouse work, and the chosen reply fills the box with {name} and {agent} replaced (nothing is sent); the
 * 快捷回复 dialog lists, adds and deletes; a tag set in a contact's 资料 shows as a chip on its row, the tag filter
 * shows only the contacts with it, the search finds it by its tag, and a supervisor's tag shows live on the owner's
 * page. Both languages. Ignored (not passed) when
 * /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { hashPassword } from "../src/agents/auth/passwords.ts";
import { Browser, CHROMIUM_PATH, hasChromium, type Page } from "./browser/cdp.ts";
import { click, clickContact, openAgent, pushText, startKefu, textOf, uncaught } from "./browser/page_helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;
const BASE = "/im_component/wx_official_account";

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

async function api(http: string, agent: string, method: string, path: string, body: unknown): Promise<void> {
  const res = await fetch(`${http}${BASE}${path}?userid=${agent}`, {
    method,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await res.text();
  assert.equal(res.status, 200, answer);
}

async function key(page: Page, key: string, code = key, keyCode = 0): Promise<void> {
  const down: Record<string, unknown> = { type: "keyDown", key, code, windowsVirtualKeyCode: keyCode };
  if (key === "Enter") down.text = "\r";
  await page.send("Input.dispatchKeyEvent", down);
  await page.send("Input.dispatchKeyEvent", { type: "keyUp", key, code, windowsVirtualKeyCode: keyCode });
}

/** Empty the reply box, then type `text` as the keyboard would. */
async function typeReply(page: Page, text: string): Promise<void> {
  await page.evaluate(`(() => {
    const box = document.querySelector("#reply-text");
    box.value = "";
    box.dispatchEvent(new Event("input", { bubbles: true }));
    box.focus();
  })()`);
  await page.send("Input.insertText", { text });
}

/** The shortcuts the popup offers, in order, and the one chosen; null while it is closed. */
function popup(page: Page): Promise<{ shortcuts: string[]; active: string; scopes: string[] } | null> {
  return page.evaluate(`(() => {
    const box = document.querySelector("#canned-popup");
    if (box.hidden) return null;
    const rows = [...box.querySelectorAll('[data-testid="canned-option"]')];
    return {
      shortcuts: rows.map((r) => r.querySelector(".canned-shortcut").textContent),
      active: box.querySelector(".active .canned-shortcut")?.textContent ?? "",
      scopes: rows.map((r) => r.querySelector(".canned-scope").textContent),
    };
  })()`);
}

function waitPopup(page: Page, what: string, shortcuts: string[]) {
  return page.waitForExpression(
    what,
    `(() => {
      const box = document.querySelector("#canned-popup");
      const rows = [...box.querySelectorAll('[data-testid="canned-option"] .canned-shortcut')].map((r) => r.textContent);
      return !box.hidden && JSON.stringify(rows) === ${JSON.stringify(JSON.stringify(shortcuts))};
    })()`,
  );
}

const replyBox = (page: Page) => page.evaluate<string>(`document.querySelector("#reply-text").value`);

Deno.test({
  name: `browser: "/" finds canned replies by shortcut and text; Enter, the mouse, ↑ ↓ and Esc; the dialog${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    await using kefu = await kefuWithTeam();
    await api(kefu.http, "sup", "POST", "/canned_replies", {
      scope: "team",
      shortcut: "/hi",
      text: "您好 {name}，我是{agent}，请问有什么可以帮您？",
    });
    await api(kefu.http, "a1", "POST", "/canned_replies", { shortcut: "/addr", text: "我们的地址：上海市静安区 1 号" });
    await pushText(kefu.http, { to: "a1", from: "u_ann", content: "在吗", id: "7001" });
    await api(kefu.http, "a1", "PATCH", "/contacts/u_ann", { display_name: "安妮" });
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=a1`);
      await clickContact(page, "u_ann");
      await page.waitForExpression("the conversation open", `kefu.state.selected === "u_ann"`);

      // "/" alone lists every reply (shortcut order), the team's marked 团队.
      await typeReply(page, "/");
      await waitPopup(page, "both replies offered", ["/addr", "/hi"]);
      assert.deepEqual((await popup(page))?.scopes, ["个人", "团队"]);

      // By shortcut, then Enter: the box holds the reply with {name} and {agent} filled in, and nothing was sent.
      await page.send("Input.insertText", { text: "hi" });
      await waitPopup(page, "/hi alone", ["/hi"]);
      await key(page, "Enter", "Enter", 13);
      assert.equal(await replyBox(page), "您好 安妮，我是a1，请问有什么可以帮您？");
      assert.equal(await popup(page), null, "the popup closed");
      assert.equal(
        await page.evaluate(`document.querySelectorAll('#conversation [data-direction="out"]').length`),
        0,
        "Enter chose the reply; it did not send",
      );

      // By text ("地址" is in the reply's text, not its shortcut).
      await typeReply(page, "/地址");
      await waitPopup(page, "/addr found by its text", ["/addr"]);
      await key(page, "Enter", "Enter", 13);
      assert.equal(await replyBox(page), "我们的地址：上海市静安区 1 号");

      // ↓ moves the choice (and wraps), ↑ back.
      await typeReply(page, "/");
      await waitPopup(page, "both offered again", ["/addr", "/hi"]);
      assert.equal((await popup(page))?.active, "/addr");
      await key(page, "ArrowDown", "ArrowDown", 40);
      assert.equal((await popup(page))?.active, "/hi");
      await key(page, "ArrowDown", "ArrowDown", 40);
      assert.equal((await popup(page))?.active, "/addr", "wraps around");
      await key(page, "ArrowUp", "ArrowUp", 38);
      assert.equal((await popup(page))?.active, "/hi");
      // Esc closes the popup and leaves what was typed.
      await key(page, "Escape", "Escape", 27);
      assert.equal(await popup(page), null);
      assert.equal(await replyBox(page), "/");

      // The mouse: a click on a row chooses it.
      await typeReply(page, "/ad");
      await waitPopup(page, "/addr for /ad", ["/addr"]);
      const row = await page.evaluate<{ x: number; y: number }>(`(() => {
        const r = document.querySelector('[data-testid="canned-option"]').getBoundingClientRect();
        return { x: r.x + r.width / 2, y: r.y + r.height / 2 };
      })()`);
      for (const type of ["mousePressed", "mouseReleased"]) {
        await page.send("Input.dispatchMouseEvent", { type, x: row.x, y: row.y, button: "left", clickCount: 1 });
      }
      assert.equal(await replyBox(page), "我们的地址：上海市静安区 1 号");

      // A text without a match says so.
      await typeReply(page, "/zzz");
      await page.waitForExpression("no match", `document.querySelector("#canned-popup .canned-empty")?.textContent`);
      assert.equal(await textOf(page, "#canned-popup"), "没有匹配的快捷回复");

      // The dialog: the team's reply without buttons for a plain agent, no team scope to choose; add one, delete it.
      await click(page, "#open-canned");
      await page.waitForExpression("the list", `document.querySelectorAll('[data-testid="canned-item"]').length === 2`);
      const items = await page.evaluate<{ shortcut: string; buttons: number }[]>(
        `[...document.querySelectorAll('[data-testid="canned-item"]')].map((li) => ({
          shortcut: li.querySelector(".canned-shortcut").textContent,
          buttons: li.querySelectorAll("button").length }))`,
      );
      assert.deepEqual(items, [{ shortcut: "/addr", buttons: 2 }, { shortcut: "/hi", buttons: 0 }]);
      assert.equal(await page.evaluate(`document.querySelector("#canned-scope").hidden`), true);
      await page.evaluate(`(() => {
        document.querySelector("#canned-shortcut").value = "bye";
        document.querySelector("#canned-body").value = "再见，{name}！";
        document.querySelector("#canned-save").click();
      })()`);
      await page.waitForExpression(
        "the new reply listed",
        `document.querySelectorAll('[data-testid="canned-item"]').length === 3`,
      );
      assert.deepEqual(
        await page.evaluate(
          `[...document.querySelectorAll('[data-testid="canned-item"] .canned-shortcut')].map((s) => s.textContent)`,
        ),
        ["/addr", "/bye", "/hi"],
        "the slash added",
      );
      const del = `[data-testid="canned-item"][data-id] [data-action="delete"]`;
      await click(page, del);
      assert.equal(await textOf(page, del), "确认删除", "asks once more");
      await click(page, del);
      await page.waitForExpression(
        "one deleted",
        `document.querySelectorAll('[data-testid="canned-item"]').length === 2`,
      );

      // English: the dialog and the popup in English.
      await page.evaluate(`kefu.setLang("en")`);
      assert.equal(await textOf(page, "#canned-dialog h3 span"), "Canned replies");
      await page.evaluate(`document.querySelector("#canned-dialog").close()`);
      await typeReply(page, "/");
      await page.waitForExpression("the popup", `!document.querySelector("#canned-popup").hidden`);
      assert.deepEqual((await popup(page))?.scopes, ["Mine", "Team"]);
      assert.deepEqual(uncaught(page), []);
    } finally {
      await browser.close();
    }
  },
});

Deno.test({
  name: `browser: a tag set in 资料 shows as a chip; the tag filter and the search find its contact${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    await using kefu = await kefuWithTeam();
    await pushText(kefu.http, { to: "a1", from: "u_vip", content: "我要退款", id: "7101" });
    await pushText(kefu.http, { to: "a1", from: "u_plain", content: "你好", id: "7102" });
    const browser = await Browser.launch();
    try {
      const page = await openAgent(browser, `${kefu.http}/?userid=a1`);
      const visible = () =>
        page.evaluate<string[]>(
          `[...document.querySelectorAll("#contacts [data-contact-id]")].filter((li) => !li.hidden)
            .map((li) => li.dataset.contactId).sort()`,
        );
      await page.waitForExpression(
        "both contacts",
        `document.querySelectorAll("#contacts [data-contact-id]").length === 2`,
      );
      assert.equal(await page.evaluate(`document.querySelector("#tag-filter").hidden`), true, "no tags: no filter");

      await clickContact(page, "u_vip");
      await click(page, "#open-details");
      assert.equal(await textOf(page, "#details-tags"), "暂无标签");
      await page.evaluate(`document.querySelector("#tag-input").focus()`);
      await page.send("Input.insertText", { text: "重要客户" });
      await key(page, "Enter", "Enter", 13);
      const chip = `#contacts [data-contact-id="u_vip"] [data-testid="tag"]`;
      await page.waitForExpression(
        "the chip on the row",
        `document.querySelector(${JSON.stringify(chip)})?.textContent`,
      );
      assert.equal(await textOf(page, chip), "重要客户");
      // The open 资料 panel is drawn after the row: waited for, not read once.
      await page.waitForExpression(
        "the tag in the open 资料 panel",
        `document.querySelector('#details-tags [data-testid="tag"]')?.textContent === "重要客户×"`,
      );
      assert.equal(await page.evaluate(`document.querySelector("#tag-input").value`), "", "the input emptied");
      assert.equal(await textOf(page, '#contacts [data-contact-id="u_plain"] [data-testid="tags"]'), "");

      // The tag filter: only the tagged contact; all tags again shows both.
      await page.waitForExpression("the filter offered", `!document.querySelector("#tag-filter").hidden`);
      assert.deepEqual(
        await page.evaluate(`[...document.querySelectorAll("#tag-filter option")].map((o) => o.textContent)`),
        ["全部标签", "重要客户"],
      );
      const choose = (tag: string) =>
        page.evaluate(`(() => {
          const s = document.querySelector("#tag-filter");
          s.value = ${JSON.stringify(tag)};
          s.dispatchEvent(new Event("change", { bubbles: true }));
        })()`);
      await choose("重要客户");
      await page.waitForExpression(
        "only u_vip",
        `[...document.querySelectorAll("#contacts [data-contact-id]")].filter((li) => !li.hidden).length === 1`,
      );
      assert.deepEqual(await visible(), ["u_vip"]);
      await choose("");
      await page.waitForExpression(
        "both again",
        `[...document.querySelectorAll("#contacts [data-contact-id]")].filter((li) => !li.hidden).length === 2`,
      );

      // The search finds the contact by its tag.
      await page.evaluate(`(() => {
        const s = document.querySelector("#search");
        s.value = "重要";
        s.dispatchEvent(new Event("input", { bubbles: true }));
      })()`);
      const hits = await page.waitForExpression<string[]>(
        "a search hit",
        `(() => {
          const hits = [...document.querySelectorAll('#search-results [data-testid="search-contact"]')];
          return hits.length > 0 && hits.map((h) => h.dataset.contactId);
        })()`,
      );
      assert.deepEqual(hits, ["u_vip"]);

      // Taken off with ×: the chip goes.
      await click(page, '#details-tags [data-remove="重要客户"]');
      await page.waitForExpression("the chip gone", `!document.querySelector(${JSON.stringify(chip)})`);

      // A supervisor tags the contact: the owner's page hears of it (106 updated) and shows the chip at once.
      await api(kefu.http, "sup", "PATCH", "/contacts/u_vip", { tags: ["主管标记"] });
      await page.waitForExpression(
        "the supervisor's tag live",
        `document.querySelector(${JSON.stringify(chip)})?.textContent === "主管标记"`,
      );
      // The open 资料 panel follows (drawn after the list: waited for, not read once; it read "" once in CI).
      await page.waitForExpression(
        "the supervisor's tag in the open 资料 panel",
        `document.querySelector('#details-tags [data-testid="tag"]')?.textContent === "主管标记×"`,
      );
      await click(page, '#details-tags [data-remove="主管标记"]');
      await page.waitForExpression("the chip gone again", `!document.querySelector(${JSON.stringify(chip)})`);

      // English.
      await page.evaluate(`kefu.setLang("en")`);
      assert.equal(await textOf(page, "#details-tags"), "No tags");
      assert.equal(await page.evaluate(`document.querySelector("#tag-input").placeholder`), "Add a tag, then Enter");
      assert.deepEqual(uncaught(page), []);
    } finally {
      await browser.close();
    }
  },
});

Deno.test({
  name: `browser: a supervisor adds a team reply in the dialog; an agent finds it with "/" at once${NEEDS}`,
  ignore: !CHROMIUM,
  async fn() {
    await using kefu = await kefuWithTeam();
    await pushText(kefu.http, { to: "a1", from: "u_bo", content: "你好", id: "7201" });
    const browser = await Browser.launch();
    try {
      const sup = await openAgent(browser, `${kefu.http}/?userid=sup`);
      await click(sup, "#open-canned");
      await sup.waitForExpression(
        "the scope choice for a supervisor",
        `!document.querySelector("#canned-scope").hidden`,
      );
      await sup.evaluate(`(() => {
        document.querySelector("#canned-shortcut").value = "/wait";
        document.querySelector("#canned-body").value = "{name}，请稍等，{agent} 马上为您查询。";
        document.querySelector("#canned-scope").value = "team";
        document.querySelector("#canned-save").click();
      })()`);
      await sup.waitForExpression(
        "the team reply listed with its buttons",
        `document.querySelector('[data-testid="canned-item"] .canned-scope.team') &&
          document.querySelectorAll('[data-testid="canned-item"] button').length === 2`,
      );

      const agent = await openAgent(browser, `${kefu.http}/?userid=a1`);
      await clickContact(agent, "u_bo");
      await typeReply(agent, "/wa");
      await waitPopup(agent, "the team's /wait", ["/wait"]);
      await key(agent, "Enter", "Enter", 13);
      assert.equal(await replyBox(agent), "u_bo，请稍等，a1 马上为您查询。", "{name} falls back to the user id");
      assert.deepEqual([...uncaught(sup), ...uncaught(agent)], []);
    } finally {
      await browser.close();
    }
  },
});
