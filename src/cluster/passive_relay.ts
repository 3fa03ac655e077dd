/**
 * Passive replies among several nodes: WeChat's request for a user's message is held by whichever node the load
 * balancer gave it (and each retry of WeChat's may reach another), while the agent's reply is written on the node of
 * the agent's socket. Two shared values per user (`<account>\n<openid>`), on the cluster's engine:
 *
 * - `passive:<user>`: the node that took the user's latest request and until when it holds the user's requests
 *   (`WECHAT_PASSIVE_HOLD_MS`, again from each retry), so that every node knows whether a passive reply can go out.
 * - `passive-offer:<user>`: a reply left for whichever node carries it, with the node that offered it and an id.
 *
 * Exactly once: a reply left is taken by one atomic read-and-delete ({@link Engine.take}), by the node holding a live
 * request when asked (its answer says whether it took it), by the node a retry reaches, or — when the user's requests
 * are no longer held anywhere — by the node that offered it, which then says it was not sent. Whoever takes it is
 * its only owner: the taker writes it into WeChat's answer and tells the offering node (`carried`); a taker whose
 * request went in the instant of its take puts the reply back, and an offering node that heard nothing looks once more
 * before it counts a reply taken as carried. The order of the
 * writes makes one of the two sides see the other: a node records itself as holder before it looks for a reply, an
 * offering node leaves its reply before it reads who holds.
 *
 * @module
 */

import type { Logger } from "../core/log.ts";
import type { Message } from "../core/message.ts";
import type { SharedPassive, TakenReply } from "../channels/wx_official/passive_reply.ts";
import type { Engine } from "./engine.ts";
import type { Mailbox } from "./mailbox.ts";

/** Options for {@link PassiveRelay}. */
export interface PassiveRelayOptions {
  engine: Engine;
  mailbox: Mailbox;
  log: Logger;
  /** How long the holder has to answer whether it took a reply; default 2 s (then a retry may still carry it). */
  askMs?: number;
  /** Past the hold's end, how long an offering node still waits before taking its reply back; default 500 ms. */
  graceMs?: number;
}

interface Holder {
  node: string;
  /** Epoch ms: the end of the hold (the holding node's clock). */
  until: number;
  /** This hold's own id: a newer hold on the same node is another value. */
  at: string;
}

interface Offer {
  from: string;
  id: string;
  message: Message;
}

/** A reply left this long is gone from the broker even if its node died before taking it back. */
const OFFER_TTL_MS = 120_000;
/** Retries of WeChat's (3) can each push the hold's end further: bounded. */
const MAX_EXTENSIONS = 8;
/** After a reply was taken by another node, how long its "carried" is waited for. */
const CONFIRM_MS = 3_000;
const CARRY = "passive_carry";

/** Passive replies' shared state and hand-over on a cluster engine; see the module documentation. */
export class PassiveRelay implements SharedPassive {
  readonly #o: Required<PassiveRelayOptions>;
  #ask: (key: string) => Promise<boolean> = () => Promise.resolve(false);

