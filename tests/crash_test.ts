/**
 * Crash safety: the service as a child process on a real DATA_DIR, killed with
 * SIGKILL in the middle of a stream of WeChat messages while an agent reads and
 * acknowledges (it acknowledges only some, and leaves part-way, so that at the
 * kill there are messages read and not acknowledged, and messages not read).
 * After a restart on the same directory, every message that had been answered
 * `success` reaches the agent.
 */

import assert from "node:assert/strict";
import { AgentClient, signedQuery, spawnKefu, wechatText } from "./helpers.ts";
import { startPostgres } from "./support/postgres.ts";

const TOTAL = 4000;
const KILL_AFTER = 1500;
const WORKERS = 8;
// The first agent leaves after reading this many; the messages after it wait in the store.
const READ_BEFORE_LEAVING = 600;

// `deno run main.ts` on `dataDir` (and the PostgreSQL database `databaseUrl`, when given), on a free port.
function spawner(databaseUrl?: string) {
  const store: Record<string, string> = databaseUrl === undefined
    ? {}
    : { STORE: "postgres", DATABASE_URL: databaseUrl };
  return (dataDir: string) => spawnKefu({ PORT: "0", DATA_DIR: dataDir, WECHAT_TOKEN: "tok", ...store });
}

// The agent acknowledges what it reads (every other message while `ackAll` is false) and may leave after `leaveAfter`.
function reader(
  port: number,
  received: Map<string, number>,
  options: { ackAll: boolean; leaveAfter?: number },
): Promise<AgentClient> {
  return AgentClient.open(`ws://127.0.0.1:${port}/im_component/wx_official_account/msg?userid=crash&ack=1`).then(
    (a) => {
      let n = 0;
      a.socket.addEventListener("message", (e) => {
        const env = JSON.parse(e.data);
        if (env.result?.code !== 1001) return;
        received.set(env.data.id, (received.get(env.data.id) ?? 0) + 1);
        if (options.ackAll || ++n % 2 === 0) {
          a.send({ data: { msg_type: "ack", contact_id: env.data.contact_id, ids: [env.data.id] } });
        }
        if (n === options.leaveAfter) a.socket.close();
      });
      return a;
    },
  );
}

Deno.test("crash: after kill -9 and a restart, every message answered success reaches the agent", () =>
  crashAndRestart(spawner()));

Deno.test("crash on PostgreSQL: after kill -9 of kefu and a restart, every message answered success reaches the agent", async () => {
  // Durable settings: what PostgreSQL acknowledged is on disk, as in production.
  await using pg = await startPostgres({ durable: true });
  await crashAndRestart(spawner(pg.url));
});

async function crashAndRestart(spawn: (dataDir: string) => ReturnType<typeof spawnKefu>): Promise<void> {
  const dataDir = await Deno.makeTempDir({ prefix: "kefu-crash-" });
  const accepted = new Set<string>();
  const received = new Map<string, number>();
  try {
    {
      await using child = await spawn(dataDir);
      const agent = await reader(child.port, received, { ackAll: false, leaveAfter: READ_BEFORE_LEAVING });
      let next = 0;
      let killed = false;
      const worker = async () => {
        while (!killed && next < TOTAL) {
          const i = next++;
          const id = String(7_000_000_000_000_000_000n + BigInt(i));
          try {
            const r = await fetch(`http://127.0.0.1:${child.port}/wechat${await signedQuery("tok")}`, {
              method: "POST",
              body: wechatText(`oCrash${i % 50}`, `message ${i}`, id),
            });
            if ((await r.text()) === "success") accepted.add(id);
          } catch { /* the server is gone */ }
          if (accepted.size >= KILL_AFTER && !killed) {
            killed = true;
            child.process.kill("SIGKILL");
          }
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, worker));
      assert.ok(killed, "the server was killed part-way");
      await agent.closed;
    }
    assert.ok(accepted.size >= KILL_AFTER);
    const unreadAtKill = [...accepted].filter((id) => !received.has(id)).length;
    assert.ok(unreadAtKill > 0, "some accepted messages were still waiting for the agent at the kill");
    await using child = await spawn(dataDir);
    await using agent = await reader(child.port, received, { ackAll: true });
    const deadline = Date.now() + 20_000;
    const missing = () => [...accepted].filter((id) => !received.has(id));
    while (missing().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(missing(), [], `${missing().length} of ${accepted.size} accepted messages never arrived`);
    // At least once (the unacknowledged ones twice); after de-duplication by id, exactly once.
    assert.ok([...received.values()].some((n) => n > 1), "read but unacknowledged messages came again");
    assert.equal(new Set([...received.keys()].filter((id) => accepted.has(id))).size, accepted.size);
    await agent.close();
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}
