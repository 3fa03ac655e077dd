/**
 * An agent's WebSocket: upgrade, the agent's own messages (replies), and the
 * bad-input rules (binary → 1003, too big → 1009, anything else → an error
 * envelope with the socket left open).
 *
 * @module
 */

import { KefuError, quote } from "../core/errors.ts";
import type { Hub } from "../hub/hub.ts";
import { decodeEnvelopeValue } from "../envelope/codec.ts";
import type { MessageRef } from "../store/store.ts";
import type { Logger } from "../core/log.ts";
import type { Outbound } from "../channels/wx_official/sender.ts";
import { Close, Code, errorEnvelope, HEARTBEAT, sentEnvelope, typingEnvelope } from "../envelope/protocol.ts";

/** Settings of agent sockets. */
export interface AgentSocketOptions {
  hub: Hub;
  log: Logger;
  /** Seconds without a pong before Deno closes a dead peer. */
  idleTimeoutSeconds: number;
  /** Largest text frame an agent may send. */
  maxMessageBytes: number;
  /** Where accepted replies go (WeChat); without it they are only accepted. */
  outbound?: Outbound;
}

const OPEN = 1;

// Control characters would corrupt log lines and close reasons.
// deno-lint-ignore no-control-regex
const AGENT_ID_RE = /^[^\x00-\x1f\x7f]{1,128}$/;

/** The agent id from `?userid=` or `?userId=` (the seed's test page); throws `KefuError` when missing or malformed. */
export function agentIdFrom(url: URL): string {
  const raw = url.searchParams.get("userid") ?? url.searchParams.get("userId");
  const id = raw?.trim() ?? "";
  if (id === "") {
    throw new KefuError("missing_userid", "the agent id is required: add ?userid=ID (or ?userId=ID) to the URL");
  }
  if (!AGENT_ID_RE.test(id)) {
    throw new KefuError("invalid_userid", `cannot use agent id ${quote(id)}: 1–128 characters, no control characters`);
  }
  return id;
}

