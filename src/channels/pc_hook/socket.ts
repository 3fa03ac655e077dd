/**
 * One hook's callback socket, kefu being the server, exactly as the seed's
 * server: the hook's first frame must be `hello`, answered `hello`; anything
 * before it is answered `connected fail` and kefu keeps waiting. After that
 * every frame is handed to `handle` one at a time, in order, and answered `ok`
 * only once `handle` resolved (the message is committed). A frame that could
 * not be kept gets no `ok`: the socket is closed (1011) so that the hook
 * reconnects, and the error is logged.
 *
 * @module
 */

import type { Logger } from "../../core/log.ts";

/** What one socket needs from the channel. */
export interface CallbackOptions {
  /** The hook's name, for logs. */
  hook: string;
  /** Decode and keep one frame; resolves once it is committed (or deliberately not kept). */
  handle(frame: string): Promise<void>;
  log: Logger;
  /** Frames (bytes) waiting to be handled past which the socket is closed (1013): memory stays bounded. */
  maxPendingBytes: number;
  /** Called once when the socket has closed. */
  onClose(): void;
}

/** Close codes of the callback socket. */
export const HookClose = { goingAway: 1001, internal: 1011, tryAgain: 1013 } as const;

const decoder = new TextDecoder();

/** A hook's callback socket being served. */
export class CallbackSocket {
  /** The handshake (`hello`) is done. */
  ready = false;
  /** Frames answered `ok`. */
  acked = 0;
  /** The account this socket's pushes named last (robot.userName), when any. */
  account = "";
  readonly #socket: WebSocket;
  readonly #options: CallbackOptions;
  #chain: Promise<void> = Promise.resolve();
  #pendingBytes = 0;
  #closing = false;

  constructor(socket: WebSocket, options: CallbackOptions) {
    this.#socket = socket;
    this.#options = options;
    socket.binaryType = "arraybuffer";
    socket.addEventListener("message", (e) => this.#receive(e.data));
    socket.addEventListener("close", () => {
      this.#closing = true;
      options.onClose();
    }, { once: true });
    // An error is followed by close; nothing else to do but not let it go unhandled.
    socket.addEventListener("error", () => {});
  }

  /** Frames still being handled, settled (resolves when all are answered or dropped). */
  drained(): Promise<void> {
    return this.#chain;
  }

  /** Take no more frames (those not yet being handled get no `ok`); the one being handled is still answered. */
  stopTaking(): void {
    this.#closing = true;
  }

  /** Stop taking frames and close with `code` now. */
  close(code: number, reason: string): void {
    this.#closing = true;
    if (this.#socket.readyState === WebSocket.OPEN || this.#socket.readyState === WebSocket.CONNECTING) {
      try {
        this.#socket.close(code, reason);
      } catch { /* already closing */ }
    }
  }

  #receive(data: unknown): void {
    if (this.#closing) return;
    // Text frames are the protocol; a binary one is read as UTF-8 (and kept as it came if it is not a push).
    const frame = typeof data === "string" ? data : decoder.decode(data as ArrayBuffer);
    const size = frame.length;
    this.#pendingBytes += size;
    if (this.#pendingBytes > this.#options.maxPendingBytes) {
      this.#options.log.error("pc_hook_backlog_full", {
        hook: this.#options.hook,
        pending_bytes: this.#pendingBytes,
        detail: "frames arrive faster than they can be kept: closing so that the hook backs off",
      });
      this.close(HookClose.tryAgain, "too many frames waiting to be kept");
      return;
    }
    this.#chain = this.#chain.then(() => this.#process(frame)).finally(() => this.#pendingBytes -= size);
  }

  async #process(frame: string): Promise<void> {
    if (!this.ready) {
      // The seed's server_hands: only "hello" opens the conversation.
      if (frame === "hello") {
        this.ready = true;
        this.#send("hello");
        this.#options.log.info("pc_hook_connected", { hook: this.#options.hook });
      } else {
        this.#send("connected fail");
        this.#options.log.info("pc_hook_handshake_refused", { hook: this.#options.hook, got: frame.slice(0, 60) });
      }
      return;
    }
    if (this.#closing) return;
    try {
      await this.#options.handle(frame);
    } catch (e) {
      // Not kept: no "ok". The frame is in the log so that nothing is lost silently.
      this.#options.log.error("pc_hook_frame_not_kept", {
        hook: this.#options.hook,
        error: (e as Error).message,
        frame: frame.slice(0, 4096),
      });
      this.close(HookClose.internal, "cannot keep the message now");
      return;
    }
    this.acked++;
    this.#send("ok");
  }

  #send(text: string): void {
    if (this.#socket.readyState !== WebSocket.OPEN) return;
    try {
      this.#socket.send(text);
    } catch { /* closed meanwhile: the hook reconnects */ }
  }
}
