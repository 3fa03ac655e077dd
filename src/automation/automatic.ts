/**
 * Automatic messages (issue 22): what kefu sends to a user by itself, per channel account (CONFIG_FILE `automatic`,
 * parsed by `config.ts`):
 *
 * - a **welcome** on an Official Account's follow (`subscribe`), and on other channels to a new contact's first message;
 * - a **closed reply** to a user who writes outside business hours, once per user per closed period;
 * - **please wait** (请稍候) to a user who has waited in the queue longer than a set time, once per wait;
 * - **auto-resolve** of a conversation without a message either way for a set time, with an optional closing text.
 *
 * Each goes out like an agent's reply — kept and counted against the channel's reply windows in one store step
 * (`saveReply` with the channel's rules), then sent through the contact's channel — as agent {@link KEFU} with
 * `extra.automatic` naming the kind, so that the history shows it apart. A refused window means it is not sent:
 * logged, never retried. Before anything is sent the store records the occasion (`claimAutomatic`), so that a
 * restart or a second node never sends it twice. The time-based work ({@link Automatic.tick}) runs as a job
 * (`job.ts`) under a store lease.
 *
 * @module
 */

import type { ReplyRouter } from "../channels/channel.ts";
import { WX_OFFICIAL } from "../channels/wx_official/webhook.ts";
import type { Logger } from "../core/log.ts";
import { type Message, newMessageId } from "../core/message.ts";
import type { AgentEvent } from "../hub/events.ts";
import type { InboundResult } from "../hub/hub.ts";
import { AUTOMATIC_AGENT, type ContactRecord, type Store } from "../store/store.ts";
import type { AutomaticConfig } from "./config.ts";

/** The agent id automatic messages are kept under: no agent has it (the page labels its lines 自动回复). */
export const KEFU = AUTOMATIC_AGENT;

/** The kinds of automatic message, as `extra.automatic` and the store's records name them. */
export type AutomaticKind = "welcome" | "closed" | "please_wait" | "auto_resolve";

/** How one automatic message went: `duplicate` — sent before (by this node or another), so not again. */
export type AutomaticOutcome = "sent" | "refused" | "failed" | "duplicate" | "none";

// Bounds of one pass of the timed work: a pass never runs away, the next one goes on.
const PASS_LIMIT = 200;

/** What {@link Automatic} works with. */
export interface AutomaticOptions {
  config: AutomaticConfig;
  store: Pick<Store, "claimAutomatic" | "contact" | "history" | "idleContacts" | "queue" | "saveReply"> & {
    setOutboundState: Store["setOutboundState"];
  };
  /** How replies reach users and which windows they are counted against. */
  router: Pick<ReplyRouter, "send" | "windowRules">;
  /**
   * The conditional resolve (the workplace's workflow): only if `agent` still owns it, it is open and it has no
   * message after `lastSeq`; undefined when it changed meanwhile.
   */
  resolveIdle(id: string, agent: string, by: string, lastSeq: number): Promise<unknown | undefined>;
  log: Logger;
  /**
   * Tell an agent's sessions, on whichever node (the hub's `notify`, through the agent bus): the contact's owner
   * sees kefu's line live, as the history will show it.
   */
  tell?(agent: string, event: AgentEvent): void;
  /** Clock in epoch ms (tests move it). */
  now?: () => number;
}

/** Automatic messages; see the module documentation. */
export class Automatic {
  readonly #o: AutomaticOptions;
  readonly #now: () => number;
  /** Work started by accepted messages, waited for by {@link drain}. */
  readonly #pending = new Set<Promise<void>>();
  /** Waits this process has dealt with (`contact\nqueuedAt`), so that a long queue is not read again every pass. */
  #waitsDone = new Set<string>();

