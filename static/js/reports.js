// The reports page (issue 22), for supervisors and admins: a date range in a time zone, the figures the server
// computes (GET …/reports), charts drawn by the vendored uPlot (static/vendor/uplot, the global `uPlot`), tables,
// and each table as CSV from the server. Signed in, the session cookie goes along by itself; with sign-in off the
// page names the agent as the workplace does (?userid=). Chinese or English, the workplace's choice (i18n.js, kept
// in localStorage): the switch redraws the report shown, without asking the server again.

import { BASE_PATH } from "./protocol.js";
import { getLang, onLangChange, setLang, startLang, t } from "./i18n.js";

const REPORTS_PATH = `${BASE_PATH}/reports`;
const COLORS = ["#07c160", "#1677ff", "#fa8c16", "#eb2f96", "#722ed1", "#13c2c2", "#a0d911", "#8c8c8c"];

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const agent = params.get("userid") ?? "";
const charts = [];
/** The report shown, drawn again when the language changes. */
let shown;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function channelName(c) {
  return t(`channel.${c}`, {}, c);
}

/** `YYYY-MM-DD` of "today" in `tz`, moved by `days`. */
function day(tz, days = 0) {
  const f = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" });
  const today = f.format(new Date());
  const t = Date.parse(`${today}T00:00:00Z`) + days * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}

