// The supervisor's view (issue 22): every agent's state (availability, online, open conversations against capacity,
// unread, the user waiting longest) and the queue; every conversation of the team, filterable by agent and by the
// queue, watched live (code 109 on this tab's socket, which asks for it with ?watch=1) and read-only until the
// supervisor takes it over or assigns it. Internal notes (内部备注, code 108): written here and from the desk's
// composer, shown yellow in the conversation, for the team only.

import { CONTACTS_PATH, HISTORY_PATH, TEAM_PATH } from "./protocol.js";
import { state } from "./state.js";
import { $, el, text, toast } from "./dom.js";
import { t } from "./i18n.js";
import { agentFetch, agentUrl, SignedOut } from "./api.js";
import { storedMessage, summaryMessage } from "./frames.js";
import { channelLabel, loadContacts, previewOf, select } from "./contacts.js";
import { appendMessage } from "./conversation.js";
import { daySeparator, renderMessage } from "./message_view.js";
import { contactLabel } from "./labels.js";
import { queuePlace } from "./availability.js";
import { agoElement, dayOf, formatLeft } from "./time.js";

/** What the team view knows: null until GET …/team answered (false: this agent is no supervisor). */
export const team = {
  lead: null,
  agents: [],
  queue: [],
  /** The conversations listed (server contacts), by the filter: "all", "queue" or `agent:<id>`. */
  contacts: [],
  filter: "all",
  /** The conversation watched: its contact id, its items (oldest first) and their ids. */
  open: { id: "", items: [], seen: new Set() },
};

// The view reads the whole team again after a burst of events: at most once in this long (2,000 users cost the
// server about half a second per read, bench/team_bench.ts).
const REFRESH_MS = 1500;
let refreshTimer = 0;

function json(method, body) {
  return { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) };
}

const contactPath = (id, action) => `${CONTACTS_PATH}/${encodeURIComponent(id)}/${action}`;

/** Whether the team view is on screen. */
function shown() {
  return !$("team-view").hidden;
}

/**
 * Once connected: the team's state and conversations, for an agent who leads the team (`leads` as the role said;
 * false: an agent, nothing is asked; undefined: not known, the server's 403 says).
 */
export async function loadTeam(leads) {
  if (leads === false) team.lead = false;
  else await readTeam();
  $("team-toggle").hidden = team.lead !== true;
  if (team.lead !== true && shown()) showTeam(false);
  renderTeam();
}

/** GET the team (and the desk on screen); a 403 says this agent does not lead it. */
async function readTeam() {
  try {
    const body = await agentFetch(agentUrl(TEAM_PATH));
    team.lead = true;
    team.agents = body.data.agents ?? [];
    team.queue = body.data.queue ?? [];
    // The desk on screen: only the role was wanted.
    if (shown()) {
      const query = team.filter === "queue"
        ? { queue: 1 }
        : team.filter.startsWith("agent:")
        ? { agent_id: team.filter.slice(6) }
        : {};
      team.contacts = (await agentFetch(agentUrl(`${TEAM_PATH}/contacts`, query))).data.contacts ?? [];
    }
  } catch (e) {
    if (e instanceof SignedOut) return;
    // 403: an agent, not a supervisor; the view stays away.
    if (e.status === 403) team.lead = false;
    else toast(t("team.cannotLoad", { reason: e.message }));
  }
}

/** Something changed in the team (an event on the socket): the view reads it again, once per burst. */
export function teamChanged() {
  if (team.lead !== true || refreshTimer || !shown()) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = 0;
    loadTeam();
  }, REFRESH_MS);
}

/** A code-109 frame: what happened in any agent's conversation. */
export function applyWatchEvent(data) {
  if (team.lead !== true) return;
  if (data.type === "message" && data.item && typeof data.item === "object") {
    if (text(data.item.contact_id) === team.open.id) addItem(data.item);
  } else if (data.type === "contact" && text(data.contact?.contact_id) === team.open.id) {
    // A transfer, a resolve: the line is in the history; read it again with the new owner.
    openConversation(team.open.id);
  }
  teamChanged();
}

/** A code-108 frame: an internal note in one of my own conversations (the team view hears of it as a 109). */
export function addNote(data) {
  const c = state.contacts.get(text(data.contact_id));
  const id = text(data.id);
  if (!c || id === "" || c.seen.has(id)) return;
  c.seen.add(id);
  const m = storedMessage(data);
  c.messages.push(m);
  appendMessage(c, m);
}

