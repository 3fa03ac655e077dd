/**
 * The reports' API and the conversation export through the real service on a real SQLite file (the report runs on
 * the store's background connection; tests/on_postgres_test.ts runs them again on PostgreSQL): roles from CONFIG_FILE (an agent gets 403), a bad range a clear 400, the
 * report's figures for messages pushed at a known time, CSV tables and exports with a UTF-8 BOM.
 */

import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import { post, startTeam, type TestService, userXml } from "../helpers.ts";

const BASE = "/im_component/wx_official_account";

// deno-lint-ignore no-explicit-any
type Json = any;

/** kefu on a SQLite file with sup (supervisor), adm (admin) and a1 (agent) in CONFIG_FILE. */
function team(): Promise<TestService & { dir: string }> {
  return startTeam(
    [{ id: "sup", role: "supervisor" }, { id: "adm", role: "admin" }, { id: "a1" }],
    (dir) => ({ DATA_DIR: `${dir}/data` }),
  );
}

async function get(t: TestService, agent: string, path: string): Promise<{ status: number; res: Response }> {
  const sep = path.includes("?") ? "&" : "?";
  const res = await fetch(`${t.http}${BASE}${path}${sep}userid=${encodeURIComponent(agent)}`);
  return { status: res.status, res };
}

async function json(t: TestService, agent: string, path: string): Promise<{ status: number; body: Json }> {
  const { status, res } = await get(t, agent, path);
  return { status, body: await res.json() };
}

async function expectError(p: Promise<{ status: number; body: Json }>, status: number, kind: string, says: RegExp) {
  const r = await p;
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.body.data.error, kind);
  assert.match(r.body.data.detail, says);
}

// userXml's messages are sent at CreateTime 1700000000: 2023-11-14 22:13:20 UTC, 2023-11-15 06:13:20 in Shanghai.
async function conversation(t: TestService): Promise<void> {
  for (const text of ["您好，我想退货", "订单号 123"]) {
    const r = await post(`${t.http}/send`, userXml("u1", text, { to: "a1" }));
    assert.equal(r.status, 202, JSON.stringify(r.body));
  }
  const resolved = await post(`${t.http}${BASE}/contacts/u1/resolve?userid=a1`, "");
  assert.equal(resolved.status, 200, JSON.stringify(resolved.body));
}

Deno.test("reports: an agent gets 403; a bad range, zone, format or table is a 400 naming it", async () => {
  await using t = await team();
  await expectError(
    json(t, "a1", "/reports?from=2023-11-15&to=2023-11-15"),
    403,
    "role_required",
    /^cannot read the reports: agent "a1" is an agent; only supervisors and admins may/,
  );
  await expectError(
    json(t, "a1", "/contacts/u1/export"),
    403,
    "role_required",
    /^cannot export the conversation of contact "u1": agent "a1" is an agent/,
  );
  const bad = (q: string, says: RegExp, kind = "wrong_type") =>
    expectError(json(t, "sup", `/reports?${q}`), 400, kind, says);
  await bad("to=2023-11-15", /^from is required: a date YYYY-MM-DD/, "missing_field");
  await bad("from=2023-11-15&to=yesterday", /^to must be a date YYYY-MM-DD, got "yesterday"$/);
  await bad(
    "from=2023-11-16&to=2023-11-15",
    /^the range is empty: to "2023-11-15" is before from "2023-11-16"$/,
    "invalid_range",
  );
  await bad("from=2023-01-01&to=2023-12-31", /is 365 days long; at most 92 are reported/, "invalid_range");
  await bad("from=2023-11-15&to=2023-11-15&tz=Nowhere/City", /^tz must be an IANA time zone.*"Nowhere\/City"$/);
  await bad("from=2023-11-15&to=2023-11-15&format=xml", /^format must be "json" \(default\) or "csv", got "xml"$/);
  await bad("from=2023-11-15&to=2023-11-15&format=csv&table=x", /^table must be one of messages_hourly, .*got "x"$/);
  await expectError(json(t, "adm", "/contacts/nobody/export"), 404, "not_found", /^cannot export contact "nobody"/);
});

