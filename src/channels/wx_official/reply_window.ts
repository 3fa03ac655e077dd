/**
 * WeChat's customer-service reply windows: 5 messages within 48 hours of the
 * user's last message, 3 within 1 minute of a follow, a menu click or a QR scan;
 * "typing…" needs an exchange within 30 seconds and lasts 15. The store counts
 * each reply against them in the step that keeps it ({@link WINDOW_RULES}), so
 * that a reply WeChat would refuse is refused before any call, whichever kefu
 * sends it; this process keeps a view of them for the contact list and typing.
 *
 * @module
 */

import type { ReplyWindowView } from "../../hub/routing.ts";
import type { WindowRule } from "../../store/store.ts";

/** What a user did that opens (or closes) a reply window. */
export type Interaction = "message" | "follow" | "click" | "scan" | "unfollow";

/** One user's window state; times in epoch ms. Kept by the store (issue 4) as it is. */
export interface WindowState {
  lastMessageAt: number;
  messageUsed: number;
  lastEventAt: number;
  eventUsed: number;
  /** Last message either way (typing's 30-second rule). */
  lastExchangeAt: number;
  /** "typing…" shows until then. */
  typingUntil: number;
  /** lastMessageAt as last reported to `onChange` (persisted). */
  savedMessageAt: number;
}

/** Called when a user's window changed in a way worth keeping across a restart. */
export type WindowChange = (account: string, openid: string, state: WindowState) => void;

// A user's every message need not be written: a kept lastMessageAt up to a minute old only closes the window
// that much early after a restart, which errs on WeChat's side.
const SAVE_EVERY_MS = 60_000;

const HOUR = 3_600_000;
/** WeChat's rule after a user's message. */
export const MESSAGE_WINDOW = { ms: 48 * HOUR, quota: 5 } as const;
/** WeChat's rule after a follow, a menu click or a QR scan. */
export const EVENT_WINDOW = { ms: 60_000, quota: 3 } as const;
/** Typing needs an exchange this recent. */
export const TYPING_AFTER_MS = 30_000;
/** Typing shows this long unless a message or CancelTyping ends it. */
export const TYPING_SHOWS_MS = 15_000;

/**
 * The same rules for the store, which checks and counts a reply in the step that keeps it, whichever kefu sends it:
 * the short event window first, so that the 48-hour one lasts.
 */
export const WINDOW_RULES: readonly WindowRule[] = [
  {
    name: "event",
    opens: ["event:subscribe", "event:SCAN", "event:CLICK", "event:scancode_push", "event:scancode_waitmsg"],
    ms: EVENT_WINDOW.ms,
    quota: EVENT_WINDOW.quota,
  },
  { name: "message", opens: ["*"], ms: MESSAGE_WINDOW.ms, quota: MESSAGE_WINDOW.quota },
];

/** Which WeChat events open a window, by `Event` (menu events that push to the server count as clicks). */
const EVENT_INTERACTION: Record<string, Interaction> = {
  subscribe: "follow",
  unsubscribe: "unfollow",
  SCAN: "scan",
  CLICK: "click",
  scancode_push: "click",
  scancode_waitmsg: "click",
};

/** The interaction a WeChat message or event stands for; undefined for those that open no window (VIEW, LOCATION…). */
export function interactionOf(type: string, event?: string): Interaction | undefined {
  if (type !== "event") return "message";
  return event === undefined ? undefined : EVENT_INTERACTION[event];
}

function fresh(): WindowState {
  return {
    lastMessageAt: -Infinity,
    messageUsed: 0,
    lastEventAt: -Infinity,
    eventUsed: 0,
    lastExchangeAt: -Infinity,
    typingUntil: 0,
    savedMessageAt: -Infinity,
  };
}

/** Reply windows of every user, keyed by account and openid. */
export class ReplyWindows {
  readonly #users = new Map<string, WindowState>();
  readonly #now: () => number;
  readonly #onChange?: WindowChange;

  constructor(options: { now?: () => number; onChange?: WindowChange } = {}) {
    this.#now = options.now ?? Date.now;
    this.#onChange = options.onChange;
  }

