/**
 * The supervisor's view of the team (issue 22): every agent's state (availability, online, open conversations
 * against capacity, unread, the user waiting longest for an answer) and the queue; every conversation watched live;
 * any contact assigned to any agent; internal notes (内部备注) written in a conversation for the team only.
 *
 * Watching goes through the bus: {@link WatchedBus} sits in front of the hub's bus and, besides carrying an event to
 * the agents it is for, tells the sessions watching the team — on every node, through {@link AgentBus.watch} — once
 * per event, wrapped as a `watch` event naming the conversation's owner. So every use case that already tells an
 * owner (a user's message, a transfer, a resolve, the queue) tells the watchers too, without knowing of them.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { Message } from "../core/message.ts";
import { leadsTeam, type Role } from "../core/roles.ts";
import { type ContactSummary, NOTE_TYPE, type Store } from "../store/store.ts";
import type { AgentAvailability, Assigner, QueuePlace } from "./assignment.ts";
import type { AgentBus } from "./bus.ts";
import type { DeliveryReport } from "./delivery.ts";
import { type AgentEvent, teamLine, workflowLine } from "./events.ts";
import { type Away, type ContactView, UNASSIGNED } from "./routing.ts";
import type { Workflow } from "./workflow.ts";

/** Longest internal note. */
export const MAX_NOTE = 2000;

/** The bus of the hub with the team's watchers told of every conversation's events; see the module documentation. */
export class WatchedBus implements AgentBus {
  readonly #inner: AgentBus;
  // A use case tells several agents one event object (a transfer: both owners) and hands a user's messages over
  // again to a new owner: the watchers hear each once.
  #lastEvent: object | undefined;

  constructor(inner: AgentBus) {
    this.#inner = inner;
  }

  deliver(agent: string, message: Message): DeliveryReport {
    const report = this.#inner.deliver(agent, message);
    this.#watch(agent, message, { kind: "message", message });
    return report;
  }

  send(agent: string, event: AgentEvent): number {
    const n = this.#inner.send(agent, event);
    if (event.kind === "contact") this.#watch(event.contact.agent_id, event, event);
    else if (event.kind === "note") this.#watch(agent, event, event);
    return n;
  }

  /** Tell the watchers of a user's message that reaches no owner's sessions through this bus (the queue, a move). */
  watchMessage(agent: string, message: Message): void {
    this.#watch(agent, message, { kind: "message", message });
  }

  /** Tell the watchers only (a reply, which no other session of its agent hears of). */
  watchOnly(agent: string, event: AgentEvent): void {
    this.#watch(agent, event, event);
  }

  readsOnWrite(agent: string): boolean {
    return this.#inner.readsOnWrite(agent);
  }

  isOnline(agent: string): boolean {
    return this.#inner.isOnline(agent);
  }

  online(): Iterable<string> {
    return this.#inner.online();
  }

  joined(agent: string): Promise<void> {
    return this.#inner.joined?.(agent) ?? Promise.resolve();
  }

  left(agent: string): void {
    this.#inner.left?.(agent);
  }

  watchOffline(listener: (agent: string) => void): void {
    this.#inner.watchOffline?.(listener);
  }

  watch(event: AgentEvent): void {
    this.#inner.watch?.(event);
  }

  #watch(agent: string, key: object, event: AgentEvent): void {
    if (key === this.#lastEvent) return;
    this.#lastEvent = key;
    this.#inner.watch?.({ kind: "watch", agent, event });
  }
}

/** One agent as the supervisor's team view shows it. */
export interface TeamMember extends AgentAvailability {
  role: Role;
  /** A session open on some node. */
  online: boolean;
  /** Messages of its users it has not read. */
  unread: number;
  /** Its users whose last word is theirs (waiting for an answer). */
  awaiting: number;
  /** The user waiting longest for an answer (since their last message); absent when nobody waits. */
  oldest_waiting?: { contact_id: string; waiting_seconds: number };
}

