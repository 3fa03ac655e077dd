/**
 * An agent's socket for tests/deploy/deploy_test.ts, run as `deno run --cert=CA --allow-net ws_client.ts URL` (the
 * test process cannot give its WebSocket a certificate to trust): prints `{"event":"open"}`, then each envelope it
 * receives as one JSON line, until it is killed.
 *
 * @module
 */

const ws = new WebSocket(Deno.args[0]);
ws.onopen = () => console.log(JSON.stringify({ event: "open" }));
ws.onmessage = (e) => console.log(typeof e.data === "string" ? e.data : JSON.stringify({ binary: true }));
ws.onerror = (e) => console.log(JSON.stringify({ event: "error", message: (e as ErrorEvent).message }));
ws.onclose = (e) => {
  console.log(JSON.stringify({ event: "close", code: e.code }));
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
