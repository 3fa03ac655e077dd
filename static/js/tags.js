// Tags (标签) on contacts (issue 22): small chips on each row of the contact list, a tag filter above it, and the
// tags of the open contact in its 资料 panel, where a tag is added (Enter) or taken off (×). The server keeps them
// and tells every tab of the owner (106 "updated"); the workplace search finds contacts by tag.

import { state } from "./state.js";
import { $, el, text, toast } from "./dom.js";
import { t } from "./i18n.js";
import { api, SignedOut } from "./api.js";
import { contactChanged, renderContacts } from "./contacts.js";
import { applyServerContact, ensureContact } from "./state.js";

/** Most tags on one contact and longest tag, as kefu keeps them (src/hub/workflow.ts). */
const MAX_TAGS = 10;
const MAX_TAG = 20;
/** Chips shown on a row; the rest are counted ("+2"). */
const ROW_CHIPS = 3;

/** The tag the contact list is filtered by; "" for none. */
state.tagFilter ??= "";

/** A contact's tags (none before the server said). */
export function tagsOf(c) {
  return Array.isArray(c?.tags) ? c.tags : [];
}

/** Whether a contact shows under the tag filter ("" shows every contact). */
export function matchesTag(c) {
  return state.tagFilter === "" || tagsOf(c).includes(state.tagFilter);
}

/** Each contact's tags as last drawn: the filter's choices are counted again only when some changed. */
const drawn = new WeakMap();
let tagsDirty = true;

/** The chips of a contact's row; undefined when it has no tags. */
export function tagChips(c) {
  const tags = tagsOf(c);
  if (drawn.get(c) !== c.tags) {
    drawn.set(c, c.tags);
    tagsDirty = true;
  }
  if (tags.length === 0) return undefined;
  const box = el("div", "tag-chips");
  box.dataset.testid = "tags";
  for (const tag of tags.slice(0, ROW_CHIPS)) box.append(chip(tag));
  if (tags.length > ROW_CHIPS) box.append(el("span", "tag-more", `+${tags.length - ROW_CHIPS}`));
  box.title = tags.join(", ");
  return box;
}

function chip(tag) {
  const c = el("span", "tag-chip", tag);
  c.dataset.tag = tag;
  c.dataset.testid = "tag";
  return c;
}

// Every tag on a listed contact, most used first: the filter's choices and the editor's suggestions.
function knownTags() {
  const n = new Map();
  for (const c of state.contacts.values()) for (const tag of tagsOf(c)) n.set(tag, (n.get(tag) ?? 0) + 1);
  return [...n].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([tag]) => tag);
}

/** The tag filter's choices, the editor's suggestions and the open contact's tags, as the contacts now have them. */
export function renderTags() {
  const select = $("tag-filter");
  renderEditor();
  // Per message the list is flushed: the choices cost a walk over every contact, so only after a tag changed.
  if (!tagsDirty && select.dataset.lang === t("tags.all")) return;
  tagsDirty = false;
  const tags = knownTags();
  // A filter whose tag is gone from every contact stays chosen (and shows nothing) until the agent changes it.
  const choices = state.tagFilter !== "" && !tags.includes(state.tagFilter) ? [...tags, state.tagFilter] : tags;
  const wanted = ["", ...choices].join("\n");
  if (select.dataset.choices !== wanted || select.dataset.lang !== t("tags.all")) {
    select.dataset.choices = wanted;
    select.dataset.lang = t("tags.all");
    const all = el("option", "", t("tags.all"));
    all.value = "";
    select.replaceChildren(all, ...choices.map((tag) => Object.assign(el("option", "", tag), { value: tag })));
  }
  select.value = state.tagFilter;
  select.hidden = choices.length === 0;
  const list = $("tag-suggestions");
  const suggested = tags.join("\n");
  if (list.dataset.tags !== suggested) {
    list.dataset.tags = suggested;
    list.replaceChildren(...tags.map((tag) => Object.assign(el("option"), { value: tag })));
  }
}

function renderEditor() {
  const c = state.contacts.get(state.selected);
  const box = $("details-tags");
  if (!c) return box.replaceChildren();
  const tags = tagsOf(c);
  const key = `${c.id}\n${tags.join("\n")}\n${t("tags.remove", { tag: "" })}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(...tags.map((tag) => {
    const c = chip(tag);
    const x = el("button", "tag-remove", "×");
    x.type = "button";
    x.dataset.remove = tag;
    x.title = t("tags.remove", { tag });
    x.setAttribute("aria-label", x.title);
    c.append(x);
    return c;
  }));
  if (tags.length === 0) box.append(el("span", "hint", t("tags.none")));
}

// The open contact's tags become `tags`: the server's answer is adopted (its 106 event says the same to other tabs).
async function saveTags(tags) {
  const c = state.contacts.get(state.selected);
  if (!c) return;
  try {
    const s = await api.patch(c.id, { tags });
    if (text(s?.contact_id) === c.id) {
      applyServerContact(ensureContact(c.id, text(s.name)), s);
      contactChanged(c);
    }
  } catch (e) {
    if (!(e instanceof SignedOut)) toast(t("tags.cannotSave", { reason: e.message }));
  }
}

async function addTag() {
  const input = $("tag-input");
  const c = state.contacts.get(state.selected);
  const tag = input.value.trim();
  if (!c || tag === "") return;
  if ([...tag].length > MAX_TAG || tag.includes(",")) {
    toast(t("tags.invalid", { tag, max: MAX_TAG }));
    return;
  }
  const tags = tagsOf(c);
  if (tags.includes(tag)) {
    input.value = "";
    return;
  }
  if (tags.length >= MAX_TAGS) {
    toast(t("tags.tooMany", { max: MAX_TAGS }));
    return;
  }
  input.value = "";
  await saveTags([...tags, tag]);
}

export function wireTags() {
  $("tag-filter").addEventListener("change", (e) => {
    state.tagFilter = e.target.value;
    renderContacts();
  });
  $("tag-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.isComposing) {
      e.preventDefault();
      addTag();
    }
  });
  $("tag-add").addEventListener("click", addTag);
  $("details-tags").addEventListener("click", (e) => {
    const tag = e.target.closest("[data-remove]")?.dataset.remove;
    const c = state.contacts.get(state.selected);
    if (tag !== undefined && c) saveTags(tagsOf(c).filter((x) => x !== tag));
  });
}
