// Availability, capacity and the queue's places (issue 22): the header's 在线 / 忙碌 / 离开 switch with this agent's
// open conversations against its capacity, colleagues' availability as code-107 events say it, and each waiting
// user's place in the queue with how long they have waited.

import { agentFetch, agentUrl } from "./api.js";
import { $, text } from "./dom.js";
import { onLangChange, t } from "./i18n.js";
import { AGENTS_PATH } from "./protocol.js";
import { state } from "./state.js";

const CHOICES = ["online", "busy", "away"];
/** agent id → {availability, open, capacity} as the server last said. */
const agents = new Map();

function json(method, body) {
  return { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

/** The header's controls, made once: the switch, my load against my capacity, colleagues not 在线. */
export function wireAvailability() {
  const tools = document.querySelector("header .tools");
  if (!tools || $("availability")) return;
  const box = document.createElement("span");
  box.id = "availability-box";
  box.className = "availability";
  box.hidden = true;
  const select = document.createElement("select");
  select.id = "availability";
  select.dataset.testid = "availability";
  for (const value of CHOICES) {
    const o = document.createElement("option");
    o.value = value;
    select.append(o);
  }
  select.addEventListener("change", () => setMine(select.value));
  const load = document.createElement("span");
  load.id = "my-load";
  load.className = "load";
  load.dataset.testid = "my-load";
  const team = document.createElement("span");
  team.id = "team";
  team.className = "team";
  team.dataset.testid = "team";
  box.append(select, load, team);
  tools.prepend(box);
  onLangChange(renderAvailability);
  renderAvailability();
  // Waiting times move on with the clock.
  setInterval(renderWaits, 1000);
  // A user joining or leaving my list (a new user's first message, a transfer) changes my load: asked again.
  const list = $("contacts");
  if (list) new MutationObserver(refreshLoad).observe(list, { childList: true });
}

async function setMine(value) {
  const select = $("availability");
  select.disabled = true;
  try {
    const body = await agentFetch(agentUrl(`${AGENTS_PATH}/me`), json("PATCH", { availability: value }));
    remember(body.data.agent);
  } catch (e) {
    if (e.name !== "SignedOut") console.warn("availability", e);
  } finally {
    select.disabled = false;
    renderAvailability();
  }
}

function remember(a) {
  if (!a || typeof a !== "object") return;
  agents.set(text(a.agent_id), {
    availability: CHOICES.includes(a.availability) ? a.availability : "online",
    open: Number(a.open) || 0,
    capacity: a.capacity === null || a.capacity === undefined ? null : Number(a.capacity),
  });
}

/** Once connected: every agent's availability, open conversations and capacity (GET …/agents). */
export async function loadAvailability() {
  try {
    const body = await agentFetch(agentUrl(AGENTS_PATH));
    agents.clear();
    for (const a of body.data.agents ?? []) remember(a);
  } catch (e) {
    if (e.name !== "SignedOut") console.warn("agents", e);
  }
  renderAvailability();
}

/** A code-107 frame: an agent's availability (mine from another tab, or a colleague's). */
export function applyAgentEvent(data) {
  remember(data);
  renderAvailability();
}

let refreshing;

/** My open conversations changed (a resolve, a new user): the load shown follows (one request per burst). */
export function refreshLoad() {
  if (state.agent === "" || refreshing !== undefined) return;
  refreshing = setTimeout(() => {
    refreshing = undefined;
    loadAvailability();
  }, 200);
}

function renderAvailability() {
  const box = $("availability-box");
  if (!box) return;
  const me = agents.get(state.agent);
  box.hidden = !me;
  if (!me) return;
  const select = $("availability");
  for (const o of select.options) o.textContent = t(`availability.${o.value}`);
  select.value = me.availability;
  select.dataset.state = me.availability;
  select.title = t("availability.title");
  const load = $("my-load");
  load.textContent = me.capacity === null
    ? t("availability.loadUnlimited", { open: me.open })
    : t("availability.load", { open: me.open, capacity: me.capacity });
  load.dataset.full = String(me.capacity !== null && me.open >= me.capacity);
  const team = $("team");
  team.replaceChildren(
    ...[...agents].filter(([id]) => id !== state.agent).map(([id, a]) => {
      const chip = document.createElement("span");
      chip.className = "teammate";
      chip.dataset.state = a.availability;
      chip.dataset.agent = id;
      chip.textContent = `${id} · ${t(`availability.${a.availability}`)}`;
      chip.title = a.capacity === null
        ? t("availability.loadUnlimited", { open: a.open })
        : t("availability.load", { open: a.open, capacity: a.capacity });
      return chip;
    }),
  );
}

/** The queue entry's place and waiting time, added to its row (GET …/queue gives both). */
export function queuePlace(s, li) {
  const position = Number(s.queue_position) || 0;
  if (position <= 0) return;
  const place = document.createElement("span");
  place.className = "queue-place";
  place.dataset.testid = "queue-position";
  place.textContent = t("queue.position", { n: position });
  const wait = document.createElement("span");
  wait.className = "queue-wait";
  wait.dataset.testid = "queue-wait";
  // Counted on from when the list was read: the row keeps when the user began to wait.
  s.waitingSince ??= Date.now() / 1000 - (Number(s.waiting_seconds) || 0);
  wait.dataset.since = String(s.waitingSince);
  li.prepend(place);
  li.append(wait);
  renderWait(wait);
}

/** The queue as the page keeps it, longest-waiting first (users not yet placed by the server last). */
export function byPlace(queue) {
  const place = (s) => Number(s.queue_position) || Infinity;
  return [...queue].sort((a, b) => place(a) - place(b));
}

function renderWaits() {
  for (const w of document.querySelectorAll(".queue-wait")) renderWait(w);
}

function renderWait(w) {
  const s = Math.max(0, Math.floor(Date.now() / 1000 - Number(w.dataset.since)));
  w.textContent = s < 60 ? t("queue.waitSeconds", { s }) : t("queue.waitMinutes", { m: Math.floor(s / 60), s: s % 60 });
}
