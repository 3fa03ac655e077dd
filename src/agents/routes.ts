/**
 * Agent-facing HTTP: the WebSocket upgrade (on the seed's path and on `/` for
 * the seed's test page), an agent's contact list, and the files an agent
 * uploads to send to a user.
 *
 * @module
 */

import { Hono } from "hono";
import { KefuError, quote } from "../core/errors.ts";
import { readBytes } from "../core/body.ts";
import { Code, CONTACTS_PATH, HISTORY_PATH, UPLOAD_PATH } from "../envelope/protocol.ts";
import type { Uploads } from "../media/uploads.ts";
import { MediaOwnership } from "../media/ownership.ts";
import { type AgentDialect, selectDialect } from "./dialect.ts";
import { historyItem } from "./history_item.ts";
import type { Auth } from "./auth/auth.ts";
import { authRoutes } from "./auth/routes.ts";
import { agentAuth, type AgentEnv } from "./middleware.ts";
import { isUpgrade, type SessionOptions, upgradeAgent } from "./session.ts";
import { workplaceRoutes } from "./workplace_routes.ts";

/** Options for {@link agentRoutes}. */
export interface AgentRoutesOptions extends SessionOptions {
  /** The dialects sockets can speak; the first is the default. */
  dialects: readonly AgentDialect[];
  /** Files agents upload to send. */
  uploads: Uploads;
  /** Agent sign-in; undefined: off (agents name themselves with `?userid=`). */
  auth?: Auth;
  /** Who owns which stored file (uploads and users' media); default one of its own over the hub. */
  ownership?: MediaOwnership;
}

/**
 * The agent routes, as a sub-app to mount at `/`: a socket on each dialect's paths, the contact list, history and
 * uploads. Every one of them goes through {@link agentAuth}. A plain GET `/` falls through to the static page.
 */
export function agentRoutes(options: AgentRoutesOptions): Hono<AgentEnv> {
  const { hub, dialects } = options;
  const ownership = options.ownership ?? new MediaOwnership({ hub });
  // A reply sends only the agent's own files.
  options = { ...options, checkMedia: (agent, media) => ownership.checkReply(agent, media) };
  const app = new Hono<AgentEnv>();
  const auth = agentAuth(options.auth);
  app.route("/", authRoutes(options.auth));
  app.route("/", workplaceRoutes({ hub, auth: options.auth }));
  // The page itself is public; a socket on `/` is an agent endpoint like the others.
  app.use("/", (c, next) => isUpgrade(c.req.raw) ? auth(c, next) : next());
  const paths = [...new Set(dialects.flatMap((d) => d.paths))];
  for (const path of paths.filter((p) => p !== "/")) app.use(path, auth);
  app.use(CONTACTS_PATH, auth);
  app.use(HISTORY_PATH, auth);
  app.on("POST", UPLOAD_PATH, auth);
  // With sign-in off, an upload's random id is what opens it (the page's <img src> has no agent id to add).
  app.on("GET", `${UPLOAD_PATH}/:id`, (c, next) => options.auth ? auth(c, next) : next());

  for (const path of paths) {
    app.get(path, (c, next) => {
      if (!isUpgrade(c.req.raw)) {
        if (path === "/") return next();
        throw new KefuError("upgrade_required", `${path} is a WebSocket endpoint: connect with ws://`, 426);
      }
      const dialect = selectDialect(dialects, new URL(c.req.url));
      const claims = c.var.claims;
      // A socket lives no longer than its token: revoked (a sign-out, an administrator), it is closed with 4401.
      const watch = claims && options.auth && ((close: (reason: string) => void) => options.auth!.watch(claims, close));
      return upgradeAgent(c.req.raw, c.var.agent, dialect, options, c.var.expiresAt, watch || undefined);
    });
  }
  app.get(CONTACTS_PATH, async (c) => {
    const agent = c.var.agent;
    return c.json({
      data: { agent_id: agent, online: hub.isOnline(agent), contacts: await hub.contactsOf(agent) },
      result: { code: Code.ok, message: "common" },
    });
  });

  // Newest first; `before` pages back. Each item is the envelope's data as the agent got (or sent) it.
  app.get(HISTORY_PATH, async (c) => {
    const agent = c.var.agent;
    const contact = c.req.query("contact_id")?.trim() ?? "";
    if (contact === "") {
      throw new KefuError("missing_field", "?contact_id= is required: the user whose conversation to read");
    }
    const rawLimit = c.req.query("limit") ?? "50";
    const limit = Number(rawLimit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
      throw new KefuError("wrong_type", `?limit= must be an integer from 1 to 500, got ${quote(rawLimit)}`);
    }
    const before = c.req.query("before")?.trim() || undefined;
    const page = await hub.history(agent, contact, before, limit + 1);
    const messages = page.slice(0, limit).map((m) => historyItem(m, m.state, m.detail));
    return c.json({
      data: { agent_id: agent, contact_id: contact, messages, has_more: page.length > limit },
      result: { code: Code.ok, message: "common" },
    });
  });

  const uploads = options.uploads;
  // The file is the body (a browser's fetch(url, {body: file})); its name comes in ?filename=.
  app.post(UPLOAD_PATH, async (c) => {
    const filename = c.req.query("filename")?.trim() ?? "";
    // deno-lint-ignore no-control-regex
    if (!/^[^\x00-\x1f\x7f/\\]{1,200}\.[A-Za-z0-9]{1,8}$/.test(filename)) {
      await c.req.raw.body?.cancel();
      throw new KefuError(
        "missing_field",
        `?filename= must name the file with its extension (e.g. photo.jpg), got ${quote(filename)}`,
      );
    }
    const bytes = await readBytes(c.req.raw, uploads.maxFileBytes);
    if (bytes.length === 0) throw new KefuError("empty_body", "the request body is empty: send the file's bytes");
    const type = c.req.header("content-type")?.split(";")[0].trim() || "application/octet-stream";
    const u = await uploads.add(bytes, filename, type);
    ownership.uploaded(c.var.agent, u.id);
    return c.json({
      data: { media_path: `${UPLOAD_PATH}/${u.id}`, filename, size: bytes.length, content_type: type },
      result: { code: Code.ok, message: "uploaded" },
    });
  });
  app.get(`${UPLOAD_PATH}/:id`, async (c) => {
    const id = c.req.param("id");
    // Uploads and users' files share one store: with sign-in on, only the uploader or the owner of a message using
    // the file opens it. Anyone else gets the answer of a file that does not exist: names cannot be probed.
    if (options.auth && !await ownership.owns(c.var.agent, id)) {
      throw new KefuError("media_not_found", `no upload ${quote(id)} of yours or of your contacts`, 404);
    }
    const u = await uploads.load(id);
    if (u === undefined) throw new KefuError("media_not_found", `no upload ${quote(id)}`, 404);
    // Only media types are served as such: an uploaded page or SVG must not run as this origin.
    const safe = /^(image\/(jpeg|png|gif|webp)|audio\/[\w.+-]+|video\/[\w.+-]+)$/.test(u.contentType);
    return c.body(u.bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": safe ? u.contentType : "application/octet-stream",
      "x-content-type-options": "nosniff",
      "cache-control": "private, max-age=3600",
    });
  });
  return app;
}
