// The open conversation: a window of its newest messages (WINDOW at most at first; "load earlier" shows more, then
// pages back through the store's history), day separators, a new message appended alone, and no scroll jump while
// the agent reads further up (the 新消息 ↓ marker instead).

import { HISTORY_PATH } from "./protocol.js";
import { displayName, state } from "./state.js";
import { $, button, el, text, toast } from "./dom.js";
import { t } from "./i18n.js";
import { dayOf } from "./time.js";
import { agentFetch, agentUrl, SignedOut } from "./api.js";
import { acknowledgeShown, storedMessage } from "./frames.js";
import { channelLabel, contactChanged } from "./contacts.js";
import { daySeparator, renderMessage } from "./message_view.js";
import { updateReplyControls } from "./composer.js";
import { renderWindowLine } from "./reply_window.js";
import { renderWorkflowControls } from "./workflow.js";
import { renderSupervisor } from "./supervisor.js";
import { afterWrites } from "./batch.js";

/** Messages drawn when a conversation opens; "load earlier" adds PAGE more. */
export const WINDOW = 200;
const PAGE = 100;
/** The history's first page: enough to fill the window's start without a second request. */
const HISTORY_PAGE = 100;

/** What the conversation box shows: whose, from which message on, the last drawn day. */
const drawn = { contact: "", first: null, count: 0, day: "" };

function dayKey(m) {
  return m.time > 0 ? dayOf(new Date(m.time * 1000)) : "";
}

function olderButton(c) {
  const b = button(t("conv.loadEarlier"), "load-older", "load-older");
  b.addEventListener("click", () => showEarlier(c));
  return b;
}

/** Show PAGE more of what is in memory, else page back through the history. */
function showEarlier(c) {
  const i = c.messages.indexOf(drawn.first);
  if (i > 0) {
    drawn.first = c.messages[Math.max(0, i - PAGE)];
    renderConversation("older");
  } else if (c.history === "more") {
    loadHistory(c, true);
  }
}

// The whole window. Where it scrolls to (`how`): "bottom" (another contact, the agent's own reply) to the end;
// "append" (a new message) to the end if the agent was there, else where the agent reads, with the "new messages"
// marker; "older" (messages above) keeps what is on screen in place; "keep" (a status changed) stays.
export function renderConversation(how = "keep") {
  const box = $("conversation");
  const c = state.contacts.get(state.selected);
  const id = c ? c.id : "";
  const other = box.dataset.contactId !== id;
  const atBottom = state.atBottom;
  const atEnd = other || how === "bottom" || atBottom;
  // Where the agent reads, read (a layout) only when the window is to stay there.
  const { scrollTop, scrollHeight } = atEnd ? { scrollTop: 0, scrollHeight: 0 } : box;
  box.dataset.contactId = id;
  renderHeader();
  const frag = document.createDocumentFragment();
  drawn.contact = id;
  drawn.count = 0;
  drawn.day = "";
  if (c) {
    let from = other || how === "bottom" ? -1 : c.messages.indexOf(drawn.first);
    if (from < 0) from = Math.max(0, c.messages.length - WINDOW);
    drawn.first = c.messages[from] ?? null;
    if (from > 0 || c.history === "more") frag.append(olderButton(c));
    for (let i = from; i < c.messages.length; i++) drawMessage(frag, c.messages[i]);
  } else {
    drawn.first = null;
  }
  box.replaceChildren(frag);
  if (atEnd) {
    endSoon();
  } else if (how === "older") {
    box.scrollTop = box.scrollHeight - (scrollHeight - scrollTop);
  } else {
    box.scrollTop = scrollTop;
    if (how === "append") $("new-below").hidden = false;
  }
  updateReplyControls();
  if (c) acknowledgeShown(c);
}

function drawMessage(parent, m) {
  const day = dayKey(m);
  if (day !== "" && day !== drawn.day) parent.append(daySeparator(m.time));
  if (day !== "") drawn.day = day;
  const node = renderMessage(m);
  m.node = node;
  parent.append(node);
  drawn.count++;
}

/** A message added to `c`: appended alone when it is the newest, the window redrawn otherwise. */
export function appendMessage(c, m) {
  if (state.selected !== c.id) return;
  const box = $("conversation");
  const last = c.messages.at(-1) === m;
  const prev = c.messages.at(-2);
  // Out of order (an older time than the one before), or a window grown large while the agent is at the end.
  if (!last || drawn.contact !== c.id || (prev && prev.time > m.time) || (state.atBottom && drawn.count > 2 * WINDOW)) {
    renderConversation(m.direction === "out" ? "bottom" : "append");
    return;
  }
  drawMessage(box, m);
  if (m.direction === "out" || state.atBottom) {
    endSoon();
  } else {
    $("new-below").hidden = false;
  }
  updateReplyControls();
  acknowledgeShown(c);
}

