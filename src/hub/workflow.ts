/**
 * The conversation workflow of the agents' workplace: transfer a contact to another agent (with a note), resolve and
 * reopen a conversation, take a user waiting for an agent, give a contact a name and a note, search. Each action is
 * done by the contact's owner only (a waiting user by anyone), kept in the contact's history as a system line (an
 * outbound message of type `system`, committed with the change), and told to every session of the agents concerned
 * as a `contact` event.
 *
 * Every change is one conditional update in the store — "if its owner is still the one who asked" — so that two
 * agents acting on one user at once, in one process or several, never both win: the loser is told, nothing changed.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { leadsTeam, type Role } from "../core/roles.ts";
import type { ContactChange, ContactRow, Store, StoredMessage } from "../store/store.ts";
import type { AgentBus } from "./bus.ts";
import { type ContactAction, type WorkflowEvent, workflowLine } from "./events.ts";
import { type Away, type ContactView, ownedBy, UNASSIGNED } from "./routing.ts";

/** Longest transfer note. */
export const MAX_TRANSFER_NOTE = 500;
/** Longest display name an agent gives a contact. */
export const MAX_DISPLAY_NAME = 64;
/** Longest note on a contact. */
export const MAX_CONTACT_NOTE = 1000;
/** Most tags on one contact. */
export const MAX_TAGS = 10;
/** Longest tag. */
export const MAX_TAG = 20;

/** What {@link Workflow} works with. */
export interface WorkflowOptions {
  store: Store;
  bus: AgentBus;
  log: Logger;
  /** Who went offline when: a contact handed to an offline agent restarts its grace period. */
  away: Away;
  /** The agents configured (CONFIG_FILE `agents`): they can be transferred to while offline and without contacts. */
  agents?: readonly string[];
  /** A contact as agents see it. */
  view(id: string): Promise<ContactView | undefined>;
  /** A contact went to another owner: its unread messages go to that owner's sessions. */
  handOver(contact: string, to: string): Promise<void>;
  /** An agent's role; default `agent` for everyone. A supervisor or admin may tag any contact. */
  roleOf?(agent: string): Role;
  /** A conversation was resolved or handed away: a user waiting in the queue may take the slot (issue 22). */
  slotFreed?(): void;
}

/** One search's answer. */
export interface SearchResult {
  contacts: ContactView[];
  messages: StoredMessage[];
}

/** The workflow's actions; see the module documentation. */
export class Workflow {
  readonly #o: WorkflowOptions;
  readonly #configured: ReadonlySet<string>;

  constructor(options: WorkflowOptions) {
    this.#o = options;
    this.#configured = new Set(options.agents ?? []);
  }

