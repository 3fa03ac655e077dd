/**
 * Availability, capacity and the queue (issue 22): agents set 在线 / 忙碌 / 离开 (online / busy / away), each holds
 * at most its capacity of open conversations, and users nobody can take wait in the queue in arrival order. When a
 * slot frees — a resolve, a transfer away, an agent becoming available or connecting, capacity raised at a restart —
 * {@link Assigner.fill} gives the longest-waiting users to the agents the policy picks. The store decides each
 * assignment atomically (`assignWaiting`), so two fills at once, here or in another process, never assign one user
 * twice; this module only tells the agents and hands the users' messages over.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { pickAgent, UNLIMITED } from "../store/decisions.ts";
import {
  type AgentState,
  type AssignInput,
  type AssignPolicy,
  AUTOMATIC_AGENT,
  type Availability,
  type ContactRow,
  type Store,
} from "../store/store.ts";
import type { AgentBus } from "./bus.ts";
import { workflowLine } from "./events.ts";
import { type ContactView, UNASSIGNED } from "./routing.ts";

/** The availabilities an agent may set. */
export const AVAILABILITIES: readonly Availability[] = ["online", "busy", "away"];

/** What {@link Assigner} works with. */
export interface AssignerOptions {
  store: Store;
  bus: AgentBus;
  log: Logger;
  /** Open conversations `agent` may hold; Infinity: no limit. Default: no limit. */
  capacity?: (agent: string) => number;
  policy?: AssignPolicy;
  /** A contact as agents see it. */
  view(id: string): Promise<ContactView | undefined>;
  /** A contact went to an agent: its unread messages go to that agent's sessions. */
  handOver(contact: string, to: string): Promise<void>;
  now?: () => number;
}

/** One agent as colleagues see it. */
export interface AgentAvailability {
  agent_id: string;
  availability: Availability;
  /** Epoch seconds it was set; 0: never (online). */
  since: number;
  /** Open conversations (resolved ones do not count). */
  open: number;
  /** null: no limit. */
  capacity: number | null;
}

/** One user waiting for an agent, as the queue shows it. */
export interface QueuePlace {
  contact_id: string;
  /** 1 for the longest-waiting user. */
  position: number;
  /** Seconds since the user began to wait. */
  waiting_seconds: number;
  /** `open`: assigned by itself when a slot frees; `queued`: put back by an agent, taken by hand. */
  status: string;
}

/** Availability, capacity and the queue; see the module documentation. */
export class Assigner {
  readonly #o: AssignerOptions;
  readonly #capacity: (agent: string) => number;
  readonly #now: () => number;
  #filling: Promise<ContactRow[]> | undefined;
  #again = false;

  constructor(options: AssignerOptions) {
    this.#o = options;
    this.#capacity = options.capacity ?? UNLIMITED;
    this.#now = options.now ?? Date.now;
  }

