/**
 * Business hours (src/automation/hours.ts) and the `automatic` section of CONFIG_FILE (src/automation/config.ts):
 * the boundaries of opening hours with an injected clock, in Asia/Shanghai (the default) and across a day boundary
 * in UTC; closed periods named once; the errors a bad time zone, time, day or date gives.
 */

import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../src/config/config.ts";
import { DEFAULT_TIME_ZONE, parseAutomaticConfig } from "../../src/automation/config.ts";
import type { BusinessHours } from "../../src/automation/hours.ts";
import { checkConfig } from "../../src/cli/check_config.ts";
import { channelSettings } from "../../main.ts";

const CHANNELS = ["wx_official_account", "http_push", "pc_hook", "wxbot"];
const WEEK = [
  { days: ["mon-fri"], from: "09:00", to: "18:00" },
  { days: ["sat"], from: "10:00", to: "16:00" },
];

function hours(rule: Record<string, unknown>): BusinessHours {
  const h = parseAutomaticConfig([{ closed_reply: "closed", ...rule }], CHANNELS).rules[0].hours;
  assert.ok(h);
  return h;
}

/** Epoch ms of a wall-clock time in a zone (Temporal does the zone's arithmetic). */
function at(local: string, zone: string): number {
  return Temporal.PlainDateTime.from(local).toZonedDateTime(zone).epochMilliseconds;
}

Deno.test("hours: at the boundaries in Asia/Shanghai (the default zone): 08:59:59 closed, 09:00 open, 17:59:59 open, 18:00 closed", () => {
  const h = hours({ hours: WEEK });
  assert.equal(h.timeZone, "Asia/Shanghai");
  assert.equal(DEFAULT_TIME_ZONE, "Asia/Shanghai");
  const z = "Asia/Shanghai";
  // 2026-12-07 is a Monday.
  assert.equal(h.isOpen(at("2026-12-07T08:59:59", z)), false);
  assert.equal(h.isOpen(at("2026-12-07T09:00:00", z)), true);
  assert.equal(h.isOpen(at("2026-12-07T17:59:59", z)), true);
  assert.equal(h.isOpen(at("2026-12-07T18:00:00", z)), false);
  // Saturday's own hours; Sunday closed all day.
  assert.equal(h.isOpen(at("2026-12-12T09:30:00", z)), false);
  assert.equal(h.isOpen(at("2026-12-12T10:00:00", z)), true);
  assert.equal(h.isOpen(at("2026-12-12T16:00:00", z)), false);
  assert.equal(h.isOpen(at("2026-12-13T12:00:00", z)), false);
  // The same instant is 01:00 UTC: the zone, not the machine's, decides.
  assert.equal(at("2026-12-07T09:00:00", z), Date.UTC(2026, 11, 7, 1, 0, 0));
});

Deno.test("hours: in UTC across a day boundary (22:00–24:00 and 00:00–02:00 the next day)", () => {
  const h = hours({
    time_zone: "UTC",
    hours: [{ days: ["mon"], from: "22:00", to: "24:00" }, { days: ["tue"], from: "00:00", to: "02:00" }],
  });
  assert.equal(h.isOpen(Date.UTC(2026, 11, 7, 21, 59, 59)), false);
  assert.equal(h.isOpen(Date.UTC(2026, 11, 7, 22, 0, 0)), true);
  assert.equal(h.isOpen(Date.UTC(2026, 11, 7, 23, 59, 59)), true);
  assert.equal(h.isOpen(Date.UTC(2026, 11, 8, 0, 0, 0)), true, "midnight, Tuesday: still open");
  assert.equal(h.isOpen(Date.UTC(2026, 11, 8, 1, 59, 59)), true);
  assert.equal(h.isOpen(Date.UTC(2026, 11, 8, 2, 0, 0)), false);
  // Shanghai's Monday 22:00 is UTC 14:00: the same ranges in another zone are other instants.
  const sh = hours({ hours: [{ days: ["mon"], from: "22:00", to: "24:00" }] });
  assert.equal(sh.isOpen(Date.UTC(2026, 11, 7, 14, 0, 0)), true);
  assert.equal(sh.isOpen(Date.UTC(2026, 11, 7, 22, 0, 0)), false);
});

