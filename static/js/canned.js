// Canned replies (快捷回复, issue 22): "/" at the start of the reply box opens a list of the team's replies and the
// agent's own, found by shortcut or text as the agent types; ↑ ↓ move, Enter or a click puts the chosen reply in the
// box with {name} (the contact's name) and {agent} (the agent's) filled in, Esc closes. The 快捷回复 button opens a
// dialog that lists, adds, changes and deletes them (the team's only for supervisors and admins: the server says who
// may change which).

import { BASE_PATH } from "./protocol.js";
import { displayName, state } from "./state.js";
import { $, el, text, toast } from "./dom.js";
import { t } from "./i18n.js";
import { agentFetch, agentUrl, SignedOut } from "./api.js";

const CANNED_PATH = `${BASE_PATH}/canned_replies`;
/** Most replies the popup lists at once (the rest are found by typing more). */
const POPUP_ROWS = 8;

/** What the server said: the replies, and whether this agent manages the team's. */
const canned = { replies: [], managesTeam: false, loading: undefined };
/** The popup: the replies shown, the one chosen (index), open or not. */
const popup = { shown: [], active: 0, open: false };

function failed(what) {
  return (e) => {
    if (!(e instanceof SignedOut)) toast(t(what, { reason: e.message }));
  };
}

/** The replies, asked for again (one request at a time). */
function load() {
  const agent = state.agent;
  canned.loading ??= agentFetch(agentUrl(CANNED_PATH)).then((body) => {
    if (agent !== state.agent) return;
    canned.replies = Array.isArray(body?.data?.replies) ? body.data.replies : [];
    canned.managesTeam = body?.data?.manages_team === true;
  }).catch(failed("canned.cannotLoad")).finally(() => canned.loading = undefined);
  return canned.loading;
}

/** `reply`'s text for contact `c`: {name} and {agent} filled in. */
export function fillVariables(reply, c) {
  const name = c ? displayName(c) : "";
  const agent = state.name || state.agent;
  return text(reply.text).replace(/\{(name|agent)\}/g, (_, v) => (v === "name" ? name : agent));
}

/** The replies whose shortcut or text contains `q` (case folded); shortcut matches first. */
export function findCanned(q, replies = canned.replies) {
  const needle = q.toLowerCase();
  const byShortcut = [];
  const byText = [];
  for (const r of replies) {
    if (text(r.shortcut).toLowerCase().includes(needle)) byShortcut.push(r);
    else if (text(r.text).toLowerCase().includes(needle)) byText.push(r);
  }
  return [...byShortcut, ...byText];
}

// The query when the box holds a "/" command alone on its first line: the text after the slash; else undefined.
function queryOf(value) {
  const m = /^\/([^\s/]*)$/.exec(value);
  return m ? m[1] : undefined;
}

function renderPopup() {
  const box = $("canned-popup");
  box.hidden = !popup.open;
  if (!popup.open) return;
  if (popup.shown.length === 0) {
    box.replaceChildren(
      el("div", "canned-empty", canned.replies.length === 0 ? t("canned.none") : t("canned.noMatch")),
    );
    return;
  }
  box.replaceChildren(...popup.shown.map((r, i) => {
    const row = el("div", i === popup.active ? "canned-row active" : "canned-row");
    row.dataset.testid = "canned-option";
    row.dataset.index = String(i);
    row.setAttribute("role", "option");
    row.setAttribute("aria-selected", String(i === popup.active));
    const scope = el("span", `canned-scope ${r.scope}`, t(r.scope === "team" ? "canned.team" : "canned.personal"));
    row.append(el("span", "canned-shortcut", text(r.shortcut)), scope, el("span", "canned-text", text(r.text)));
    return row;
  }));
  box.querySelector(".active")?.scrollIntoView({ block: "nearest" });
}

function closePopup() {
  if (!popup.open) return;
  popup.open = false;
  renderPopup();
}

// The box changed: the popup follows what is typed after the slash.
function onInput() {
  const q = queryOf($("reply-text").value);
  if (q === undefined) return closePopup();
  const show = () => {
    if (queryOf($("reply-text").value) !== q) return;
    popup.shown = findCanned(q).slice(0, POPUP_ROWS);
    popup.active = Math.min(popup.active, Math.max(0, popup.shown.length - 1));
    popup.open = true;
    renderPopup();
  };
  // Asked for again each time the list opens (another agent may have changed the team's); shown from what is known
  // meanwhile.
  const opening = !popup.open;
  if (opening) popup.active = 0;
  show();
  if (opening) load().then(show);
}

function choose(i) {
  const r = popup.shown[i];
  if (!r) return;
  const box = $("reply-text");
  box.value = fillVariables(r, state.contacts.get(state.selected));
  closePopup();
  box.focus();
  box.setSelectionRange(box.value.length, box.value.length);
  // The composer keeps the draft and says "typing…" as for any text typed.
  box.dispatchEvent(new Event("input", { bubbles: true }));
}

