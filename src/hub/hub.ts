/**
 * The hub: the accept path every channel hands its users' messages to (the store decides and keeps, then the
 * message goes to its agent's sessions), and the agents' side of it (sessions connecting, read receipts). It holds no
 * copy of the store: who owns whom, what is unread, what waits — the {@link Store} decides and answers. What it keeps
 * is this process's own: the sessions ({@link Delivery}), the bus to other processes' sessions ({@link AgentBus}), and
 * who went offline when ({@link Away}).
 *
 * The other use cases sit beside it: replies ({@link ReplyService}, `replies.ts`), the workplace's actions
 * ({@link Workflow}, `workflow.ts`). Wire formats live elsewhere (channels on the way in, dialects on the way out):
 * here there are only `Message`s and {@link AgentEvent}s.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import { type Logger, silentLogger } from "../core/log.ts";
import type { Message } from "../core/message.ts";
import type { Role } from "../core/roles.ts";
import { Reports } from "../reports/reports.ts";
import {
  type AssignPolicy,
  AUTOMATIC_AGENT,
  type InboundState,
  type MessageRef,
  type Store,
  type StoredMessage,
} from "../store/store.ts";
import { Assigner } from "./assignment.ts";
import { type AgentBus, type AgentBusFactory, LocalBus } from "./bus.ts";
import { CannedReplies } from "./canned.ts";
import { type AgentPeer, Delivery } from "./delivery.ts";
import { type AgentEvent, workflowLine } from "./events.ts";
import { Away, type ContactView, ownedBy, type ReplyWindowOf, UNASSIGNED, viewOf } from "./routing.ts";
import { Team, WatchedBus } from "./team.ts";
import { Workflow } from "./workflow.ts";

export type { AgentPeer } from "./delivery.ts";
export type { ContactView } from "./routing.ts";

/** Limits of the hub; every queue it keeps in memory is bounded. */
export interface HubOptions {
  /** The store of record. */
  store: Store;
  /** Where failures in the background are reported; default: nowhere. */
  log?: Logger;
  /** The bus to agents' sessions; default: this process's own ({@link LocalBus}). */
  bus?: AgentBusFactory;
  /** New messages a session may have waiting behind its backlog before it is closed (4001). Default 1000. */
  maxLiveWhileSyncing?: number;
  /** Sockets one agent may hold open; the oldest is closed (4000) past it. */
  maxSocketsPerAgent?: number;
  /** Unread messages read from the store per page when an agent connects (all pages are sent). */
  redeliverPage?: number;
  /** A socket with more unsent bytes than this is closed (4001); its messages stay unread. */
  maxBufferedBytes?: number;
  /**
   * A user whose agent has been offline this long goes to an online agent with their waiting messages (a reload
   * or a short network loss keeps them); default 30 s. Nobody online: they wait for their own agent.
   */
  reassignAfterMs?: number;
  /** What each contact's channel allows now (shown with contacts); default: no reply windows. */
  replyWindow?: ReplyWindowOf;
  /** The configured agents (CONFIG_FILE `agents`): contacts can be transferred to them while they are offline. */
  agents?: readonly string[];
  /** Roles other than `agent` (CONFIG_FILE `agents[].role`), by agent id; default: everyone is an `agent`. */
  roles?: Readonly<Record<string, Role>>;
  /** Open conversations an agent holds before new users wait in the queue (issue 22); default: no limit. */
  capacity?: (agent: string) => number;
  /** Who a new user goes to among the available agents under capacity; default `fewest`. */
  policy?: AssignPolicy;
  now?: () => number;
}

/** How a channel hands a message over. */
export interface AcceptOptions {
  /** The agent the source asked for (the seed's push names one): it takes the contact. */
  agent?: string;
  /**
   * Its media file is still to be fetched and converted: keep it (state `media`) but deliver it only when
   * {@link Hub.release} says it is ready (seed 004 §3: re-store first, then the URL to the agent).
   */
  holdForMedia?: boolean;
}

