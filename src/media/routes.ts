/**
 * `GET /media/<sha256>.<ext>`: a stored media file, for the agent who owns it
 * ({@link MediaOwnership}: a message of its contacts uses it, or it uploaded
 * it) — with sign-in on, its session cookie (the agent page: no token in the
 * `<img src>`), a signed link, or its token (`?token=`, `Authorization`); with
 * sign-in off: anyone, as every agent endpoint then. With `Content-Type`, `Content-Length`, `Range` (browsers seek
 * in audio and video with it) and `Cache-Control: private` (the name is the
 * content's hash, so it never changes).
 *
 * @module
 */

import { Hono } from "hono";
import type { Auth } from "../agents/auth/auth.ts";
import { agentAuth, type AgentEnv } from "../agents/middleware.ts";
import { KefuError, quote } from "../core/errors.ts";
import type { Hub } from "../hub/hub.ts";
import { type MediaFiles, typeOfName } from "./files.ts";
import { MEDIA_PATH } from "./pipeline.ts";
import { MediaOwnership } from "./ownership.ts";

/** Options for {@link mediaRoutes}. */
export interface MediaRoutesOptions {
  files: MediaFiles;
  hub: Hub;
  /** Sign-in; undefined: off. */
  auth?: Auth;
  /** `PUBLIC_URL`: files stored while it was set are named by their absolute URL. */
  publicUrl?: string;
  /** Life of a signed link (`MEDIA_URL_SECONDS`). */
  linkSeconds?: number;
  /** Who owns which file; default one of its own over `hub`. */
  ownership?: MediaOwnership;
}

/** The media route, as a sub-app to mount at `/`. */
export function mediaRoutes(options: MediaRoutesOptions): Hono<AgentEnv> {
  const { files, hub, auth } = options;
  const app = new Hono<AgentEnv>();
  const ownership = options.ownership ?? new MediaOwnership({ hub, publicUrl: options.publicUrl });
  const owner = (name: string, agent: string) => ownership.owns(agent, name);
  if (auth !== undefined) {
    // A signed link opens the file without a token; anything else needs the owner's.
    const agentOnly = agentAuth(auth);
    app.use(`${MEDIA_PATH}/:name`, (c, next) => {
      if (c.req.query("sig") === undefined) return agentOnly(c, next);
      if (auth.checkLink(c.req.path, c.req.query("exp"), c.req.query("sig"))) return next();
      throw new KefuError("link_expired", "the link has expired or is not valid: ask for a new one", 403);
    });
    app.use(`${MEDIA_PATH}/:name/link`, agentOnly);
    // A link the owner can hand to a player or a colleague: it opens the file until it expires.
    app.post(`${MEDIA_PATH}/:name/link`, async (c) => {
      const name = c.req.param("name");
      if (typeOfName(name) === undefined || !await owner(name, c.var.agent)) {
        throw new KefuError("not_your_contact", `cannot link ${quote(name)}: no message of your contacts uses it`, 403);
      }
      const expiresAt = Math.floor(Date.now() / 1000) + (options.linkSeconds ?? 3600);
      const url = `${options.publicUrl ?? ""}${auth.signLink(`${MEDIA_PATH}/${name}`, expiresAt)}`;
      return c.json({ data: { url, expires_at: expiresAt }, result: { code: 0, message: "common" } });
    });
  }
  app.get(`${MEDIA_PATH}/:name`, async (c) => {
    const name = c.req.param("name");
    const type = typeOfName(name);
    if (type === undefined) throw new KefuError("media_not_found", `no media file ${quote(name)}`, 404);
    const linked = auth?.checkLink(c.req.path, c.req.query("exp"), c.req.query("sig")) ?? true;
    const owned = auth === undefined || (c.var.agent === undefined ? linked : await owner(name, c.var.agent));
    if (!owned) {
      throw new KefuError("not_your_contact", `cannot open ${quote(name)}: no message of your contacts uses it`, 403);
    }
    const bytes = await files.read(name);
    const headers: Record<string, string> = {
      "content-type": type,
      "accept-ranges": "bytes",
      "cache-control": "private, max-age=31536000, immutable",
      "x-content-type-options": "nosniff",
    };
    const range = parseRange(c.req.header("range"), bytes.length);
    if (range === "unsatisfiable") {
      return c.body(null, 416, { ...headers, "content-range": `bytes */${bytes.length}` });
    }
    if (range !== undefined) {
      const [start, end] = range;
      return c.body(bytes.slice(start, end + 1) as Uint8Array<ArrayBuffer>, 206, {
        ...headers,
        "content-range": `bytes ${start}-${end}/${bytes.length}`,
      });
    }
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, headers);
  });
  return app;
}

/** A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range of a file of `size` bytes; anything else is the whole file. */
export function parseRange(header: string | undefined, size: number): [number, number] | "unsatisfiable" | undefined {
  const m = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === "" && m[2] === "")) return undefined;
  let start: number;
  let end: number;
  if (m[1] === "") {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return "unsatisfiable";
  return [start, end];
}