// Keys while the popup is open, taken before the composer sees them (Enter chooses instead of sending).
function onKey(e) {
  if (!popup.open || e.isComposing) return;
  const n = popup.shown.length;
  if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    if (n === 0) return;
    popup.active = (popup.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
    renderPopup();
  } else if ((e.key === "Enter" && !e.shiftKey) || e.key === "Tab") {
    if (n === 0) return closePopup();
    choose(popup.active);
  } else if (e.key === "Escape") {
    closePopup();
  } else {
    return;
  }
  e.preventDefault();
  e.stopPropagation();
}

// --- the dialog that manages them ---

function renderManager() {
  const list = $("canned-list");
  if (canned.replies.length === 0) {
    list.replaceChildren(el("li", "hint", t("canned.none")));
  } else {
    list.replaceChildren(...canned.replies.map((r) => {
      const li = el("li", "canned-item");
      li.dataset.id = String(r.id);
      li.dataset.testid = "canned-item";
      const head = el("div", "canned-item-head");
      head.append(
        el("span", "canned-shortcut", text(r.shortcut)),
        el("span", `canned-scope ${r.scope}`, t(r.scope === "team" ? "canned.team" : "canned.personal")),
      );
      if (r.editable) {
        const edit = el("button", "link-button", t("canned.edit"));
        edit.type = "button";
        edit.dataset.action = "edit";
        const del = el("button", "link-button danger", t("canned.delete"));
        del.type = "button";
        del.dataset.action = "delete";
        head.append(edit, del);
      }
      li.append(head, el("div", "canned-text", text(r.text)));
      return li;
    }));
  }
  $("canned-scope").hidden = !canned.managesTeam;
  $("canned-scope-label").hidden = !canned.managesTeam;
}

function editing(r) {
  const form = $("canned-form");
  form.dataset.id = r ? String(r.id) : "";
  $("canned-shortcut").value = r ? text(r.shortcut) : "/";
  $("canned-body").value = r ? text(r.text) : "";
  $("canned-scope").value = r?.scope ?? "personal";
  $("canned-scope").disabled = r !== undefined;
  $("canned-save").textContent = t(r ? "canned.saveChange" : "canned.add");
  $("canned-cancel-edit").hidden = !r;
}

async function openManager() {
  const dialog = $("canned-dialog");
  editing(undefined);
  renderManager();
  if (!dialog.open) dialog.showModal();
  await load();
  renderManager();
  $("canned-shortcut").focus();
}

async function save() {
  const form = $("canned-form");
  const id = form.dataset.id;
  const fields = { shortcut: $("canned-shortcut").value.trim(), text: $("canned-body").value.trim() };
  const url = id ? agentUrl(`${CANNED_PATH}/${encodeURIComponent(id)}`) : agentUrl(CANNED_PATH);
  const body = id ? fields : { ...fields, scope: $("canned-scope").value };
  $("canned-save").disabled = true;
  try {
    await agentFetch(url, {
      method: id ? "PATCH" : "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    editing(undefined);
    await load();
    renderManager();
  } catch (e) {
    failed("canned.cannotSave")(e);
  } finally {
    $("canned-save").disabled = false;
  }
}

async function remove(id) {
  try {
    await agentFetch(agentUrl(`${CANNED_PATH}/${encodeURIComponent(id)}`), { method: "DELETE" });
    await load();
    renderManager();
  } catch (e) {
    failed("canned.cannotDelete")(e);
  }
}

export function wireCanned() {
  const box = $("reply-text");
  box.addEventListener("input", onInput);
  box.addEventListener("blur", () => setTimeout(closePopup, 0));
  // Capture on the form: before the composer's own Enter (send).
  $("reply-form").addEventListener("keydown", onKey, true);
  // mousedown, not click: the box keeps the focus (its blur would close the popup first).
  $("canned-popup").addEventListener("mousedown", (e) => {
    const row = e.target.closest("[data-index]");
    if (!row) return;
    e.preventDefault();
    choose(Number(row.dataset.index));
  });
  $("open-canned").addEventListener("click", openManager);
  $("canned-close").addEventListener("click", () => $("canned-dialog").close());
  $("canned-form").addEventListener("submit", (e) => {
    e.preventDefault();
    save();
  });
  $("canned-cancel-edit").addEventListener("click", () => editing(undefined));
  $("canned-list").addEventListener("click", (e) => {
    const action = e.target.closest("[data-action]")?.dataset.action;
    const id = e.target.closest("[data-id]")?.dataset.id;
    const r = canned.replies.find((x) => String(x.id) === id);
    if (!action || !r) return;
    if (action === "edit") return editing(r);
    // Delete asks once more on the button itself (a second click), not in a blocking dialog.
    const b = e.target.closest("[data-action]");
    if (b.dataset.confirm === "1") return remove(r.id);
    b.dataset.confirm = "1";
    b.textContent = t("canned.confirmDelete");
  });
}

/** Drawn again in the agent's language. */
export function renderCanned() {
  renderPopup();
  if ($("canned-dialog").open) renderManager();
}
