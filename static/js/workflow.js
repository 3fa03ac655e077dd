// The workflow of issue 14: a contact's details (display name and note, editable), transfer to another agent with a
// note, resolve and reopen, the queue of users waiting for an agent (take), search, and the live contact events
// (code 106) that keep every open tab's list right.

import { applyServerContact, displayName, ensureContact, saveDraft, state } from "./state.js";
import { $, button, el, text, toast } from "./dom.js";
import { t } from "./i18n.js";
import { agoElement } from "./time.js";
import { api, SignedOut } from "./api.js";
import { summaryMessage } from "./frames.js";
import { channelLabel, contactChanged, previewOf, select, workflowSummaryText } from "./contacts.js";
import { appendMessage, loadHistory, renderConversation, renderHeader, showFrom } from "./conversation.js";
import { updateReplyControls } from "./composer.js";
import { attendQueue } from "./attention.js";
import { contactLabel } from "./labels.js";
import { byPlace, queuePlace, refreshLoad } from "./availability.js";

function failed(what) {
  return (e) => {
    if (!(e instanceof SignedOut)) toast(t(what, { reason: e.message }));
  };
}

/**
 * The answer of an action (POST/PATCH), adopted unless a contact event for it came on the socket meanwhile: the
 * event is as new or newer (the user may have written and reopened the conversation since the answer was made).
 */
async function act(id, request) {
  const before = eventsOf(id);
  const s = await request;
  return eventsOf(id) === before ? adopt(s) : state.contacts.get(id);
}

/** Contact events (106) applied per contact id. */
const eventCount = new Map();
function eventsOf(id) {
  return eventCount.get(id) ?? 0;
}

/** Contact events (106) applied so far, and the number of the last one per contact id. */
let eventSeq = 0;
const lastEvent = new Map();

/** A mark to compare with {@link eventAfter}: the contact events applied until now. */
export function eventMark() {
  return eventSeq;
}

/** A contact event for `id` came after `mark`: a list fetched before it says less than the page knows. */
export function eventAfter(id, mark) {
  return (lastEvent.get(id) ?? 0) > mark;
}

/** The contact the server answered with, into the page; removed when it is no longer this agent's. */
function adopt(s) {
  const id = text(s.contact_id);
  if (s.agent_id !== undefined && text(s.agent_id) !== state.agent) {
    dropContact(id);
    return undefined;
  }
  const c = applyServerContact(ensureContact(id, text(s.name)), s);
  if (s.last_message && c.messages.length === 0) c.preview = summaryMessage(s.last_message);
  contactChanged(c);
  if (state.selected === id) renderHeader();
  return c;
}

function dropContact(id) {
  const c = state.contacts.get(id);
  if (!c) return;
  state.contacts.delete(id);
  // Another agent's now (or the queue's): an unsent reply to it has no use.
  saveDraft(c, "");
  contactChanged(c);
  if (state.selected === id) {
    state.selected = "";
    $("reply-text").value = "";
    closeDetails();
    renderConversation("bottom");
  }
}

// --- header buttons ---

/** The conversation header's actions, for the open contact. */
export function renderWorkflowControls(c) {
  $("conv-actions").hidden = !c;
  if (!c) return;
  $("resolve").hidden = c.status === "resolved";
  $("reopen").hidden = c.status !== "resolved";
  if (!$("details").hidden) fillDetails(c);
}

async function resolve(reopen) {
  const id = state.selected;
  if (!id) return;
  const b = $(reopen ? "reopen" : "resolve");
  b.disabled = true;
  try {
    await act(id, reopen ? api.reopen(id) : api.resolve(id));
  } catch (e) {
    failed(reopen ? "workflow.cannotReopen" : "workflow.cannotResolve")(e);
  } finally {
    b.disabled = false;
  }
}

// --- details side panel ---

