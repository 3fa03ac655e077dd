/**
 * The PC-hook channel (seed 000): personal WeChat accounts whose PC client runs
 * the "WeChatSDK" hook. kefu serves the hooks' callback WebSocket on its own
 * port (`socket.ts`), keeps its callback registered on each hook's HTTP API
 * (`registration.ts`), decodes pushes (`codec.ts`) and answers through the
 * hook's send calls (`api.ts`).
 *
 * The account is the hook's own wxid: `robot.userName` of its pushes, the
 * configured `wxid`, or what the hook's type 28 says, in that order; contacts
 * are (`pc_hook`, account wxid, user wxid or `…@chatroom`). Messages the
 * account sent itself (`isSender`, pushType 4) are not kept: the channel has
 * no way to store outbound history (see docs/architecture.md, Not yet).
 *
 * @module
 */

import { type Context, Hono } from "hono";
import { timingSafeEqual } from "node:crypto";
import type { Hold, Holder } from "../../cluster/holder.ts";
import { KefuError, quote } from "../../core/errors.ts";
import type { Message } from "../../core/message.ts";
import type { ContactRecord } from "../../store/store.ts";
import type { ChannelAdapter, ChannelContext, ChannelFactory } from "../channel.ts";
import { HookApi } from "./api.ts";
import { decodePush, PC_HOOK } from "./codec.ts";
import type { HookEndpoint, PcHookOptions } from "./config.ts";
import { Registration } from "./registration.ts";
import { CallbackSocket, HookClose } from "./socket.ts";

export { PC_HOOK } from "./codec.ts";

/** Frames (bytes) one socket may have waiting to be kept before it is closed (1013). */
const MAX_PENDING_BYTES = 16 << 20;

// A Windows path on the hook's PC (C:\… or \\server\share\…): the only way its send calls take a file.
const HOOK_PATH_RE = /^(?:[A-Za-z]:[\\/]|\\\\[^\\])/;

/** One hook at run time: its API, its registration, its sockets, the account it is logged in as. */
class Hook {
  /** The wxid logged in: configured, else learned (type 28, then the pushes' `robot.userName`). */
  wxid: string | undefined;
  readonly sockets = new Set<CallbackSocket>();
  readonly counts = { kept: 0, duplicate: 0, skipped: 0, undecodable: 0 };
  /** Among several nodes: the lease `pc_hook:<name>` that says which node keeps the registration. */
  holder: Holder | undefined;

  constructor(readonly endpoint: HookEndpoint, readonly api: HookApi, readonly registration: Registration) {
    this.wxid = endpoint.wxid;
  }

  /** The account of a push that names none. */
  get account(): string {
    return this.wxid ?? `hook:${this.endpoint.name}`;
  }
}

/** Options of {@link pcHook} besides the channel's settings. */
export interface PcHookCluster {
  /**
   * Among several nodes (issue 19): each hook's callback registration is kept by the one node holding the lease
   * `pc_hook:<hook name>`; the others stand by. The callback socket is not held: the registered URL is the load
   * balancer's, and whichever node the hook's socket lands on serves it (the store keeps each push once).
   */
  hold?: Hold;
  /** Several nodes share the callback URL: a drained holder leaves the callback for the next one (default false). */
  handover?: boolean;
}