/** What happened to an inbound message. */
export interface InboundResult {
  /** `pending`: kept, delivered once its media is ready. */
  status: "delivered" | "queued" | "duplicate" | "pending";
  id: string;
  /** The agent the message is for; "" while no agent is online to take a new user. */
  agent: string;
  /** The contact's id, as agents see it. */
  contact: string;
  /** Sockets the envelope was written to. */
  sockets: number;
}

function storeFailed(m: Message, e: unknown): KefuError {
  return new KefuError(
    "store_failed",
    `cannot keep message ${quote(m.id)}: ${(e as Error).message}; nothing was accepted, try again`,
    503,
  );
}

// Users taken over per pass when their agent is away, and the unread messages read per user handed over.
const REASSIGN_PAGE = 500;
const HAND_OVER_PAGE = 1000;
// WebSocket.CLOSED: a session whose close handshake ended.
const CLOSED = 3;

/** Routes messages between users and agents. */
export class Hub {
  #draining = false;
  readonly #store: Store;
  readonly #log: Logger;
  readonly #delivery: Delivery;
  readonly #bus: AgentBus;
  /** The bus without the watchers: what a hand-over re-delivers they saw already when it came. */
  readonly #unwatched: AgentBus;
  readonly #watched: WatchedBus;
  readonly #away: Away;
  readonly #replyWindow: ReplyWindowOf;
  /** The workplace's actions on contacts: transfer, resolve, reopen, take, names and notes, search. */
  readonly workflow: Workflow;
  /** The team's and each agent's canned replies (issue 22). */
  readonly canned: CannedReplies;
  readonly #roles: Readonly<Record<string, Role>>;
  /** Reports and conversation exports for supervisors (issue 22). */
  readonly reports: Reports;
  /** Availability, capacity and the queue (issue 22). */
  readonly assignment: Assigner;
  /** The supervisor's view: the team's state, watching, assigning, internal notes (issue 22). */
  readonly team: Team;
  #reassigning: Promise<number> | undefined;
  /** Messages stored read that reached no session, on their way back to unread and out again ({@link closeAll} waits). */
  readonly #requeueing = new Set<Promise<void>>();

