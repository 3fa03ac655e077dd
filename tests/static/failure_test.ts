/**
 * Why a reply failed, in the agent's words (static/js/failure.js): each error kind and WeChat errcode picks a sentence
 * of the page's tables, in both languages, and anything unknown the generic one.
 */

import assert from "node:assert/strict";
import { FAILURE_KEYS, failureKey } from "../../static/js/failure.js";
import { tables } from "../../static/js/i18n.js";

Deno.test("static/js/failure.js: what happened and what to do, by the error's kind", () => {
  assert.equal(failureKey("reply_window_closed"), "fail.window");
  assert.equal(failureKey("passive_window_closed"), "fail.window");
  assert.equal(failureKey("wxbot_no_balance", { retCode: 1004 }), "fail.admin");
  assert.equal(failureKey("no_route"), "fail.noRoute");
  assert.equal(failureKey("wxbot_busy"), "fail.later");
  assert.equal(failureKey("wechat_api_error", { errcode: 45047 }), "fail.window");
  assert.equal(failureKey("wechat_api_error", { errcode: 48001 }), "fail.admin");
  assert.equal(failureKey("wechat_api_error", { errcode: 99999 }), "fail.generic");
  assert.equal(failureKey("wechat_api_error"), "fail.generic");
  // Anything else, or nothing (a stored failure without its kind), or a name of Object.prototype: the generic one.
  for (const kind of ["internal", "", undefined, "constructor", "toString"]) {
    assert.equal(failureKey(kind), "fail.generic", String(kind));
  }
});

Deno.test("static/js/failure.js: every sentence it may choose is in both languages, Chinese without English words", () => {
  const zh = tables.zh as Record<string, string>;
  const en = tables.en as Record<string, string>;
  for (const key of [...FAILURE_KEYS, "fail.resend", "fail.resendTitle"]) {
    assert.ok(zh[key], `zh ${key}`);
    assert.ok(en[key], `en ${key}`);
    assert.doesNotMatch(zh[key], /[A-Za-z]{2,}/, `zh ${key}`);
    assert.doesNotMatch(en[key], /\p{Script=Han}/u, `en ${key}`);
  }
});
