/**
 * A hub peer for tests: the hub is transport-free, so a peer here records what a socket would be sent.
 *
 * @module
 */

import { seed004 } from "../../src/agents/dialects/seed004.ts";
import { Code } from "../../src/envelope/protocol.ts";
import type { AgentPeer } from "../../src/hub/hub.ts";

/** Records frames; `take()` reads and clears the messages among them. */
export class Peer implements AgentPeer {
  readonly dialect = seed004;
  readyState = 1;
  /** Bytes the socket still holds; set by a test. */
  unsent = 0;
  /** As Deno's WebSocket: what it holds while open, 0 once it is closing (whatever it still holds). */
  get bufferedAmount(): number {
    return this.readyState === 1 ? this.unsent : 0;
  }
  set bufferedAmount(n: number) {
    this.unsent = n;
  }
  sent: string[] = [];
  closed?: { code?: number; reason?: string };
  send(data: string) {
    this.sent.push(data);
  }
  close(code?: number, reason?: string) {
    this.readyState = 3;
    this.closed = { code, reason };
  }
  /** The messages sent so far (and forgets them, and the contact events among them). */
  take(): { id: string; contact: string; content: string }[] {
    return this.sent.splice(0).map((s) => JSON.parse(s)).filter((e) => e.result?.code !== Code.contact).map((e) => ({
      id: e.data.id,
      contact: e.data.contact_id,
      content: e.data.msg.content,
    }));
  }

  /** The contact events (106) sent so far, without forgetting anything. */
  contactEvents(): { action: string; contact: string; by: string; from: string; to: string }[] {
    return this.sent.map((s) => JSON.parse(s)).filter((e) => e.result?.code === Code.contact).map((e) => ({
      action: e.data.action,
      contact: e.data.contact.contact_id,
      by: e.data.by,
      from: e.data.from_agent_id ?? "",
      to: e.data.to_agent_id ?? "",
    }));
  }
}