function fillDetails(c) {
  $("details-id").textContent = c.id;
  // A user WeChat gave no nickname is named by the id: not a nickname, and said once, as the id.
  const named = c.name !== "" && c.name !== c.id;
  $("details-name").textContent = named ? c.name : "";
  $("details-name").hidden = !named;
  $("details-name-label").hidden = !named;
  $("details-channel").textContent = c.channel ? channelLabel(c.channel) : "";
  $("details-account").textContent = c.account;
  $("details-status").textContent = t(c.status === "resolved" ? "contact.resolved" : "contact.open");
  // An agent typing is not interrupted by a live update.
  const form = $("details-form");
  if (!form.contains(document.activeElement)) {
    $("details-display-name").value = c.displayName;
    $("details-note").value = c.note;
  }
}

function openDetails() {
  const c = state.contacts.get(state.selected);
  if (!c) return;
  $("details").hidden = false;
  fillDetails(c);
  $("details-display-name").focus();
}

function closeDetails() {
  $("details").hidden = true;
}

async function saveDetails() {
  const c = state.contacts.get(state.selected);
  if (!c) return;
  const fields = { display_name: $("details-display-name").value.trim(), note: $("details-note").value.trim() };
  $("details-save").disabled = true;
  try {
    await act(c.id, api.patch(c.id, fields));
    $("details-saved").hidden = false;
    setTimeout(() => $("details-saved").hidden = true, 2000);
  } catch (e) {
    failed("workflow.cannotSave")(e);
  } finally {
    $("details-save").disabled = false;
  }
}

// --- transfer ---

async function openTransfer() {
  const c = state.contacts.get(state.selected);
  if (!c) return;
  const dialog = $("transfer-dialog");
  $("transfer-title").textContent = t("transfer.titleWho", { name: displayName(c) });
  $("transfer-note").value = "";
  const list = $("transfer-agents");
  list.replaceChildren(el("option", "", t("transfer.loading")));
  list.size = 1;
  list.disabled = true;
  transferChoice();
  if (!dialog.open) dialog.showModal();
  try {
    // Online first (as the server lists them otherwise): who can take the user now.
    const agents = (await api.agents())
      .filter((a) => text(a.agent_id) !== state.agent)
      .sort((a, b) => Number(Boolean(b.online)) - Number(Boolean(a.online)));
    list.replaceChildren(...agents.map((a) => {
      const o = el("option", "", transferLabel(a));
      o.value = text(a.agent_id);
      o.dataset.online = String(Boolean(a.online));
      return o;
    }));
    if (agents.length === 0) list.replaceChildren(el("option", "", t("transfer.none")));
    // As tall as the agents (a short list is not a tall empty box: one colleague is one line), a scroll beyond 6.
    list.size = Math.min(6, Math.max(1, agents.length));
    list.disabled = agents.length === 0;
    // The first online colleague is chosen; with none online, the agent chooses (or cancels).
    const first = agents.find((a) => a.online);
    list.value = first ? text(first.agent_id) : "";
    if (!first) list.selectedIndex = -1;
  } catch (e) {
    list.replaceChildren(el("option", "", t("transfer.none")));
    list.disabled = true;
    failed("workflow.cannotLoadAgents")(e);
  }
  transferChoice();
}

/** "客服 2 · 在线 · 2 个会话" */
function transferLabel(a) {
  const n = Number(a.contacts) || 0;
  return t("transfer.agent", {
    id: text(a.agent_id),
    // Online but 忙碌 or 离开 says so (issue 22): a transfer still reaches them, the queue does not.
    state: t(
      !a.online
        ? "transfer.offline"
        : a.availability === "busy" || a.availability === "away"
        ? `availability.${a.availability}`
        : "transfer.online",
    ),
    n,
    s: n === 1 ? "" : "s",
  });
}

/** 转接 is for a chosen agent: disabled, with a hint, while none is. */
function transferChoice() {
  const list = $("transfer-agents");
  const chosen = !list.disabled && list.value !== "";
  $("transfer-ok").disabled = !chosen;
  // Loading, or no one to transfer to (the list says so): no hint.
  $("transfer-hint").hidden = chosen || list.disabled;
}

async function transfer() {
  const id = state.selected;
  const to = $("transfer-agents").value;
  if (!id || !to) return;
  $("transfer-ok").disabled = true;
  try {
    await act(id, api.transfer(id, to, $("transfer-note").value.trim()));
    $("transfer-dialog").close();
    toast(t("transfer.done", { to }), "info");
  } catch (e) {
    failed("workflow.cannotTransfer")(e);
  } finally {
    transferChoice();
  }
}

