/**
 * The agent test page. Files are read from a directory given by `main.ts`
 * (`import.meta.dirname`), which `deno compile --include static` embeds.
 *
 * @module
 */

import { Hono } from "hono";
import { KefuError, quote } from "../core/errors.ts";

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json",
};

const SAFE_PATH = /^[\w-]+(?:\/[\w-]+)*\.(\w+)$/;

async function serveFile(dir: string, path: string): Promise<Response> {
  const m = SAFE_PATH.exec(path);
  const type = m ? TYPES[m[1]] : undefined;
  if (type === undefined) throw new KefuError("not_found", `no static file ${quote(path)}`, 404);
  try {
    const body = await Deno.readFile(`${dir}/${path}`);
    return new Response(body, { headers: { "content-type": type, "cache-control": "no-cache" } });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new KefuError("not_found", `no static file ${quote(path)}`, 404);
    throw e;
  }
}

/** `GET /` (index.html) and `GET /static/*` from `dir`, as a sub-app to mount at `/`. */
export function staticRoutes(dir: string): Hono {
  const app = new Hono();
  app.get("/", () => serveFile(dir, "index.html"));
  app.get("/static/*", (c) => serveFile(dir, c.req.path.slice("/static/".length)));
  return app;
}