  constructor(options: HubOptions) {
    this.#store = options.store;
    this.#log = options.log ?? silentLogger;
    this.#delivery = new Delivery({
      store: this.#store,
      log: this.#log,
      maxSocketsPerAgent: options.maxSocketsPerAgent ?? 8,
      maxBufferedBytes: options.maxBufferedBytes ?? 4 << 20,
      redeliverPage: options.redeliverPage ?? 1000,
      maxLiveWhileSyncing: options.maxLiveWhileSyncing ?? 1000,
    });
    // Every event for a conversation's owner reaches the supervisors watching too (issue 22).
    this.#unwatched = (options.bus ?? ((local) => new LocalBus(local)))(this.#delivery);
    const watched = new WatchedBus(this.#unwatched);
    this.#bus = this.#watched = watched;
    this.#away = new Away(this.#bus, options.reassignAfterMs ?? 30_000, options.now);
    // Several processes: an agent whose last session elsewhere closed is away from then on.
    this.#bus.watchOffline?.((agent) => this.#away.disconnected(agent));
    this.#replyWindow = options.replyWindow ?? (() => null);
    this.assignment = new Assigner({
      store: this.#store,
      bus: this.#bus,
      log: this.#log,
      capacity: options.capacity,
      policy: options.policy,
      view: (id) => this.view(id),
      handOver: (contact, to) => this.#handOver(contact, to),
      now: options.now,
    });
    this.#roles = options.roles ?? {};
    this.canned = new CannedReplies({ store: this.#store, roleOf: (a) => this.roleOf(a) });
    this.reports = new Reports({ store: this.#store, roleOf: (a) => this.roleOf(a) });
    this.workflow = new Workflow({
      store: this.#store,
      bus: this.#bus,
      log: this.#log,
      agents: options.agents,
      roleOf: (a) => this.roleOf(a),
      away: this.#away,
      view: (id) => this.view(id),
      handOver: (contact, to) => this.#handOver(contact, to),
      slotFreed: () => this.fillQueue(),
    });
    this.team = new Team({
      store: this.#store,
      bus: watched,
      log: this.#log,
      workflow: this.workflow,
      assignment: this.assignment,
      away: this.#away,
      roleOf: (a) => this.roleOf(a),
      view: (id) => this.view(id),
      viewOf: (c) => viewOf(c, this.#replyWindow),
      handOver: (contact, to) => this.#handOver(contact, to),
      slotFreed: () => this.fillQueue(),
      now: options.now,
    });
  }

  /** A slot may have freed (or an agent came): the longest-waiting users go to agents under capacity. Never throws. */
  fillQueue(): void {
    this.assignment.fill().catch((e) => this.#log.error("assign_failed", { error: String(e) }));
  }

  /** An agent's role in the team: CONFIG_FILE's `agents[].role`, `agent` when not listed. */
  roleOf(agent: string): Role {
    return Object.hasOwn(this.#roles, agent) ? this.#roles[agent] : "agent";
  }

  /**
   * The accept path: the store decides who gets one message from a user of a channel and keeps it (once), then it
   * goes to that agent's sessions. The channel hands it over with `channel`, `account` and `contact` (the user's id
   * in that channel); the hub sets `contact` to the contact's id and `agent` to its owner. Resolves once the message
   * is committed; throws `KefuError` 503 when the store failed: then nothing is kept, and a retry is welcome.
   */
  async accept(message: Message, options: AcceptOptions = {}): Promise<InboundResult> {
    const held = options.holdForMedia === true;
    // Sockets the message was written to as soon as the store decided (before its commit), when it told at once.
    let early: number | undefined;
    let outcome;
    try {
      outcome = await this.#store.acceptInbound({
        message,
        state: held ? "media" : "accepted",
        requested: options.agent,
        ...this.assignment.input(),
        away: this.#away,
        readsOnWrite: (agent) => this.#bus.readsOnWrite(agent),
        decided: (o) => {
          if (o.status !== "stored" || held || o.contact.agent === UNASSIGNED || o.movedFrom !== undefined) return;
          message.contact = o.contact.id;
          message.agent = o.contact.agent;
          early = this.#deliver(o.contact.agent, message, o.state);
        },
      });
    } catch (e) {
      throw storeFailed(message, e);
    }
    const c = outcome.contact;
    message.contact = c.id;
    message.agent = c.agent;
    const result = (status: InboundResult["status"], sockets = 0): InboundResult => ({
      status,
      id: message.id,
      agent: c.agent,
      contact: c.id,
      sockets,
    });
    if (outcome.status === "duplicate") return result("duplicate");
    if (outcome.reopened) this.#tellContact([c.agent], c.id, "reopened");
    // A user waiting in the queue wrote again: every agent's list shows it.
    // Also a new user waiting for a free slot (issue 22): every page shows them in the queue.
    if (c.agent === UNASSIGNED) this.#tellContact(this.#bus.online(), c.id, "queued");
    if (held) return result("pending");
    // A message no owner's session gets through the bus now (the queue's; one handed over below): the watchers see it.
    if (c.agent === UNASSIGNED || outcome.movedFrom !== undefined) this.#watched.watchMessage(c.agent, message);
    if (c.agent === UNASSIGNED) return result("queued");
    // Taken over from an agent who is away: the messages that waited for them go first, this one among them.
    if (outcome.movedFrom !== undefined && this.#bus.isOnline(c.agent)) {
      await this.#handOver(c.id, c.agent).catch((e) =>
        this.#log.error("hand_over_failed", { contact: c.id, agent: c.agent, error: String(e) })
      );
      if (outcome.state !== "acked") return result(this.#bus.isOnline(c.agent) ? "delivered" : "queued", 1);
    }
    const sockets = early ?? this.#deliver(c.agent, message, outcome.state);
    return result(sockets > 0 ? "delivered" : "queued", sockets);
  }

  /**
   * A message kept with `holdForMedia` is ready: its `media` and `extra` now say where its file is (or why there is
   * none). Record that, then deliver it to its contact's agent. False when it had been released already (nothing is
   * delivered twice).
   */
  async release(message: Message): Promise<boolean> {
    const done = await this.#store.finishMedia(message, message.media, message.extra, "accepted");
    if (!done) return false;
    const c = await this.#store.contact(message.contact);
    const agent = c?.agent ?? UNASSIGNED;
    message.agent = agent;
    if (agent !== UNASSIGNED) this.#deliver(agent, message, "accepted");
    return true;
  }

  /**
   * An agent asks for a failed media file to be tried again: the message waits for its media once more (and is
   * delivered again, with its file or a new reason, by {@link release}). Throws `KefuError` 404 when the agent has no
   * such message whose media failed.
   */
  async reopenMedia(agent: string, ref: MessageRef): Promise<StoredMessage> {
    await this.ownedContact(agent, ref.contact, "retry the media of");
    const m = await this.#store.reopenMedia(ref, agent);
    if (m === undefined) {
      throw new KefuError(
        "not_found",
        `cannot retry the media of message ${quote(ref.id)}: no message of contact ${
          quote(ref.contact)
        } whose file failed`,
        404,
      );
    }
    return m;
  }

  /**
   * Whether a message of one of `agent`'s contacts uses the stored media file named by either of `paths` (of any
   * contact, for a supervisor or admin).
   */
  async mediaOwnedBy(paths: readonly [string, string], agent: string): Promise<boolean> {
    if (await this.#store.mediaOwnedBy(paths, agent)) return true;
    // A supervisor or admin reads every conversation (issue 22), and so its files: any owner's, or the queue's.
    if (!this.team.leads(agent)) return false;
    for (const a of [UNASSIGNED, ...(await this.workflow.agents()).map((x) => x.agent_id)]) {
      if (a !== agent && await this.#store.mediaOwnedBy(paths, a)) return true;
    }
    return false;
  }

  /**
   * An agent's session is open: register it, give the agent the users who wrote while no agent was online, then
   * send what it has not read, oldest first, followed by whatever came in meanwhile.
   */
  async connect(agent: string, peer: AgentPeer, options: { acks?: boolean; watch?: boolean } = {}): Promise<void> {
    this.#delivery.register(agent, peer, options.acks ?? false);
    // A supervisor's session that asked to watch gets every conversation's events (others' requests are ignored).
    if (options.watch === true && this.team.leads(agent)) this.#delivery.watch(peer);
    this.#away.connected(agent);
    try {
      await this.#bus.joined?.(agent);
      // Users who waited go to agents with a free slot (this one among them; its backlog follows below).
      await this.assignment.fill(agent);
    } catch (e) {
      this.disconnect(agent, peer);
      throw e;
    }
    await this.#delivery.catchUp(agent, peer);
  }

  /** An agent's session closed. Its contacts stay its own; their messages wait in the store until it is back. */
  disconnect(agent: string, peer: AgentPeer): void {
    this.#delivery.unregister(agent, peer);
    if (this.#delivery.isOnline(agent)) return;
    this.#bus.left?.(agent);
    this.#away.disconnected(agent);
  }

  /**
   * The agent read these messages (read receipt): they are not sent again. A ref with contact "" names any
   * contact. The session that sent it (`peer`) acknowledges from now on.
   */
  async ack(agent: string, refs: MessageRef[], peer?: AgentPeer): Promise<number> {
    if (peer !== undefined) this.#delivery.acknowledges(peer);
    return (await this.#store.ack(agent, refs)).length;
  }

  /**
   * The agent's contact `contact`; throws `KefuError` 404 when there is none, 403 when it is another agent's.
   * `action` names what was refused ("reply to", "read the history of").
   */
  async ownedContact(agent: string, contact: string, action = "reply to") {
    return ownedBy(agent, contact, await this.#store.contact(contact), action);
  }

  /**
   * One page of a conversation of the agent's own contact (or of a user waiting for an agent; any contact for a
   * supervisor or admin), newest first.
   */
  async history(agent: string, contact: string, before: string | undefined, limit: number): Promise<StoredMessage[]> {
    const c = await this.#store.contact(contact);
    // A user waiting in the queue: any agent may read the conversation before taking them.
    if (c === undefined || (c.agent !== UNASSIGNED && !this.team.leads(agent))) {
      ownedBy(agent, contact, c, "read the history of");
    }
    return this.#store.history(contact, { before, limit });
  }

  /** Send an event to every session of an agent; answers how many. */
  notify(agent: string, event: AgentEvent): number {
    return this.#bus.send(agent, event);
  }

  /** The contacts of one agent, most recent first (the users waiting for an agent: {@link Workflow.queue}). */
  async contactsOf(agent: string): Promise<ContactView[]> {
    if (agent === UNASSIGNED) return [];
    return (await this.#store.contactsOf(agent)).map((c) => viewOf(c, this.#replyWindow));
  }

  /** One contact as agents see it; undefined when there is none. */
  async view(id: string): Promise<ContactView | undefined> {
    const c = await this.#store.contact(id);
    return c && viewOf(c, this.#replyWindow);
  }

  /** Whether an agent has at least one session open. */
  isOnline(agent: string): boolean {
    return this.#bus.isOnline(agent);
  }

  /** Messages not yet read by their agent, wherever they wait (from the store). */
  async waiting(): Promise<number> {
    return (await this.#store.stats()).unread;
  }

  /**
   * Users whose agent has been away longer than the grace period, with messages waiting, go to the online agent
   * with the fewest open contacts, with their messages — without waiting for the user to write again. Run now and
   * then (main.ts: every second); answers how many users moved. Each move is a conditional update in the store, so
   * that two processes doing this at once move each user once.
   */
  reassignAway(): Promise<number> {
    // The queue is filled on the same beat: a slot freed in another process, or capacity raised, is seen here too.
    this.#reassigning ??= this.#reassign().then(async (n) => (await this.assignment.fill(), n)).finally(() =>
      this.#reassigning = undefined
    );
    return this.#reassigning;
  }

  async #reassign(): Promise<number> {
    const online = [...this.#bus.online()];
    if (online.length === 0) return 0;
    const owners = [...(await this.#store.openCounts()).keys()];
    let moved = 0;
    for (const agent of this.#away.among(owners)) {
      for (const c of await this.#store.waitingContacts(agent, REASSIGN_PAGE)) {
        // Only to an agent who is 在线 and under capacity (issue 22); nobody: the user stays with their own.
        const to = await this.assignment.fewestAvailable();
        if (to === "") break;
        const text = `${agent} was away: the conversation was assigned to ${to}`;
        const line = workflowLine(c, AUTOMATIC_AGENT, text, { action: "assigned", from: agent, to });
        const after = await this.#store.updateContact(c.id, { expectAgent: agent, agent: to, line });
        if (after === undefined) continue;
        moved++;
        this.#log.info("contact_reassigned", { contact: c.id, from: agent, to, reason: "agent_away" });
        // Told first (its page learns the contact), then the messages; a failed read does not hold them back.
        const view = await this.view(c.id).catch((e) => {
          this.#log.warn("contact_event_failed", { contact: c.id, error: String(e) });
          return undefined;
        });
        if (view !== undefined) {
          this.#bus.send(to, { kind: "contact", action: "assigned", contact: view, by: "", from: agent, to });
        }
        await this.#handOver(c.id, to);
      }
    }
    return moved;
  }

  /** Send the heartbeat to every session of this process. */
  heartbeat(): void {
    this.#delivery.broadcast({ kind: "heartbeat" });
  }

  /** Whether this process is draining: it opens no new sessions (their upgrade is answered 503, see {@link drain}). */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Open no new sessions from now on (a drain): a page that reconnects through the load balancer while this process
   * closes its sockets is refused, and the balancer tries another node, instead of being taken here and cut a moment
   * later by the server's own shutdown (with least_conn the draining node, with no sockets left, is the one it picks).
   */
  drain(): void {
    this.#draining = true;
  }

  /**
   * Close every session of this process (shutdown); resolves once their close handshakes ended or `waitMs` passed (of
   * which a socket without read receipts still sending may take half, see {@link Delivery.closeAll}).
   */
  async closeAll(code: number, reason: string, waitMs = 0): Promise<void> {
    const until = Date.now() + waitMs;
    const peers = await this.#delivery.closeAll(
      code,
      reason,
      waitMs / 2,
      () => this.#unwatched.settled?.() ?? Promise.resolve(),
    );
    // Waited for because the server ends what is left right after: a client whose close frame had not gone out yet
    // sees an abnormal close, not `code` (seen under load: the page then backs off instead of reconnecting at once).
    while (Date.now() < until && peers.some((p) => p.readyState !== CLOSED)) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // Accepts that came as the sessions closed: their messages are unread again and published before the store and
    // the bus close (the agent's new session, on another node, may have read its backlog before).
    await Promise.allSettled([...this.#requeueing]);
  }

  /** Counters for `/healthz`: this process's sessions, and the store's contacts and unread messages. */
  async stats(): Promise<{ agents_online: number; sockets: number; contacts: number; held: number }> {
    const s = await this.#store.stats();
    return { ...this.#delivery.stats(), contacts: s.contacts, held: s.unread };
  }

  // Write one message to the agent's sessions. One stored as read (its sessions send no receipts) that did not reach
  // a session after all is unread again.
  #deliver(agent: string, m: Message, state: InboundState): number {
    const d = this.#bus.deliver(agent, m);
    if (state === "acked" && d.sockets === 0) {
      // Its session closed after the store decided: one the agent opened meanwhile (here or on another node) may have
      // read its backlog before the requeue, and nothing else would write it there until its next connect.
      const p = this.#requeueAndDeliver(m).finally(() => this.#requeueing.delete(p));
      this.#requeueing.add(p);
      this.#background("requeue_failed", p, { agent, message: m.id });
    } else if (state === "acked" && d.needsAck) {
      this.#background("requeue_failed", this.#store.requeue([m]), { agent, message: m.id });
    } else if (state === "accepted" && d.sockets > 0 && !d.needsAck) {
      // Stored before its sessions read on write (one was still catching up when the store decided): read now.
      this.#background("ack_failed", this.#store.ack(agent, [m]), { agent, message: m.id });
    }
    return d.sockets;
  }

  // A message stored as read that reached no session: unread again, then written to the sessions of its contact's
  // owner now (they drop it when their backlog had it; one without receipts reads it, so it is read again). Whether
  // the owner is online is not asked: a session opened on another node a moment ago may not be known here yet (a
  // draining node's accept is where this happens), and the bus publishes anyway.
  async #requeueAndDeliver(m: Message): Promise<void> {
    if (await this.#store.requeue([m]) === 0) return;
    const c = await this.#store.contact(m.contact);
    if (c === undefined || c.agent === UNASSIGNED) return;
    m.agent = c.agent;
    // Not through the watchers: they saw it when it came.
    const d = this.#unwatched.deliver(c.agent, m);
    if (d.sockets > 0 && !d.needsAck) await this.#store.ack(c.agent, [m]);
  }

  // A contact went to `to` (a transfer, the queue, an away owner): its unread messages go to `to`'s sessions now.
  // Sessions without read receipts have read what was written to them.
  async #handOver(contact: string, to: string): Promise<void> {
    if (to === UNASSIGNED || !this.#bus.isOnline(to)) return;
    const waiting = await this.#store.unackedOf(contact, HAND_OVER_PAGE);
    let needsAck = false;
    let sockets = 0;
    for (const m of waiting) {
      m.agent = to;
      const d = this.#unwatched.deliver(to, m);
      needsAck = d.needsAck || needsAck;
      sockets = Math.max(sockets, d.sockets);
    }
    if (waiting.length > 0 && sockets > 0 && !needsAck) await this.#store.ack(to, waiting);
  }

  #tellContact(agents: Iterable<string>, id: string, action: "reopened" | "queued"): void {
    const to = [...agents].filter((a) => a !== UNASSIGNED);
    if (to.length === 0) return;
    this.#background(
      "contact_event_failed",
      this.view(id).then((view) => {
        if (view === undefined) return;
        for (const a of to) this.#bus.send(a, { kind: "contact", action, contact: view, by: "" });
      }),
      { contact: id },
    );
  }

  // A write nobody waits for: its failure is logged, never swallowed.
  #background(event: string, p: Promise<unknown>, fields: Record<string, unknown>): void {
    p.catch((e) => this.#log.error(event, { ...fields, error: String(e) }));
  }
}
