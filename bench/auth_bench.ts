/**
 * The cost of checking an agent's token (once per socket and per agent HTTP call; never per user message), and of
 * seed 003's sign.
 *
 *   deno bench bench/auth_bench.ts
 *
 * @module
 */

import { Auth, seedSign } from "../src/agents/auth/auth.ts";

const auth = new Auth({ secret: "bench-agent-secret-0123456", tokenSeconds: 86400, maxSkewSeconds: 300 });
const { token } = auth.issue("agent-42");

Deno.bench({ name: "Auth.verify: a valid token", group: "auth", baseline: true }, () => {
  auth.verify(token);
});

Deno.bench({ name: "Auth.issue", group: "auth" }, () => {
  auth.issue("agent-42");
});

Deno.bench({ name: "seedSign (seed 003's md5 request sign)", group: "auth" }, () => {
  seedSign("user_1", "1630485655", "kefu-demo-secret-0123");
});
