/**
 * One message as the history (GET …/history) gives it to agents: the envelope's `data` with its direction, state and
 * detail, and `automatic` for kefu's own messages. The live event of such a message (code 110) carries the same, so
 * that the page draws it the one way.
 *
 * @module
 */

import type { Message } from "../core/message.ts";
import { encodeEnvelope } from "../envelope/codec.ts";

/** The history's item for `m`, kept as `state` (with `detail`, "" none). */
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
  return {
    ...JSON.parse(encodeEnvelope(m)).data,
    direction: m.direction,
    state,
    ...(detail ? { detail } : {}),
    // A message kefu sent by itself (issue 22: welcome, closed reply…): the page labels it 自动回复.
    ...(m.direction === "out" && m.extra?.automatic ? { automatic: m.extra.automatic } : {}),
  };
}