/** The PC-hook channel, for `main.ts` to register. */
export function pcHook(options: PcHookOptions, cluster: PcHookCluster = {}): ChannelFactory {
  return (ctx: ChannelContext): ChannelAdapter => {
    const { log } = ctx;
    const hooks: Hook[] = [];
    // Which hook sends for an account: learned from each hook's pushes and type 28.
    const byAccount = new Map<string, Hook>();
    const learn = (hook: Hook, wxid: string) => {
      if (wxid === "" || wxid.startsWith("hook:")) return;
      if (byAccount.get(wxid) !== hook) log.info("pc_hook_account", { hook: hook.endpoint.name, wxid });
      hook.wxid ??= wxid;
      byAccount.set(wxid, hook);
    };
    for (const endpoint of options.hooks) {
      const api = new HookApi(endpoint.apiUrl, {
        name: endpoint.name,
        timeoutMs: options.timeoutMs,
        secretKey: endpoint.secretKey,
      });
      const hook: Hook = new Hook(
        endpoint,
        api,
        new Registration(endpoint, api, {
          register: options.register,
          token: options.callbackToken,
          checkMs: options.checkMs,
          retryMinMs: options.retryMinMs,
          retryMaxMs: options.retryMaxMs,
          log,
          onWxid: (wxid) => learn(hook, wxid),
        }),
      );
      if (endpoint.wxid !== undefined) byAccount.set(endpoint.wxid, hook);
      hooks.push(hook);
    }
    let stopping = false;
    let stopMs = 5_000;

    // Decode one frame and keep it; resolves once committed. A frame kefu cannot read is the operator's matter: logged
    // (its start) and counted (/healthz), answered ok (it would never read better), never an agent's contact.
    const handle = async (hook: Hook, socket: CallbackSocket, frame: string) => {
      const fallback = socket.account || hook.account;
      let decoded;
      try {
        if (frame.length > ctx.maxBodyBytes) {
          throw new Error(
            `the push is ${frame.length} characters long, more than MAX_BODY_BYTES (${ctx.maxBodyBytes})`,
          );
        }
        decoded = decodePush(frame, fallback);
      } catch (e) {
        const reason = (e as Error).message;
        log.warn("pc_hook_undecodable", {
          hook: hook.endpoint.name,
          account: fallback,
          error: reason,
          bytes: frame.length,
          frame: frame.slice(0, 1024),
        });
        hook.counts.undecodable++;
        return;
      }
      socket.account = decoded.account;
      learn(hook, decoded.account);
      if (decoded.kind === "skip") {
        hook.counts.skipped++;
        const fields = { hook: hook.endpoint.name, account: decoded.account, ...decoded.detail };
        if (decoded.reason === "logout") log.warn("pc_hook_logout", fields);
        else if (decoded.reason === "login") log.info("pc_hook_login", fields);
        else log.debug(`pc_hook_${decoded.reason}`, fields);
        return;
      }
      const r = await ctx.accept(decoded.message);
      if (r.status === "duplicate") hook.counts.duplicate++;
      else hook.counts.kept++;
    };

    // The callback socket: `{path}` for the only hook, `{path}/{name}` for each.
    const upgrade = (name: string | undefined) => (c: Context) => {
      const path = c.req.path;
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
        throw new KefuError("upgrade_required", `${path} is the PC hook's callback WebSocket: connect with ws://`, 426);
      }
      const hook = name === undefined
        ? (hooks.length === 1 ? hooks[0] : undefined)
        : hooks.find((h) => h.endpoint.name === name);
      if (options.callbackToken !== undefined && !tokenMatches(c.req.query("token"), options.callbackToken)) {
        throw new KefuError(
          "auth_required",
          `${path} needs HOOK_CALLBACK_TOKEN: the hook dials the URL kefu registered, which carries ?token=…`,
          401,
        );
      }
      if (hook === undefined) {
        const known = hooks.map((h) => `${options.path}/${h.endpoint.name}`).join(", ");
        throw new KefuError("not_found", `no PC hook answers on ${quote(path)}: the hooks dial ${known}`, 404);
      }
      // Deno pings after idleTimeout/2 of silence and closes after as long again without an answer.
      const { socket, response } = Deno.upgradeWebSocket(c.req.raw, { idleTimeout: options.pingSeconds * 2 });
      const conn: CallbackSocket = new CallbackSocket(socket, {
        hook: hook.endpoint.name,
        handle: (frame) => handle(hook, conn, frame),
        log,
        maxPendingBytes: MAX_PENDING_BYTES,
        onClose: () => {
          hook.sockets.delete(conn);
          if (!stopping) {
            log.info("pc_hook_disconnected", { hook: hook.endpoint.name, acked: conn.acked });
            hook.registration.poke();
          }
        },
      });
      hook.sockets.add(conn);
      // A hook dialing while kefu stops is served but given nothing to keep: it comes back to the next kefu.
      if (stopping) conn.stopTaking();
      return response;
    };
    const routes = new Hono();
    routes.get(options.path, upgrade(undefined));
    // The seed registers "ws://…/websocket/": the same path with a trailing slash is the same socket.
    routes.get(`${options.path}/`, upgrade(undefined));
    routes.get(`${options.path}/:hook`, (c) => upgrade(c.req.param("hook"))(c));

    // Replies under way, so that stop() lets them finish.
    const sending = new Set<Promise<unknown>>();

    const send = async (reply: Message, contact: ContactRecord): Promise<string> => {
      const hook = byAccount.get(contact.account) ??
        hooks.find((h) => `hook:${h.endpoint.name}` === contact.account) ??
        (hooks.length === 1 ? hooks[0] : undefined);
      if (hook === undefined) {
        throw new KefuError(
          "no_route",
          `cannot send the reply to ${quote(contact.user)}: no PC hook is known for account ${
            quote(contact.account)
          } (set its wxid in CONFIG_FILE pc_hook.hooks, or wait for the hook's first push); the reply was kept, not sent`,
          409,
          { channel: PC_HOOK },
        );
      }
      const s = options.send;
      let body: Record<string, unknown>;
      if (reply.type === "text") {
        body = { type: s.textType, [s.userField]: contact.user, [s.contentField]: reply.content };
      } else if ((reply.type === "image" || reply.type === "file") && HOOK_PATH_RE.test(reply.media)) {
        body = {
          type: reply.type === "image" ? s.imageType : s.fileType,
          [s.userField]: contact.user,
          [s.pathField]: reply.media,
        };
      } else {
        throw new KefuError(
          "reply_not_supported",
          `cannot send a ${quote(reply.type)} reply through the PC hook: it sends text, and images or files only ` +
            `from a path on the hook's own PC (e.g. C:\\\\files\\\\a.png), which ${quote(reply.media)} is not`,
          422,
        );
      }
      const p = hook.api.call(body, `send the reply to ${quote(contact.user)} as ${quote(contact.account)}`);
      sending.add(p);
      try {
        await p;
      } finally {
        sending.delete(p);
      }
      return "sent";
    };

    return {
      name: PC_HOOK,
      routes,
      send,
      start() {
        for (const h of hooks) {
          if (cluster.hold === undefined || !options.register) {
            h.registration.start();
            continue;
          }
          h.holder = cluster.hold(`pc_hook:${h.endpoint.name}`, {
            start: () => h.registration.start(),
            // Lost (maybe to a node that registered already) or handed over: the callback stays for the next holder.
            stop: (why) => h.registration.stop(stopMs, { keep: why === "lost" || cluster.handover === true }),
          });
          h.holder.start();
        }
        return Promise.resolve();
      },
      async stop(ms) {
        stopping = true;
        const deadline = Date.now() + ms;
        const sockets = hooks.flatMap((h) => [...h.sockets]);
        for (const s of sockets) s.stopTaking();
        // Frames being committed are answered "ok", replies under way finish, then the sockets and callbacks go.
        await waitAtMost(
          Promise.all([...sockets.map((s) => s.drained()), ...[...sending].map((p) => p.catch(() => {}))]),
          ms,
        );
        for (const s of sockets) s.close(HookClose.goingAway, "kefu is stopping");
        stopMs = Math.max(100, deadline - Date.now());
        await Promise.all(hooks.map((h) => h.holder ? h.holder.stop() : h.registration.stop(stopMs)));
      },
      health: () => ({
        path: options.path,
        hooks: hooks.map((h) => {
          const connected = [...h.sockets].filter((s) => s.ready).length;
          const hold = h.holder?.health();
          // Standing by, the registration is another node's; up: its socket is served here, or by whichever node
          // the load balancer gave it (this node registered, or stands by behind the one that did).
          const cluster = hold === undefined ? {} : {
            hold,
            up: connected > 0 || hold.hold === "standby" || h.registration.state === "registered",
            ...(hold.hold === "holding" ? {} : { registration: hold.hold }),
          };
          return {
            name: h.endpoint.name,
            api: h.endpoint.apiUrl,
            callback: h.endpoint.callbackUrl,
            account: h.wxid ?? "",
            ...h.registration.health(),
            ...cluster,
            connected,
            ...h.counts,
          };
        }),
      }),
    };
  };
}

function tokenMatches(got: string | undefined, expected: string): boolean {
  const a = new TextEncoder().encode(got ?? "");
  const b = new TextEncoder().encode(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise((resolve) => timer = setTimeout(resolve, ms))]);
  clearTimeout(timer);
}
