/**
 * Issue 20, tried again: outgoing fetches decide redirects themselves. WeChat's media/get that answers a redirect to
 * an internal host is not followed (it used to be, and the internal server's data became an agent's "video"), and a
 * user's file URL is followed only to hosts on the allow-list, hop by hop.
 */

import assert from "node:assert/strict";
import { WechatApi } from "../../src/channels/wx_official/api.ts";
import { fetchMedia } from "../../src/media/fetch.ts";

function serve(handler: (req: Request) => Response) {
  const hits: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    hits.push(new URL(req.url).pathname);
    return handler(req);
  });
  return { hits, url: `http://127.0.0.1:${server.addr.port}`, [Symbol.asyncDispose]: () => server.shutdown() };
}

Deno.test("security: WeChat's media/get answering a redirect to an internal host is not followed", async () => {
  await using internal = serve(() => new Response("internal secrets", { headers: { "content-type": "video/mp4" } }));
  await using wechat = serve((req) =>
    new URL(req.url).pathname === "/cgi-bin/token"
      ? Response.json({ access_token: "tok", expires_in: 7200 })
      : new Response(null, { status: 302, headers: { location: `${internal.url}/admin/dump` } })
  );
  const api = new WechatApi({ appId: "wx1", appSecret: "secret-0123456789", apiBase: wechat.url, tokenMode: "token" });
  await assert.rejects(
    api.getMedia("m1"),
    (e: Error) => /redirect \(HTTP 302 to 127\.0\.0\.1:\d+\): not followed/.test(e.message),
  );
  assert.deepEqual(internal.hits, []);
});

Deno.test("security: a file URL is followed hop by hop only to allowed hosts", async () => {
  await using internal = serve(() => new Response("internal secrets"));
  await using cdn = serve((req) =>
    new URL(req.url).pathname === "/ok"
      ? new Response(new Uint8Array([1, 2, 3]), { headers: { "content-type": "image/png" } })
      : new Response(null, { status: 302, headers: { location: `${internal.url}/x` } })
  );
  const allowed = [new URL(cdn.url).host];
  const limits = { allowedHosts: allowed, maxBytes: 1024, timeoutMs: 5000 };
  await assert.rejects(fetchMedia(`${cdn.url}/evil`, limits), /not on MEDIA_ALLOWED_HOSTS/);
  assert.deepEqual(internal.hits, []);
  assert.deepEqual((await fetchMedia(`${cdn.url}/ok`, limits)).bytes, new Uint8Array([1, 2, 3]));
});
