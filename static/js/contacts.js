// The contact list: loaded from GET …/contacts, kept sorted by last activity, filtered (all/unread/waiting/
// resolved). A change to one contact redraws its row alone and moves it to its place, and the numbers beside the
// filters and in the title are kept per contact that changed: an incoming message costs the same with 10 contacts or
// 1,000. Changes are drawn once, at the end of the task (batch.js).

import { CONTACTS_PATH, HISTORY_PATH } from "./protocol.js";
import {
  applyServerContact,
  awaitingOf,
  displayName,
  ensureContact,
  lastMessageOf,
  lastReplyFailed,
  saveDraft,
  SELECTED_KEY,
  state,
  unreadOf,
} from "./state.js";
import { $, el, text, toast } from "./dom.js";
import { t } from "./i18n.js";
import { agoElement, relativeTime, tickClock } from "./time.js";
import { agentFetch, agentUrl, SignedOut } from "./api.js";
import { acknowledgeShown, storedMessage, summaryMessage } from "./frames.js";
import { loadHistory, renderConversation, renderHeader } from "./conversation.js";
import { updateTitle } from "./attention.js";
import { updateReplyControls } from "./composer.js";
import { soon } from "./batch.js";
import { eventLine } from "./events.js";
import { eventAfter, eventMark } from "./workflow.js";
import { matchesTag, renderTags, tagChips } from "./tags.js";

// Contacts whose last message is not on the page get it from the history, this many requests at a time.
const PREVIEW_LOOKUPS = 4;

/** Contacts, most recent first; each row's <li> is `rows.get(contact)`. */
let order = [];
const rows = new Map();
/** Contacts changed since the last flush; redrawn once per task. */
const dirty = new Set();
let listDirty = false;
/** The filter changed: rows are shown or hidden (not drawn again). */
let filterDirty = false;

/**
 * What the listed contacts add up to, kept as they change (`counted`: what each contact added): unread messages
 * (the title), and contacts under each filter (the numbers beside the buttons).
 */
const tally = { messages: 0, unread: 0, waiting: 0, resolved: 0 };
const counted = new WeakMap();

function count(c) {
  const k = {
    messages: unreadOf(c),
    unread: matchesFilter(c, "unread") ? 1 : 0,
    waiting: matchesFilter(c, "waiting") ? 1 : 0,
    resolved: matchesFilter(c, "resolved") ? 1 : 0,
  };
  for (const key in tally) tally[key] += k[key];
  counted.set(c, k);
}

function uncount(c) {
  const k = counted.get(c);
  if (k === undefined) return;
  for (const key in tally) tally[key] -= k[key];
  counted.delete(c);
}

/** Unread messages of every listed contact (as of the last flush). */
export function unreadTotal() {
  return tally.messages;
}

function before(a, b) {
  return a.sortTime !== b.sortTime ? a.sortTime > b.sortTime : a.id < b.id;
}