  constructor(options: PassiveRelayOptions) {
    this.#o = { askMs: 2_000, graceMs: 500, ...options };
    options.mailbox.handle(
      CARRY,
      async (body) => ({ carried: await this.#ask(String((body as { key: string }).key)) }),
    );
  }

  onAsk(handler: (key: string) => Promise<boolean>): void {
    this.#ask = handler;
  }

  async hold(key: string, holdMs: number): Promise<string> {
    const holder: Holder = { node: this.#o.mailbox.nodeId, until: Date.now() + holdMs, at: crypto.randomUUID() };
    const token = JSON.stringify(holder);
    await this.#o.engine.put(`passive:${key}`, token, holdMs);
    return token;
  }

  async release(key: string, token: string): Promise<void> {
    await this.#o.engine.dropIf(`passive:${key}`, token);
  }

  async isOpen(key: string): Promise<boolean> {
    return (await this.#holder(key)) !== undefined;
  }

  async take(key: string): Promise<TakenReply | undefined> {
    const { engine, mailbox, log } = this.#o;
    const raw = await engine.take(`passive-offer:${key}`);
    if (raw === undefined) return undefined;
    const offer = JSON.parse(raw) as Offer;
    return {
      message: offer.message,
      carried() {
        mailbox.answer(offer.from, offer.id, { carried: true }).catch((e) =>
          log.warn("passive_confirm_failed", { node: offer.from, error: String(e) })
        );
      },
      async putBack() {
        await engine.put(`passive-offer:${key}`, raw, OFFER_TTL_MS, true);
      },
    };
  }

  async offer(key: string, message: Message, signal?: AbortSignal): Promise<"carried" | "expired" | "busy"> {
    const { engine, mailbox, log, askMs, graceMs } = this.#o;
    const me = mailbox.nodeId;
    const id = crypto.randomUUID();
    // Waited for before the reply is left: a taker's "carried" cannot come before anyone listens.
    const carried = mailbox.wait(id, OFFER_TTL_MS);
    const offer: Offer = { from: me, id, message };
    let left: boolean;
    try {
      left = await engine.put(`passive-offer:${key}`, JSON.stringify(offer), OFFER_TTL_MS, true);
    } catch (e) {
      mailbox.cancel(id);
      throw e;
    }
    if (!left) {
      mailbox.cancel(id);
      return "busy";
    }
    // From here the reply is in the broker: only a take decides its fate, never an error here.
    let holder = await this.#holder(key).catch(() => undefined);
    if (holder?.node === me) void this.#ask(key);
    else if (holder !== undefined) {
      void mailbox.request(holder.node, CARRY, { key }, askMs).then((a) => {
        if (a === undefined) log.info("passive_holder_silent", { node: holder!.node, detail: "waiting for a retry" });
      });
    }
    let until = holder?.until ?? 0;
    for (let i = 0; i < MAX_EXTENSIONS && !signal?.aborted; i++) {
      const answer = await within(carried, until - Date.now() + graceMs, signal);
      if (answer === "timeout") {
        // A retry (on any node) holds the user's requests longer: the reply may still go in its answer.
        holder = await this.#holder(key).catch(() => undefined);
        if (holder !== undefined && holder.until > until) {
          until = holder.until;
          continue;
        }
        break;
      }
      if (answer !== undefined) return "carried";
      break; // the node stops
    }
    let back: string | undefined;
    try {
      back = await engine.take(`passive-offer:${key}`);
    } catch (e) {
      mailbox.cancel(id);
      throw new Error(`cannot tell whether the reply was carried: ${(e as Error).message}`);
    }
    if (back !== undefined) {
      mailbox.cancel(id);
      return "expired";
    }
    // Another node took it: it writes it into WeChat's answer and says so — or, its request gone in the meantime,
    // puts it back (at once after its take), where this node finds it now.
    const late = await within(carried, CONFIRM_MS);
    mailbox.cancel(id);
    if (late !== "timeout" && late !== undefined) return "carried";
    const again = await engine.take(`passive-offer:${key}`).catch(() => undefined);
    if (again !== undefined) {
      if ((JSON.parse(again) as Offer).id === id) return "expired";
      // Another reply, left after ours was taken: not ours to decide.
      await engine.put(`passive-offer:${key}`, again, OFFER_TTL_MS, true).catch(() => {});
    }
    log.warn("passive_carried_unconfirmed", { user: key.split("\n")[1] });
    return "carried";
  }

  async #holder(key: string): Promise<Holder | undefined> {
    const raw = await this.#o.engine.get(`passive:${key}`);
    return raw === undefined ? undefined : JSON.parse(raw) as Holder;
  }
}

/** `p`'s value, or "timeout" after `ms` (at once when `signal` aborts). */
function within<T>(p: Promise<T>, ms: number, signal?: AbortSignal): Promise<T | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.max(0, ms));
    onAbort = () => resolve("timeout");
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([p, timeout]).finally(() => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort!);
  });
}
