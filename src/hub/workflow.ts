/**
 * The conversation workflow of the agents' workplace: transfer a contact to another agent (with a note), resolve and
 * reopen a conversation, take a user waiting for an agent, give a contact a name and a note, search. Each action is
 * done by the contact's owner only (a waiting user by anyone), kept in the contact's history as a system line (an
 * outbound message of type `system`, committed with the contact's row), and told to every session of the agents
 * concerned as a `contact` event.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import { KeyedQueue } from "../core/keyed_queue.ts";
import type { Logger } from "../core/log.ts";
import { type Message, newMessageId, nowSeconds } from "../core/message.ts";
import type { ContactStatus, Store, StoredMessage } from "../store/store.ts";
import type { AgentBus } from "./bus.ts";
import type { ContactAction } from "./events.ts";
import { type Contact, type ContactView, lastOf, recordOf, type Routing, UNASSIGNED } from "./routing.ts";

/** Longest transfer note. */
export const MAX_TRANSFER_NOTE = 500;
/** Longest display name an agent gives a contact. */
export const MAX_DISPLAY_NAME = 64;
/** Longest note on a contact. */
export const MAX_CONTACT_NOTE = 1000;

/** What {@link Workflow} works with: the hub's rooms. */
export interface WorkflowOptions {
  routing: Routing;
  store: Store;
  bus: AgentBus;
  log: Logger;
  /** The agents configured (CONFIG_FILE `agents`): they can be transferred to while offline and without contacts. */
  agents?: readonly string[];
  /** Called when a contact's row was written with a system line (the hub's "stale rows" set forgets it). */
  saved(c: Contact): void;
  /** A contact went from one owner to another: the hub moves its held messages and delivers them to the new owner. */
  handOver(c: Contact, from: string, to: string): Promise<void>;
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
  /**
   * Actions on one contact run one at a time: each checks who owns the contact when its turn comes, and an action's
   * undo (its commit failed) never runs over another's change.
   */
  readonly #turns = new KeyedQueue();

  constructor(options: WorkflowOptions) {
    this.#o = options;
    this.#configured = new Set(options.agents ?? []);
  }

  /** One contact as `agent` may see it: its own, or a user waiting for an agent. Throws 404/403 otherwise. */
  contact(agent: string, id: string): ContactView {
    const { routing } = this.#o;
    const c = routing.get(id);
    if (c !== undefined && c.agent === UNASSIGNED) return routing.view(c);
    return routing.view(routing.ownedBy(agent, id, "read"));
  }

  /** The users waiting for an agent, most recent first. */
  queue(): ContactView[] {
    return this.#o.routing.contactsOf(UNASSIGNED);
  }

