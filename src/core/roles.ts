/**
 * What an agent may do in the team (issue 22): `agent` (the default) works on its own conversations; `supervisor`
 * and `admin` also manage what the team shares (team canned replies) and may act on any agent's contact where a use
 * case allows it (tags). Roles come from CONFIG_FILE's `agents[].role`; an agent not listed there is an `agent`.
 *
 * @module
 */

/** The roles, least to most. */
export const ROLES = ["agent", "supervisor", "admin"] as const;

/** An agent's role in the team. */
export type Role = typeof ROLES[number];

/** Whether `value` names a role. */
export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}

/** Whether an agent of `role` manages what the team shares (team canned replies, any contact's tags). */
export function leadsTeam(role: Role): boolean {
  return role === "supervisor" || role === "admin";
}
