// One message as the agent sees it: a bubble (text, media, location, extra fields, status), a WeChat event as a
// line, a workflow line (transfer, resolve, reopen) in the agent's language; and the day separators.

import { button, el, isWebUrl, link } from "./dom.js";
import { getLang, t } from "./i18n.js";
import { dayLabel, hoursMinutes, timeElement } from "./time.js";
import { renderMedia } from "./media.js";
import { systemLineText } from "./contacts.js";
import { eventLine } from "./events.js";
import { displayName, state } from "./state.js";

function renderExtra(fields) {
  const dl = el("dl", "msg-extra");
  for (const [key, value] of fields) {
    const dd = el("dd");
    if (isWebUrl(value)) dd.append(link(value));
    else dd.textContent = value;
    dl.append(el("dt", "", key), dd);
  }
  return dl;
}

// Coordinates as WeChat sends them: a decimal number, nothing else (they go into a map link).
function isCoordinate(s) {
  return /^-?\d{1,3}(\.\d+)?$/.test(s);
}

// A location as one line: its label, its coordinates and a map link (高德地图 reads WeChat's GCJ-02 coordinates).
function renderLocation(loc) {
  const line = el("div", "msg-location");
  line.dataset.testid = "location";
  line.append(el("span", "location-label", loc.label || t("msg.location")));
  if (isCoordinate(loc.latitude) && isCoordinate(loc.longitude)) {
    line.append(el("span", "coords", ` · ${loc.latitude}, ${loc.longitude} `));
    line.append(link(
      `https://uri.amap.com/marker?position=${loc.longitude},${loc.latitude}&name=${encodeURIComponent(loc.label)}`,
      t("msg.map"),
    ));
  }
  return line;
}

function clockOf(m) {
  return timeElement(m.time, m.time > 0 ? hoursMinutes(new Date(m.time * 1000)) : "");
}

// A WeChat event (follow, menu click, scan…): a line of the conversation, not a bubble, in the agent's language.
function renderEvent(m) {
  const div = el("div", "msg event");
  div.dataset.testid = "event";
  div.dataset.id = m.id;
  const c = state.contacts.get(state.selected);
  // `who`: the user as a view other than the desk names them (the supervisor's team view).
  const who = m.who ?? (c ? displayName(c) : t("event.someone"));
  div.append(clockOf(m), el("span", "msg-text", eventLine(m, who)));
  return div;
}

// A workflow line: who transferred, resolved or reopened the conversation, with the note.
function renderSystemLine(m) {
  const div = el("div", "msg system-line");
  div.dataset.testid = "system-line";
  div.dataset.id = m.id;
  if (m.workflow?.action) div.dataset.action = m.workflow.action;
  div.append(clockOf(m), el("span", "msg-text", systemLineText(m)));
  return div;
}

// An internal note (内部备注, issue 22): yellow, said to be the team's only, with its author.
function renderNote(m) {
  const div = el("div", "msg note");
  div.dataset.testid = "note";
  div.dataset.id = m.id;
  div.dataset.direction = "note";
  const head = el("div", "msg-head");
  head.append(el("span", "note-label", t("note.label")), el("span", "note-author", t("note.by", { agent: m.author })));
  head.append(clockOf(m));
  div.append(head, el("div", "msg-text", m.content));
  return div;
}

export function renderMessage(m) {
  if (m.direction === "system") return renderSystemLine(m);
  if (m.direction === "note") return renderNote(m);
  if (m.event) return renderEvent(m);
  const div = el("div", `msg ${m.direction}`);
  div.dataset.testid = "message";
  div.dataset.id = m.id;
  div.dataset.direction = m.direction;
  if (m.found) div.classList.add("found");
  if (m.status) div.dataset.status = m.status;
  const head = el("div", "msg-head");
  // Sent by kefu itself (welcome, closed reply, please-wait, auto-resolve), not by an agent.
  if (m.automatic) {
    div.classList.add("automatic");
    div.dataset.automatic = m.automatic;
    head.append(el("span", "badge automatic", t("msg.automatic")));
  }
  // 图片, 语音, 位置…; a type the page does not know keeps its name.
  if (m.type !== "text") head.append(el("span", "badge", t(`badge.${m.type}`, {}, m.type)));
  head.append(clockOf(m));
  if (m.status) head.append(el("span", `msg-status ${m.status}`, t(`status.msg.${m.status}`, {}, m.status)));
  div.append(head);
  if (m.location) div.append(renderLocation(m.location));
  else if (m.content !== "") div.append(el("div", "msg-text", m.content));
  // Rendered once per message: drawing the conversation again keeps a playing voice note playing.
  // A file's words (its failure, Retry) follow the language, unless it is playing.
  if (m.mediaNode && m.mediaLang !== getLang() && !playing(m.mediaNode)) m.mediaNode = undefined;
  if (m.media !== "" || m.mediaError) {
    if (m.mediaNode === undefined) {
      m.mediaNode = renderMedia(m);
      m.mediaLang = getLang();
    }
    div.append(m.mediaNode);
  }
  if (m.extra?.length) div.append(renderExtra(m.extra));
  if (m.status === "failed") div.append(failureLine(m));
  else if (m.status === "unconfirmed") div.append(el("div", "msg-error", t("reply.unconfirmedDetail")));
  return div;
}

// A failed reply says in the agent's words what happened and what to do (the server's detail, English and with
// ids, only in the tooltip), and offers 重发: the same reply again as a new message, at the end of the conversation.
function failureLine(m) {
  const line = el("div", "msg-error");
  line.dataset.testid = "failure";
  const why = el("span", "failure-text", t(m.failure || "fail.generic"));
  if (m.detail) why.title = m.detail;
  line.append(why);
  if (!m.resent && m.direction === "out") {
    const again = button(t("fail.resend"), "resend secondary small", "resend");
    again.title = t("fail.resendTitle");
    line.append(again);
  }
  return line;
}

function playing(node) {
  return [...node.querySelectorAll("audio, video")].some((p) => !p.paused);
}

export function daySeparator(seconds) {
  const div = el("div", "day", dayLabel(seconds));
  div.dataset.testid = "day";
  div.setAttribute("role", "separator");
  return div;
}
