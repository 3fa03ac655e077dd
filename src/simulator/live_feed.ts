/**
 * What phone pages see live: every event of every simulated user, pushed to
 * each open phone-page WebSocket and kept (bounded) so a page opened later
 * shows the conversation so far.
 *
 * @module
 */

/** One thing a phone page shows; `openid` names the user's conversation. */
export interface PhoneEvent {
  kind: "user" | "attempt" | "result" | "custom" | "typing";
  openid: string;
  [field: string]: unknown;
}

/** Options for {@link createLiveFeed}. */
export interface LiveFeedOptions {
  /** Phone-page sockets open at once; the oldest is closed past it. Default 16. */
  maxSockets?: number;
  /** Users whose history is kept; the least recently active is forgotten. Default 500. */
  maxUsers?: number;
  /** Events kept per user. Default 200. */
  maxHistory?: number;
  /** A socket with more than this many bytes unsent is too slow and is closed. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Sent first on every new socket (the page's settings). */
  hello?: () => Record<string, unknown>;
}

/** The live feed of all phone pages. */
export interface LiveFeed {
  /** Push to every phone page; kept in the user's history unless transient (attempts, typing). */
  publish(event: PhoneEvent): void;
  /** The user's kept events, oldest first. */
  history(openid: string): PhoneEvent[];
  /** Upgrade a request to a phone-page socket. */
  upgrade(req: Request): Response;
  /** Phone-page sockets open now. */
  readonly sockets: number;
  /** Close every socket with 1001. */
  close(): void;
}

const TRANSIENT = new Set(["attempt", "typing"]);
const CLOSE_GOING_AWAY = 1001;
// 1008 (policy violation) for a reader too slow to keep up or replaced by a newer page.
const CLOSE_POLICY = 1008;

/** Create an empty live feed. */
export function createLiveFeed(options: LiveFeedOptions = {}): LiveFeed {
  const maxSockets = options.maxSockets ?? 16;
  const maxUsers = options.maxUsers ?? 500;
  const maxHistory = options.maxHistory ?? 200;
  const maxBuffered = options.maxBufferedBytes ?? 1 << 20;
  const sockets = new Set<WebSocket>();
  const histories = new Map<string, PhoneEvent[]>();
  let seq = 0;
  let closed = false;

  function keep(event: PhoneEvent): void {
    let list = histories.get(event.openid);
    // Re-inserted on each event, so Map order is least recently active first.
    if (list) histories.delete(event.openid);
    else list = [];
    histories.set(event.openid, list);
    list.push(event);
    if (list.length > maxHistory) list.splice(0, list.length - maxHistory);
    for (const openid of histories.keys()) {
      if (histories.size <= maxUsers) break;
      histories.delete(openid);
    }
  }

  function write(socket: WebSocket, text: string): void {
    if (socket.readyState !== WebSocket.OPEN) return;
    if (socket.bufferedAmount > maxBuffered) {
      sockets.delete(socket);
      socket.close(CLOSE_POLICY, "too slow: unsent events over the limit");
      return;
    }
    socket.send(text);
  }

  return {
    publish(event) {
      const stamped = { seq: ++seq, at: Date.now(), ...event };
      if (!TRANSIENT.has(event.kind)) keep(stamped);
      const text = JSON.stringify(stamped);
      for (const s of sockets) write(s, text);
    },
    history: (openid) => [...(histories.get(openid) ?? [])],
    upgrade(req) {
      const { socket, response } = Deno.upgradeWebSocket(req, { idleTimeout: 60 });
      socket.onopen = () => {
        // Upgraded just before shutdown: it never joins.
        if (closed) return socket.close(CLOSE_GOING_AWAY, "simulator shutting down");
        if (sockets.size >= maxSockets) {
          const oldest = sockets.values().next().value!;
          sockets.delete(oldest);
          oldest.close(CLOSE_POLICY, `replaced: more than ${maxSockets} phone pages open`);
        }
        sockets.add(socket);
        socket.send(JSON.stringify({ kind: "hello", ...options.hello?.() }));
      };
      socket.onclose = () => sockets.delete(socket);
      // The page only listens; a ping keeps proxies from timing it out.
      socket.onmessage = (e) => {
        if (e.data === "ping") write(socket, "pong");
      };
      return response;
    },
    get sockets() {
      return sockets.size;
    },
    close() {
      closed = true;
      for (const s of sockets) s.close(CLOSE_GOING_AWAY, "simulator shutting down");
      sockets.clear();
    },
  };
}