function addItem(item) {
  const id = text(item.id);
  // A user's file still being fetched when the conversation was opened comes again, ready, under its id: in place.
  const fetched = id !== "" && team.open.seen.has(id)
    ? team.open.items.find((x) => x.id === id && x.preparing)
    : undefined;
  if (fetched) {
    const ready = storedMessage(item);
    const old = $("team-conversation").querySelector(`[data-id="${CSS.escape(id)}"]`);
    Object.assign(fetched, ready, { preparing: false, mediaNode: undefined });
    old?.replaceWith(renderMessage(fetched));
    return;
  }
  if (id !== "" && team.open.seen.has(id)) return;
  if (id !== "") team.open.seen.add(id);
  const m = storedMessage(item);
  // A WeChat event's line names the watched user, not whoever is open on the desk.
  const s = openContact();
  if (m.event) m.who = s ? nameOf(s) : text(item.contact_id);
  team.open.items.push(m);
  const box = $("team-conversation");
  const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const prev = team.open.items.at(-2);
  if (!prev || (m.time > 0 && dayOf(new Date(m.time * 1000)) !== dayOf(new Date(prev.time * 1000)))) {
    box.append(daySeparator(m.time));
  }
  box.append(renderMessage(m));
  if (atEnd) box.scrollTop = box.scrollHeight;
}

function showTeam(on) {
  $("team-view").hidden = !on;
  document.querySelector("main.layout").hidden = on;
  renderToggle();
  if (on) loadTeam();
}

function renderToggle() {
  const on = shown();
  $("team-toggle").textContent = on ? t("team.back") : t("team.open");
  $("team-toggle").setAttribute("aria-pressed", String(on));
}

function nameOf(s) {
  return contactLabel({
    id: text(s.contact_id),
    name: text(s.name),
    displayName: text(s.display_name),
    channel: text(s.channel),
  });
}

function waitLine(seconds) {
  return seconds < 60 ? t("queue.waitSeconds", { s: seconds }) : t("queue.waitMinutes", {
    m: Math.floor(seconds / 60),
    s: seconds % 60,
  });
}

/** The whole team view in the current language. */
export function renderTeam() {
  renderToggle();
  if (team.lead !== true) return;
  const rows = team.agents.map((a) => {
    const tr = el("tr");
    tr.dataset.agentId = text(a.agent_id);
    tr.dataset.testid = "team-agent";
    const who = el("td", "team-who");
    who.append(el("span", `dot ${a.online ? "online" : "offline"}`), el("span", "", text(a.agent_id)));
    who.title = a.online ? t("team.online") : t("team.offline");
    const avail = el("td", `team-avail ${text(a.availability)}`, t(`availability.${text(a.availability)}`));
    const load = el("td", "team-load", a.capacity === null ? String(a.open) : `${a.open}/${a.capacity}`);
    const unread = el("td", a.unread > 0 ? "team-unread some" : "team-unread", String(a.unread));
    const oldest = el(
      "td",
      "team-oldest",
      a.oldest_waiting ? formatLeft(a.oldest_waiting.waiting_seconds * 1000) : "—",
    );
    if (a.oldest_waiting) {
      oldest.title = `${a.oldest_waiting.contact_id} · ${waitLine(a.oldest_waiting.waiting_seconds)}`;
    }
    tr.append(who, avail, load, unread, oldest);
    tr.addEventListener("click", () => setFilter(`agent:${text(a.agent_id)}`));
    return tr;
  });
  $("team-agents").tBodies[0].replaceChildren(...rows);
  const oldest = team.queue[0];
  $("team-queue-line").textContent = t("team.queueCount", { n: team.queue.length }) +
    (oldest ? ` · ${waitLine(oldest.waiting_seconds)}` : "");
  const filter = $("team-filter");
  const options = [["all", t("team.all")], ["queue", t("team.queue")]].concat(
    team.agents.map((a) => [`agent:${text(a.agent_id)}`, t("team.ofAgent", { agent: text(a.agent_id) })]),
  );
  filter.replaceChildren(...options.map(([value, label]) => {
    const o = el("option", "", label);
    o.value = value;
    return o;
  }));
  filter.value = team.filter;
  renderContacts();
  renderHead();
}

function renderContacts() {
  const list = $("team-contacts");
  list.replaceChildren(...team.contacts.map((s) => {
    const li = el("li", "contact team-contact");
    const id = text(s.contact_id);
    li.dataset.contactId = id;
    li.dataset.testid = "team-contact";
    li.dataset.agentId = text(s.agent_id);
    if (id === team.open.id) li.classList.add("selected");
    const top = el("div", "contact-top");
    top.append(el("span", "contact-name", nameOf(s)));
    top.append(el("span", "team-owner", text(s.agent_id) || t("team.queue")));
    if (Number(s.unread) > 0) top.append(el("span", "unread", String(s.unread)));
    const last = s.last_message ? summaryMessage(s.last_message) : null;
    const line = el("div", "contact-last");
    // A reply is its agent's, not "我" (the supervisor's): named by who owns the conversation.
    if (last?.direction === "out" && !last.automatic) {
      const said = previewOf({ ...last, direction: "in" });
      line.append(s.agent_id ? t("team.replyBy", { agent: text(s.agent_id), text: said }) : said);
    } else if (last) line.append(previewOf(last, nameOf(s)));
    if (s.channel) line.prepend(el("span", "channel-tag", channelLabel(text(s.channel))), " ");
    const at = Number(s.last_message_time) || 0;
    if (at > 0) line.append(" · ", agoElement(at));
    if (s.awaiting_reply) li.classList.add("awaiting");
    li.append(top, line);
    // The queue's users (筛选 the queue): their place and how long they have waited, as on the desk's queue.
    queuePlace(s, li);
    li.addEventListener("click", () => openConversation(id));
    return li;
  }));
  $("team-empty").hidden = team.contacts.length > 0;
}