  /** What the store's assignment decisions take: who is online now, capacities, the policy. */
  input(): AssignInput {
    return { online: [...this.#o.bus.online()], capacity: this.#capacity, policy: this.#o.policy ?? "fewest" };
  }

  /**
   * Give waiting users to agents with a free slot, longest-waiting first; resolves to the rows assigned. Calls while
   * one runs are folded into one more run after it (a slot freed meanwhile is seen). `quiet` is an agent connecting:
   * it is neither told nor handed its new users' messages (its session reads its contacts and its backlog next).
   */
  fill(quiet?: string): Promise<ContactRow[]> {
    if (this.#filling !== undefined) {
      // A connecting agent waits for the fill under way, then runs its own (quiet for it).
      if (quiet !== undefined) return this.#filling.catch(() => []).then(() => this.fill(quiet));
      this.#again = true;
      return this.#filling;
    }
    this.#filling = this.#fill(quiet).finally(() => {
      this.#filling = undefined;
      if (this.#again) {
        this.#again = false;
        this.fill().catch((e) => this.#o.log.error("assign_failed", { error: String(e) }));
      }
    });
    return this.#filling;
  }

  async #fill(quiet?: string): Promise<ContactRow[]> {
    const input = this.input();
    if (input.online.length === 0) return [];
    // A read first: nobody waiting (the usual case) costs no write, on connect nor on the job's beat.
    if (!(await this.#o.store.queue()).some((q) => q.status === "open")) return [];
    // The history says who got the user and when (the reports' waiting time ends there).
    const line = (c: ContactRow) =>
      workflowLine(c, AUTOMATIC_AGENT, `the queue assigned the conversation to ${c.agent}`, {
        action: "assigned",
        to: c.agent,
      });
    const assigned = await this.#o.store.assignWaiting({ ...input, line });
    for (const c of assigned) {
      this.#o.log.info("contact_assigned", { contact: c.id, to: c.agent, reason: "queue" });
      const view = await this.#o.view(c.id);
      if (view !== undefined) {
        const event = { kind: "contact", action: "assigned", contact: view, by: "", to: c.agent } as const;
        for (const a of new Set([c.agent, ...this.#o.bus.online()])) if (a !== quiet) this.#o.bus.send(a, event);
      }
      if (c.agent !== quiet) await this.#o.handOver(c.id, c.agent);
    }
    return assigned;
  }

  /**
   * The agent online, 在线 and under capacity with the fewest open conversations (ties to the earlier online); ""
   * when none. For moves the store does not decide under its assignment lock (a user whose agent is away).
   */
  async fewestAvailable(): Promise<string> {
    const online = [...this.#o.bus.online()];
    if (online.length === 0) return "";
    const [states, counts] = await Promise.all([this.#o.store.agentStates(), this.#o.store.openCounts(online)]);
    const busy = new Set(states.filter((s) => s.availability !== "online").map((s) => s.agent));
    return pickAgent(online.filter((a) => !busy.has(a)), counts, this.#capacity, "fewest", new Map());
  }

  /** `agent` sets its availability: kept in the store, told to every colleague online; `online` fills free slots. */
  async setAvailability(agent: string, value: unknown): Promise<AgentAvailability> {
    if (typeof value !== "string" || !AVAILABILITIES.includes(value as Availability)) {
      throw new KefuError(
        "wrong_type",
        `cannot set the availability of agent ${quote(agent)} to ${quote(value)}: expected one of ${
          AVAILABILITIES.join(", ")
        }`,
      );
    }
    let state: AgentState;
    try {
      state = await this.#o.store.setAvailability(agent, value as Availability);
    } catch (e) {
      throw new KefuError(
        "store_failed",
        `cannot set the availability of agent ${quote(agent)}: ${(e as Error).message}; nothing changed, try again`,
        503,
      );
    }
    const open = (await this.#o.store.openCounts([agent])).get(agent) ?? 0;
    const view = this.#view(state, open);
    for (const a of new Set([agent, ...this.#o.bus.online()])) this.#o.bus.send(a, { kind: "agent", agent: view });
    if (state.availability === "online") {
      this.fill().catch((e) => this.#o.log.error("assign_failed", { error: String(e) }));
    }
    return view;
  }

  /** Each of `agents` with its availability, open conversations and capacity. */
  async agents(agents: readonly string[]): Promise<AgentAvailability[]> {
    const [states, counts] = await Promise.all([this.#o.store.agentStates(), this.#o.store.openCounts(agents)]);
    const byAgent = new Map(states.map((s) => [s.agent, s]));
    return agents.map((a) =>
      this.#view(byAgent.get(a) ?? { agent: a, availability: "online", since: 0 }, counts.get(a) ?? 0)
    );
  }

  /** The users waiting for an agent, longest-waiting first, with their place and how long they have waited. */
  async queue(): Promise<QueuePlace[]> {
    const now = this.#now();
    return (await this.#o.store.queue()).map((q, i) => ({
      contact_id: q.id,
      position: i + 1,
      waiting_seconds: Math.max(0, Math.floor((now - q.queuedAt) / 1000)),
      status: q.status,
    }));
  }

  #view(s: AgentState, open: number): AgentAvailability {
    const capacity = this.#capacity(s.agent);
    return {
      agent_id: s.agent,
      availability: s.availability,
      since: Math.floor(s.since / 1000),
      open,
      capacity: Number.isFinite(capacity) ? capacity : null,
    };
  }
}

/** The capacity of each agent from the configuration: a per-agent value over the default; 0 is no limit. */
export function capacityOf(byAgent: Readonly<Record<string, number>>, fallback: number): (agent: string) => number {
  return (agent) => {
    const n = Object.hasOwn(byAgent, agent) ? byAgent[agent] : fallback;
    return n > 0 && agent !== UNASSIGNED ? n : Infinity;
  };
}
