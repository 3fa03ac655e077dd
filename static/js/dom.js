// Small DOM and value helpers. Every piece of server or user data reaches the DOM through textContent, never
// innerHTML.

import { t } from "./i18n.js";

const TOAST_MS = 10_000;
const MAX_TOASTS = 5;

export function $(id) {
  return document.getElementById(id);
}

export function el(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content !== undefined) node.textContent = content;
  return node;
}

/** A value as text; undefined and null are "". */
export function text(value) {
  return value === undefined || value === null ? "" : String(value);
}

/** A `result.code`: the seed sends some as strings ("102"). */
export function parseCode(value) {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^\s*-?\d+\s*$/.test(value)) return Number(value);
  return NaN;
}

// crypto.randomUUID exists only in secure contexts; the page may be opened over plain http on a LAN address.
export function newId() {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function randomDigits(n) {
  const b = crypto.getRandomValues(new Uint8Array(n));
  return String((b[0] % 9) + 1) + Array.from(b.slice(1), (x) => x % 10).join("");
}

export function isWebUrl(s) {
  return /^https?:\/\//i.test(s);
}

// Only http(s) URLs become links: a javascript: URL from a message must stay text.
export function link(url, label) {
  const a = el("a", "", label ?? url);
  a.href = url;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  return a;
}

export function button(label, className = "", testid = "") {
  const b = el("button", className, label);
  b.type = "button";
  if (testid) b.dataset.testid = testid;
  return b;
}

/**
 * A passing message: `kind` "error" (red, announced at once) or "info" (a success or a notice, calm); `detail`
 * (the server's own words, often English) only in its tooltip.
 */
export function toast(message, kind = "error", detail = "") {
  const box = $("toasts");
  const node = el("div", `toast ${kind}`, message);
  node.setAttribute("role", kind === "error" ? "alert" : "status");
  node.dataset.testid = "toast";
  node.dataset.kind = kind;
  node.title = detail ? `${detail}\n${t("toast.dismiss")}` : t("toast.dismiss");
  node.addEventListener("click", () => node.remove());
  box.append(node);
  while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
  setTimeout(() => node.remove(), TOAST_MS);
}
