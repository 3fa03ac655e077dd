/**
 * Canned replies (快捷回复): the team's, managed by supervisors and admins, and each agent's own. The store keeps them
 * and holds every change to the reply's scope and owner (`Store.updateCanned`), so that an agent cannot change
 * another's reply even by guessing its id; here is who may do what, and what a reply may look like.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import { leadsTeam, type Role } from "../core/roles.ts";
import type { CannedReply, CannedScope, Store } from "../store/store.ts";

/** Longest shortcut, its `/` included. */
export const MAX_SHORTCUT = 32;
/** Longest reply text (WeChat takes 2,048 bytes of text in one customer-service message). */
export const MAX_CANNED_TEXT = 600;
/** Most replies one owner keeps (the team is one owner): the composer lists them all. */
export const MAX_CANNED_PER_OWNER = 300;

// A slash, then no spaces and no control characters.
// deno-lint-ignore no-control-regex
const SHORTCUT_RE = /^\/[^\s\x00-\x1f\x7f]+$/u;
// deno-lint-ignore no-control-regex
const CONTROL_RE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** What {@link CannedReplies} works with. */
export interface CannedOptions {
  store: Store;
  /** An agent's role (CONFIG_FILE `agents[].role`; `agent` when not listed). */
  roleOf(agent: string): Role;
}

/** A reply as an agent sent it (checked here: any JSON value may come). */
export interface CannedFields {
  shortcut?: unknown;
  text?: unknown;
}

/** The canned replies' use cases; see the module documentation. */
export class CannedReplies {
  readonly #o: CannedOptions;

  constructor(options: CannedOptions) {
    this.#o = options;
  }

  /** The team's replies and `agent`'s own, by shortcut. */
  list(agent: string): Promise<CannedReply[]> {
    return this.#store("list the canned replies", () => this.#o.store.cannedReplies(agent));
  }

  /** Whether `agent` may change or delete `reply`: its own, or a team reply for a supervisor or admin. */
  mayEdit(agent: string, reply: CannedReply): boolean {
    return reply.scope === "team" ? leadsTeam(this.#o.roleOf(agent)) : reply.owner === agent;
  }

  /** Add a reply of `scope` for `agent` (a team reply: supervisors and admins only). */
  async add(agent: string, scope: CannedScope, fields: CannedFields): Promise<CannedReply> {
    this.#mayWrite(agent, scope, "add");
    const shortcut = checkShortcut(fields.shortcut, "add");
    const text = checkText(fields.text, "add", shortcut);
    const owner = scope === "team" ? "" : agent;
    const mine = (await this.list(agent)).filter((r) => r.owner === owner);
    if (mine.length >= MAX_CANNED_PER_OWNER) {
      throw new KefuError(
        "conflict",
        `cannot add canned reply ${quote(shortcut)}: ${scope === "team" ? "the team has" : "you have"} ` +
          `${MAX_CANNED_PER_OWNER} already, the most kept; delete one first`,
        409,
      );
    }
    const r = await this.#store(
      `add canned reply ${quote(shortcut)}`,
      () => this.#o.store.addCanned({ scope, owner, shortcut, text, by: agent }),
    );
    if (r === "taken") throw taken("add", shortcut, scope);
    return r;
  }