  /** The agents a contact can go to: the configured ones, those online and those owning contacts. */
  agents(): { agent_id: string; online: boolean; contacts: number }[] {
    const { routing, bus } = this.#o;
    const all = new Set([...this.#configured, ...bus.online(), ...routing.owners()]);
    return [...all].sort().map((a) => ({
      agent_id: a,
      online: bus.isOnline(a),
      contacts: routing.ownedContacts(a).length,
    }));
  }

  /**
   * Give `by`'s contact `id` to agent `to` with a note the next agent sees; its unread messages go along. `to` ""
   * puts the user back in the queue (status `queued`), where they wait for an agent to take them.
   */
  transfer(by: string, id: string, to: string, note = ""): Promise<ContactView> {
    const verb = to === UNASSIGNED ? "put back in the queue" : "transfer";
    return this.#turns.run(id, async () => {
      const { routing } = this.#o;
      const c = routing.ownedBy(by, id, verb);
      if (to === by) {
        throw new KefuError("invalid_transfer", `cannot transfer contact ${quote(id)} to ${quote(to)}: it is yours`);
      }
      if (to !== UNASSIGNED && !this.agents().some((a) => a.agent_id === to)) {
        throw new KefuError(
          "unknown_agent",
          `cannot transfer contact ${quote(id)} to ${
            quote(to)
          }: no such agent (GET the agents list for who can take it)`,
          404,
        );
      }
      checkLength("note", note, MAX_TRANSFER_NOTE);
      const action: ContactAction = to === UNASSIGNED ? "queued" : "transferred";
      const text = to === UNASSIGNED
        ? `${by} put the conversation back in the queue${note ? `: ${note}` : ""}`
        : `${by} transferred the conversation to ${to}${note ? `: ${note}` : ""}`;
      await this.#change(c, by, verb, { action, from: by, to, note }, text, {
        agent: to,
        status: to === UNASSIGNED ? "queued" : "open",
      });
      // An offline agent gets the grace period from now: the user's next message waits for them like any of theirs.
      if (to !== UNASSIGNED) routing.handedTo(to);
      // The new owner hears of the contact first, then gets its unread messages.
      const view = routing.view(c);
      const event = { kind: "contact", action, contact: view, by, from: by, to, note } as const;
      this.#tell(to === UNASSIGNED ? [by, ...this.#o.bus.online()] : [by, to], event);
      await this.#handOver(c, by, to);
      return view;
    });
  }

  /** Take a user waiting for an agent; throws 409 when another agent took them first. */
  take(by: string, id: string): Promise<ContactView> {
    return this.#turns.run(id, async () => {
      const { routing } = this.#o;
      const c = routing.get(id);
      if (c === undefined) throw new KefuError("not_found", `cannot take contact ${quote(id)}: no such contact`, 404);
      if (c.agent !== UNASSIGNED) {
        throw new KefuError(
          "already_taken",
          `cannot take contact ${quote(id)}: ${c.agent === by ? "it is yours already" : "another agent has it"}`,
          409,
        );
      }
      await this.#change(c, by, "take", { action: "taken", from: "", to: by }, `${by} took the conversation`, {
        agent: by,
        status: "open",
      });
      const view = routing.view(c);
      this.#tell([by, ...this.#o.bus.online()], { kind: "contact", action: "taken", contact: view, by, to: by });
      await this.#handOver(c, UNASSIGNED, by);
      return view;
    });
  }

  /** Close (`resolved`) or reopen (`open`) `by`'s conversation with contact `id`. */
  setStatus(by: string, id: string, status: "open" | "resolved"): Promise<ContactView> {
    const verb = status === "resolved" ? "resolve" : "reopen";
    return this.#turns.run(id, async () => {
      const { routing } = this.#o;
      const c = routing.ownedBy(by, id, verb);
      const action: ContactAction = status === "resolved" ? "resolved" : "reopened";
      if (c.status !== status) {
        const text = `${by} ${action} the conversation`;
        await this.#change(c, by, verb, { action }, text, { agent: c.agent, status });
      }
      const view = routing.view(c);
      this.#tell([by], { kind: "contact", action, contact: view, by });
      return view;
    });
  }

  /** Set the name and/or note `by` gives contact `id`. */
  update(by: string, id: string, fields: { displayName?: string; note?: string }): Promise<ContactView> {
    return this.#turns.run(id, async () => {
      const { routing, store } = this.#o;
      const c = routing.ownedBy(by, id, "update");
      if (fields.displayName !== undefined) checkLength("display_name", fields.displayName, MAX_DISPLAY_NAME);
      if (fields.note !== undefined) checkLength("note", fields.note, MAX_CONTACT_NOTE);
      const before = { displayName: c.displayName, note: c.note };
      c.displayName = fields.displayName?.trim() ?? c.displayName;
      c.note = fields.note?.trim() ?? c.note;
      try {
        await store.upsertContact(recordOf(c));
      } catch (e) {
        Object.assign(c, before);
        throw storeFailed(`update contact ${quote(id)}`, e);
      }
      this.#o.saved(c);
      const view = routing.view(c);
      this.#tell([by], { kind: "contact", action: "updated", contact: view, by });
      return view;
    });
  }

  /**
   * `agent`'s contacts whose name, display name, note or ids contain `q`, and messages of its contacts whose text
   * does, newest first.
   */
  async search(agent: string, q: string, limit: number): Promise<SearchResult> {
    const { routing, store } = this.#o;
    const needle = q.toLowerCase();
    const contacts = routing.ownedContacts(agent)
      .filter((c) =>
        [c.id, c.user, c.name, c.displayName, c.note].some((field) => field.toLowerCase().includes(needle))
      )
      .slice(0, limit)
      .map((c) => routing.view(c));
    const messages = await store.search(agent, q, limit);
    return { contacts, messages };
  }

  /** The user wrote: their message reopens a resolved conversation (not a queued one). Answers whether it did. */
  userWrote(c: Contact): boolean {
    if (c.status !== "resolved") return false;
    c.status = "open";
    return true;
  }

  // Apply `to` (owner, status), then commit the system line with the contact's row. On a store failure undo what is
  // still this action's (a user's message may have moved the preview meanwhile) and refuse.
  async #change(
    c: Contact,
    by: string,
    verb: string,
    event: { action: ContactAction; from?: string; to?: string; note?: string },
    text: string,
    to: { agent: string; status: ContactStatus },
  ): Promise<void> {
    const { routing } = this.#o;
    const before = { agent: c.agent, status: c.status, lastEvent: c.lastEvent, lastMessageTime: c.lastMessageTime };
    const line: Message = {
      id: `sys-${newMessageId()}`,
      direction: "out",
      channel: c.channel,
      account: c.account,
      contact: c.id,
      agent: by,
      company: c.company,
      type: "system",
      content: text,
      media: "",
      sendTime: nowSeconds(),
      name: by,
      avatar: "",
      extra: {
        action: event.action,
        by,
        from_agent_id: event.from ?? "",
        to_agent_id: event.to ?? "",
        note: event.note ?? "",
      },
    };
    routing.move(c, to.agent);
    c.status = to.status;
    const last = c.lastEvent = lastOf(line);
    c.lastMessageTime = Math.max(c.lastMessageTime, line.sendTime);
    try {
      await this.#o.store.saveOutbound(line, "sent", recordOf(c));
    } catch (e) {
      if (c.agent === to.agent) routing.move(c, before.agent);
      if (c.status === to.status) c.status = before.status;
      if (c.lastEvent === last) {
        c.lastEvent = before.lastEvent;
        c.lastMessageTime = before.lastMessageTime;
      }
      throw storeFailed(`${verb} contact ${quote(c.id)}`, e);
    }
    c.savedAt = Date.now();
    c.savedAgent = c.agent;
    this.#o.saved(c);
  }

  async #handOver(c: Contact, from: string, to: string): Promise<void> {
    // The contact is the new owner's already: a failure here only delays its unread messages to the next connect.
    await this.#o.handOver(c, from, to).catch((e) =>
      this.#o.log.error("hand_over_failed", { contact: c.id, agent: to, error: String(e) })
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

function storeFailed(action: string, e: unknown): KefuError {
  return new KefuError("store_failed", `cannot ${action}: ${(e as Error).message}; nothing changed, try again`, 503);
}
