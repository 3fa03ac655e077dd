/**
 * The drain of main.ts against a reassign run under way (issue 19): on PostgreSQL a run that moves many users takes
 * round trips per user, and the store must not close under it (that logged `reassign_failed … store is closed`).
 */

import assert from "node:assert/strict";
import { start } from "../main.ts";
import { parseConfig } from "../src/config/config.ts";
import { createLogger } from "../src/core/log.ts";
import type { Message } from "../src/core/message.ts";
import { startPostgres } from "./support/postgres.ts";
import { Peer } from "./hub/peer.ts";
import { eventually } from "./helpers.ts";

// Users whose agent goes away: enough that moving them takes longer than the drain's steps before the store closes.
const USERS = 150;

function message(user: string): Message {
  return {
    id: `m_${user}`,
    direction: "in",
    channel: "wx_official_account",
    account: "",
    contact: user,
    agent: "",
    company: "",
    type: "text",
    content: `hello from ${user}`,
    media: "",
    sendTime: 1_700_000_000,
    name: user,
    avatar: "",
  };
}

Deno.test("main: a drain waits for the reassign run under way before the store closes", async () => {
  await using pg = await startPostgres();
  await using db = await pg.createDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "kefu_drain_" });
  const lines: string[] = [];
  const config = parseConfig({
    PORT: "0",
    HOST: "127.0.0.1",
    STORE: "postgres",
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    REASSIGN_AFTER_SECONDS: "0",
  });
  const svc = await start(config, { log: createLogger({ level: "info", write: (line) => lines.push(line) }) });
  try {
    const gone = new Peer();
    await svc.hub.connect("gone", gone, { acks: true });
    for (let i = 0; i < USERS; i++) await svc.hub.accept(message(`u${i}`), { agent: "gone" });
    svc.hub.disconnect("gone", gone);
    await svc.hub.connect("here", new Peer(), { acks: true });
    await eventually(
      "the reassign job moves the first user",
      () => lines.some((l) => l.includes("contact_reassigned")),
      30_000,
    );
  } finally {
    await svc.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
  const failed = lines.filter((l) => /"level":"(warn|error)"/.test(l) && /reassign|is closed/.test(l));
  assert.deepEqual(failed, [], "the drain logged a failure of the reassign run");
  assert.ok(lines.some((l) => l.includes('"event":"stopped"')), "the service stopped");
});