  /**
   * One contact as `agent` may see it: its own, a user waiting for an agent, or any for a supervisor or admin.
   * Throws 404/403 otherwise.
   */
  async contact(agent: string, id: string): Promise<ContactView> {
    const c = await this.#o.view(id);
    if (c !== undefined && (c.agent_id === UNASSIGNED || leadsTeam(this.#o.roleOf?.(agent) ?? "agent"))) return c;
    return ownedBy(agent, id, c && { ...c, agent: c.agent_id }, "read");
  }

  /** The users waiting for an agent, most recent first. */
  async queue(): Promise<ContactView[]> {
    const waiting = await this.#o.store.contactsOf(UNASSIGNED);
    return Promise.all(waiting.map((c) => this.#o.view(c.id))).then((v) => v.filter((c) => c !== undefined));
  }

  /** The agents a contact can go to: the configured ones, those online and those owning open contacts. */
  async agents(): Promise<{ agent_id: string; online: boolean; contacts: number }[]> {
    const { bus, store } = this.#o;
    const counts = await store.openCounts();
    const all = new Set([...this.#configured, ...bus.online(), ...counts.keys()]);
    all.delete(UNASSIGNED);
    return [...all].sort().map((a) => ({ agent_id: a, online: bus.isOnline(a), contacts: counts.get(a) ?? 0 }));
  }

  /**
   * Give `by`'s contact `id` to agent `to` with a note the next agent sees; its unread messages go along. `to` ""
   * puts the user back in the queue (status `queued`), where they wait for an agent to take them.
   */
  async transfer(by: string, id: string, to: string, note = ""): Promise<ContactView> {
    const verb = to === UNASSIGNED ? "put back in the queue" : "transfer";
    await this.#owned(by, id, verb);
    if (to === by) {
      throw new KefuError("invalid_transfer", `cannot transfer contact ${quote(id)} to ${quote(to)}: it is yours`);
    }
    if (to !== UNASSIGNED && !(await this.agents()).some((a) => a.agent_id === to)) {
      throw new KefuError(
        "unknown_agent",
        `cannot transfer contact ${quote(id)} to ${quote(to)}: no such agent (GET the agents list for who can take it)`,
        404,
      );
    }
    checkLength("note", note, MAX_TRANSFER_NOTE);
    const action: ContactAction = to === UNASSIGNED ? "queued" : "transferred";
    const text = to === UNASSIGNED
      ? `${by} put the conversation back in the queue${note ? `: ${note}` : ""}`
      : `${by} transferred the conversation to ${to}${note ? `: ${note}` : ""}`;
    const c = await this.#change(id, by, verb, { action, from: by, to, note }, text, {
      expectAgent: by,
      agent: to,
      status: to === UNASSIGNED ? "queued" : "open",
    });
    // An offline agent gets the grace period from now: the user's next message waits for them like any of theirs.
    if (to !== UNASSIGNED) this.#o.away.disconnected(to);
    // The new owner hears of the contact first, then gets its unread messages.
    const view = await this.#view(c);
    const event = { kind: "contact", action, contact: view, by, from: by, to, note } as const;
    this.#tell(to === UNASSIGNED ? [by, ...this.#o.bus.online()] : [by, to], event);
    await this.#handOver(c.id, to);
    this.#o.slotFreed?.();
    return view;
  }

  /** Take a user waiting for an agent; throws 409 when another agent took them first. */
  async take(by: string, id: string): Promise<ContactView> {
    const c = await this.#o.store.contact(id);
    if (c === undefined) throw new KefuError("not_found", `cannot take contact ${quote(id)}: no such contact`, 404);
    const taken = (mine: boolean) =>
      new KefuError(
        "already_taken",
        `cannot take contact ${quote(id)}: ${mine ? "it is yours already" : "another agent has it"}`,
        409,
      );
    if (c.agent !== UNASSIGNED) throw taken(c.agent === by);
    const after = await this.#commit(
      id,
      "take",
      { action: "taken", from: "", to: by },
      by,
      `${by} took the conversation`,
      {
        expectAgent: UNASSIGNED,
        agent: by,
        status: "open",
      },
    );
    if (after === undefined) throw taken(false);
    const view = await this.#view(after);
    this.#tell([by, ...this.#o.bus.online()], { kind: "contact", action: "taken", contact: view, by, to: by });
    await this.#handOver(id, by);
    return view;
  }

  /** Close (`resolved`) or reopen (`open`) `by`'s conversation with contact `id`. */
  async setStatus(by: string, id: string, status: "open" | "resolved"): Promise<ContactView> {
    const verb = status === "resolved" ? "resolve" : "reopen";
    const c = await this.#owned(by, id, verb);
    const action: ContactAction = status === "resolved" ? "resolved" : "reopened";
    let row: ContactRow = c;
    if (c.status !== status) {
      row = await this.#change(id, by, verb, { action }, `${by} ${action} the conversation`, {
        expectAgent: by,
        status,
      });
    }
    const view = await this.#view(row);
    this.#tell([by], { kind: "contact", action, contact: view, by });
    if (status === "resolved") this.#o.slotFreed?.();
    return view;
  }

  /**
   * Resolve a conversation nobody wrote in for a while (automatic messages, issue 22): only while `agent` still owns
   * it, it is open and — given `lastSeq`, the newest message's seq the caller saw — nothing was said since, with the
   * workflow line "auto-resolved" by `by` (kefu); the owner is told. Undefined when it changed meanwhile (the owner
   * acted, the user's message came first).
   */
  async resolveIdle(id: string, agent: string, by: string, lastSeq?: number): Promise<ContactView | undefined> {
    const change: ContactChange = {
      expectAgent: agent,
      expectStatus: "open",
      expectNoMessageAfter: lastSeq,
      status: "resolved",
    };
    const row = await this.#commit(id, "auto-resolve", { action: "resolved" }, by, "auto-resolved", change);
    if (row === undefined) return undefined;
    const view = await this.#view(row);
    this.#tell([agent], { kind: "contact", action: "resolved", contact: view, by });
    this.#o.slotFreed?.();
    return view;
  }

  /**
   * Set the name, note and/or tags `by` gives contact `id`: its owner, or — tags only — a supervisor or admin, whose
   * change holds only while the owner is the one it saw. The owner's sessions are told (`updated`).
   */
  async update(
    by: string,
    id: string,
    fields: { displayName?: string; note?: string; tags?: readonly string[] },
  ): Promise<ContactView> {
    const tagsOnly = fields.tags !== undefined && fields.displayName === undefined && fields.note === undefined;
    const lead = tagsOnly && leadsTeam(this.#o.roleOf?.(by) ?? "agent");
    const owner = lead ? (await this.#existing(id, "tag")).agent : (await this.#owned(by, id, "update")).agent;
    if (fields.displayName !== undefined) checkLength("display_name", fields.displayName, MAX_DISPLAY_NAME);
    if (fields.note !== undefined) checkLength("note", fields.note, MAX_CONTACT_NOTE);
    const tags = fields.tags === undefined ? undefined : checkTags(fields.tags, id);
    let after;
    try {
      after = await this.#o.store.updateContact(id, {
        expectAgent: owner,
        displayName: fields.displayName?.trim(),
        note: fields.note?.trim(),
        tags,
      });
    } catch (e) {
      throw storeFailed(`update contact ${quote(id)}`, e);
    }
    if (after === undefined) throw changedMeanwhile("update", id);
    const view = await this.#view(after);
    this.#tell([by, owner], { kind: "contact", action: "updated", contact: view, by });
    return view;
  }

  async #existing(id: string, verb: string) {
    const c = await this.#o.store.contact(id);
    if (c === undefined) throw new KefuError("not_found", `cannot ${verb} contact ${quote(id)}: no such contact`, 404);
    return c;
  }

  /**
   * `agent`'s contacts whose name, display name, note or ids contain `q`, and messages of its contacts whose text
   * does, newest first.
   */
  async search(agent: string, q: string, limit: number): Promise<SearchResult> {
    const { store } = this.#o;
    const [found, messages] = await Promise.all([store.findContacts(agent, q, limit), store.search(agent, q, limit)]);
    const contacts = (await Promise.all(found.map((c) => this.#o.view(c.id)))).filter((c) => c !== undefined);
    return { contacts, messages };
  }

  async #owned(by: string, id: string, verb: string) {
    return ownedBy(by, id, await this.#o.store.contact(id), verb);
  }

  // The change and its system line, committed together if the contact is still as expected; a 409 otherwise.
  async #change(
    id: string,
    by: string,
    verb: string,
    event: WorkflowEvent,
    text: string,
    change: ContactChange,
  ): Promise<ContactRow> {
    const after = await this.#commit(id, verb, event, by, text, change);
    if (after === undefined) throw changedMeanwhile(verb, id);
    return after;
  }

  async #commit(
    id: string,
    verb: string,
    event: WorkflowEvent,
    by: string,
    text: string,
    change: ContactChange,
  ): Promise<ContactRow | undefined> {
    const c = await this.#o.store.contact(id);
    if (c === undefined) return undefined;
    const line = workflowLine(c, by, text, event);
    try {
      return await this.#o.store.updateContact(id, { ...change, line });
    } catch (e) {
      throw storeFailed(`${verb} contact ${quote(id)}`, e);
    }
  }

  async #view(c: ContactRow): Promise<ContactView> {
    const view = await this.#o.view(c.id);
    if (view === undefined) {
      throw new KefuError("not_found", `cannot read contact ${quote(c.id)}: no such contact`, 404);
    }
    return view;
  }

  async #handOver(id: string, to: string): Promise<void> {
    // The contact is the new owner's already: a failure here only delays its unread messages to the next connect.
    await this.#o.handOver(id, to).catch((e) =>
      this.#o.log.error("hand_over_failed", { contact: id, agent: to, error: String(e) })
    );
  }

  #tell(agents: Iterable<string>, event: Parameters<AgentBus["send"]>[1]): void {
    for (const a of new Set(agents)) if (a !== UNASSIGNED) this.#o.bus.send(a, event);
  }
}

