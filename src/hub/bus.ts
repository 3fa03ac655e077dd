/**
 * The agent bus: how "deliver this to agent X" travels from the accept path to
 * wherever X's sessions are, and who is online. In one process it is a direct
 * call into this process's {@link Delivery}. Several kefu processes would share
 * one through a broker (publish to the agent's topic, presence in a shared set)
 * by implementing {@link AgentBus} and passing it to the hub; routing and the
 * channels never see which one runs.
 *
 * A bus that delivers elsewhere reports `needsAck: true` for what it handed on:
 * the message stays unread in the store until the process holding the session
 * records the read (for a session without receipts, when it wrote it).
 *
 * @module
 */

import type { Message } from "../core/message.ts";
import type { Delivery, DeliveryReport } from "./delivery.ts";
import type { AgentEvent } from "./events.ts";
import type { Presence } from "./routing.ts";

/** Carries events to agents' sessions, wherever they are connected, and tells who is online. */
export interface AgentBus extends Presence {
  /** Hand a user's message to the agent's sessions. */
  deliver(agent: string, message: Message): DeliveryReport;
  /** Send any other event to the agent's sessions; answers how many got it (a remote bus: how many it knows of). */
  send(agent: string, event: AgentEvent): number;
  /**
   * Whether a message delivered to the agent now counts as read once written: every session of theirs is here and
   * sends no read receipts (a remote bus: false).
   */
  readsOnWrite(agent: string): boolean;
  /**
   * This process's first session of the agent opened; resolves once events for the agent published anywhere reach
   * this process (before its backlog is read, so nothing falls in between). A bus of one process needs none.
   */
  joined?(agent: string): Promise<void>;
  /** This process's last session of the agent closed. */
  left?(agent: string): void;
  /** Tell `listener` when an agent is seen offline everywhere (another process's sessions): the grace period starts. */
  watchOffline?(listener: (agent: string) => void): void;
  /**
   * Tell every session watching the team (supervisors, issue 22), wherever it is connected; without it, only this
   * process's watchers hear (the event is a `watch`).
   */
  watch?(event: AgentEvent): void;
  /**
   * Resolves once what this bus marked read for sessions without read receipts is committed: a drain requeues what
   * such a session still held only after it, so that a late "read" cannot land on a message put back to unread.
   */
  settled?(): Promise<void>;
}

/** How the hub gets its bus: from this process's sessions. */
export type AgentBusFactory = (local: Delivery) => AgentBus;

/** The bus of a single process: straight into its own sessions. */
export class LocalBus implements AgentBus {
  readonly #local: Delivery;

  constructor(local: Delivery) {
    this.#local = local;
  }

  deliver(agent: string, message: Message): DeliveryReport {
    return this.#local.message(agent, message);
  }

  send(agent: string, event: AgentEvent): number {
    return this.#local.send(agent, event);
  }

  readsOnWrite(agent: string): boolean {
    return this.#local.readsOnWrite(agent);
  }

  isOnline(agent: string): boolean {
    return this.#local.isOnline(agent);
  }

  online(): Iterable<string> {
    return this.#local.agents();
  }

  watch(event: AgentEvent): void {
    this.#local.watched(event);
  }
}