function openContact() {
  return team.contacts.find((s) => text(s.contact_id) === team.open.id) ?? null;
}

function renderHead() {
  const s = openContact();
  const id = team.open.id;
  $("team-actions").hidden = id === "";
  $("team-note-form").hidden = id === "";
  $("team-conv-title").textContent = id === "" ? t("team.pick") : s ? nameOf(s) : id;
  const owner = s ? text(s.agent_id) : team.open.owner ?? "";
  $("team-conv-meta").textContent = id === "" ? "" : owner ? t("team.owner", { agent: owner }) : t("team.ownerNone");
  const to = $("team-assign-to");
  const keep = to.value;
  to.replaceChildren(
    ...team.agents.filter((a) => text(a.agent_id) !== owner).map((a) => {
      const o = el("option", "", `${text(a.agent_id)} · ${t(`availability.${text(a.availability)}`)}`);
      o.value = text(a.agent_id);
      return o;
    }),
  );
  if ([...to.options].some((o) => o.value === keep)) to.value = keep;
  $("team-take").disabled = owner === state.agent;
}

function setFilter(filter) {
  team.filter = filter;
  loadTeam();
}

/** Watch one conversation: its history now, its new lines as they come (code 109). */
async function openConversation(id) {
  const again = id === team.open.id;
  team.open = { id, items: again ? team.open.items : [], seen: again ? team.open.seen : new Set(), owner: "" };
  renderContacts();
  renderHead();
  try {
    const body = await agentFetch(agentUrl(HISTORY_PATH, { contact_id: id, limit: 100 }));
    if (team.open.id !== id) return;
    const items = [...(body.data.messages ?? [])].reverse();
    // Lines that came live while the history was on its way are in it (or newer): one of each id.
    team.open.items = [];
    team.open.seen = new Set();
    const box = $("team-conversation");
    box.replaceChildren();
    box.dataset.contactId = id;
    for (const item of items) addItem(item);
    const c = await agentFetch(agentUrl(`${CONTACTS_PATH}/${encodeURIComponent(id)}`));
    team.open.owner = text(c.data.contact?.agent_id);
    if (!team.contacts.some((s) => text(s.contact_id) === id) && c.data.contact) team.contacts.unshift(c.data.contact);
    box.scrollTop = box.scrollHeight;
  } catch (e) {
    if (!(e instanceof SignedOut)) toast(t("team.cannotHistory", { reason: e.message }));
  }
  renderContacts();
  renderHead();
}

async function assign(to) {
  const id = team.open.id;
  const s = openContact();
  const from = s ? text(s.agent_id) : team.open.owner ?? "";
  const b = to === state.agent ? $("team-take") : $("team-assign");
  b.disabled = true;
  try {
    await agentFetch(agentUrl(contactPath(id, "assign")), json("POST", { to_agent_id: to, from_agent_id: from }));
    if (to === state.agent) {
      toast(t("team.taken"), "info");
      // Now the supervisor's own: on the desk, with the composer.
      showTeam(false);
      await loadContacts(state.agent);
      if (state.contacts.has(id)) select(id);
    } else {
      toast(t("team.assigned", { agent: to }), "info");
    }
  } catch (e) {
    if (e instanceof SignedOut) return;
    toast(e.status === 409 ? t("team.conflict", { reason: e.message }) : t("team.cannotAssign", { reason: e.message }));
  } finally {
    b.disabled = false;
    loadTeam();
  }
}

/** Keep `content` as an internal note in contact `id`'s conversation; true once kept. */
async function writeNote(id, content) {
  if (content.trim() === "") {
    toast(t("note.empty"));
    return false;
  }
  try {
    await agentFetch(agentUrl(contactPath(id, "notes")), json("POST", { content }));
    return true;
  } catch (e) {
    if (!(e instanceof SignedOut)) toast(t("note.cannotSave", { reason: e.message }));
    return false;
  }
}

export function wireTeam() {
  $("team-toggle").addEventListener("click", () => showTeam($("team-view").hidden));
  $("team-refresh").addEventListener("click", () => loadTeam());
  $("team-filter").addEventListener("change", (e) => setFilter(e.target.value));
  $("team-take").addEventListener("click", () => assign(state.agent));
  $("team-assign").addEventListener("click", () => {
    const to = $("team-assign-to").value;
    if (to) assign(to);
  });
  $("team-note-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("team-note");
    if (await writeNote(team.open.id, input.value)) input.value = "";
  });
  // The desk's composer: the text typed becomes a note instead of a reply (the note comes back as a 108).
  $("note-send").addEventListener("click", async () => {
    const input = $("reply-text");
    if (state.selected === "") return;
    if (await writeNote(state.selected, input.value)) {
      input.value = "";
      input.dispatchEvent(new Event("input"));
    }
  });
}