// --- back to the queue ---

function openRelease() {
  const c = state.contacts.get(state.selected);
  if (!c) return;
  $("release-title").textContent = t("release.titleWho", { name: displayName(c) });
  $("release-note").value = "";
  $("release-ok").disabled = false;
  const dialog = $("release-dialog");
  if (!dialog.open) dialog.showModal();
  $("release-note").focus();
}

async function release() {
  const id = state.selected;
  if (!id) return;
  $("release-ok").disabled = true;
  try {
    await act(id, api.release(id, $("release-note").value.trim()));
    // The answer, or the "queued" event before it, took the contact off this agent's list.
    dropContact(id);
    $("release-dialog").close();
    toast(t("release.done"), "info");
  } catch (e) {
    failed("workflow.cannotRelease")(e);
  } finally {
    $("release-ok").disabled = false;
  }
}

// --- the queue ---

/** A user waiting in the queue, by contact id. */
function queued(id) {
  return state.queue.find((q) => text(q.contact_id) === id);
}

function unqueue(id) {
  state.queue = state.queue.filter((q) => text(q.contact_id) !== id);
}

async function take(s, b) {
  const id = text(s.contact_id);
  b.disabled = true;
  try {
    const c = await act(id, api.take(id));
    unqueue(id);
    renderQueue();
    if (c) select(c.id);
  } catch (e) {
    if (e.status === 409) {
      // Another agent was first: said plainly, and the user leaves the list at once (the event may still come).
      toast(t("queue.takenAlready", { name: queueName(s) }), "info");
      unqueue(id);
      renderQueue();
    } else {
      failed("queue.cannotTake")(e);
      b.disabled = false;
    }
    loadQueue();
  }
}

/** A contact as the server lists it (the queue, a search hit), named as the contact list names it. */
export function queueName(s) {
  return contactLabel({
    id: text(s.contact_id),
    name: text(s.name),
    displayName: text(s.display_name),
    channel: text(s.channel),
  });
}

export async function loadQueue() {
  try {
    state.queue = await api.queue();
  } catch (e) {
    // A server without a queue (404) has nothing waiting; other failures are said once.
    if (e.status !== 404) failed("queue.cannotLoad")(e);
    state.queue = [];
  }
  renderQueue();
}

let reloading;

// The queue read again once a burst of events is over (many users arriving at once: one request, not one each).
function reloadQueue() {
  if (reloading !== undefined) return;
  reloading = setTimeout(() => {
    reloading = undefined;
    loadQueue();
  }, 250);
}

/** The users waiting for an agent, longest-waiting first, each with its place and waiting time (issue 22). */
export function renderQueue() {
  const list = $("queue");
  $("queue-section").hidden = state.queue.length === 0;
  $("queue-count").textContent = String(state.queue.length);
  list.replaceChildren(
    ...byPlace(state.queue).map((s) => {
      const li = el("li", "queue-item");
      li.dataset.contactId = text(s.contact_id);
      li.dataset.testid = "queued";
      const who = el("div", "queue-who");
      who.append(el("span", "contact-name", queueName(s)));
      if (s.channel) who.append(el("span", "channel-tag", channelLabel(text(s.channel))));
      const b = button(t("queue.take"), "take", "take");
      b.addEventListener("click", () => take(s, b));
      li.append(who);
      // Why the user waits (put back by an agent, with the note), then what the user last said, and since when.
      const why = s.last_event && typeof s.last_event === "object" ? s.last_event : null;
      if (why) {
        li.classList.add("has-why");
        const reason = el("div", "queue-why", workflowSummaryText(why));
        reason.dataset.testid = "queue-why";
        reason.title = reason.textContent;
        li.append(reason);
      }
      const lastMessage = s.last_message ? summaryMessage(s.last_message) : null;
      const last = lastMessage && lastMessage.direction !== "system" ? previewOf(lastMessage, queueName(s)) : "";
      const at = lastMessage?.time || Number(s.last_message_time) || 0;
      const line = el("div", "queue-last");
      line.dataset.testid = "queue-last";
      if (last) line.append(last);
      if (last && at > 0) line.append(" · ");
      if (at > 0) line.append(agoElement(at));
      line.title = last;
      li.append(line, b);
      // Its place in the queue and how long it has waited (issue 22).
      queuePlace(s, li);
      return li;
    }),
  );
}

