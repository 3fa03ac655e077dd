/**
 * The agent test page. Files are read from a directory given by `main.ts`
 * (`import.meta.dirname`), which `deno compile --include static` embeds.
 *
 * Every file goes out with headers that keep the page its own: a Content-Security-Policy (scripts, styles and
 * connections from kefu only, no inline script; `frame-ancestors 'none'` with `X-Frame-Options: DENY` for older
 * browsers, so no other site frames the page to click through it), no referrer beyond the origin, and nosniff.
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

/**
 * The page's policy. Images and media may come from any https host (users' pictures are WeChat's URLs until kefu
 * keeps them) and from `blob:`/`data:` (previews of uploads, the page's tones); nothing else leaves kefu's origin.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob: https:",
  "media-src 'self' data: blob: https:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** The headers every file of the page is served with. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
  "x-content-type-options": "nosniff",
  "cache-control": "no-cache",
};

async function serveFile(dir: string, path: string): Promise<Response> {
  const m = SAFE_PATH.exec(path);
  const type = m ? TYPES[m[1]] : undefined;
  if (type === undefined) throw new KefuError("not_found", `no static file ${quote(path)}`, 404);
  try {
    const body = await Deno.readFile(`${dir}/${path}`);
    return new Response(body, { headers: { ...PAGE_HEADERS, "content-type": type } });
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