Deno.test("reports: the figures of a day in Shanghai and in UTC, and a table as CSV with a BOM", async () => {
  await using t = await team();
  await conversation(t);
  const r = await json(t, "sup", "/reports?from=2023-11-15&to=2023-11-15");
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const report = r.body.data.report;
  assert.equal(report.tz, "Asia/Shanghai");
  assert.equal(report.hours.length, 24);
  assert.deepEqual(report.messages.daily, [{ key: "2023-11-15", channel: "http_push", inbound: 2, outbound: 0 }]);
  assert.deepEqual(report.messages.hourly, [{ key: "2023-11-15 06", channel: "http_push", inbound: 2, outbound: 0 }]);
  assert.deepEqual(report.conversations.daily, [{ day: "2023-11-15", channel: "http_push", new: 1 }]);
  assert.equal(report.conversations.unanswered, 1);
  // In UTC the messages are the 14th's.
  const utc = (await json(t, "adm", "/reports?from=2023-11-14&to=2023-11-14&tz=UTC")).body.data.report;
  assert.deepEqual(utc.messages.daily, [{ key: "2023-11-14", channel: "http_push", inbound: 2, outbound: 0 }]);

  const csv = await get(t, "sup", "/reports?from=2023-11-15&to=2023-11-15&format=csv&table=messages_hourly");
  assert.equal(csv.status, 200);
  assert.equal(csv.res.headers.get("content-type"), "text/csv; charset=utf-8");
  assert.match(csv.res.headers.get("content-disposition")!, /^attachment; filename="kefu-messages_hourly-2023-11-15/);
  const bytes = new Uint8Array(await csv.res.arrayBuffer());
  assert.deepEqual([...bytes.slice(0, 3)], [0xef, 0xbb, 0xbf], "the file starts with the UTF-8 BOM");
  assert.deepEqual(parse(new TextDecoder().decode(bytes.slice(3))), [["hour", "channel", "inbound", "outbound"], [
    "2023-11-15 06",
    "http_push",
    "2",
    "0",
  ]]);
});

Deno.test("export: a contact's whole conversation as CSV (BOM, Chinese, workflow lines) and as JSON", async () => {
  await using t = await team();
  await conversation(t);
  const csv = await get(t, "sup", "/contacts/u1/export?format=csv");
  assert.equal(csv.status, 200);
  assert.equal(csv.res.headers.get("content-type"), "text/csv; charset=utf-8");
  const bytes = new Uint8Array(await csv.res.arrayBuffer());
  assert.deepEqual([...bytes.slice(0, 3)], [0xef, 0xbb, 0xbf], "the file starts with the UTF-8 BOM");
  const rows: string[][] = parse(new TextDecoder().decode(bytes.slice(3)));
  assert.deepEqual(rows[0], [
    "seq",
    "time",
    "direction",
    "type",
    "agent_id",
    "name",
    "content",
    "media",
    "state",
    "action",
    "note",
    "extra",
  ]);
  assert.equal(rows.length, 4, "two messages and the resolve line");
  assert.deepEqual(rows[1].slice(1, 7), ["2023-11-15 06:13:20", "in", "text", "a1", "u1", "您好，我想退货"]);
  assert.deepEqual(rows[2].slice(6, 7), ["订单号 123"]);
  assert.deepEqual([rows[3][2], rows[3][3], rows[3][4], rows[3][9]], ["out", "system", "a1", "resolved"]);

  const j = await get(t, "adm", "/contacts/u1/export?format=json&tz=UTC");
  assert.equal(j.status, 200);
  assert.match(j.res.headers.get("content-disposition")!, /filename="kefu-conversation-u1\.json"/);
  const body = await j.res.json();
  assert.equal(body.tz, "UTC");
  assert.equal(body.contact.contact_id, "u1");
  assert.equal(body.contact.status, "resolved");
  assert.deepEqual(body.messages.map((m: Json) => [m.direction, m.type, m.content.slice(0, 4)]), [
    ["in", "text", "您好，我"],
    ["in", "text", "订单号 "],
    ["out", "system", "a1 r"],
  ]);
  assert.equal(body.messages[0].time, "2023-11-14 22:13:20");
  assert.equal(body.messages[2].extra.action, "resolved");
});
