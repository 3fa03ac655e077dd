/**
 * The agent page's protocol constants (static/js/protocol.js, a plain ES module the browser loads as it is) are the
 * server's: paths, result codes, close codes, the system contact and WeChat's reply-window rules. A change on one
 * side the other misses fails here, not in front of an agent.
 */

import assert from "node:assert/strict";
import * as server from "../../src/envelope/protocol.ts";
import { EVENT_WINDOW, MESSAGE_WINDOW } from "../../src/channels/wx_official/reply_window.ts";
import { MEDIA_PATH } from "../../src/media/pipeline.ts";
import { LOGIN_PATH, ME_PATH } from "../../src/agents/auth/routes.ts";
import * as page from "../../static/js/protocol.js";

Deno.test("static/js/protocol.js: the paths are the server's", () => {
  for (
    const name of ["BASE_PATH", "WS_PATH", "CONTACTS_PATH", "HISTORY_PATH", "UPLOAD_PATH", "TEST_SEND_PATH"] as const
  ) {
    assert.equal(page[name], server[name], name);
  }
  // The workflow endpoints of issue 14.
  const s = server as Record<string, unknown>;
  for (const name of ["QUEUE_PATH", "AGENTS_PATH", "SEARCH_PATH", "TEAM_PATH"] as const) {
    assert.equal(page[name], s[name], name);
  }
  assert.equal(page.MEDIA_PATH, MEDIA_PATH);
  assert.equal(page.LOGIN_PATH, LOGIN_PATH);
  assert.equal(page.ME_PATH, ME_PATH);
});

Deno.test("static/js/protocol.js: result codes, close codes and the system contact are the server's", () => {
  assert.deepEqual(page.Code, server.Code);
  assert.deepEqual(page.Close, server.Close);
  assert.equal(page.SYSTEM_CONTACT, server.SYSTEM_CONTACT);
  // The four seed types by code, as the server maps them.
  for (const [code, type] of Object.entries(page.TYPE_OF_CODE)) assert.equal(server.typeForCode(Number(code)), type);
  for (const [type, code] of Object.entries(page.CODE_OF_TYPE)) assert.equal(server.codeForType(type), code);
});

Deno.test("static/js/protocol.js: WeChat's reply windows are the server's", () => {
  assert.deepEqual(page.MESSAGE_WINDOW, MESSAGE_WINDOW);
  assert.deepEqual(page.EVENT_WINDOW, EVENT_WINDOW);
});
