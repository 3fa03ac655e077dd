/**
 * Messages from one node to another: each node subscribes to its own topic (`kefu:to:<NODE_ID>`), and a node can
 * {@link Mailbox.request} another (an answer, or undefined when none came in time: the node is gone, busy, or the
 * broker lost the publish — the caller then does what one node would) or {@link Mailbox.answer} a waiting id it
 * learnt some other way (a passive reply taken by a third node answers the node that offered it).
 *
 * @module
 */

import type { Logger } from "../core/log.ts";
import type { Engine } from "./engine.ts";

/** What a node answers a request with (anything JSON). */
export type Handler = (body: unknown, from: string) => Promise<unknown> | unknown;

type Mail =
  | { from: string; kind: "request"; id: string; what: string; body: unknown }
  | { from: string; kind: "answer"; id: string; body: unknown };

// Waiters are bounded by time (each has a timer); this bounds them in number too.
const MAX_WAITING = 10_000;

/** One node's mailbox over the cluster's engine. */
export class Mailbox {
  readonly #engine: Engine;
  readonly #nodeId: string;
  readonly #log: Logger;
  readonly #handlers = new Map<string, Handler>();
  readonly #waiting = new Map<string, { resolve: (body: unknown) => void; timer: ReturnType<typeof setTimeout> }>();

  constructor(engine: Engine, nodeId: string, log: Logger) {
    this.#engine = engine;
    this.#nodeId = nodeId;
    this.#log = log;
  }

  /** This node's topic; the node subscribes to it at start (and again after the broker came back). */
  get topic(): string {
    return topicOf(this.#nodeId);
  }

  /** This node's id. */
  get nodeId(): string {
    return this.#nodeId;
  }

  /** Answer requests of `what` with `handler` (one handler per kind). */
  handle(what: string, handler: Handler): void {
    this.#handlers.set(what, handler);
  }

  /**
   * Ask `node` (`what`, `body`): its handler's answer, or undefined when none came within `timeoutMs` (or the publish
   * failed). `id` lets someone else answer too ({@link answer}); default a fresh one.
   */
  async request(
    node: string,
    what: string,
    body: unknown,
    timeoutMs: number,
    id = crypto.randomUUID(),
  ): Promise<unknown> {
    const answered = this.wait(id, timeoutMs);
    try {
      await this.#publish(node, { from: this.#nodeId, kind: "request", id, what, body });
    } catch (e) {
      this.#log.warn("cluster_request_failed", { node, what, error: String(e) });
      this.cancel(id);
    }
    return await answered;
  }

  /** Wait for an answer to `id` (from whoever gives it); undefined after `timeoutMs` or when cancelled. */
  wait(id: string, timeoutMs: number): Promise<unknown> {
    if (this.#waiting.size >= MAX_WAITING) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.cancel(id), timeoutMs);
      this.#waiting.set(id, { resolve, timer });
    });
  }

  /** Stop waiting for `id` (its wait resolves undefined). */
  cancel(id: string): void {
    const w = this.#waiting.get(id);
    if (w === undefined) return;
    this.#waiting.delete(id);
    clearTimeout(w.timer);
    w.resolve(undefined);
  }

  /** Answer `id` on `node` (this node's own waits are answered at once, without the broker). */
  async answer(node: string, id: string, body: unknown): Promise<void> {
    if (node === this.#nodeId) return this.#answered(id, body);
    await this.#publish(node, { from: this.#nodeId, kind: "answer", id, body });
  }

  /** Every wait ends (undefined): the node stops. */
  close(): void {
    for (const id of [...this.#waiting.keys()]) this.cancel(id);
  }

  /** A message on this node's topic (from the node's engine handler). */
  receive(data: string): void {
    let mail: Mail;
    try {
      mail = JSON.parse(data);
    } catch (e) {
      return this.#log.warn("cluster_bad_payload", { topic: this.topic, error: String(e) });
    }
    if (mail.kind === "answer") return this.#answered(mail.id, mail.body);
    const handler = this.#handlers.get(mail.what);
    if (handler === undefined) return this.#log.warn("cluster_unknown_request", { what: mail.what, from: mail.from });
    (async () => {
      const body = await handler(mail.body, mail.from);
      await this.answer(mail.from, mail.id, body ?? null);
    })().catch((e) => this.#log.warn("cluster_answer_failed", { what: mail.what, from: mail.from, error: String(e) }));
  }

  #answered(id: string, body: unknown): void {
    const w = this.#waiting.get(id);
    if (w === undefined) return;
    this.#waiting.delete(id);
    clearTimeout(w.timer);
    w.resolve(body);
  }

  #publish(node: string, mail: Mail): Promise<void> {
    return this.#engine.publish(topicOf(node), JSON.stringify(mail));
  }
}

/** A node's own topic. */
export function topicOf(node: string): string {
  return `kefu:to:${node}`;
}