// --- search ---

let searchTimer = 0;
let searchSeq = 0;

function onSearchInput() {
  clearTimeout(searchTimer);
  const q = $("search").value.trim();
  if (q === "") {
    closeSearch();
    return;
  }
  // Typing is not a request per key: the search waits for a pause.
  searchTimer = setTimeout(() => runSearch(q), 250);
}

async function runSearch(q) {
  const seq = ++searchSeq;
  try {
    const data = await api.search(q);
    if (seq !== searchSeq) return;
    renderSearch(data);
  } catch (e) {
    if (seq === searchSeq) failed("search.failed")(e);
  }
}

function closeSearch() {
  searchSeq++;
  $("search-results").hidden = true;
  $("search-results").replaceChildren();
}

function renderSearch(data) {
  const box = $("search-results");
  box.hidden = false;
  const items = [];
  const contacts = data.contacts ?? [];
  const messages = data.messages ?? [];
  const q = text(data.q);
  if (contacts.length === 0 && messages.length === 0) items.push(el("p", "hint", t("search.none", { q: data.q })));
  if (contacts.length > 0) items.push(el("h3", "", t("search.contacts")));
  for (const s of contacts) {
    const b = button("", "search-hit", "search-contact");
    b.dataset.contactId = text(s.contact_id);
    b.append(marked("contact-name", queueName(s), q));
    if (s.note) b.append(marked("hit-note", text(s.note), q));
    b.addEventListener("click", () => openFromSearch(s));
    items.push(b);
  }
  if (messages.length > 0) items.push(el("h3", "", t("search.messages")));
  for (const m of messages) {
    const b = button("", "search-hit", "search-message");
    b.dataset.contactId = text(m.contact_id);
    b.dataset.id = text(m.id);
    const c = state.contacts.get(text(m.contact_id));
    // A workflow line is worded in the agent's language from what happened, not the server's English.
    const line = m.event && typeof m.event === "object"
      ? workflowSummaryText(m)
      : text(m.content) || typeLabel(text(m.msg_type));
    const time = agoElement(Number(m.send_time) || 0);
    time.classList.add("hit-time");
    b.append(el("span", "contact-name", c ? displayName(c) : text(m.contact_id)), marked("hit-text", line, q), time);
    b.addEventListener("click", () => openFromSearch({ contact_id: m.contact_id }, text(m.id)));
    items.push(b);
  }
  box.replaceChildren(...items);
}

function typeLabel(type) {
  return t(`type.${type}`, {}, `[${type}]`);
}

// Where a hit is cut before this many characters, the line starts a little before the match ("…" first).
const HIT_LEAD = 12;

/**
 * A <span class=`className`> with `value` as text nodes and each occurrence of `q` (any case) in a <mark>: built
 * from nodes, never markup, as `value` is a user's text.
 */
export function marked(className, value, q) {
  const span = el("span", className);
  const lower = value.toLowerCase();
  const needle = q.toLowerCase();
  // Lower-casing that changes a string's length (a few Unicode letters) would shift the offsets: exact case then.
  const exact = lower.length !== value.length || needle.length !== q.length;
  const hay = exact ? value : lower;
  const find = exact ? q : needle;
  let at = find === "" ? -1 : hay.indexOf(find);
  let from = 0;
  // A match far into a long line would be under the ellipsis: the line starts shortly before it.
  if (at > HIT_LEAD * 2 && className === "hit-text") {
    from = at - HIT_LEAD;
    span.append("…");
  }
  while (at >= 0) {
    if (at > from) span.append(value.slice(from, at));
    span.append(el("mark", "", value.slice(at, at + find.length)));
    from = at + find.length;
    at = hay.indexOf(find, from);
  }
  if (from < value.length) span.append(value.slice(from));
  span.title = value;
  return span;
}

