/**
 * What the store's tests share: a clock the test moves, message builders, and `storeTests`, which runs one set of
 * cases against every engine — SQLite in memory, and PostgreSQL on a real server started for the file with a fresh
 * database per case. `STORE_ENGINES=postgres` (or `sqlite`) runs one engine only.
 *
 * @module
 */

import type { Message } from "../../src/core/message.ts";
import { openPostgresStore } from "../../src/store/postgres_store.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import type { InboundInput, InboundOutcome, Store } from "../../src/store/store.ts";
import { type PostgresDatabase, type PostgresServer, startPostgres } from "../support/postgres.ts";

/** Epoch ms the tests' clock starts at. */
export const T0 = 1_750_000_000_000;
export const HOUR = 3_600_000;

/** The engines this run tests (`STORE_ENGINES`, comma-separated; default both). */
export type EngineName = "sqlite" | "postgres";

/** One case's store and what it needs around it. */
export interface StoreCase {
  engine: EngineName;
  store: Store;
  /** The stores' clock (epoch ms): set `clock.ms` to move time. */
  clock: { ms: number };
  /** Another store over the same database, as a second kefu process opens it (PostgreSQL; closed after the case). */
  open(): Promise<Store>;
  /** PostgreSQL: the case's database and the server (to stop or kill it); undefined on SQLite. */
  postgres?: { db: PostgresDatabase; server: PostgresServer };
  /** A user's text message as a channel hands it over (`contact` is the user's id), sent now by the clock. */
  inbound(user: string, fields?: Partial<Message>): Message;
  /** An agent's reply to a contact (by contact id), sent now by the clock. */
  reply(contact: string, agent: string, fields?: Partial<Message>): Message;
  /** `acceptInbound` of a message from `user` (nobody online, nobody away unless said). */
  accept(user: string, input?: Partial<InboundInput>, fields?: Partial<Message>): Promise<InboundOutcome>;
}

/** A case of {@link storeTests}. */
export type StoreTest = (c: StoreCase) => Promise<void>;

/** The engines `STORE_ENGINES` names (default: both). */
export function selectedEngines(): EngineName[] {
  const names = (Deno.env.get("STORE_ENGINES") ?? "sqlite,postgres").split(",").map((s) => s.trim());
  for (const n of names) {
    if (n !== "sqlite" && n !== "postgres") throw new Error(`STORE_ENGINES: unknown engine ${JSON.stringify(n)}`);
  }
  return names as EngineName[];
}

let counter = 0;

/**
 * One Deno test per engine named `${name} (${engine})`: a step per group, a step per case in it, each case with a
 * store of its own (PostgreSQL: one server for the test, a fresh database per case).
 */
export function storeTests(
  name: string,
  groups: Record<string, Record<string, StoreTest>>,
  engines = selectedEngines(),
): void {
  for (const engine of engines) {
    Deno.test(`${name} (${engine})`, async (t) => {
      await using server = engine === "postgres" ? await startPostgres() : undefined;
      for (const [groupName, cases] of Object.entries(groups)) {
        await t.step(groupName, async (t) => {
          for (const [caseName, fn] of Object.entries(cases)) {
            await t.step(caseName, () => runCase(engine, server, fn));
          }
        });
      }
    });
  }
}

async function runCase(engine: EngineName, server: PostgresServer | undefined, fn: StoreTest): Promise<void> {
  if (server && !server.running) await server.restart();
  await using db = server ? await server.createDatabase() : undefined;
  const clock = { ms: T0 };
  const now = () => clock.ms;
  const opened: Store[] = [];
  const open = async () => {
    if (!db) throw new Error("a second store over one database needs PostgreSQL");
    const s = await openPostgresStore({ url: db.url, now, max: 4 });
    opened.push(s);
    return s;
  };
  const store = db ? await open() : new SqliteStore({ path: ":memory:", now });
  if (!db) opened.push(store);
  const c: StoreCase = {
    engine,
    store,
    clock,
    open,
    postgres: db && server ? { db, server } : undefined,
    inbound: (user, fields = {}) => ({
      id: `m${++counter}`,
      direction: "in",
      channel: "wx_official_account",
      account: "wx1",
      contact: user,
      agent: "",
      company: "",
      type: "text",
      content: `hello ${counter}`,
      media: "",
      sendTime: Math.floor(clock.ms / 1000),
      name: user,
      avatar: "",
      ...fields,
    }),
    reply: (contact, agent, fields = {}) => ({
      id: `r${++counter}`,
      direction: "out",
      channel: "wx_official_account",
      account: "wx1",
      contact,
      agent,
      company: "",
      type: "text",
      content: `answer ${counter}`,
      media: "",
      sendTime: Math.floor(clock.ms / 1000),
      name: "",
      avatar: "",
      ...fields,
    }),
    accept: (user, input = {}, fields = {}) =>
      store.acceptInbound({ online: [], away: new Set(), ...input, message: c.inbound(user, fields) }),
  };
  try {
    await fn(c);
  } finally {
    // A case may close a store itself (closing twice is allowed); every store is closed before the next case.
    for (const s of opened) await s.close();
  }
}