/** Seconds as seconds, minutes and seconds, or hours and minutes (秒 / 分 / 小时 in Chinese). */
export function duration(s) {
  if (s === null || s === undefined) return "—";
  if (s < 60) return t("rep.seconds", { s });
  if (s < 3600) return t("rep.minutes", { m: Math.floor(s / 60), s: s % 60 });
  return t("rep.hours", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
}

function url(query) {
  const q = new URLSearchParams(query);
  if (agent) q.set("userid", agent);
  return `${REPORTS_PATH}?${q}`;
}

/** The status line: `key` of i18n.js with its values, or "" to clear it; said again when the language changes. */
let said = { key: "", params: {}, kind: "info" };
function say(key, params = {}, kind = "error") {
  said = { key, params, kind };
  $("message").textContent = key === "" ? "" : t(key, params);
  $("message").dataset.kind = kind;
  $("message").hidden = key === "";
}

async function reasonOf(res) {
  const body = await res.json().catch(() => null);
  return body?.data?.detail ?? `HTTP ${res.status}`;
}

function range() {
  return { from: $("from").value, to: $("to").value, tz: $("tz").value };
}

async function show() {
  const r = range();
  history.replaceState(null, "", `?${new URLSearchParams({ ...(agent ? { userid: agent } : {}), ...r })}`);
  $("report").dataset.state = "loading";
  // A month over a large store takes seconds: say so while the server computes.
  say("rep.computing", {}, "info");
  let report;
  try {
    const res = await fetch(url(r), { cache: "no-store" });
    if (!res.ok) {
      const why = await reasonOf(res);
      say(res.status === 401 ? "rep.signInFirst" : "rep.cannotRead", { reason: why });
      $("report").dataset.state = "error";
      return;
    }
    report = (await res.json()).data.report;
  } catch (e) {
    // kefu unreachable, or an answer cut short.
    say("rep.cannotRead", { reason: e instanceof Error ? e.message : String(e) });
    $("report").dataset.state = "error";
    return;
  }
  shown = report;
  say("");
  const t0 = performance.now();
  draw(shown);
  // For a measurement of the page: how long drawing took, and when it was done.
  $("report").dataset.drawMs = String(Math.round(performance.now() - t0));
  performance.mark("kefu:report-drawn");
  $("report").dataset.state = "ready";
}

// --- cards ---

function card(label, value, more = "") {
  const c = el("div", "card");
  c.append(el("div", "label", label), el("div", "value", value));
  if (more) c.append(el("div", "more", more));
  return c;
}

function cards(r) {
  const conv = r.conversations;
  const total = conv.daily.reduce((n, d) => n + d.new, 0);
  const pair = (d) => `${duration(d.median_s)}`;
  const p90 = (d) => t("rep.p90", { d: duration(d.p90_s), n: d.count });
  const inbound = r.messages.daily.reduce((n, m) => n + m.inbound, 0);
  const outbound = r.messages.daily.reduce((n, m) => n + m.outbound, 0);
  $("cards").replaceChildren(
    card(t("rep.cardMessages"), `${inbound} / ${outbound}`),
    card(t("rep.cardNew"), total, t("rep.cardUnanswered", { n: conv.unanswered })),
    card(t("rep.cardFirst"), pair(conv.first_response), p90(conv.first_response)),
    card(t("rep.cardResponse"), pair(conv.response), p90(conv.response)),
    card(t("rep.cardResolution"), pair(conv.resolution), p90(conv.resolution)),
    card(t("rep.cardWait"), pair(r.queue.wait), p90(r.queue.wait)),
  );
}

// --- charts ---

/** A uPlot line chart in `box`: x is the index of `labels`; each series its values. */
function chart(box, labels, series, every) {
  const data = [labels.map((_, i) => i), ...series.map((s) => s.values)];
  const opts = {
    width: Math.max(320, box.clientWidth - 4),
    height: 220,
    scales: { x: { time: false } },
    axes: [
      {
        values: (_, ticks) => ticks.map((i) => labels[i] === undefined ? "" : every(labels[i])),
        space: 60,
      },
      {},
    ],
    series: [
      { label: t("rep.time"), value: (_, i) => (i === null ? "" : labels[i] ?? "") },
      ...series.map((s, k) => ({ label: s.label, stroke: COLORS[k % COLORS.length], width: 2, points: { size: 5 } })),
    ],
    legend: { live: true },
  };
  box.replaceChildren();
  const u = new uPlot(opts, data, box);
  // What the page drew, for a reader of the DOM (and the browser test): series and points per series.
  box.dataset.series = String(series.length);
  box.dataset.points = String(labels.length);
  charts.push(u);
  return u;
}

/** Per channel and direction: values over `keys` from rows `{key, channel, inbound, outbound}`. */
function byChannel(channels, keys, rows) {
  const at = new Map(keys.map((k, i) => [k, i]));
  const series = [];
  for (const c of channels) {
    for (const [dir, name] of [["inbound", t("rep.in")], ["outbound", t("rep.out")]]) {
      const values = keys.map(() => 0);
      for (const r of rows) if (r.channel === c) values[at.get(r.key)] += r[dir];
      series.push({ label: `${channelName(c)} ${name}`, values });
    }
  }
  return series;
}

function drawCharts(r) {
  for (const u of charts.splice(0)) u.destroy();
  const channels = r.channels;
  chart($("chart-daily"), r.days, byChannel(channels, r.days, r.messages.daily), (d) => d.slice(5));
  chart(
    $("chart-hourly"),
    r.hours,
    byChannel(channels, r.hours, r.messages.hourly),
    (h) => t("rep.hourTick", { day: h.slice(5, 10), h: h.slice(11) }),
  );
  const at = new Map(r.days.map((d, i) => [d, i]));
  const fresh = channels.map((c) => {
    const values = r.days.map(() => 0);
    for (const d of r.conversations.daily) if (d.channel === c) values[at.get(d.day)] += d.new;
    return { label: channelName(c), values };
  });
  chart($("chart-new"), r.days, fresh, (d) => d.slice(5));
}

// --- tables ---

/** A table: `head` names each column's key (`rep.<key>` in i18n.js). */
function table(id, head, rows) {
  const tab = $(id);
  const tr = el("tr");
  for (const h of head) tr.append(el("th", "", t(`rep.${h}`)));
  const body = rows.map((row) => {
    const r = el("tr");
    for (const v of row) r.append(el("td", typeof v === "number" ? "n" : "", v));
    return r;
  });
  tab.replaceChildren(el("thead"), el("tbody"));
  tab.tHead.append(tr);
  tab.tBodies[0].append(...body);
}

function tables(r) {
  const d = (x) => [x.count, duration(x.median_s), duration(x.p90_s)];
  table(
    "table-agents",
    [
      "colAgent",
      "colReplies",
      "colResponses",
      "colResponseMedian",
      "colResponseP90",
      "colFirsts",
      "colFirstMedian",
      "colFirstP90",
      "colResolved",
      "colResolutionMedian",
      "colResolutionP90",
    ],
    r.agents.map((a) => [a.agent, a.replies, ...d(a.response), ...d(a.first_response), ...d(a.resolution)]),
  );
  const c = r.conversations;
  table("table-summary", ["colFigure", "colCount", "colMedian", "colP90"], [
    [t("rep.rowFirst"), ...d(c.first_response)],
    [t("rep.rowResponse"), ...d(c.response)],
    [t("rep.rowResolution"), ...d(c.resolution)],
    [t("rep.rowWait"), ...d(r.queue.wait)],
    [t("rep.rowUnanswered"), c.unanswered, "", ""],
  ]);
  table(
    "table-daily",
    ["colDay", "colChannel", "in", "out"],
    r.messages.daily.map((m) => [m.key, channelName(m.channel), m.inbound, m.outbound]),
  );
  table("table-new", ["colDay", "colChannel", "colNew"], c.daily.map((n) => [n.day, channelName(n.channel), n.new]));
}

function draw(r) {
  cards(r);
  drawCharts(r);
  tables(r);
}

// --- CSV ---

async function csv(table) {
  let res;
  try {
    res = await fetch(url({ ...range(), format: "csv", table }), { cache: "no-store" });
  } catch (e) {
    say("rep.cannotCsv", { reason: e instanceof Error ? e.message : String(e) });
    return;
  }
  if (!res.ok) {
    say("rep.cannotCsv", { reason: await reasonOf(res) });
    return;
  }
  const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") ?? "")?.[1] ?? `${table}.csv`;
  // The bytes as they came (the BOM stays: Excel reads the Chinese as UTF-8).
  const blob = new Blob([await res.arrayBuffer()], { type: "text/csv" });
  const a = $("download");
  if (a.href) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(blob);
  a.download = name;
  a.dataset.table = table;
  a.click();
}

// --- start ---

function setRange(days) {
  const tz = $("tz").value;
  $("from").value = day(tz, -(days - 1));
  $("to").value = day(tz);
}

startLang();
$("lang").addEventListener("click", () => setLang(getLang() === "zh" ? "en" : "zh"));
onLangChange(() => {
  say(said.key, said.params, said.kind);
  if (shown !== undefined) draw(shown);
});
$("tz").value = params.get("tz") ?? "Asia/Shanghai";
if (params.get("from") && params.get("to")) {
  $("from").value = params.get("from");
  $("to").value = params.get("to");
} else {
  setRange(7);
}
if (agent) $("back").href = `/?userid=${encodeURIComponent(agent)}`;
$("range").addEventListener("submit", (e) => {
  e.preventDefault();
  show();
});
$("last7").addEventListener("click", () => (setRange(7), show()));
$("last30").addEventListener("click", () => (setRange(30), show()));
for (const b of document.querySelectorAll("button.csv")) b.addEventListener("click", () => csv(b.dataset.table));
addEventListener("resize", () => {
  for (const u of charts) u.setSize({ width: Math.max(320, u.root.parentElement.clientWidth - 4), height: 220 });
});
show();