/**
 * The conversation goes to its end once this task's DOM writes are done (the contact's row, the filters' numbers):
 * the browser lays the page out once for them all, not once for the message and again for the list.
 */
function endSoon() {
  state.atBottom = true;
  $("new-below").hidden = true;
  afterWrites("conversation-end", () => {
    const box = $("conversation");
    box.scrollTop = box.scrollHeight;
  });
}

/** A message's status or file changed: its node alone is drawn again. */
export function messageChanged(c, m) {
  if (state.selected !== c.id) return;
  if (m.node?.isConnected) {
    const node = renderMessage(m);
    m.node.replaceWith(node);
    m.node = node;
  } else {
    renderConversation("keep");
  }
  updateReplyControls();
  acknowledgeShown(c);
}

/** The header above the conversation: name, id, channel and account, status, reply window, actions. */
export function renderHeader() {
  const c = state.contacts.get(state.selected);
  $("conv-title").textContent = c ? displayName(c) : t("conv.select");
  const meta = $("conv-meta");
  meta.replaceChildren();
  if (c) {
    const parts = [c.id];
    if (c.channel) parts.push(channelLabel(c.channel));
    if (c.account) parts.push(c.account);
    meta.append(el("span", "conv-id", parts.join(" · ")));
    if (c.status === "resolved") meta.append(el("span", "status-tag", t("contact.resolved")));
    if (c.note) {
      const note = el("span", "conv-note", c.note);
      note.dataset.testid = "conv-note";
      meta.append(note);
    }
  }
  renderWindowLine(c);
  renderWorkflowControls(c);
  renderSupervisor(c);
}

/** Draw the window from a little before `m` (a search hit older than the window). */
export function showFrom(c, m) {
  if (state.selected !== c.id) return;
  drawn.first = c.messages[Math.max(0, c.messages.indexOf(m) - 20)];
  state.atBottom = false;
  renderConversation("keep");
}

/**
 * An agent at the end of the conversation stays there when its box gets shorter: the closed-window bar (or any
 * notice) appearing below it would otherwise hide the last bubble half under it.
 */
export function followEnd() {
  const box = $("conversation");
  new ResizeObserver(() => {
    if (state.atBottom) box.scrollTop = box.scrollHeight;
  }).observe(box);
}

/** Take the agent to the end (the marker's click). */
export function toEnd() {
  const box = $("conversation");
  box.scrollTop = box.scrollHeight;
  state.atBottom = true;
  $("new-below").hidden = true;
}

// The past of a conversation from kefu's store (after a reload), older pages on demand. `grow`: the agent asked
// for earlier messages, so the window on screen grows upwards by what came (otherwise it stays the newest).
export async function loadHistory(c, grow = false) {
  if (c.history === "loading" || c.history === "done") return;
  // The first page is the newest (it may hold messages read before a reload); later pages go back from there.
  const oldest = c.oldestStored;
  c.history = "loading";
  const firstShown = state.selected === c.id ? drawn.first : null;
  try {
    const body = await agentFetch(agentUrl(HISTORY_PATH, { contact_id: c.id, limit: HISTORY_PAGE, before: oldest }));
    const page = body.data.messages ?? [];
    const older = [];
    for (const d of page.toReversed()) {
      const id = text(d.id);
      if (id !== "" && c.seen.has(id)) continue;
      if (id !== "") c.seen.add(id);
      older.push(storedMessage(d));
    }
    if (page.length > 0) c.oldestStored = text(page.at(-1).id);
    // A workflow line drawn live (a 106 event) is in the store too: the stored one stays, once.
    const stored = older.filter((m) => m.direction === "system" && m.workflow);
    if (stored.length > 0) {
      c.messages = c.messages.filter((m) =>
        !m.id.startsWith("live:") ||
        !stored.some((x) => x.workflow.action === m.workflow.action && Math.abs(x.time - m.time) < 120)
      );
    }
    const hadShown = c.messages.length > 0;
    c.messages.unshift(...older);
    // Live messages that came while the page was on its way may be older than some of it.
    if (hadShown) c.messages.sort((a, b) => a.time - b.time);
    c.history = body.data.has_more ? "more" : "done";
    // Paging back: the window grows upwards by what came.
    if (grow && oldest && firstShown && state.selected === c.id) {
      const i = c.messages.indexOf(firstShown);
      drawn.first = c.messages[Math.max(0, i - older.length)];
    } else if (state.selected === c.id && !oldest) {
      // The first page: the window is the newest messages, history and live ones together.
      drawn.first = null;
    }
  } catch (e) {
    c.history = "";
    if (!(e instanceof SignedOut)) toast(t("conv.cannotLoadHistory", { id: c.id, reason: e.message }));
  }
  contactChanged(c);
  if (state.selected === c.id && (grow || !oldest)) renderConversation(oldest ? "older" : "keep");
}