Deno.test("hours: a closed period is named by when it began, the same for every instant in it", () => {
  const h = hours({ hours: WEEK, closed_dates: ["2026-12-14"] });
  const z = "Asia/Shanghai";
  assert.equal(h.closedPeriod(at("2026-12-07T12:00:00", z)), undefined, "open");
  // Monday evening and Tuesday early morning: one period, from Monday 18:00.
  assert.equal(h.closedPeriod(at("2026-12-07T18:00:00", z)), "2026-12-07T18:00");
  assert.equal(h.closedPeriod(at("2026-12-08T08:59:59", z)), "2026-12-07T18:00");
  // Monday before 09:00 belongs to the period that began on Saturday at 16:00.
  assert.equal(h.closedPeriod(at("2026-12-07T08:00:00", z)), "2026-12-05T16:00");
  assert.equal(h.closedPeriod(at("2026-12-06T12:00:00", z)), "2026-12-05T16:00");
  // A closed date (a holiday) makes the weekend last until Tuesday.
  assert.equal(h.isOpen(at("2026-12-14T10:00:00", z)), false);
  assert.equal(h.closedPeriod(at("2026-12-14T10:00:00", z)), "2026-12-12T16:00");
  assert.equal(h.closedPeriod(at("2026-12-15T08:00:00", z)), "2026-12-12T16:00");
  assert.equal(h.isOpen(at("2026-12-15T09:00:00", z)), true);
});

Deno.test("automatic config: the most specific rule for a contact's account wins", () => {
  const config = parseAutomaticConfig([
    { welcome: "any" },
    { channel: "wxbot", welcome: "bots" },
    { account: "wx1", welcome: "wx1" },
    { channel: "wx_official_account", account: "wx1", welcome: "exact" },
  ], CHANNELS);
  const welcome = (channel: string, account: string) => config.ruleFor(channel, account)?.welcome;
  assert.equal(welcome("wx_official_account", "wx1"), "exact");
  assert.equal(welcome("pc_hook", "wx1"), "wx1");
  assert.equal(welcome("wxbot", "wxid_b"), "bots");
  assert.equal(welcome("http_push", ""), "any");
  assert.equal(parseAutomaticConfig(undefined, CHANNELS).ruleFor("wxbot", "x"), undefined);
  assert.equal(config.timed, false);
  const timed = parseAutomaticConfig([{ please_wait: { after_seconds: 60, text: "请稍候" } }], CHANNELS);
  assert.equal(timed.timed, true);
  assert.equal(timed.rules[0].pleaseWait?.afterMs, 60_000);
});

Deno.test("automatic config: a bad time zone, time, day, date or text is refused, naming its place", () => {
  const refused = (section: unknown, pattern: RegExp) => {
    assert.throws(() => parseAutomaticConfig(section, CHANNELS), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, pattern);
      return true;
    });
  };
  refused({}, /CONFIG_FILE automatic: expected an array/);
  refused([{ time_zone: "Asia/Shangai", hours: WEEK }], /automatic\[0\]\.time_zone="Asia\/Shangai": not a time zone/);
  refused([{ time_zone: "" }], /time_zone="": expected an IANA time zone/);
  refused(
    [{ hours: [{ days: ["mon"], from: "9:00", to: "18:00" }] }],
    /hours\[0\]\.from="9:00": expected a time HH:MM/,
  );
  refused([{ hours: [{ days: ["mon"], from: "09:00", to: "24:30" }] }], /hours\[0\]\.to="24:30"/);
  refused([{ hours: [{ days: ["mon"], from: "09:60", to: "18:00" }] }], /hours\[0\]\.from="09:60"/);
  refused([{ hours: [{ days: ["mon"], from: "18:00", to: "09:00" }] }], /"to" \("09:00"\) must be after "from"/);
  refused([{ hours: [{ days: ["monday"], from: "09:00", to: "18:00" }] }], /"monday" is not a day/);
  refused([{ hours: [{ day: ["mon"], from: "09:00", to: "18:00" }] }], /unknown key "day" \(did you mean days\?\)/);
  refused([{ hours: WEEK, closed_dates: ["2026-02-30"] }], /closed_dates\[0\]="2026-02-30": expected a date/);
  refused([{ closed_reply: "下班了" }], /closed_reply: it needs "hours"/);
  refused([{ channel: "wechat", welcome: "hi" }], /channel="wechat": expected one of wx_official_account/);
  refused([{ please_wait: { after_seconds: 0, text: "x" } }], /please_wait\.after_seconds=0: expected an integer/);
  refused([{ please_wait: { after_seconds: 60 } }], /please_wait\.text=undefined: expected a non-empty string/);
  refused([{ auto_resolve: { after_minutes: "30" } }], /auto_resolve\.after_minutes="30"/);
  refused([{ welcome: "x".repeat(601) }], /welcome: 601 characters; at most 600/);
  refused([{ account: "wx1" }, { account: "wx1" }], /automatic\[1\]: another rule has the same channel/);
  refused([{ welcom: "hi" }], /unknown key "welcom" \(did you mean welcome\?\)/);
  // Every problem is listed, not only the first.
  assert.throws(() => parseAutomaticConfig([{ time_zone: "Nowhere/X" }, { welcom: "x" }], CHANNELS), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.problems.length, 2);
    return true;
  });
});

