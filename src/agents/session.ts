/**
 * An agent's session: the WebSocket upgrade, the dialect it speaks, what the
 * agent sends (replies, typing, read receipts, pings), and the bad-input rules
 * (binary → 1003, too big → 1009, anything else → an error event with the
 * socket left open).
 *
 * @module
 */

import type { ReplyRouter } from "../channels/channel.ts";
import { KefuError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { Close } from "../envelope/protocol.ts";
import type { AgentEvent } from "../hub/events.ts";
import type { AgentPeer, Hub } from "../hub/hub.ts";
import type { ReplyService } from "../hub/replies.ts";
import type { MessageRef } from "../store/store.ts";
import type { AgentCommand, AgentDialect } from "./dialect.ts";

/** Settings of agent sessions. */
export interface SessionOptions {
  hub: Hub;
  log: Logger;
  /** Where replies go: the channel of each contact. */
  router: ReplyRouter;
  /** The reply use case (kept, counted against the reply window, sent). */
  replies: ReplyService;
  /** Seconds without a pong before Deno closes a dead peer. */
  idleTimeoutSeconds: number;
  /** Largest text frame an agent may send. */
  maxMessageBytes: number;
  /** Try a message's failed media again (the media pipeline); without it the command is refused. */
  retryMedia?: (agent: string, ref: MessageRef) => Promise<void>;
  /**
   * Refuse a reply's media the agent does not own (a file of its contacts' messages or its own upload): throws a
   * `KefuError`, or answers a Promise when it must look further (the store).
   */
  checkMedia?: (agent: string, media: string) => void | Promise<void>;
}

const OPEN = 1;

/** Whether a request asks for a WebSocket upgrade. */
export function isUpgrade(req: Request): boolean {
  return req.headers.get("upgrade")?.toLowerCase() === "websocket";
}

/** One agent socket and its dialect, as the hub's delivery sees it. */
class Session implements AgentPeer {
  constructor(readonly socket: WebSocket, readonly dialect: AgentDialect) {}
  get readyState(): number {
    return this.socket.readyState;
  }
  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }
  send(data: string): void {
    this.socket.send(data);
  }
  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }
  /** Encode and send one event. */
  tell(event: AgentEvent): void {
    if (this.socket.readyState !== OPEN) return;
    const frame = this.dialect.encode(event);
    if (frame !== "") this.socket.send(frame);
  }
}

/**
 * Upgrade to an agent session for `agent` speaking `dialect`. A client that offers subprotocols gets the first
 * one back (browsers drop a connection that offered some and got none).
 */
export function upgradeAgent(
  req: Request,
  agent: string,
  dialect: AgentDialect,
  options: SessionOptions,
  expiresAt?: number,
  /** Close the session when its token is revoked: given `close`, answers a function that stops watching. */
  watch?: (close: (reason: string) => void) => () => void,
): Response {
  const { hub, log, maxMessageBytes } = options;
  const offered = req.headers.get("sec-websocket-protocol");
  const protocol = offered?.split(",")[0].trim() || undefined;
  const { socket, response } = Deno.upgradeWebSocket(req, { protocol, idleTimeout: options.idleTimeoutSeconds });
  // ?ack=1: this client sends read receipts, so what it has not acknowledged comes again on its next connect.
  const params = new URL(req.url).searchParams;
  const acks = dialect.acks || /^(1|true|yes)$/i.test(params.get("ack") ?? "");
  // ?watch=1: a supervisor's page watching every conversation (issue 22); ignored for an agent.
  const watchTeam = /^(1|true|yes)$/i.test(params.get("watch") ?? "");
  const session = new Session(socket, dialect);

  // A session lives no longer than the token it was opened with.
  let expiry: ReturnType<typeof setTimeout> | undefined;
  let unwatch: (() => void) | undefined;
  socket.onopen = () => {
    log.info("ws_open", { agent, protocol, dialect: dialect.name });
    // Timers take at most 2^31-1 ms (~24.8 days): a longer token's timer is set again when it fires.
    const arm = () => {
      const left = expiresAt! * 1000 - Date.now();
      if (left <= 0) socket.close(Close.unauthorized, "token_expired: the token expired; sign in again");
      else expiry = setTimeout(arm, Math.min(left, 2 ** 31 - 1));
    };
    if (expiresAt !== undefined) arm();
    unwatch = watch?.((reason) => socket.close(Close.unauthorized, reason));
    hub.connect(agent, session, { acks, watch: watchTeam }).catch((e) => {
      log.error("ws_backlog_failed", { agent, error: String(e) });
      socket.close(Close.internalError, "cannot read your unacknowledged messages; reconnect");
    });
  };
  socket.onclose = (e) => {
    clearTimeout(expiry);
    unwatch?.();
    hub.disconnect(agent, session);
    log.info("ws_close", { agent, code: e.code, reason: e.reason });
  };
  socket.onerror = (e) => {
    log.warn("ws_error", { agent, error: (e as ErrorEvent).message });
  };
  socket.onmessage = (e) => {
    const data = e.data;
    if (typeof data !== "string") {
      refuse(session, Close.unsupportedData, "binary_not_supported", "binary frames are not supported: send JSON text");
      return;
    }
    const size = data.length * 3 <= maxMessageBytes ? data.length : utf8Length(data);
    if (size > maxMessageBytes) {
      refuse(
        session,
        Close.tooBig,
        "message_too_big",
        `message of ${size} bytes is over the limit of ${maxMessageBytes}`,
      );
      return;
    }
    let command: AgentCommand;
    try {
      command = dialect.decode(data, agent);
    } catch (e) {
      session.tell(failure(e, agent, log));
      return;
    }
    const answer = run(command, agent, session, options);
    if (answer === undefined) return;
    if (!(answer instanceof Promise)) return session.tell(answer);
    // The channel answered after a while: the session that sent the reply, or failing that the agent's others.
    answer.then((event) => {
      if (event === undefined) return;
      if (socket.readyState === OPEN) session.tell(event);
      else hub.notify(agent, event);
    });
  };
  return response;
}