  /** Record what a user did. */
  record(account: string, openid: string, what: Interaction, at = this.#now()): void {
    const key = `${account}\n${openid}`;
    if (what === "unfollow") {
      if (this.#users.delete(key)) this.#onChange?.(account, openid, fresh());
      return;
    }
    let s = this.#users.get(key);
    if (s === undefined) this.#users.set(key, s = fresh());
    let material = true;
    // An older action arriving late (a retry) neither moves the window back nor restores its quota.
    if (what === "message") {
      if (at < s.lastMessageAt) return;
      material = s.messageUsed !== 0 || at - s.savedMessageAt >= SAVE_EVERY_MS;
      s.lastMessageAt = at;
      s.messageUsed = 0;
    } else {
      if (at < s.lastEventAt) return;
      s.lastEventAt = at;
      s.eventUsed = 0;
    }
    s.lastExchangeAt = Math.max(s.lastExchangeAt, at);
    if (material) this.#changed(account, openid, s);
  }

  #changed(account: string, openid: string, s: WindowState): void {
    s.savedMessageAt = s.lastMessageAt;
    this.#onChange?.(account, openid, s);
  }

  /** A message went out: spend the quota (the short event window first, so the 48-hour one lasts) and end typing. */
  sent(account: string, openid: string): void {
    const s = this.#users.get(`${account}\n${openid}`);
    if (s === undefined) return;
    const t = this.#now();
    if (t - s.lastEventAt < EVENT_WINDOW.ms && s.eventUsed < EVENT_WINDOW.quota) s.eventUsed++;
    else s.messageUsed++;
    s.lastExchangeAt = t;
    s.typingUntil = 0;
    this.#changed(account, openid, s);
  }

  /** Why "typing…" cannot be shown now ("" when it can): no recent exchange, or it already shows. */
  typingRefusal(account: string, openid: string): string {
    const s = this.#users.get(`${account}\n${openid}`);
    const t = this.#now();
    if (s === undefined || t - s.lastExchangeAt > TYPING_AFTER_MS) {
      return "typing needs a message exchanged with the user in the last 30 seconds";
    }
    if (s.typingUntil > t) return "typing already shows (it lasts 15 seconds)";
    return "";
  }

  /**
   * What WeChat allows this user now: until when (epoch seconds, 0 = never opened) each window is open and the
   * replies left in it, by the rules {@link check} and {@link sent} apply.
   */
  view(account: string, openid: string): ReplyWindowView {
    const s = this.#users.get(`${account}\n${openid}`);
    const t = this.#now();
    if (s === undefined) return { message_until: 0, message_left: 0, event_until: 0, event_left: 0 };
    const messageUntil = s.lastMessageAt + MESSAGE_WINDOW.ms;
    const eventUntil = s.lastEventAt + EVENT_WINDOW.ms;
    return {
      message_until: Number.isFinite(messageUntil) ? Math.floor(messageUntil / 1000) : 0,
      message_left: t < messageUntil ? Math.max(0, MESSAGE_WINDOW.quota - s.messageUsed) : 0,
      event_until: Number.isFinite(eventUntil) ? Math.floor(eventUntil / 1000) : 0,
      event_left: t < eventUntil ? Math.max(0, EVENT_WINDOW.quota - s.eventUsed) : 0,
    };
  }

  /** "typing…" was shown. */
  typingShown(account: string, openid: string): void {
    const s = this.#users.get(`${account}\n${openid}`);
    if (s !== undefined) s.typingUntil = this.#now() + TYPING_SHOWS_MS;
  }

  /** Restore one user's state (at start, from the store). */
  restore(
    account: string,
    openid: string,
    kept: { lastMessageAt: number; messageUsed: number; lastEventAt: number; eventUsed: number },
  ): void {
    this.#users.set(`${account}\n${openid}`, {
      ...kept,
      lastExchangeAt: Math.max(kept.lastMessageAt, kept.lastEventAt),
      typingUntil: 0,
      savedMessageAt: kept.lastMessageAt,
    });
  }

  /** Forget users whose windows have all closed; answers how many were dropped. Keeps the map bounded. */
  sweep(): number {
    const t = this.#now();
    let n = 0;
    for (const [key, s] of this.#users) {
      if (t - s.lastMessageAt >= MESSAGE_WINDOW.ms && t - s.lastEventAt >= EVENT_WINDOW.ms) {
        this.#users.delete(key);
        n++;
      }
    }
    return n;
  }

  /** Users tracked. */
  get size(): number {
    return this.#users.size;
  }
}
