// What the workplace shows supervisors and admins only (issue 22): the 报表 (reports) link in the header and the
// export of the open conversation (CSV for Excel, JSON) in its header. The role is the canned replies' answer
// (`manages_team`), read once the socket is open; the server refuses an agent (403) whatever the page shows.

import { BASE_PATH, CONTACTS_PATH } from "./protocol.js";
import { state } from "./state.js";
import { $ } from "./dom.js";
import { agentFetch, agentUrl, SignedOut } from "./api.js";

const role = { leads: false, agent: "" };

/**
 * Ask the server whether the signed-in agent leads the team, then show or hide what is theirs; resolves to the answer
 * (undefined: not known — signed out, another agent signed in meanwhile, or the request failed).
 */
export async function loadRole() {
  const agent = state.agent;
  let leads;
  try {
    const body = await agentFetch(agentUrl(`${BASE_PATH}/canned_replies`));
    if (agent !== state.agent) return undefined;
    leads = role.leads = body?.data?.manages_team === true;
    role.agent = agent;
  } catch (e) {
    // Not known (the network, a 5xx): the team's own answer (its 403) decides whether to show it.
    if (!(e instanceof SignedOut)) role.leads = false;
  }
  renderSupervisor(state.contacts.get(state.selected));
  return leads;
}

/** The reports link, and the export links of contact `c` (undefined: none open). */
export function renderSupervisor(c) {
  const leads = role.leads && role.agent === state.agent;
  const link = $("reports-link");
  link.hidden = !leads;
  // Signed in, the session cookie names the agent; with sign-in off the page names it.
  link.href = state.token ? "/static/reports.html" : `/static/reports.html?userid=${encodeURIComponent(state.agent)}`;
  $("export").hidden = !leads || !c;
  if (!leads || !c) return;
  const path = `${CONTACTS_PATH}/${encodeURIComponent(c.id)}/export`;
  const query = (format) => state.token ? `${path}?format=${format}` : agentUrl(path, { format });
  $("export-csv").href = query("csv");
  $("export-json").href = query("json");
}
