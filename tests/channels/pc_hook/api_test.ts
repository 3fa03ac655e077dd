/**
 * The hook's API client: both answer shapes, error codes and statuses,
 * a hook that is not there or does not answer in time.
 */

import assert from "node:assert/strict";
import { HookApi } from "../../../src/channels/pc_hook/api.ts";
import { KefuError } from "../../../src/core/errors.ts";
import { fakeHook, freePort } from "./helpers.ts";

const api = (url: string, timeoutMs = 2000, secretKey?: string) =>
  new HookApi(url, { name: "h1", timeoutMs, secretKey });

// A server answering every call with `body` (as given, not re-encoded).
function answering(body: string, status = 200): { url: string } & AsyncDisposable {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    await req.body?.cancel();
    return new Response(body, { status, headers: { "content-type": "application/json" } });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/api/`, [Symbol.asyncDispose]: () => server.shutdown() };
}

async function refused(p: Promise<unknown>, kind: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (e) => e instanceof KefuError && e.kind === kind && re.test(e.message));
}

for (const answers of ["seed", "wrapped"] as const) {
  Deno.test(`pc_hook api: add, list, remove and who-am-i against the fake hook answering the ${answers} way`, async () => {
    await using hook = fakeHook({ answers, wxid: "wxid_api" });
    const a = api(hook.apiUrl);
    const cookie = await a.addCallback("ws://127.0.0.1:9/cb");
    assert.deepEqual(await a.listCallbacks(), [{ cookie, url: "ws://127.0.0.1:9/cb", protocol: 3 }]);
    assert.equal(await a.self(), "wxid_api");
    await a.removeCallback(cookie);
    assert.deepEqual(await a.listCallbacks(), []);
    await refused(a.removeCallback(cookie), "hook_api_error", /answered status -1 "cookie not found"/);
    await refused(
      a.call({ type: 4242 }, "do 4242"),
      "hook_api_error",
      /answered error_code 10003 "不支持的接口编号" \(the hook does not know this call type\)/,
    );
  });
}

Deno.test("pc_hook api: the answers of the vendor's docs, as written, and what is not an answer", async () => {
  {
    // The seed's 1001 answer has an empty cookie: kefu could never remove it again.
    await using s = answering('{"data":{"status":0,"desc":"","cookie":""}}');
    await refused(
      api(s.url).addCallback("ws://x/"),
      "hook_api_error",
      /register the callback "ws:\/\/x\/": the PC hook answered no cookie/,
    );
  }
  {
    await using s = answering(
      '{"error_code":10000,"description":"","data":{"status":0,"desc":"","msgSvrID":91188511912362423}}',
    );
    assert.deepEqual(await api(s.url).call({ type: 10009 }, "send"), {
      status: 0,
      desc: "",
      msgSvrID: "91188511912362423",
    });
  }
  {
    await using s = answering('{"error_code":10000,"description":"","data":{"status":-2,"desc":"already logged in"}}');
    await refused(
      api(s.url).call({ type: 0 }, "log in"),
      "hook_api_error",
      /cannot log in: .* answered status -2 "already logged in"/,
    );
  }
  {
    await using s = answering("<html>Bad Gateway</html>", 502);
    await refused(api(s.url).call({ type: 1 }, "x"), "hook_api_error", /answered HTTP 502 "<html>Bad Gateway<\/html>"/);
  }
  {
    await using s = answering("not json");
    await refused(
      api(s.url).call({ type: 1 }, "x"),
      "hook_api_error",
      /answered something that is not JSON: "not json"/,
    );
  }
});

Deno.test("pc_hook api: a hook that is not there, or too slow, is hook_unreachable; the secret goes in every call", async () => {
  await refused(
    api(`http://127.0.0.1:${freePort()}/api/`).listCallbacks(),
    "hook_unreachable",
    /cannot list the hook's callbacks: the PC hook "h1" at .* did not answer/,
  );
  let seen: unknown;
  const slow = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    seen = await req.json();
    await new Promise((r) => setTimeout(r, 300));
    return Response.json({ data: { status: 0 } });
  });
  try {
    const url = `http://127.0.0.1:${slow.addr.port}/api/`;
    await refused(
      api(url, 100, "s3cret").listCallbacks(),
      "hook_unreachable",
      /did not answer \(no answer within 100 ms\)/,
    );
    assert.deepEqual(seen, { type: 1003, secretKey: "s3cret" });
  } finally {
    await slow.shutdown();
  }
});
