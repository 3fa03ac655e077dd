/**
 * `deno task bench:team`: what the supervisor's view costs (issue 22), in one process on an in-memory SQLite store.
 * `AGENTS` agents (default 10) own `USERS` users (default 2,000), each with a message and a reply; then:
 *
 * - `GET …/team` and `GET …/team/contacts` (every conversation), each timed `REPS` times (default 20): what the team
 *   view reads after a burst of events;
 * - `ACCEPTS` (default 5,000) accepts through the hub by 32 callers, with no supervisor watching, then with
 *   `WATCHERS` (default 3) watching sockets of a supervisor: every message is also written to each watcher.
 *
 * @module
 */

import { hashPassword } from "../src/agents/auth/passwords.ts";
import { start } from "../main.ts";
import { parseConfig } from "../src/config/config.ts";
import type { Message } from "../src/core/message.ts";
import { summarize } from "./lib.ts";

const AGENTS = Number(Deno.env.get("AGENTS") ?? 10);
const USERS = Number(Deno.env.get("USERS") ?? 2000);
const REPS = Number(Deno.env.get("REPS") ?? 20);
const WATCHERS = Number(Deno.env.get("WATCHERS") ?? 3);
const ACCEPTS = Number(Deno.env.get("ACCEPTS") ?? 5000);
const BASE = "/im_component/wx_official_account";

const agents = Array.from({ length: AGENTS }, (_, i) => `a${i}`);
const dir = await Deno.makeTempDir({ prefix: "kefu_team_bench_" });
const hash = await hashPassword("bench");
await Deno.writeTextFile(
  `${dir}/kefu.json`,
  JSON.stringify({
    agents: [
      { id: "sup", role: "supervisor", password_hash: hash },
      ...agents.map((id) => ({ id, password_hash: hash })),
    ],
  }),
);
const svc = await start(parseConfig({
  PORT: "0",
  HOST: "127.0.0.1",
  LOG_LEVEL: "silent",
  STORE: "memory",
  CONFIG_FILE: `${dir}/kefu.json`,
  // The agents have no sockets here: their users must not move to the supervisor (who is online) meanwhile.
  REASSIGN_AFTER_SECONDS: "86400",
}));
const http = `http://127.0.0.1:${svc.port}`;
let n = 0;
const message = (user: string, agent: string): Message => ({
  id: `b${++n}`,
  direction: "in",
  channel: "http_push",
  contact: user,
  agent: "",
  company: "",
  type: "text",
  content: `hello ${n}`,
  media: "",
  sendTime: Math.floor(Date.now() / 1000),
  name: user,
  avatar: "",
  to: agent,
});

try {
  const hub = svc.hub;
  for (let i = 0; i < USERS; i++) {
    const agent = agents[i % AGENTS];
    const m = message(`u${i}`, agent);
    await hub.accept(m, { agent });
    await hub.team.note(agent, m.contact, "seeded note");
  }

  const time = async (path: string) => {
    const samples = new Float64Array(REPS);
    for (let i = 0; i < REPS; i++) {
      const t0 = performance.now();
      const res = await fetch(`${http}${BASE}${path}${path.includes("?") ? "&" : "?"}userid=sup`);
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`${path}: ${res.status}`);
      samples[i] = performance.now() - t0;
    }
    return summarize(samples, REPS);
  };
  const team = await time("/team");
  const contacts = await time("/team/contacts");
  console.log(`GET /team (${AGENTS} agents, ${USERS} users): p50 ${team.p50} ms, p99 ${team.p99} ms`);
  console.log(`GET /team/contacts: p50 ${contacts.p50} ms, p99 ${contacts.p99} ms`);

  // 32 callers at once, as channels hand messages over (one at a time would measure the group commit's wait).
  const accepts = async () => {
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      for (let i = next++; i < ACCEPTS; i = next++) {
        const agent = agents[i % AGENTS];
        await hub.accept(message(`u${i % USERS}`, agent), { agent });
      }
    }));
    return ACCEPTS / ((performance.now() - t0) / 1000);
  };
  const without = await accepts();
  const sockets: WebSocket[] = [];
  let frames = 0;
  const kinds = new Map<number, number>();
  for (let i = 0; i < WATCHERS; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${svc.port}${BASE}/msg?userid=sup&ack=1&watch=1`);
    ws.onmessage = (e) => {
      frames++;
      const code = JSON.parse(String(e.data)).result.code;
      kinds.set(code, (kinds.get(code) ?? 0) + 1);
    };
    await new Promise((r) => ws.onopen = r);
    sockets.push(ws);
  }
  const withWatchers = await accepts();
  console.log(
    `accepts/s (in-process, memory store): ${without.toFixed(0)} without watchers, ${withWatchers.toFixed(0)} with ` +
      `${WATCHERS} watching sockets (${frames} frames read by them, by code: ${
        JSON.stringify(Object.fromEntries(kinds))
      })`,
  );
  for (const ws of sockets) ws.close();
  await Promise.all(
    sockets.map((ws) => new Promise((r) => ws.readyState === WebSocket.CLOSED ? r(0) : ws.onclose = r)),
  );
} finally {
  await svc.shutdown();
  await Deno.remove(dir, { recursive: true });
}
