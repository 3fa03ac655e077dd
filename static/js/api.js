// Agent HTTP requests: the token goes along when signed in (Authorization: Bearer), ?userid= always (sign-in off
// names the agent with it), and a 401 signs the page out. Also the URLs of kefu's own media files.

import { AGENTS_PATH, CONTACTS_PATH, MEDIA_PATH, QUEUE_PATH, SEARCH_PATH, UPLOAD_PATH } from "./protocol.js";
import { state } from "./state.js";
import { text } from "./dom.js";
import { refused } from "./auth.js";

/** Thrown by agentFetch once the page has signed out: the sign-in message says why, no toast needed. */
export class SignedOut extends Error {}

/** Refusals come as {"code","msg"} (/auth/login) or kefu's error envelope (agent endpoints). */
export function reasonOf(body, status) {
  return text(body?.data?.detail) || text(body?.msg) || `HTTP ${status}`;
}

/** An agent endpoint's URL with ?userid= and the given query. */
export function agentUrl(path, query = {}) {
  const q = new URLSearchParams({ userid: state.agent });
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") q.set(k, String(v));
  return `${path}?${q}`;
}

/** An agent endpoint; answers the JSON body. A 401 (token expired or refused) signs the page out. */
export async function agentFetch(url, init = {}) {
  const token = state.token;
  const headers = token ? { ...init.headers, authorization: `Bearer ${token}` } : init.headers;
  const res = await fetch(url, { cache: "no-store", ...init, headers });
  const body = await res.json().catch(() => null);
  // An answer for a sign-in that has ended since is of no use.
  if (token !== state.token) throw new SignedOut("signed out");
  if (res.status === 401) {
    const kind = text(body?.data?.error);
    refused(`${kind ? `${kind}: ` : ""}${reasonOf(body, res.status)}`);
    throw new SignedOut("signed out");
  }
  if (!res.ok) {
    const e = new Error(reasonOf(body, res.status));
    e.status = res.status;
    e.kind = text(body?.data?.error);
    throw e;
  }
  return body;
}

function json(method, body) {
  return { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body ?? {}) };
}

const contactPath = (id, action = "") => `${CONTACTS_PATH}/${encodeURIComponent(id)}${action ? `/${action}` : ""}`;

// The workflow endpoints (issue 14). Each answers `data.contact` as GET …/contacts lists it.
export const api = {
  contact: (id) => agentFetch(agentUrl(contactPath(id))).then((b) => b.data.contact),
  patch: (id, fields) => agentFetch(agentUrl(contactPath(id)), json("PATCH", fields)).then((b) => b.data.contact),
  transfer: (id, to, note) =>
    agentFetch(agentUrl(contactPath(id, "transfer")), json("POST", { to_agent_id: to, ...(note ? { note } : {}) }))
      .then((b) => b.data.contact),
  resolve: (id) => agentFetch(agentUrl(contactPath(id, "resolve")), json("POST")).then((b) => b.data.contact),
  reopen: (id) => agentFetch(agentUrl(contactPath(id, "reopen")), json("POST")).then((b) => b.data.contact),
  release: (id, note) =>
    agentFetch(agentUrl(contactPath(id, "release")), json("POST", note ? { note } : {})).then((b) => b.data.contact),
  take: (id) => agentFetch(agentUrl(contactPath(id, "take")), json("POST")).then((b) => b.data.contact),
  queue: () => agentFetch(agentUrl(QUEUE_PATH)).then((b) => b.data.contacts ?? []),
  agents: () => agentFetch(agentUrl(AGENTS_PATH)).then((b) => b.data.agents ?? []),
  search: (q, limit = 50) => agentFetch(agentUrl(SEARCH_PATH, { q, limit })).then((b) => b.data),
};

// kefu's own files: users' media under /media/, the agent's uploads under UPLOAD_PATH.
export function isKefuFile(path) {
  return path.startsWith(`${MEDIA_PATH}/`) || path.startsWith(`${UPLOAD_PATH}/`);
}

// An <img>, <audio> or <video> cannot send a header, so kefu's own files take ?token=. Other hosts never see it.
export function mediaUrl(media) {
  if (!state.token) return media;
  let url;
  try {
    url = new URL(media, location.href);
  } catch {
    return media;
  }
  if (url.origin !== location.origin || !isKefuFile(url.pathname)) return media;
  return `${media}${media.includes("?") ? "&" : "?"}token=${encodeURIComponent(state.token)}`;
}
