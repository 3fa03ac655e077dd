/**
 * The agent page's strings (static/js/i18n.js): Chinese and English have the same keys and the same {placeholders},
 * and the page starts in Chinese unless the agent chose English or the browser puts English first.
 */

import assert from "node:assert/strict";
import { initialLang, tables } from "../../static/js/i18n.js";

function placeholders(s: string): string[] {
  return [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
}

Deno.test("static/js/i18n.js: zh and en have the same keys", () => {
  const zh = Object.keys(tables.zh).sort();
  const en = Object.keys(tables.en).sort();
  assert.deepEqual(zh.filter((k) => !en.includes(k)), [], "keys only in zh");
  assert.deepEqual(en.filter((k) => !zh.includes(k)), [], "keys only in en");
});

Deno.test("static/js/i18n.js: each string has the same placeholders in both languages, and none is empty", () => {
  const zh = tables.zh as Record<string, string>;
  const en = tables.en as Record<string, string>;
  for (const key of Object.keys(zh)) {
    assert.deepEqual(placeholders(zh[key]), placeholders(en[key]), key);
    assert.notEqual(zh[key].trim(), "", `zh ${key}`);
    assert.notEqual(en[key].trim(), "", `en ${key}`);
  }
});

Deno.test("static/js/i18n.js: Chinese first, whatever the browser says; English once the agent chose it", () => {
  assert.equal(initialLang(null), "zh");
  assert.equal(initialLang("zh"), "zh");
  assert.equal(initialLang("en"), "en");
  assert.equal(initialLang("fr"), "zh");
});