  constructor(options: AutomaticOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * A user's message or event was accepted (committed): a welcome on a follow or a new contact's first message, a
   * closed reply outside business hours. Never rejects (a failure is logged); resolves once they went out.
   */
  accepted(message: Message, result: InboundResult): Promise<void> {
    if (result.status === "duplicate" || this.#o.config.rules.length === 0) return Promise.resolve();
    const work = this.#accepted(message, result).finally(() => this.#pending.delete(work));
    this.#pending.add(work);
    return work;
  }

  /** Wait for the work accepted messages started (shutdown, before the store closes). */
  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all(this.#pending);
  }

  async #accepted(message: Message, result: InboundResult): Promise<void> {
    try {
      // The channel named the account: nothing is read from the store unless a message may be due.
      const rule = this.#o.config.ruleFor(message.channel, message.account ?? "");
      if (rule === undefined) return;
      const event = message.type === "event" ? message.extra?.Event ?? "" : undefined;
      // An Official Account's follow; on channels without one, a new contact's first message (checked below).
      const welcome = rule.welcome !== "" &&
        (event === "subscribe" || (event === undefined && message.channel !== WX_OFFICIAL));
      // Only what the user wrote gets the closed reply: a follow or a menu click is no question to answer.
      const period = event === undefined && rule.closedReply !== "" ? rule.hours?.closedPeriod(this.#now()) : undefined;
      if (!welcome && period === undefined) return;
      const contact = await this.#o.store.contact(result.contact);
      if (contact === undefined) return;
      if (welcome && (event === "subscribe" || await this.#first(contact, message))) {
        await this.send(contact, "welcome", event === "subscribe" ? message.id : "first", rule.welcome);
      }
      if (period !== undefined) await this.send(contact, "closed", period, rule.closedReply);
    } catch (e) {
      this.#o.log.warn("automatic_failed", { contact: result.contact, error: String(e) });
    }
  }

  // The contact's first message ever: the only one in its history. (On an Official Account a user who followed
  // before kefu knew them gets no welcome when they first write: the welcome belongs to the follow.)
  async #first(contact: ContactRecord, message: Message): Promise<boolean> {
    const newest = await this.#o.store.history(contact.id, { limit: 2 });
    return newest.length === 1 && newest[0].id === message.id;
  }

  /**
   * One pass of the timed work: please-wait to users waiting longer than their rule says, auto-resolve of idle
   * conversations (`resolve` false: please-wait only — the job looks for idle conversations less often, as the
   * look costs a read per open conversation). Resolves to what it did. Throws when the store cannot be read.
   */
  async tick(options: { resolve?: boolean } = {}): Promise<{ pleaseWait: number; resolved: number }> {
    const pleaseWait = await this.#pleaseWait();
    return { pleaseWait, resolved: options.resolve === false ? 0 : await this.#autoResolve() };
  }

  async #pleaseWait(): Promise<number> {
    const { config, store } = this.#o;
    const waits = config.rules.flatMap((r) => r.pleaseWait ? [r.pleaseWait.afterMs] : []);
    if (waits.length === 0) return 0;
    const now = this.#now();
    const queue = await store.queue();
    // Only the waits still in the queue are remembered: the set is bounded by the queue.
    const done = new Set<string>();
    let sent = 0;
    let looked = 0;
    for (const [i, entry] of queue.entries()) {
      // Longest-waiting first: past the shortest wait, nobody behind has waited long enough either.
      if (now - entry.queuedAt < Math.min(...waits) || looked >= PASS_LIMIT) break;
      const key = `${entry.id}\n${entry.queuedAt}`;
      if (this.#waitsDone.has(key)) {
        done.add(key);
        continue;
      }
      looked++;
      const contact = await store.contact(entry.id);
      const wait = contact && config.ruleFor(contact.channel, contact.account)?.pleaseWait;
      if (!contact || !wait) {
        done.add(key);
        continue;
      }
      if (now - entry.queuedAt < wait.afterMs) continue;
      const text = wait.text.replaceAll("{position}", String(i + 1));
      const outcome = await this.send(contact, "please_wait", String(entry.queuedAt), text);
      if (outcome === "sent") sent++;
      // A store failure is looked at again next pass; anything else is settled (the store's record says so).
      if (outcome !== "failed") done.add(key);
    }
    this.#waitsDone = done;
    return sent;
  }

  async #autoResolve(): Promise<number> {
    const { config, store, log } = this.#o;
    const now = this.#now();
    let resolved = 0;
    let looked = 0;
    // Each rule asks only for the conversations it governs, idle for its own time: a page is never filled by
    // accounts without an auto-resolve, nor by conversations not idle long enough for theirs.
    for (const { autoResolve, scope } of config.resolveScopes()) {
      if (looked >= PASS_LIMIT) break;
      // Idle for the set time or longer: stored at or before the cutoff (the store answers those strictly before).
      const idle = await store.idleContacts(now - autoResolve.afterMs + 1, PASS_LIMIT - looked, scope);
      looked += idle.length;
      for (const c of idle) {
        // The store's scope says the same; checked again, so that a mistake there never resolves a wrong one.
        if (config.ruleFor(c.channel, c.account)?.autoResolve !== autoResolve) continue;
        // Only if its owner and status are still these and nothing was said since: an agent who acted meanwhile,
        // or a user who wrote, wins.
        if (await this.#o.resolveIdle(c.id, c.agent, KEFU, c.lastSeq) === undefined) continue;
        resolved++;
        log.info("auto_resolved", { contact: c.id, agent: c.agent, idle_ms: now - c.lastAt });
        const contact = autoResolve.text === "" ? undefined : await store.contact(c.id);
        if (contact) await this.send(contact, "auto_resolve", String(c.lastAt), autoResolve.text);
      }
    }
    return resolved;
  }

  /**
   * Send `text` to `contact` as kefu's own message of `kind`, once for `key`: recorded first (a repeat is
   * `duplicate`), then kept and counted against the channel's windows (refused: `refused`, logged, not retried),
   * then sent through the contact's channel. Never throws.
   */
  async send(contact: ContactRecord, kind: AutomaticKind, key: string, text: string): Promise<AutomaticOutcome> {
    const { store, router, log } = this.#o;
    const fields = { contact: contact.id, channel: contact.channel, account: contact.account, kind };
    const now = this.#now();
    const message: Message = {
      id: `auto-${newMessageId()}`,
      direction: "out",
      channel: contact.channel,
      account: contact.account,
      contact: contact.id,
      agent: KEFU,
      company: contact.company,
      type: "text",
      content: text,
      media: "",
      sendTime: Math.floor(now / 1000),
      name: KEFU,
      avatar: "",
      extra: { automatic: kind },
    };
    try {
      if (!await store.claimAutomatic(contact.id, kind, key)) return "duplicate";
      const kept = await store.saveReply(message, router.windowRules(contact));
      if ("refused" in kept) {
        log.info("automatic_refused", { ...fields, detail: "the channel's reply window does not allow it now" });
        return "refused";
      }
    } catch (e) {
      log.warn("automatic_failed", { ...fields, error: String(e) });
      return "failed";
    }
    let state: "sent" | "failed" = "sent";
    let detail: string;
    try {
      detail = await router.send(message, contact);
      log.info("automatic_sent", { ...fields, status: detail });
    } catch (e) {
      // The router has logged it (reply_failed); the history says why.
      state = "failed";
      detail = e instanceof Error ? e.message : String(e);
    }
    await store.setOutboundState(message, state, detail).catch((e) =>
      log.error("reply_state_failed", { contact: contact.id, id: message.id, error: String(e) })
    );
    // Told once it went (or failed), as the history now has it: the page draws the line with its state at once.
    // A user waiting in the queue has no owner to tell (the agent who takes them reads it in the history).
    if (contact.agent !== "") {
      this.#o.tell?.(contact.agent, { kind: "outbound", message, state, detail: state === "failed" ? detail : "" });
    }
    return state;
  }
}
