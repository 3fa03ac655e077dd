/**
 * The seed 004 dialect: the JSON envelope `{"data":{…},"result":{"code","message"}}`
 * both ways, byte for byte as the seed writes it (§1), with kefu's additions
 * (codes 103–106, 1000, 1005–1007). Served on the seed's path and on `/`.
 *
 * @module
 */

import { KefuError, quote } from "../../core/errors.ts";
import type { Message } from "../../core/message.ts";
import { decodeEnvelopeValue, encodeEnvelope } from "../../envelope/codec.ts";
import { historyItem } from "../../envelope/items.ts";
import {
  agentEnvelope,
  Code,
  contactEnvelope,
  errorEnvelope,
  HEARTBEAT,
  outboundEnvelope,
  sentEnvelope,
  systemEnvelope,
  typingEnvelope,
  WS_PATH,
} from "../../envelope/protocol.ts";
import type { AgentEvent } from "../../hub/events.ts";
import type { MessageRef } from "../../store/store.ts";
import type { AgentCommand, AgentDialect } from "../dialect.ts";

// What a supervisor watching the team gets of an event in `agent`'s conversation (code 109): a conversation item
// (`type: "message"`: a user's message, a reply, a note) or a contact event (`type: "contact"`).
function watched(agent: string, e: AgentEvent): Record<string, unknown> | undefined {
  switch (e.kind) {
    case "message":
      return { agent_id: agent, type: "message", item: historyItem(e.message, "accepted") };
    case "reply":
      return { agent_id: agent, type: "message", item: historyItem(e.message, e.state, e.detail) };
    case "note":
      return { agent_id: agent, type: "message", item: historyItem(e.note, "sent") };
    case "contact":
      return { agent_id: agent, type: "contact", ...JSON.parse(encode(e)).data };
  }
  return undefined;
}

function encode(e: AgentEvent): string {
  switch (e.kind) {
    case "note":
      return JSON.stringify({ data: historyItem(e.note, "sent"), result: { code: Code.note, message: "note" } });
    case "watch": {
      const data = watched(e.agent, e.event);
      return data === undefined ? "" : JSON.stringify({ data, result: { code: Code.watch, message: "watch" } });
    }
    case "reply":
      return "";
    case "message":
      return encodeEnvelope(e.message);
    case "heartbeat":
      return HEARTBEAT;
    case "reply_status":
      return sentEnvelope(e.id, e.contact, e.sendTime, e.status);
    case "typing":
      return typingEnvelope(e.contact, e.status, e.detail);
    case "error":
      return errorEnvelope(e.error, e.detail, e.data);
    case "notice":
      return systemEnvelope(e.content, e.company);
    case "agent":
      return agentEnvelope(e.agent);
    case "outbound":
      return outboundEnvelope(historyItem(e.message, e.state, e.detail));
    case "contact":
      return contactEnvelope({
        action: e.action,
        contact: e.contact,
        by: e.by,
        from_agent_id: e.from ?? "",
        to_agent_id: e.to ?? "",
        note: e.note ?? "",
      });
  }
}

function decode(text: string, agent: string): AgentCommand {
  const trimmed = text.trim();
  if (trimmed === "ping") return { kind: "ping" };
  if (trimmed[0] !== "{") {
    throw new KefuError(
      "invalid_envelope",
      `expected a JSON envelope {"data":{"msg_type","contact_id","msg"},"result":{"code"}}, got text ${quote(trimmed)}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new KefuError("invalid_json", `cannot parse JSON: ${(e as Error).message}`);
  }
  try {
    const refs = receiptRefs(value);
    if (refs !== undefined) return { kind: "ack", refs };
    const retry = mediaRetry(value);
    if (retry !== undefined) return retry;
    const message = decodeEnvelopeValue(value, { direction: "out", agent });
    if (message.type === "typing") return { kind: "typing", contact: message.contact };
    return { kind: "reply", message };
  } catch (e) {
    // The reply's id lets the agent's page mark exactly that reply as failed.
    const id = idOf(value);
    if (e instanceof KefuError && id !== undefined && e.data?.id === undefined) {
      throw new KefuError(e.kind, e.message, e.status, { id, ...e.data });
    }
    throw e;
  }
}

/**
 * A read receipt, or undefined when the frame is something else. Two shapes:
 * kefu's `{"data":{"msg_type":"ack","contact_id":U,"ids":[…]}}` (or `"id"`), and
 * seed 003's `{"event":3,"data":{"msg_id":…}}`, which names no contact.
 */
function receiptRefs(value: unknown): MessageRef[] | undefined {
  const v = value as { event?: unknown; data?: Record<string, unknown>; result?: { code?: unknown } } | null;
  const data = v?.data;
  if (v?.event === 3) {
    const msgId = data?.msg_id;
    if (typeof msgId !== "string" && typeof msgId !== "number") {
      throw new KefuError("missing_field", 'a read receipt {"event":3} needs data.msg_id');
    }
    return [{ contact: "", id: String(msgId) }];
  }
  if (data?.msg_type !== "ack" && Number(v?.result?.code) !== Code.ack) return undefined;
  const contact = typeof data?.contact_id === "string" ? data.contact_id : "";
  const raw = Array.isArray(data?.ids) ? data.ids : data?.id !== undefined ? [data.id] : [];
  const ids = raw.filter((x): x is string => typeof x === "string" && x !== "");
  if (ids.length === 0 || ids.length !== raw.length || raw.length > 1000) {
    throw new KefuError("missing_field", "a read receipt needs data.ids: 1 to 1000 message ids (strings)");
  }
  return ids.map((id) => ({ contact, id }));
}

// kefu's `{"data":{"msg_type":"media_retry","contact_id":U,"id":MSG}}`: try that message's failed file again.
function mediaRetry(value: unknown): AgentCommand | undefined {
  const data = (value as { data?: Record<string, unknown> } | null)?.data;
  if (data?.msg_type !== "media_retry") return undefined;
  const { contact_id: contact, id } = data;
  if (typeof contact !== "string" || contact === "" || typeof id !== "string" || id === "") {
    throw new KefuError(
      "missing_field",
      "a media retry needs data.contact_id and data.id (the message whose file failed)",
    );
  }
  return { kind: "media_retry", ref: { contact, id } };
}

// The id of an envelope that failed to decode, when it has one.
function idOf(value: unknown): string | undefined {
  const id = (value as { data?: { id?: unknown } } | null)?.data?.id;
  return typeof id === "string" && id !== "" ? id : undefined;
}

/** The seed 004 envelope dialect (the default). */
export const seed004: AgentDialect = {
  name: "seed004",
  paths: [WS_PATH, "/"],
  // The seed's protocol has no receipts: `?ack=1` (the agent page) opts in.
  acks: false,
  encode,
  backlog: (messages: readonly Message[]) => messages.map(encodeEnvelope),
  decode,
};
