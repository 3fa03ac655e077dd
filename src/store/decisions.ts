/**
 * The rules behind the store's decisions, once for every engine: who owns a user's message, which id a new contact
 * gets, whether WeChat's reply windows allow one more reply. Pure functions: each engine reads what they need inside
 * its own transaction and writes what they decide (see docs/store_semantics.md).
 *
 * @module
 */

import type { AssignPolicy, ContactStatus, InboundInput, WindowRefusal, WindowRule } from "./store.ts";

/**
 * The owner of a user's message: the requested agent; a user put back in the queue stays there; a user nobody owns,
 * or whose owner is away while someone is online, goes to `fewest()`; otherwise the owner.
 */
export function decideOwner(
  current: { agent: string; status: ContactStatus } | undefined,
  input: Pick<InboundInput, "requested" | "online" | "away">,
  fewest: () => string,
): string {
  if (input.requested !== undefined && input.requested !== "") return input.requested;
  if (current === undefined) return fewest();
  if (current.status === "queued" && current.agent === "") return "";
  if (current.agent === "") return fewest();
  if (input.away.has(current.agent) && input.online.length > 0) {
    // Nobody available under capacity: the user stays with their own agent rather than wait in the queue.
    return fewest() || current.agent;
  }
  return current.agent;
}

/** The online agent with the fewest open contacts (ties to the earlier in `online`); "" when nobody is online. */
export function pickFewest(online: readonly string[], open: ReadonlyMap<string, number>): string {
  let best = "";
  let min = Infinity;
  for (const agent of online) {
    const n = open.get(agent) ?? 0;
    if (n < min) {
      min = n;
      best = agent;
    }
  }
  return best;
}

/**
 * The ids a new contact may get, in order: the user's own id, then qualified by the account (the channel when there
 * is none), then numbered. The first one no contact has is taken.
 */
export function* contactIds(user: string, channel: string, account: string): Generator<string> {
  yield user;
  const qualified = `${user}@${account || channel}`;
  yield qualified;
  for (let n = 2;; n++) yield `${qualified}#${n}`;
}

/** The inbound message types that open or close a window, as `opens` names them (`event:<Event>` for events). */
export function windowType(type: string, extra: Record<string, string> | undefined | null): string {
  return type === "event" ? `event:${extra?.Event ?? ""}` : type;
}

/** What an engine found for one rule: when its window opened (ms; -Infinity: never) and replies since. */
export interface WindowUse {
  openedAt: number;
  used: number;
}

/**
 * Whether one more reply may go, given each rule's window: the index of the first open window with replies left
 * (the short one first when listed first), or the refusal.
 */
export function decideWindow(
  rules: readonly WindowRule[],
  uses: readonly WindowUse[],
  now: number,
): number | WindowRefusal {
  for (let i = 0; i < rules.length; i++) {
    const r = rules[i];
    const u = uses[i];
    if (now - u.openedAt < r.ms && u.used < r.quota) return i;
  }
  return {
    refused: true,
    windows: rules.map((r, i) => ({
      name: r.name,
      openedAt: uses[i].openedAt,
      used: uses[i].used,
      quota: r.quota,
      ms: r.ms,
    })),
  };
}

/** Whether a rule's `opens` lists an inbound message's window type (`*`: any type that is not an event). */
export function opensWindow(opens: readonly string[], type: string): boolean {
  return opens.includes(type) || (opens.includes("*") && !type.startsWith("event:"));
}

/** The message types that close every window (an unfollow). */
export const CLOSES_WINDOWS = "event:unsubscribe";

/**
 * The agent a waiting or new user goes to (issue 22): among `candidates` (online, availability `online`, in
 * preference order) those under capacity; `fewest` picks the fewest open (ties to the earlier), `round_robin` the one
 * assigned longest ago (`lastAssigned`: a counter per agent, absent: never; ties to the earlier). "" when none.
 */
export function pickAgent(
  candidates: readonly string[],
  open: ReadonlyMap<string, number>,
  capacity: (agent: string) => number,
  policy: AssignPolicy,
  lastAssigned: ReadonlyMap<string, number>,
): string {
  let best = "";
  let key = Infinity;
  for (const agent of candidates) {
    const n = open.get(agent) ?? 0;
    if (n >= capacity(agent)) continue;
    const k = policy === "round_robin" ? lastAssigned.get(agent) ?? -1 : n;
    if (k < key) {
      key = k;
      best = agent;
    }
  }
  return best;
}

/** No limit: the capacity when none is configured. */
export const UNLIMITED = (): number => Infinity;