/** What {@link Team} works with. */
export interface TeamOptions {
  store: Store;
  bus: WatchedBus;
  log: Logger;
  workflow: Workflow;
  assignment: Assigner;
  away: Away;
  roleOf(agent: string): Role;
  view(id: string): Promise<ContactView | undefined>;
  /** A contact read already (a list's entry) as agents see it. */
  viewOf(c: ContactSummary): ContactView;
  /** A contact went to another owner: its unread messages go to that owner's sessions. */
  handOver(contact: string, to: string): Promise<void>;
  /** A conversation left an agent: a user waiting in the queue may take the slot. */
  slotFreed(): void;
  now?: () => number;
}

/** The supervisor's actions and reads; see the module documentation. */
export class Team {
  readonly #o: TeamOptions;
  readonly #now: () => number;

  constructor(options: TeamOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Throws 403 unless `agent` is a supervisor or admin; `action` names what was refused. */
  requireLead(agent: string, action: string): void {
    if (leadsTeam(this.#o.roleOf(agent))) return;
    throw new KefuError(
      "role_required",
      `cannot ${action}: agent ${quote(agent)} is an agent; only supervisors and admins may (CONFIG_FILE ` +
        "agents[].role)",
      403,
    );
  }

  /** Whether `agent` may watch every conversation (and read any history). */
  leads(agent: string): boolean {
    return leadsTeam(this.#o.roleOf(agent));
  }

  /** Every agent's state and the queue, for a supervisor. */
  async state(by: string): Promise<{ agents: TeamMember[]; queue: QueuePlace[] }> {
    this.requireLead(by, "read the team's state");
    const listed = await this.#o.workflow.agents();
    const ids = listed.map((a) => a.agent_id);
    const [states, queue] = await Promise.all([this.#o.assignment.agents(ids), this.#o.assignment.queue()]);
    const nowS = Math.floor(this.#now() / 1000);
    const agents = await Promise.all(listed.map(async (a, i): Promise<TeamMember> => {
      const contacts = await this.#o.store.contactsOf(a.agent_id);
      const waiting = contacts.filter((c) => c.awaiting && c.status !== "resolved");
      const oldest = waiting.reduce<(typeof waiting)[number] | undefined>(
        (o, c) => o === undefined || c.lastInboundTime < o.lastInboundTime ? c : o,
        undefined,
      );
      return {
        ...states[i],
        role: this.#o.roleOf(a.agent_id),
        online: a.online,
        unread: contacts.reduce((n, c) => n + c.unread, 0),
        awaiting: waiting.length,
        ...(oldest === undefined ? {} : {
          oldest_waiting: {
            contact_id: oldest.id,
            waiting_seconds: Math.max(0, nowS - oldest.lastInboundTime),
          },
        }),
      };
    }));
    return { agents, queue };
  }

  /**
   * Every conversation for a supervisor, most recent first: of one agent (`agent`), of the queue (`agent` ""), or
   * of every agent and the queue (`agent` undefined).
   */
  async contacts(by: string, agent?: string): Promise<ContactView[]> {
    this.requireLead(by, "list the team's conversations");
    const owners = agent !== undefined
      ? [agent]
      : [UNASSIGNED, ...(await this.#o.workflow.agents()).map((a) => a.agent_id)];
    const lists = await Promise.all(owners.map((a) => this.#o.store.contactsOf(a)));
    return lists.flat().map((c) => this.#o.viewOf(c)).sort((a, b) =>
      b.last_message_time - a.last_message_time || (a.contact_id < b.contact_id ? -1 : 1)
    );
  }

  /**
   * A supervisor gives contact `id` to agent `to` (themselves: they take it). The change holds only while the owner
   * is still `from` (the one the supervisor saw; default: the owner now): two supervisors assigning at once, one
   * wins and the other gets a 409. Kept as a workflow line; both owners and the watchers are told (`transferred`).
   */
  async assign(by: string, id: string, to: string, from?: string): Promise<ContactView> {
    this.requireLead(by, `assign contact ${quote(id)}`);
    const { store, workflow } = this.#o;
    const c = await store.contact(id);
    if (c === undefined) throw new KefuError("not_found", `cannot assign contact ${quote(id)}: no such contact`, 404);
    const expect = from ?? c.agent;
    if (to === UNASSIGNED || !(await workflow.agents()).some((a) => a.agent_id === to)) {
      throw new KefuError(
        "unknown_agent",
        `cannot assign contact ${quote(id)} to ${quote(to)}: no such agent (GET the team for who can take it)`,
        404,
      );
    }
    if (c.agent === to && expect === to) {
      throw new KefuError("invalid_transfer", `cannot assign contact ${quote(id)} to ${quote(to)}: it is theirs`);
    }
    const text = to === by
      ? `${by} took the conversation over${expect ? ` from ${expect}` : ""}`
      : `${by} assigned the conversation to ${to}`;
    const line = workflowLine(c, by, text, { action: "transferred", from: expect, to });
    let after;
    try {
      after = await store.updateContact(id, { expectAgent: expect, agent: to, status: "open", line });
    } catch (e) {
      throw new KefuError(
        "store_failed",
        `cannot assign contact ${quote(id)}: ${(e as Error).message}; nothing changed, try again`,
        503,
      );
    }
    if (after === undefined) {
      throw new KefuError(
        "conflict",
        `cannot assign contact ${quote(id)} to ${quote(to)}: it is no longer ${
          expect ? `agent ${quote(expect)}'s` : "waiting in the queue"
        } (another supervisor or agent acted on it); reload and try again`,
        409,
      );
    }
    this.#o.log.info("contact_assigned", { contact: id, from: expect, to, by });
    this.#o.away.disconnected(to);
    const view = await this.#o.view(id);
    if (view === undefined) throw new KefuError("not_found", `cannot read contact ${quote(id)}: no such contact`, 404);
    const event = { kind: "contact", action: "transferred", contact: view, by, from: expect, to, note: "" } as const;
    const told = expect === UNASSIGNED ? [by, ...this.#o.bus.online()] : [by, expect, to];
    for (const a of new Set([...told, to])) if (a !== UNASSIGNED) this.#o.bus.send(a, event);
    await this.#o.handOver(id, to).catch((e) =>
      this.#o.log.error("hand_over_failed", { contact: id, agent: to, error: String(e) })
    );
    this.#o.slotFreed();
    return view;
  }

  /**
   * `by` writes an internal note in contact `id`'s conversation: its owner, a supervisor or admin, or anyone for a
   * user waiting in the queue (whom anyone may read). Kept in the store (type `note`, never sent to the user), told to
   * the owner's sessions and the watchers.
   */
  async note(by: string, id: string, content: unknown): Promise<Message> {
    if (typeof content !== "string" || content.trim() === "") {
      throw new KefuError("missing_field", `content is required: the note's text, got ${quote(content)}`);
    }
    const text = content.trim();
    if ([...text].length > MAX_NOTE) {
      throw new KefuError("wrong_type", `content is ${[...text].length} characters long; at most ${MAX_NOTE} are kept`);
    }
    const c = await this.#o.store.contact(id);
    if (c === undefined) throw new KefuError("not_found", `cannot note on contact ${quote(id)}: no such contact`, 404);
    if (c.agent !== by && c.agent !== UNASSIGNED && !this.leads(by)) {
      throw new KefuError(
        "not_your_contact",
        `cannot note on contact ${quote(id)}: the contact belongs to another agent`,
        403,
      );
    }
    const note = teamLine(c, by, NOTE_TYPE, text, "note");
    try {
      await this.#o.store.saveOutbound(note, "sent");
    } catch (e) {
      throw new KefuError(
        "store_failed",
        `cannot keep the note on contact ${quote(id)}: ${(e as Error).message}; nothing was kept, try again`,
        503,
      );
    }
    const event = { kind: "note", note } as const;
    // The watchers first, under the conversation's owner (the sends below are then not told to them again).
    this.#o.bus.watchOnly(c.agent, event);
    for (const a of new Set([c.agent, by])) if (a !== UNASSIGNED) this.#o.bus.send(a, event);
    return note;
  }

  /** An agent's reply went out (or failed): the watchers see it in the conversation. */
  replied(message: Message, state: "sent" | "failed", detail = ""): void {
    this.#o.bus.watchOnly(message.agent, { kind: "reply", message, state, detail });
  }
}
