/**
 * Issue 20, tried again: the agent page in a foreign frame. Every file of the page is served with a CSP that allows
 * no framing (`frame-ancestors 'none'`, and X-Frame-Options for older browsers), scripts and styles from kefu only,
 * no referrer beyond the origin, and nosniff. (tests/agent_page_login_browser_test.ts runs the page under it.)
 */

import assert from "node:assert/strict";
import { startService } from "../helpers.ts";

Deno.test("security: the page and its files are served with CSP frame-ancestors 'none', X-Frame-Options DENY, nosniff", async () => {
  await using t = await startService();
  for (const path of ["/", "/static/js/main.js", "/static/style.css"]) {
    const r = await fetch(`${t.http}${path}`);
    assert.equal(r.status, 200, path);
    await r.body?.cancel();
    const csp = r.headers.get("content-security-policy") ?? "";
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.match(csp, /script-src 'self'(;|$)/, path);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
    assert.equal(r.headers.get("x-frame-options"), "DENY", path);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff", path);
    assert.equal(r.headers.get("referrer-policy"), "same-origin", path);
  }
  // The page has no inline script or style attribute that the policy would block.
  const html = await (await fetch(`${t.http}/`)).text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/);
  assert.doesNotMatch(html, /\sstyle=|\son[a-z]+=/);
});
