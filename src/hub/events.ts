/**
 * What the hub tells an agent, as domain events. A session turns each into
 * frames through its dialect (`src/agents/dialects/`), so the hub never knows a
 * wire format and a new dialect never touches the hub.
 *
 * @module
 */

import type { ErrorKind } from "../core/errors.ts";
import { type Message, newMessageId, nowSeconds } from "../core/message.ts";
import type { ContactRow, OutboundState } from "../store/store.ts";
import type { AgentAvailability } from "./assignment.ts";
import type { ContactView } from "./routing.ts";

/** What happened to a contact (the workplace's conversation workflow). */
export type ContactAction = "transferred" | "resolved" | "reopened" | "taken" | "queued" | "updated" | "assigned";

/** What a workflow line records: the action, who did it, from and to whom, and the agent's note. */
export interface WorkflowEvent {
  action: ContactAction;
  from?: string;
  to?: string;
  note?: string;
}

/**
 * A line of the team's in contact `c`'s history, never sent to the user: a workflow line (`system`) or an internal
 * note, written by `by`; its id starts with `prefix`.
 */
export function teamLine(c: ContactRow, by: string, type: string, content: string, prefix: string): Message {
  return {
    id: `${prefix}-${newMessageId()}`,
    direction: "out",
    channel: c.channel,
    account: c.account,
    contact: c.id,
    agent: by,
    company: c.company,
    type,
    content,
    media: "",
    sendTime: nowSeconds(),
    name: by,
    avatar: "",
  };
}

/** The line kept in contact `c`'s history for a workflow change by `by`, worded `text` (the store's `system` type). */
export function workflowLine(c: ContactRow, by: string, text: string, event: WorkflowEvent): Message {
  return {
    ...teamLine(c, by, "system", text, "sys"),
    extra: {
      action: event.action,
      by,
      from_agent_id: event.from ?? "",
      to_agent_id: event.to ?? "",
      note: event.note ?? "",
    },
  };
}

/** One thing to tell an agent. */
export type AgentEvent =
  /** A user's message, or a WeChat event (type `event`: follow, menu click, …), live. */
  | { kind: "message"; message: Message }
  /** Keep-alive, every HEARTBEAT_SECONDS and in answer to a ping. */
  | { kind: "heartbeat" }
  /** An agent's reply went out; `status` says how (`sent`, `passive`, …). */
  | { kind: "reply_status"; id: string; contact: string; sendTime: number; status: string }
  /** The answer to an agent's typing indicator. */
  | { kind: "typing"; contact: string; status: string; detail?: string }
  /** Something the agent sent could not be done, or the server has a problem to report. */
  | { kind: "error"; error: ErrorKind; detail: string; data?: Record<string, unknown> }
  /**
   * A contact changed hands or state: `by` is the agent who did it ("" for the user, whose message reopens a
   * resolved conversation); `from`/`to` the owners before and after a transfer; `note` the transfer's note.
   */
  | {
    kind: "contact";
    action: ContactAction;
    contact: ContactView;
    by: string;
    from?: string;
    to?: string;
    note?: string;
  }
  /** An agent's availability changed (issue 22): colleagues' pages show it. */
  | { kind: "agent"; agent: AgentAvailability }
  /** A message kefu sent to the agent's contact by itself (issue 22: welcome, closing…), kept as `state`. */
  | { kind: "outbound"; message: Message; state: OutboundState; detail: string }
  /** A line for the agent from kefu itself. */
  | { kind: "notice"; content: string; company?: string }
  /** An internal note (内部备注, issue 22) written in a conversation: for the team only, never for the user. */
  | { kind: "note"; note: Message }
  /** An agent's reply as it was sent (issue 22: only inside `watch`, for supervisors watching the team). */
  | { kind: "reply"; message: Message; state: "sent" | "failed"; detail: string }
  /**
   * What happened in a conversation of `agent`, for supervisors watching every conversation (issue 22): a user's
   * message, a reply, a note or a contact event, as its owner's sessions get it.
   */
  | { kind: "watch"; agent: string; event: AgentEvent };

/** Turns events into text frames; an agent dialect is one. Compared by identity to encode once per dialect. */
export interface EventEncoder {
  /** One frame for one event; "" for an event the dialect has no frame for (nothing is sent). */
  encode(event: AgentEvent): string;
  /**
   * The frames for messages the agent has not read, sent when it connects (oldest first, a page at a time):
   * one per message, or one list, as the dialect has it.
   */
  backlog(messages: readonly Message[]): string[];
}