// Binary search: the index where `c` goes in `order` (by its sortTime).
function placeOf(c) {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(order[mid], c)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function removeFromOrder(c) {
  if (c.sortTime === undefined) return;
  const i = placeOf(c);
  // Ties share a time; the id orders them, so `i` is exact unless the array is out of date.
  const at = order[i] === c ? i : order.indexOf(c);
  if (at >= 0) order.splice(at, 1);
}

/** A contact's row needs redrawing (and maybe moving): done once, at the end of this task. */
export function contactChanged(c) {
  dirty.add(c);
  soon("contacts", flushContacts);
}

/** Every row is redrawn (a new list, the language). */
export function renderContacts() {
  listDirty = true;
  soon("contacts", flushContacts);
}

/** Redraw now what changed. */
export function flushContacts() {
  const list = $("contacts");
  if (listDirty) {
    listDirty = false;
    filterDirty = false;
    dirty.clear();
    for (const key in tally) tally[key] = 0;
    for (const c of state.contacts.values()) c.sortTime = c.lastTime;
    order = [...state.contacts.values()].sort((a, b) => (before(a, b) ? -1 : 1));
    rows.clear();
    const frag = document.createDocumentFragment();
    for (const c of order) {
      const li = renderRow(c);
      rows.set(c, li);
      frag.append(li);
      count(c);
    }
    list.replaceChildren(frag);
  } else {
    for (const c of dirty) {
      uncount(c);
      const old = rows.get(c);
      if (state.contacts.get(c.id) !== c) {
        // No longer listed (another agent's now, or the page forgot it).
        removeFromOrder(c);
        old?.remove();
        rows.delete(c);
        continue;
      }
      count(c);
      const li = renderRow(c);
      rows.set(c, li);
      if (old === undefined || c.sortTime !== c.lastTime) {
        removeFromOrder(c);
        c.sortTime = c.lastTime;
        const i = placeOf(c);
        order.splice(i, 0, c);
        old?.remove();
        list.insertBefore(li, rows.get(order[i + 1]) ?? null);
      } else {
        old.replaceWith(li);
      }
    }
    dirty.clear();
    if (filterDirty) {
      filterDirty = false;
      for (const c of order) {
        const li = rows.get(c);
        const hidden = !matchesFilter(c) || !matchesTag(c);
        if (li.hidden !== hidden) li.hidden = hidden;
      }
    }
  }
  const shown = state.tagFilter
    ? order.some((c) => matchesFilter(c) && matchesTag(c))
    : state.filter === "all"
    ? order.length > 0
    : tally[state.filter] > 0;
  const empty = $("contacts-empty");
  if (empty.hidden !== shown) empty.hidden = shown;
  setText(empty, state.contacts.size === 0 ? t("contacts.empty") : t("contacts.emptyFilter"));
  updateTitle();
  updateFilterCounts();
  updateReplyControls();
  renderTags();
}

/** Text written only when it changes: the same text written again would still make the browser lay it out. */
function setText(node, value) {
  if (node.textContent !== value) node.textContent = value;
}

/** Whether a contact shows under the current filter. */
export function matchesFilter(c, filter = state.filter) {
  if (filter === "unread") return unreadOf(c) > 0;
  if (filter === "waiting") return awaitingOf(c);
  if (filter === "resolved") return c.status === "resolved";
  return true;
}

function updateFilterCounts() {
  for (const b of document.querySelectorAll("#filters [data-filter]")) {
    const f = b.dataset.filter;
    const pressed = String(f === state.filter);
    if (b.getAttribute("aria-pressed") !== pressed) b.setAttribute("aria-pressed", pressed);
    if (f === "all") continue;
    const n = tally[f];
    // "99+": the four buttons keep to one line whatever the numbers.
    setText(b.querySelector(".count"), n > 99 ? "99+" : n > 0 ? String(n) : "");
  }
}

export function setFilter(filter) {
  state.filter = filter;
  filterDirty = true;
  soon("contacts", flushContacts);
}

// How each channel is named beside a contact: where the user wrote from.
export function channelLabel(channel) {
  return t(`channel.${channel}`, {}, channel);
}

function renderRow(c) {
  const li = el("li", c.id === state.selected ? "contact selected" : "contact");
  li.dataset.contactId = c.id;
  li.dataset.testid = "contact";
  li.dataset.status = c.status;
  li.hidden = !matchesFilter(c) || !matchesTag(c);
  li.title = c.id;
  li.tabIndex = 0;
  const top = el("div", "contact-top");
  top.append(el("span", "contact-name", displayName(c)));
  if (c.status === "resolved") top.append(el("span", "status-tag", t("contact.resolved")));
  if (c.channel) {
    const tag = el("span", "channel-tag", channelLabel(c.channel));
    tag.dataset.channel = c.channel;
    tag.dataset.testid = "channel";
    tag.title = c.account ? `${c.channel} · ${c.account}` : c.channel;
    top.append(tag);
  }
  // The last reply did not go out: said on the row, so the agent sees it without opening the conversation.
  if (lastReplyFailed(c)) {
    const failed = el("span", "reply-failed-tag", t("contact.replyFailed"));
    failed.dataset.testid = "reply-failed";
    failed.title = t("contact.replyFailedTitle");
    top.append(failed);
  }
  const unread = unreadOf(c);
  if (unread > 0) {
    const badge = el("span", "unread", String(unread));
    badge.dataset.testid = "unread";
    badge.title = t("contact.unread", { n: unread });
    top.append(badge);
  }
  li.dataset.time = String(c.lastTime);
  const sub = el("div", "contact-sub");
  const last = lastMessageOf(c);
  // The time of the message shown (as search shows it), not of a later workflow line that moved the row up.
  const time = agoElement(last?.time || c.lastTime);
  const preview = el("span", "contact-preview");
  // An unsent reply shows instead of the last message (as WeChat does), except in the conversation open.
  if (c.draft.trim() !== "" && c.id !== state.selected) {
    preview.append(el("span", "draft-tag", t("contact.draft")), c.draft.replace(/\s+/g, " ").trim());
    preview.dataset.testid = "draft";
  } else {
    preview.textContent = previewOf(last, displayName(c));
  }
  sub.append(preview, time);
  li.append(top, sub);
  const chips = tagChips(c);
  if (chips) li.append(chips);
  return li;
}

/**
 * Relative times ("5分钟前") age: each minute the page's clock moves on and every one on the page (the list, the
 * queue, search results) is computed again from it (no rows rebuilt), so they agree with each other.
 */
export function refreshTimes() {
  tickClock();
  for (const node of document.querySelectorAll("time[data-seconds]")) {
    const label = relativeTime(Number(node.dataset.seconds));
    if (node.textContent !== label) node.textContent = label;
  }
}

const TYPE_LABELS = ["image", "voice", "video", "shortvideo", "location", "link", "miniprogrampage"];

// A contact's last message in one line: "我: " before the agent's own; a WeChat event names the user as `who`.
export function previewOf(m, who = t("event.someone")) {
  if (!m) return "";
  if (m.direction === "system") return systemLineText(m);
  if (m.event) return eventLine(m, who);
  if (m.direction === "out" && m.automatic) return t("contact.automatic", { text: bodyOf(m) });
  return m.direction === "out" ? t("contact.mine", { text: bodyOf(m) }) : bodyOf(m);
}

function bodyOf(m) {
  const label = TYPE_LABELS.includes(m.type) ? t(`type.${m.type}`) : "";
  const body = m.type === "location"
    ? `${label} ${m.location?.label ?? ""}`.trim()
    : m.content || label || `[${m.type}]`;
  return body;
}

/** A workflow line as the server summarises it (`last_event` of a queued user, a search hit) in the agent's words. */
export function workflowSummaryText(s) {
  return systemLineText({
    workflow: s?.event && typeof s.event === "object" ? s.event : null,
    content: text(s?.content),
  });
}

/** A workflow line (transfer, resolve, reopen) in the agent's language, from what happened, not the server's text. */
export function systemLineText(m) {
  const e = m.workflow;
  if (!e || !e.action) return m.content;
  // "你" for this agent, "客服 A " for another (the space before the Chinese that follows is the string's own).
  const who = (id) => id === state.agent ? t("workflow.you") : t("workflow.agent", { id });
  const note = e.note ? t("workflow.note", { note: e.note }) : "";
  const params = { by: who(text(e.by)), from: who(text(e.from_agent_id)), to: who(text(e.to_agent_id)), note };
  if (e.action === "reopened" && !e.by) return t("workflow.reopenedByUser") + note;
  // kefu itself resolved a conversation nobody wrote in (automatic messages' auto-resolve).
  if (e.action === "resolved" && e.by === "kefu") return t("workflow.autoResolved");
  // kefu gave the user to an agent: from the waiting queue, or from an agent who was away (`from`).
  const key = e.action === "assigned" && e.from_agent_id ? "workflow.assignedAway" : `workflow.${e.action}`;
  const line = t(key, params, m.content).trim();
  // "you" starts an English sentence with a capital; an agent's id stays as it is.
  const you = t("workflow.you");
  return (line.startsWith(you) ? you.charAt(0).toUpperCase() + line.slice(1) : line) + note;
}

// Open a contact's conversation; `focus`: the agent chose it (the reply box takes the keyboard).
export function select(id, focus = true) {
  const box = $("reply-text");
  // Each contact keeps its own unsent reply.
  const prev = state.contacts.get(state.selected);
  if (prev) {
    saveDraft(prev, box.value);
    contactChanged(prev);
  }
  state.selected = id;
  state.wantSelected = "";
  sessionStorage.setItem(SELECTED_KEY, `${state.agent}\n${id}`);
  const c = state.contacts.get(id);
  box.value = c ? c.draft : "";
  if (c) {
    markRead(c);
    contactChanged(c);
    if (c.history === "") loadHistory(c);
  }
  renderConversation("bottom");
  if (focus) box.focus();
}

/** The agent can see the page (a hidden tab's open conversation is not being read). */
export function pageVisible() {
  return !document.hidden;
}

/**
 * The open conversation is read: only while the agent can see it. Its unread count goes, and its receipts go out
 * with the next drawing of it (acknowledgeShown).
 */
export function markRead(c) {
  if (!pageVisible() || c.id !== state.selected) return false;
  if (c.unreadIds.size === 0 && c.serverUnread === 0) return false;
  c.unreadIds.clear();
  c.serverUnread = 0;
  contactChanged(c);
  return true;
}

/** The tab came back into view: the conversation left open is read now, and its receipts go. */
export function readOpenConversation() {
  const c = state.contacts.get(state.selected);
  if (!c || !pageVisible()) return;
  markRead(c);
  acknowledgeShown(c);
}

/** Forget every contact (another agent, a sign-out). */
export function resetConversations() {
  state.contacts.clear();
  state.selected = "";
  state.pending = [];
  $("reply-text").value = "";
  renderContacts();
  renderConversation();
}

// `connected`: the first list after the socket opened. Its unread counts are kept beside what the socket sends
// again (the page counts ids, so a message counted twice is not); later lists only add contacts.
export async function loadContacts(agent, connected = false) {
  try {
    const mark = eventMark();
    const body = await agentFetch(agentUrl(CONTACTS_PATH));
    if (agent !== state.agent) return;
    // The open conversation's name may change with what the list says (a channel, a label): its lines name it.
    const open = state.contacts.get(state.selected);
    const openName = open ? displayName(open) : "";
    for (const s of body?.data?.contacts ?? []) {
      const id = text(s.contact_id);
      const known = state.contacts.has(id);
      // A contact event (resolved, transferred…) that came while the list was on its way is newer than the list.
      if (known && eventAfter(id, mark)) continue;
      const c = applyServerContact(ensureContact(id, text(s.name)), s);
      if ((connected || !known) && (id !== state.selected || !pageVisible())) c.serverUnread = Number(s.unread) || 0;
      if (s.last_message && c.messages.length === 0) c.preview = summaryMessage(s.last_message);
    }
    // After a reload: the conversation that was open opens again (or, gone, the next message's does).
    const wanted = state.wantSelected;
    state.wantSelected = "";
    if (state.selected === "" && state.contacts.has(wanted)) select(wanted, false);
    const shown = state.contacts.get(state.selected);
    if (shown && shown.history === "") loadHistory(shown);
    renderContacts();
    renderHeader();
    if (open && state.contacts.get(state.selected) === open && displayName(open) !== openName) {
      renderConversation("keep");
    }
    loadPreviews();
  } catch (e) {
    if (!(e instanceof SignedOut)) toast(t("contacts.cannotLoad", { reason: e.message }));
  }
}

// Contacts with nothing on the page (read before a reload, nothing sent again) show their last message from the
// history, a few requests at a time. A server that lists `last_message` with each contact needs none of this.
let previewLookups = 0;
function loadPreviews() {
  const agent = state.agent;
  for (const c of order.length ? order : state.contacts.values()) {
    if (previewLookups >= PREVIEW_LOOKUPS) return;
    if (c.messages.length > 0 || c.preview || c.previewLoading || c.history !== "") continue;
    c.previewLoading = true;
    previewLookups++;
    agentFetch(agentUrl(HISTORY_PATH, { contact_id: c.id, limit: 1 })).then((body) => {
      const last = body?.data?.messages?.[0];
      if (last && agent === state.agent) c.preview = storedMessage(last);
    }).catch(() => {
      // No preview: the contact is still listed, and its conversation loads when opened.
    }).finally(() => {
      previewLookups--;
      if (agent !== state.agent) return;
      contactChanged(c);
      loadPreviews();
    });
  }
}

// The envelope does not name a contact's channel: a contact first seen live is looked up in the contact list.
let channelLookup = 0;
export function learnChannel(c) {
  if (c.channel !== undefined || channelLookup) return;
  channelLookup = setTimeout(() => {
    channelLookup = 0;
    if (state.agent) loadContacts(state.agent);
  }, 300);
}

/** Clicks and Enter on a row open its conversation (one listener for the whole list). */
export function wireContactList() {
  const list = $("contacts");
  const open = (e) => {
    const li = e.target.closest("[data-contact-id]");
    if (li) select(li.dataset.contactId);
  };
  list.addEventListener("click", open);
  list.addEventListener("keydown", (e) => {
    if (e.key === "Enter") open(e);
  });
  $("filters").addEventListener("click", (e) => {
    const b = e.target.closest("[data-filter]");
    if (b) setFilter(b.dataset.filter);
  });
}