function checkLength(field: string, value: string, max: number): void {
  if (typeof value !== "string") throw new KefuError("wrong_type", `${field} must be a string`);
  if (value.length > max) {
    throw new KefuError("wrong_type", `${field} is ${value.length} characters long; at most ${max} are kept`);
  }
}

// Tags as kept: trimmed, each once, in the order given; a clear 400 for anything else.
function checkTags(tags: readonly unknown[], id: string): string[] {
  if (!Array.isArray(tags)) throw new KefuError("wrong_type", `tags must be an array of strings, got ${quote(tags)}`);
  const kept: string[] = [];
  for (const t of tags) {
    // deno-lint-ignore no-control-regex
    if (typeof t !== "string" || /[\x00-\x1f\x7f,]/.test(t)) {
      throw new KefuError(
        "wrong_type",
        `cannot tag contact ${quote(id)}: tag ${quote(t)} must be a string without commas or control characters`,
      );
    }
    const tag = t.trim();
    if (tag === "" || [...tag].length > MAX_TAG) {
      throw new KefuError(
        "wrong_type",
        `cannot tag contact ${quote(id)}: tag ${quote(t)} must be 1 to ${MAX_TAG} characters`,
      );
    }
    if (!kept.includes(tag)) kept.push(tag);
  }
  if (kept.length > MAX_TAGS) {
    throw new KefuError(
      "wrong_type",
      `cannot tag contact ${quote(id)}: ${kept.length} tags; at most ${MAX_TAGS} are kept`,
    );
  }
  return kept;
}

function changedMeanwhile(verb: string, id: string): KefuError {
  return new KefuError(
    "conflict",
    `cannot ${verb} contact ${quote(id)}: it changed meanwhile (another agent acted on it); reload and try again`,
    409,
  );
}

function storeFailed(action: string, e: unknown): KefuError {
  return new KefuError("store_failed", `cannot ${action}: ${(e as Error).message}; nothing changed, try again`, 503);
}
