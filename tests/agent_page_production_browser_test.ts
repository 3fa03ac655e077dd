/**
 * Production is production (issue 20, finding 3): the agent page's "模拟微信用户" panel, which posts to /send as any
 * user, is there only in a development setup — sign-in off and the push open (no PUSH_TOKEN), as `GET /healthz`
 * says with `simulate` — and not at all with sign-in on or a push token, in a real headless Chromium. Ignored (not
 * passed) when /usr/bin/chromium is missing.
 */

import assert from "node:assert/strict";
import { Browser, CHROMIUM_PATH, hasChromium } from "./browser/cdp.ts";
import { openAgent, startKefu, uncaught } from "./browser/page_helpers.ts";

const CHROMIUM = hasChromium();
const NEEDS = CHROMIUM ? "" : ` [ignored: requires chromium at ${CHROMIUM_PATH}]`;

/** Whether the page shows the panel, once it has asked kefu. */
const PANEL = `(() => {
  const p = document.querySelector("#simulate");
  return p.dataset.offered && { offered: p.dataset.offered, hidden: p.hidden, visible: p.checkVisibility() };
})()`;

const SETUPS: { name: string; env: Record<string, string>; offered: boolean }[] = [
  { name: "development (sign-in off, the push open)", env: {}, offered: true },
  { name: "a push token", env: { PUSH_TOKEN: "push-secret-for-tests" }, offered: false },
  { name: "sign-in on", env: { AGENT_SECRET: "agent-secret-for-tests-0123456789" }, offered: false },
];

for (const setup of SETUPS) {
  Deno.test({
    name: `browser: the simulate panel ${
      setup.offered ? "is offered" : "is not on the page"
    } with ${setup.name}${NEEDS}`,
    ignore: !CHROMIUM,
    async fn() {
      const kefu = await startKefu(setup.env);
      const browser = await Browser.launch();
      try {
        const health = await (await fetch(`${kefu.http}/healthz`)).json();
        assert.equal(health.simulate === true, setup.offered, JSON.stringify(health));
        const page = await openAgent(browser, `${kefu.http}/?userid=P`, { connect: false });
        const panel = await page.waitForExpression("the page to decide on the panel", PANEL);
        assert.deepEqual(
          panel,
          setup.offered
            ? { offered: "on", hidden: false, visible: true }
            : { offered: "off", hidden: true, visible: false },
        );
        assert.deepEqual(uncaught(page), []);
        await page.close();
      } finally {
        await browser.close();
        await kefu.svc.shutdown();
      }
    },
  });
}