/** Whether a request asks for a WebSocket upgrade. */
export function isUpgrade(req: Request): boolean {
  return req.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/**
 * Upgrade to the agent protocol. A client that offers subprotocols gets the
 * first one back (browsers drop a connection that offered some and got none).
 */
export function upgradeAgent(req: Request, agent: string, options: AgentSocketOptions): Response {
  const { hub, log, maxMessageBytes } = options;
  const offered = req.headers.get("sec-websocket-protocol");
  const protocol = offered?.split(",")[0].trim() || undefined;
  const { socket, response } = Deno.upgradeWebSocket(req, { protocol, idleTimeout: options.idleTimeoutSeconds });
  // ?ack=1: this client sends read receipts, so what it has not acknowledged comes again on its next connect.
  const acks = /^(1|true|yes)$/i.test(new URL(req.url).searchParams.get("ack") ?? "");

  socket.onopen = () => {
    log.info("ws_open", { agent, protocol });
    hub.connect(agent, socket, { acks }).catch((e) => {
      log.error("ws_backlog_failed", { agent, error: String(e) });
      socket.close(Close.internalError, "cannot read your unacknowledged messages; reconnect");
    });
  };
  socket.onclose = (e) => {
    hub.disconnect(agent, socket);
    log.info("ws_close", { agent, code: e.code, reason: e.reason });
  };
  socket.onerror = (e) => {
    log.warn("ws_error", { agent, error: (e as ErrorEvent).message });
  };
  socket.onmessage = (e) => {
    const data = e.data;
    if (typeof data !== "string") {
      refuse(socket, Close.unsupportedData, "binary_not_supported", "binary frames are not supported: send JSON text");
      return;
    }
    const size = data.length * 3 <= maxMessageBytes ? data.length : utf8Length(data);
    if (size > maxMessageBytes) {
      refuse(
        socket,
        Close.tooBig,
        "message_too_big",
        `message of ${size} bytes is over the limit of ${maxMessageBytes}`,
      );
      return;
    }
    const answer = handleText(agent, data, options, socket);
    if (typeof answer === "string") socket.send(answer);
    // WeChat answered after a while: the socket that sent the reply, or failing that the agent's others.
    else {
      answer.then((text) => {
        if (text === undefined) return;
        if (socket.readyState === OPEN) socket.send(text);
        else hub.notify(agent, text);
      });
    }
  };
  return response;
}

// One answer per agent frame: 101 to a plain `ping`; for a reply 103 once it went out, or -1 saying why
// not; 104 to a typing envelope; nothing to a read receipt that worked. Replies wait for WeChat (a Promise).
function handleText(
  agent: string,
  text: string,
  options: AgentSocketOptions,
  socket: WebSocket,
): string | Promise<string | undefined> {
  const trimmed = text.trim();
  if (trimmed === "ping") return HEARTBEAT;
  if (trimmed[0] !== "{") {
    return errorEnvelope(
      "invalid_envelope",
      `expected a JSON envelope {"data":{"msg_type","contact_id","msg"},"result":{"code"}}, got text ${quote(trimmed)}`,
    );
  }
  const { hub, log, outbound } = options;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    return errorEnvelope("invalid_json", `cannot parse JSON: ${(e as Error).message}`);
  }
  let id: string | undefined;
  try {
    const refs = receiptRefs(value);
    if (refs !== undefined) {
      return hub.ack(agent, refs, socket).then(() => undefined, (e) => failure(e, agent, log));
    }
    const reply = decodeEnvelopeValue(value, { direction: "out", agent }, text);
    id = reply.id;
    if (reply.type === "typing") {
      reply.account = hub.ownedContact(agent, reply.contact).account;
      if (outbound === undefined) return typingEnvelope(reply.contact, "skipped", "no outbound channel");
      return outbound.typing(reply).then(
        (r) => typingEnvelope(reply.contact, r.status, r.detail),
        (e) => failure(e, agent, log),
      );
    }
    const m = hub.reply(agent, reply);
    return hub.keepReply(m)
      .then(() => outbound?.send(m) ?? "accepted")
      .then(
        (status) => {
          hub.replyState(m, "sent", status).catch((e) => log.warn("reply_state_failed", { error: String(e) }));
          return sentEnvelope(m.id, m.contact, m.sendTime, status);
        },
        (e) => {
          const detail = e instanceof Error ? e.message : String(e);
          hub.replyState(m, "failed", detail).catch(() => {});
          return failure(e, agent, log, m.id);
        },
      );
  } catch (e) {
    return failure(e, agent, log, id ?? idOf(value));
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

// The reply's id lets the agent's page mark exactly that reply as failed.
function failure(e: unknown, agent: string, log: Logger, id?: string): string {
  if (e instanceof KefuError) {
    return errorEnvelope(e.kind, e.message, id === undefined && e.data === undefined ? undefined : { id, ...e.data });
  }
  log.error("ws_message_failed", { agent, error: String(e), stack: (e as Error).stack });
  return errorEnvelope(
    "internal",
    "the reply could not be handled; it was not sent",
    id === undefined ? undefined : { id },
  );
}

// The envelope says what was wrong; the close code says it again for clients that only see that.
function refuse(socket: WebSocket, code: number, kind: "binary_not_supported" | "message_too_big", detail: string) {
  socket.send(errorEnvelope(kind, detail));
  socket.close(code, detail.slice(0, 120));
}

function utf8Length(s: string): number {
  return new TextEncoder().encode(s).length;
}

// The id of an envelope that failed to decode, when it has one, so the page can mark that reply.
function idOf(value: unknown): string | undefined {
  const id = (value as { data?: { id?: unknown } } | null)?.data?.id;
  return typeof id === "string" && id !== "" ? id : undefined;
}