  /** Change `agent`'s reply `id` (its own, or a team reply for a supervisor or admin). */
  async update(agent: string, id: number, fields: CannedFields): Promise<CannedReply> {
    const reply = await this.#editable(agent, id, "change");
    const shortcut = fields.shortcut === undefined ? undefined : checkShortcut(fields.shortcut, "change");
    const text = fields.text === undefined ? undefined : checkText(fields.text, "change", shortcut ?? reply.shortcut);
    if (shortcut === undefined && text === undefined) {
      throw new KefuError("missing_field", `cannot change canned reply ${id}: send shortcut and/or text`);
    }
    const r = await this.#store(
      `change canned reply ${id}`,
      () => this.#o.store.updateCanned(id, reply, { shortcut, text, by: agent }),
    );
    if (r === undefined) throw missing(id, "change");
    if (r === "taken") throw taken("change", shortcut!, reply.scope);
    return r;
  }

  /** Delete `agent`'s reply `id` (its own, or a team reply for a supervisor or admin). */
  async remove(agent: string, id: number): Promise<void> {
    const reply = await this.#editable(agent, id, "delete");
    const gone = await this.#store(`delete canned reply ${id}`, () => this.#o.store.deleteCanned(id, reply));
    if (!gone) throw missing(id, "delete");
  }

  // The reply, if `agent` may change it: 404 for none (or another agent's own: not even its existence is told), 403
  // for a team reply and a plain agent.
  async #editable(agent: string, id: number, verb: string): Promise<CannedReply> {
    const reply = await this.#store(`read canned reply ${id}`, () => this.#o.store.cannedReply(id));
    if (reply === undefined || (reply.scope === "personal" && reply.owner !== agent)) throw missing(id, verb);
    this.#mayWrite(agent, reply.scope, verb);
    return reply;
  }

  #mayWrite(agent: string, scope: CannedScope, verb: string): void {
    if (scope === "team" && !leadsTeam(this.#o.roleOf(agent))) {
      throw new KefuError(
        "role_required",
        `cannot ${verb} a team canned reply: agent ${quote(agent)} is an agent; supervisors and admins manage ` +
          "the team's replies (CONFIG_FILE agents[].role)",
        403,
      );
    }
  }

  async #store<T>(action: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (e) {
      if (e instanceof KefuError) throw e;
      throw new KefuError("store_failed", `cannot ${action}: ${(e as Error).message}; nothing changed, try again`, 503);
    }
  }
}

/** A shortcut as kept: trimmed, with its leading `/` (added when left out). */
export function checkShortcut(value: unknown, verb: string): string {
  if (value === undefined) {
    throw new KefuError("missing_field", `cannot ${verb} a canned reply: shortcut is required (e.g. /hi)`);
  }
  if (typeof value !== "string") {
    throw new KefuError("wrong_type", `cannot ${verb} a canned reply: shortcut must be a string, got ${quote(value)}`);
  }
  let s = value.trim();
  if (s !== "" && !s.startsWith("/")) s = `/${s}`;
  if (!SHORTCUT_RE.test(s) || [...s].length > MAX_SHORTCUT) {
    throw new KefuError(
      "wrong_type",
      `cannot ${verb} a canned reply: shortcut ${quote(value)} must be "/" and 1 to ${MAX_SHORTCUT - 1} ` +
        "characters without spaces (e.g. /hi)",
    );
  }
  return s;
}

function checkText(value: unknown, verb: string, shortcut: string): string {
  if (value === undefined) {
    throw new KefuError("missing_field", `cannot ${verb} canned reply ${quote(shortcut)}: text is required`);
  }
  if (typeof value !== "string") {
    throw new KefuError(
      "wrong_type",
      `cannot ${verb} canned reply ${quote(shortcut)}: text must be a string, got ${quote(value)}`,
    );
  }
  const text = value.trim();
  if (text === "") {
    throw new KefuError("missing_field", `cannot ${verb} canned reply ${quote(shortcut)}: text is empty`);
  }
  if ([...text].length > MAX_CANNED_TEXT) {
    throw new KefuError(
      "wrong_type",
      `cannot ${verb} canned reply ${quote(shortcut)}: text is ${[...text].length} characters; at most ` +
        `${MAX_CANNED_TEXT} are kept`,
    );
  }
  if (CONTROL_RE.test(text)) {
    throw new KefuError(
      "wrong_type",
      `cannot ${verb} canned reply ${quote(shortcut)}: text has control characters (${quote(text)})`,
    );
  }
  return text;
}

function taken(verb: string, shortcut: string, scope: CannedScope): KefuError {
  return new KefuError(
    "conflict",
    `cannot ${verb} canned reply ${quote(shortcut)}: ${scope === "team" ? "the team has" : "you have"} a reply ` +
      "with that shortcut already",
    409,
  );
}

function missing(id: number, verb: string): KefuError {
  return new KefuError("not_found", `cannot ${verb} canned reply ${id}: no such reply of yours or of the team`, 404);
}