// One answer per command: a heartbeat to a ping; for a reply its status once it went out, or an error saying why
// not; the typing result; nothing to a read receipt that worked. What waits for a channel is a Promise.
function run(
  command: AgentCommand,
  agent: string,
  session: Session,
  options: SessionOptions,
): AgentEvent | Promise<AgentEvent | undefined> | undefined {
  const { hub, log, router } = options;
  try {
    switch (command.kind) {
      case "ping":
        return { kind: "heartbeat" };
      case "ack":
        return hub.ack(agent, command.refs, session).then(() => undefined, (e) => failure(e, agent, log));
      case "media_retry":
        if (options.retryMedia === undefined) {
          return { kind: "error", error: "not_found", detail: "this kefu does not re-store media" };
        }
        return options.retryMedia(agent, command.ref).then(() => undefined, (e) => failure(e, agent, log));
      case "typing":
        return hub.ownedContact(agent, command.contact, "show typing to")
          .then((contact) => router.typing(contact))
          .then(
            (r): AgentEvent => ({ kind: "typing", contact: command.contact, status: r.status, detail: r.detail }),
            (e) => failure(e, agent, log),
          );
      case "reply": {
        const m = command.message;
        // Only the agent's own files go out: a path it merely knows (another agent's user's) is refused.
        const checked = m.media === "" ? undefined : options.checkMedia?.(agent, m.media);
        return Promise.resolve(checked).then(() => options.replies.reply(agent, m)).then(
          ({ status }): AgentEvent => ({
            kind: "reply_status",
            id: m.id,
            contact: m.contact,
            sendTime: m.sendTime,
            status,
          }),
          (e) => failure(e, agent, log, m.id),
        );
      }
    }
  } catch (e) {
    return failure(e, agent, log, command.kind === "reply" ? command.message.id : undefined);
  }
}

// The reply's id lets the agent's page mark exactly that reply as failed.
function failure(e: unknown, agent: string, log: Logger, id?: string): AgentEvent {
  if (e instanceof KefuError) {
    const data = id === undefined && e.data === undefined ? undefined : { id, ...e.data };
    return { kind: "error", error: e.kind, detail: e.message, data };
  }
  log.error("ws_message_failed", { agent, error: String(e), stack: (e as Error).stack });
  return {
    kind: "error",
    error: "internal",
    detail: "the request could not be handled; it was not sent",
    data: id === undefined ? undefined : { id },
  };
}

// The error event says what was wrong; the close code says it again for clients that only see that.
function refuse(session: Session, code: number, kind: "binary_not_supported" | "message_too_big", detail: string) {
  session.tell({ kind: "error", error: kind, detail });
  session.close(code, detail.slice(0, 120));
}

function utf8Length(s: string): number {
  return new TextEncoder().encode(s).length;
}