Deno.test("automatic config: check-config reports every problem of the section, with the others", async () => {
  const file = JSON.stringify({
    automatic: [
      { time_zone: "Asia/Beijing", hours: WEEK },
      { hours: [{ days: ["mon"], from: "09:00", to: "25:00" }] },
    ],
  });
  const report = await checkConfig(
    { STORE: "memory", CONFIG_FILE: "kefu.json", PORT: "x" },
    { channelSettings },
    () => file,
  );
  assert.ok(report.problems.some((p) => p.startsWith('cannot read PORT="x"')), report.problems.join("\n"));
  assert.ok(
    report.problems.includes(
      'cannot read CONFIG_FILE automatic[0].time_zone="Asia/Beijing": not a time zone this system knows; expected an ' +
        "IANA name such as Asia/Shanghai or Europe/Berlin",
    ),
    report.problems.join("\n"),
  );
  assert.ok(
    report.problems.includes(
      'cannot read CONFIG_FILE automatic[1].hours[0].to="25:00": expected a time HH:MM from 00:00 to 24:00',
    ),
    report.problems.join("\n"),
  );
});

Deno.test("automatic config: no agent may have the id kefu's own messages are kept under", () => {
  const hash = "scrypt$32768$8$1$" + "A".repeat(22) + "$" + "B".repeat(43);
  const file = JSON.stringify({ agents: [{ id: "kefu", password_hash: hash }] });
  assert.throws(
    () => parseConfig({ CONFIG_FILE: "kefu.json" }, () => file),
    /cannot read CONFIG_FILE agents\[0\]: the id "kefu" is kefu's own; choose another/,
  );
});

Deno.test("automatic config: each auto-resolve rule's scope is its pattern less the more specific rules'", () => {
  const config = parseAutomaticConfig([
    { auto_resolve: { after_minutes: 30 } },
    { channel: "wxbot", welcome: "bots" },
    { account: "wx1", auto_resolve: { after_minutes: 5 } },
    { channel: "wx_official_account", account: "wx1", welcome: "exact" },
  ], CHANNELS);
  assert.deepEqual(config.resolveScopes().map((s) => [s.autoResolve.afterMs, s.scope]), [
    [30 * 60_000, {
      channel: undefined,
      account: undefined,
      except: [
        { channel: "wxbot", account: undefined },
        { channel: undefined, account: "wx1" },
        { channel: "wx_official_account", account: "wx1" },
      ],
    }],
    [5 * 60_000, { channel: undefined, account: "wx1", except: [{ channel: "wx_official_account", account: "wx1" }] }],
  ]);
  // Every (channel, account) is in the scope of the rule that governs it, and of no other.
  const inScope = (
    s: { channel?: string; account?: string; except?: readonly { channel?: string; account?: string }[] },
    channel: string,
    account: string,
  ) => {
    const matches = (p: { channel?: string; account?: string }) =>
      (p.channel ?? channel) === channel && (p.account ?? account) === account;
    return matches(s) && !(s.except ?? []).some(matches);
  };
  for (const channel of CHANNELS) {
    for (const account of ["wx1", "wx2", ""]) {
      const scopes = config.resolveScopes().filter((s) => inScope(s.scope, channel, account));
      const governing = config.ruleFor(channel, account);
      assert.deepEqual(scopes.map((s) => s.rule), governing?.autoResolve ? [governing] : [], `${channel}/${account}`);
    }
  }
  assert.deepEqual(parseAutomaticConfig([{ welcome: "hi" }], CHANNELS).resolveScopes(), []);
});
