/**
 * Agent dialects: the wire formats an agent's socket can speak. A dialect
 * encodes the hub's {@link AgentEvent}s into frames and decodes what the agent
 * sends into {@link AgentCommand}s; the session does the rest. A new dialect is
 * one module under `dialects/` plus its line in `main.ts`.
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import type { Message } from "../core/message.ts";
import type { EventEncoder } from "../hub/events.ts";
import type { MessageRef } from "../store/store.ts";

/** What an agent asks for in one frame. */
export type AgentCommand =
  /** Keep-alive: answered with a heartbeat. */
  | { kind: "ping" }
  /** A read receipt: these messages are read and never sent again. A ref with contact "" names any contact. */
  | { kind: "ack"; refs: MessageRef[] }
  /** A reply to a contact (direction `out`, `agent` set). */
  | { kind: "reply"; message: Message }
  /** Show "typing…" to the contact. */
  | { kind: "typing"; contact: string }
  /** Try a message's failed media file again (it comes again, with its file or a new reason). */
  | { kind: "media_retry"; ref: MessageRef };

/** One wire format for agent sockets. */
export interface AgentDialect extends EventEncoder {
  /** Its name, for `?dialect=` and logs. */
  readonly name: string;
  /** Paths where a socket speaks this dialect unless `?dialect=` says otherwise. */
  readonly paths: readonly string[];
  /** Whether this URL asks for this dialect wherever it is (e.g. `/` with the dialect's own query). */
  claims?(url: URL): boolean;
  /** Whether sockets of this dialect send read receipts without being asked (`?ack=1`). */
  readonly acks: boolean;
  /**
   * Decode one text frame; throws `KefuError` saying what was wrong (with `data.id` when the frame names a
   * reply, so the agent's page can mark it).
   */
  decode(text: string, agent: string): AgentCommand;
}

/**
 * The dialect a socket on `url` speaks: `?dialect=` when given, else the first that claims the URL, else the one
 * that owns the path, else the first of the list (the default). Throws `KefuError` for an unknown name.
 */
export function selectDialect(dialects: readonly AgentDialect[], url: URL): AgentDialect {
  const asked = url.searchParams.get("dialect");
  if (asked !== null) {
    const d = dialects.find((x) => x.name === asked);
    if (d === undefined) {
      throw new KefuError(
        "unknown_dialect",
        `cannot speak dialect ${quote(asked)}: known dialects are ${dialects.map((x) => x.name).join(", ")}`,
      );
    }
    return d;
  }
  return dialects.find((d) => d.claims?.(url)) ?? dialects.find((d) => d.paths.includes(url.pathname)) ??
    dialects[0];
}
