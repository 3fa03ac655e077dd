/**
 * A stored message as the agent page reads it in a conversation: the history endpoint's items, and (issue 22) the
 * live lines of an internal note and of what supervisors watch, so that the page draws both with one function.
 *
 * @module
 */

import type { Message } from "../core/message.ts";
import { NOTE_TYPE } from "../store/store.ts";
import { encodeEnvelope } from "./codec.ts";

/**
 * One conversation item: the envelope's data as the agent got (or sent) it with `direction` and `state`; a workflow
 * line as `direction: "system"` with what happened in `event`; an internal note as `direction: "note"` with its
 * author in `agent_id`.
 */
export function historyItem(m: Message, state: string, detail = ""): Record<string, unknown> {
  // A system line (a transfer, a resolve…): what happened is in `event`, for the page to word.
  if (m.type === "system") {
    return {
      id: m.id,
      msg_type: "system",
      contact_id: m.contact,
      send_time: m.sendTime,
      msg: { content: m.content },
      event: m.extra ?? {},
      direction: "system",
      state,
    };
  }
  if (m.type === NOTE_TYPE) {
    return {
      id: m.id,
      msg_type: NOTE_TYPE,
      contact_id: m.contact,
      send_time: m.sendTime,
      msg: { content: m.content },
      agent_id: m.agent,
      direction: "note",
      state,
    };
  }
  return {
    ...JSON.parse(encodeEnvelope(m)).data,
    direction: m.direction,
    state,
    ...(detail ? { detail } : {}),
    // A message kefu sent by itself (issue 22: welcome, closed reply…): the page labels it 自动回复.
    ...(m.direction === "out" && m.extra?.automatic ? { automatic: m.extra.automatic } : {}),
  };
}