// A hit opens its conversation; a message hit is scrolled to and marked once the history has it.
async function openFromSearch(s, messageId = "") {
  const id = text(s.contact_id);
  if (!state.contacts.has(id)) adopt(s.agent_id !== undefined ? s : await api.contact(id).catch(() => s));
  if (!state.contacts.has(id)) return;
  closeSearch();
  $("search").value = "";
  select(id);
  if (messageId) await revealMessage(id, messageId);
}

async function revealMessage(contactId, messageId) {
  const c = state.contacts.get(contactId);
  // Page back through the history until the message is in memory (or there is no more).
  for (let i = 0; i < 50; i++) {
    if (c.messages.some((m) => m.id === messageId)) break;
    if (c.history === "done") return;
    if (c.history === "loading") {
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    await loadHistory(c);
  }
  const m = c.messages.find((x) => x.id === messageId);
  if (!m) return;
  if (!m.node?.isConnected) showFrom(c, m);
  // Marked on the message, not its node: the conversation may be drawn again meanwhile (its history arriving).
  m.found = true;
  m.node?.classList.add("found");
  m.node?.scrollIntoView({ block: "center" });
  setTimeout(() => {
    m.found = false;
    m.node?.classList.remove("found");
  }, 3000);
}

// --- the live contact events (code 106) ---

/** `{action, contact, by, from_agent_id, to_agent_id, note}`: applied to the list of this tab. */
export function applyContactEvent(data) {
  const s = data.contact;
  if (!s || typeof s !== "object") return;
  const id = text(s.contact_id);
  const action = text(data.action);
  eventCount.set(id, eventsOf(id) + 1);
  lastEvent.set(id, ++eventSeq);
  if (action === "queued") {
    // Released (by this agent in another tab, or by a colleague): waiting, newest first, and no one's contact.
    unqueue(id);
    state.queue.unshift(s);
    renderQueue();
    dropContact(id);
    attendQueue(s, text(data.by));
    // Its place among those waiting comes with the list (issue 22).
    reloadQueue();
    return;
  }
  if (action === "taken" || action === "assigned") {
    if (queued(id)) {
      unqueue(id);
      renderQueue();
    }
    // The places of those still waiting moved up (issue 22).
    reloadQueue();
  }
  // My open conversations against my capacity follow (issue 22).
  if (["transferred", "resolved", "reopened", "taken", "assigned"].includes(action)) refreshLoad();
  const had = state.contacts.has(id);
  const c = adopt(s);
  // The line in the conversation, as the history will have it (transfer, resolve, reopen).
  if (c && ["transferred", "resolved", "reopened", "taken", "assigned"].includes(action)) {
    const line = {
      id: `live:${action}:${Date.now()}`,
      direction: "system",
      type: "system",
      workflow: {
        action,
        by: data.by,
        from_agent_id: data.from_agent_id,
        to_agent_id: data.to_agent_id,
        note: data.note,
      },
      content: "",
      media: "",
      time: Math.floor(Date.now() / 1000),
    };
    // A conversation whose history is not loaded yet gets the line with it (the store has it).
    if (had && c.history !== "") {
      c.messages.push(line);
      appendMessage(c, line);
    }
  }
  updateReplyControls();
}

export function wireWorkflow() {
  $("resolve").addEventListener("click", () => resolve(false));
  $("reopen").addEventListener("click", () => resolve(true));
  $("open-details").addEventListener("click", () => ($("details").hidden ? openDetails() : closeDetails()));
  $("details-close").addEventListener("click", closeDetails);
  $("details-form").addEventListener("submit", (e) => {
    e.preventDefault();
    saveDetails();
  });
  $("open-transfer").addEventListener("click", openTransfer);
  $("transfer-form").addEventListener("submit", (e) => {
    e.preventDefault();
    transfer();
  });
  $("transfer-cancel").addEventListener("click", () => $("transfer-dialog").close());
  $("transfer-agents").addEventListener("change", transferChoice);
  $("search").addEventListener("input", onSearchInput);
  $("search").addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      $("search").value = "";
      closeSearch();
    }
  });
  $("queue-refresh").addEventListener("click", loadQueue);
  $("open-release").addEventListener("click", openRelease);
  $("release-form").addEventListener("submit", (e) => {
    e.preventDefault();
    release();
  });
  $("release-cancel").addEventListener("click", () => $("release-dialog").close());
}
