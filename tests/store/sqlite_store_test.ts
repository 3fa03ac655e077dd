import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { KefuError } from "../../src/core/errors.ts";
import type { Message } from "../../src/core/message.ts";
import { MIGRATIONS, SqliteStore, type SqliteStoreOptions, storePath } from "../../src/store/sqlite_store.ts";
import type { ContactRecord, Store } from "../../src/store/store.ts";

// Every test gets its own directory with real SQLite files, removed afterwards.
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kefu_store_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function open(dir: string, options: Partial<SqliteStoreOptions> = {}): SqliteStore {
  return new SqliteStore({ path: storePath(dir), ...options });
}

let seq = 0;
function msg(contact: string, fields: Partial<Message> = {}): Message {
  seq++;
  return {
    id: String(seq),
    direction: "in",
    channel: "wx_official_account",
    contact,
    agent: "a1",
    company: "c1",
    account: "wx1",
    type: "text",
    content: `hello ${seq}`,
    media: "",
    sendTime: 1_700_000_000 + seq,
    name: contact,
    avatar: "",
    ...fields,
  };
}

function contact(id: string, agent = "a1", fields: Partial<ContactRecord> = {}): ContactRecord {
  return {
    id,
    user: id,
    agent,
    name: id,
    avatar: "",
    company: "c1",
    account: "wx1",
    channel: "wx_official_account",
    lastMessageTime: 1_700_000_000,
    lastInboundTime: 1_700_000_000,
    unread: 0,
    status: "open",
    displayName: "",
    note: "",
    ...fields,
  };
}

// Reads a closed store's file directly, as an operator's sqlite3 shell would.
function query(dir: string, sql: string): Record<string, unknown>[] {
  const db = new DatabaseSync(storePath(dir));
  try {
    return db.prepare(sql).all().map((row) => ({ ...row }));
  } finally {
    db.close();
  }
}

async function saveAll(store: Store, messages: Message[], owner = "a1"): Promise<void> {
  for (const m of messages) await store.saveInbound(m, contact(m.contact, owner));
}

Deno.test("the schema is created on first open, in WAL mode, with its directory and user_version", async () => {
  await withDir(async (dir) => {
    const store = new SqliteStore({ path: storePath(`${dir}/data/`) });
    await store.close();
    assert.equal(storePath(`${dir}/data/`), `${dir}/data/kefu.db`);
    const db = new DatabaseSync(`${dir}/data/kefu.db`);
    try {
      assert.equal(db.prepare("PRAGMA user_version").get()!.user_version, MIGRATIONS.length);
      assert.equal(db.prepare("PRAGMA journal_mode").get()!.journal_mode, "wal");
      const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all();
      assert.deepEqual(tables.map((t) => t.name), ["contacts", "messages", "sqlite_sequence", "windows"]);
    } finally {
      db.close();
    }
  });
});

Deno.test("a migration from an older version runs at open; a failing one leaves the file as it was", async () => {
  await withDir(async (dir) => {
    const n = MIGRATIONS.length;
    const old = open(dir);
    await old.saveInbound(msg("u1", { id: "kept" }), contact("u1"));
    await old.close();

    const next = n + 1;
    const broken = [...MIGRATIONS, {
      version: next,
      name: "broken",
      sql: "ALTER TABLE contacts ADD tag TEXT; nonsense",
    }];
    assert.throws(
      () => open(dir, { migrations: broken }),
      new RegExp(`cannot migrate the store schema of .* to version ${next} \\(broken\\)`),
    );
    assert.deepEqual(query(dir, "PRAGMA user_version"), [{ user_version: n }]);
    assert.equal(query(dir, "SELECT * FROM pragma_table_info('contacts') WHERE name = 'tag'").length, 0);

    const newer = [...MIGRATIONS, {
      version: next,
      name: "contact tags",
      sql: "ALTER TABLE contacts ADD tag TEXT NOT NULL DEFAULT ''",
    }];
    const store = open(dir, { migrations: newer });
    assert.deepEqual((await store.history("u1", { limit: 10 })).map((m) => m.id), ["kept"]);
    await store.close();
    assert.deepEqual(query(dir, "PRAGMA user_version"), [{ user_version: next }]);
    assert.deepEqual(query(dir, "SELECT id, tag FROM contacts"), [{ id: "u1", tag: "" }]);

    // This kefu knows version n only: a newer file is refused, not misread.
    assert.throws(() => open(dir), new RegExp(`schema version ${next} is newer than this kefu's \\(${n}\\)`));
  });
});

Deno.test("a version 1 file (contacts keyed by user id alone) opens with its contacts and messages intact", async () => {
  await withDir(async (dir) => {
    // Written as kefu wrote it before contact identity had a channel and an account.
    Deno.mkdirSync(dir, { recursive: true });
    const db = new DatabaseSync(storePath(dir));
    db.exec(MIGRATIONS[0].sql);
    db.exec("PRAGMA user_version = 1");
    db.exec(`INSERT INTO contacts VALUES ('oUser', 'a1', 'Ann', '', 'c1', 'wx1', 'wx_official_account', 1, 1, 0),
      ('pushed', 'a1', 'pushed', '', '', '', 'wx_official_account', 2, 2, 0)`);
    db.exec(`INSERT INTO messages (id, direction, channel, account, contact, agent, company, type, content, media,
      send_time, name, avatar, extra, state, stored_at) VALUES
      ('m1', 'in', 'wx_official_account', 'wx1', 'oUser', 'a1', 'c1', 'text', 'hi', '', 1, 'Ann', '', NULL, 'accepted', 1),
      ('m2', 'in', 'wx_official_account', '', 'pushed', 'a1', '', 'text', 'yo', '', 2, 'pushed', '', NULL, 'accepted', 2)`);
    db.close();

    const store = open(dir);
    const { contacts, unacked } = await store.load();
    const byId = Object.fromEntries(contacts.map((c) => [c.id, [c.user, c.channel, c.account]]));
    assert.deepEqual(byId, { oUser: ["oUser", "wx_official_account", "wx1"], pushed: ["pushed", "http_push", ""] });
    assert.deepEqual(unacked.get("a1")!.map((m) => [m.id, m.contact, m.channel]), [
      ["m1", "oUser", "wx_official_account"],
      ["m2", "pushed", "http_push"],
    ]);
    // The same user id under another account is another contact, with its own id.
    await store.upsertContact(contact("oUser@wx2", "a1", { user: "oUser", account: "wx2" }));
    await assert.rejects(store.upsertContact(contact("again", "a1", { user: "oUser", account: "wx2" })), /UNIQUE/);
    await store.close();
  });
});

Deno.test("save, close, reopen: load gives back contacts, windows, unacked messages in order, outbox, recent keys", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    const a = [msg("u1"), msg("u1"), msg("u1")];
    const b = [msg("u2", { agent: "", extra: { MsgDataId: "27", Idx: "74" } })];
    await saveAll(store, a);
    await store.saveInbound(b[0], contact("u2", "", { unread: 1, name: "小王" }));
    const reply = msg("u1", { id: "r-1", direction: "out", content: "您好" });
    await store.saveOutbound(reply, "queued", contact("u1", "a1", { lastMessageTime: 1_800_000_000 }));
    await store.saveWindow({
      account: "wx1",
      openid: "u1",
      lastMessageAt: 1_700_000_000_123,
      messageUsed: 2,
      lastEventAt: -Infinity,
      eventUsed: 0,
    });
    await store.close();

    const again = open(dir);
    const state = await again.load();
    assert.deepEqual(state.contacts.sort((x, y) => x.id.localeCompare(y.id)), [
      contact("u1", "a1", { lastMessageTime: 1_800_000_000 }),
      contact("u2", "", { unread: 1, name: "小王" }),
    ]);
    assert.deepEqual(state.windows, [{
      account: "wx1",
      openid: "u1",
      lastMessageAt: 1_700_000_000_123,
      messageUsed: 2,
      lastEventAt: -Infinity,
      eventUsed: 0,
    }]);
    assert.deepEqual([...state.unacked.keys()].sort(), ["", "a1"]);
    assert.deepEqual(state.unacked.get("a1")!.map((m) => m.id), a.map((m) => m.id));
    const [u2] = state.unacked.get("")!;
    assert.deepEqual({ ...u2, seq: 0, storedAt: 0 }, { ...b[0], seq: 0, storedAt: 0, state: "accepted", detail: "" });
    assert.deepEqual(state.outbox.map((m) => [m.id, m.direction, m.state, m.content]), [[
      "r-1",
      "out",
      "queued",
      "您好",
    ]]);
    assert.deepEqual(state.recentKeys, [...a, ...b].map((m) => ({ account: "wx1", contact: m.contact, id: m.id })));
    assert.deepEqual((await again.load({ recentKeys: 1 })).recentKeys, [{
      account: "wx1",
      contact: "u2",
      id: b[0].id,
    }]);
    assert.equal((await again.stats()).messages, 5);
    await again.close();
  });
});

Deno.test("a repeated de-dup key is reported duplicate, also after a reopen, and writes nothing", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    const m = msg("u1", { id: "19" });
    assert.equal(await store.saveInbound(m, contact("u1")), "stored");
    assert.equal(await store.saveInbound({ ...m, content: "retry" }, contact("u1", "a1", { unread: 9 })), "duplicate");
    // The same MsgId from another user or through another account is another message.
    assert.equal(await store.saveInbound({ ...m, contact: "u2" }, contact("u2")), "stored");
    assert.equal(await store.saveInbound({ ...m, account: "wx2" }, contact("u1")), "stored");
    // An event's id is user + CreateTime + Event: the retry is a duplicate too.
    const ev = msg("u1", { id: "ev:1700000000:subscribe", type: "event" });
    const [first, retry] = await Promise.all([
      store.saveInbound(ev, contact("u1")),
      store.saveInbound({ ...ev }, contact("u1")),
    ]);
    assert.deepEqual([first, retry], ["stored", "duplicate"]);
    await store.close();

    const again = open(dir);
    assert.equal(await again.saveInbound({ ...m }, contact("u1")), "duplicate");
    const contacts = (await again.load()).contacts;
    assert.equal(contacts.find((c) => c.id === "u1")!.unread, 0);
    assert.equal((await again.stats()).messages, 4);
    const kept = (await again.history("u1", { limit: 10 })).filter((x) => x.id === "19");
    assert.deepEqual(kept.map((x) => [x.account, x.content]), [["wx2", m.content], ["wx1", m.content]]);
    await again.close();
  });
});

Deno.test("accepted stays unacked until acked; only the owner acks; a moved contact takes its messages", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    const ms = [msg("u1"), msg("u2"), msg("u1"), msg("u3")];
    await saveAll(store, ms);
    assert.deepEqual((await store.unacked("a1")).map((m) => [m.id, m.state]), ms.map((m) => [m.id, "accepted"]));
    assert.deepEqual(await store.ack("a2", [ms[0]]), [], "another agent's contact");
    assert.deepEqual(
      await store.ack("a1", [ms[0], { contact: "u2", id: ms[0].id }]),
      [{ contact: "u1", id: ms[0].id }],
      "the id belongs to u1",
    );
    assert.deepEqual(await store.ack("a1", [ms[0]]), [], "already acked");
    await store.requeue([{ contact: "u2", id: ms[0].id }]);
    assert.equal((await store.unacked("a1")).some((m) => m.id === ms[0].id), false, "requeue names the contact too");
    assert.deepEqual((await store.unacked("a1", 2)).map((m) => m.id), [ms[1].id, ms[2].id]);

    await store.upsertContact(contact("u1", "a2"));
    assert.deepEqual((await store.unacked("a2")).map((m) => m.id), [ms[2].id]);
    assert.deepEqual((await store.unacked("a1")).map((m) => m.id), [ms[1].id, ms[3].id]);
    await store.close();

    const again = open(dir);
    const { unacked } = await again.load();
    assert.deepEqual(unacked.get("a2")!.map((m) => m.id), [ms[2].id]);
    assert.deepEqual(unacked.get("a1")!.map((m) => m.id), [ms[1].id, ms[3].id]);
    await again.close();
  });
});

Deno.test("history pages one conversation newest first with before and limit, both directions", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    const convo: Message[] = [];
    for (let i = 0; i < 7; i++) {
      const m = msg("u1", i % 2 ? { direction: "out", id: `r-${i}` } : {});
      convo.push(m);
      if (m.direction === "in") await store.saveInbound(m, contact("u1"));
      else await store.saveOutbound(m, "sent");
      await store.saveInbound(msg("u2"), contact("u2"));
    }
    const ids = convo.map((m) => m.id).reverse();
    const page1 = await store.history("u1", { limit: 3 });
    assert.deepEqual(page1.map((m) => m.id), ids.slice(0, 3));
    const page2 = await store.history("u1", { before: page1.at(-1)!.id, limit: 3 });
    assert.deepEqual(page2.map((m) => m.id), ids.slice(3, 6));
    const page3 = await store.history("u1", { before: page2.at(-1)!.id, limit: 3 });
    assert.deepEqual(page3.map((m) => m.id), ids.slice(6));
    assert.deepEqual(await store.history("u1", { before: page3[0].id, limit: 3 }), []);
    assert.ok(page1.every((m) => m.contact === "u1") && page1.some((m) => m.direction === "out"));
    assert.ok(page1[0].seq > page1[1].seq);
    await assert.rejects(
      store.history("u1", { before: "nope", limit: 3 }),
      (e) => e instanceof KefuError && e.status === 404,
    );
    // An id of another conversation does not page this one.
    const other = (await store.history("u2", { limit: 1 }))[0];
    await assert.rejects(store.history("u1", { before: other.id, limit: 3 }), /no message ".*" in it/);
    await assert.rejects(store.history("u1", { limit: 0 }), /cannot read the history of contact "u1": limit "0"/);
    await store.close();
  });
});

Deno.test("group commit: concurrent writes share transactions and every promise resolves once committed", async () => {
  await withDir(async (dir) => {
    const store = open(dir, { groupCommitMs: 5, groupMaxMessages: 256 });
    const before = (await store.stats()).commits;
    const results = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => store.saveInbound(msg(`u${i % 10}`), contact(`u${i % 10}`))),
    );
    assert.ok(results.every((r) => r === "stored"));
    const s = await store.stats();
    // 1000 writes queued at once: three full batches of 256, then one on the timer.
    assert.equal(s.commits - before, 4);
    assert.equal(s.maxBatch, 256);
    assert.equal(s.messages, 1000);
    assert.equal(s.queued, 0);
    await store.close();
    assert.deepEqual(query(dir, "SELECT count(*) AS n FROM messages"), [{ n: 1000 }]);
  });
});

Deno.test("groupCommitMs 0 commits every write in its own transaction", async () => {
  await withDir(async (dir) => {
    const store = open(dir, { groupCommitMs: 0 });
    await Promise.all(Array.from({ length: 20 }, () => store.saveInbound(msg("u1"), contact("u1"))));
    const s = await store.stats();
    assert.equal(s.commits, 20);
    assert.equal(s.maxBatch, 1);
    await store.close();
  });
});

Deno.test("a write that fails is rejected alone; the rest of its batch commits", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    const bad = msg("u1", { content: { not: "text" } as unknown as string });
    const [ok1, failed, ok2] = await Promise.allSettled([
      store.saveInbound(msg("u1"), contact("u1")),
      store.saveInbound(bad, contact("u1")),
      store.saveInbound(msg("u1"), contact("u1")),
    ]);
    assert.equal(ok1.status, "fulfilled");
    assert.equal(ok2.status, "fulfilled");
    assert.equal(failed.status, "rejected");
    assert.match(
      String((failed as PromiseRejectedResult).reason),
      new RegExp(`cannot save inbound message "${bad.id}"`),
    );
    assert.equal((await store.stats()).messages, 2);
    await store.close();
  });
});

Deno.test("a batch that cannot commit is rejected whole, and the store works again afterwards", async () => {
  await withDir(async (dir) => {
    const store = open(dir, { busyTimeoutMs: 0 });
    await store.saveInbound(msg("u1"), contact("u1"));
    // Another connection (an operator's sqlite3 shell) holds the write lock.
    const other = new DatabaseSync(storePath(dir));
    other.exec("BEGIN IMMEDIATE");
    const blocked = await Promise.allSettled(
      [msg("u1"), msg("u2")].map((m) => store.saveInbound(m, contact(m.contact))),
    );
    assert.deepEqual(blocked.map((r) => r.status), ["rejected", "rejected"]);
    assert.match(
      String((blocked[0] as PromiseRejectedResult).reason),
      /cannot save inbound message ".*": database is locked/,
    );
    other.exec("ROLLBACK");
    other.close();
    assert.equal(await store.saveInbound(msg("u1"), contact("u1")), "stored");
    assert.equal((await store.stats()).messages, 2);
    await store.close();
  });
});

Deno.test("setOutboundState updates the latest reply with that id of that contact", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    await store.saveOutbound(msg("u1", { id: "r-1", direction: "out" }), "queued");
    await store.saveOutbound(msg("u2", { id: "r-1", direction: "out" }), "queued");
    assert.equal(await store.setOutboundState({ contact: "u1", id: "r-1" }, "failed", "errcode 45015"), true);
    assert.equal(await store.setOutboundState({ contact: "u9", id: "r-1" }, "sent"), false);
    const [u1] = await store.history("u1", { limit: 1 });
    assert.deepEqual([u1.state, u1.detail], ["failed", "errcode 45015"]);
    assert.deepEqual((await store.load()).outbox.map((m) => m.contact), ["u2"]);
    await store.close();
  });
});

Deno.test("sweep deletes old messages and windows but keeps unacked inbound and queued replies", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    const acked = Array.from({ length: 12_000 }, () => msg("u1"));
    await Promise.all(acked.map((m) => store.saveInbound(m, contact("u1"))));
    await store.ack("a1", acked);
    const pending = msg("u1");
    await store.saveInbound(pending, contact("u1"));
    await store.saveOutbound(msg("u1", { direction: "out", id: "r-q" }), "queued");
    await store.saveOutbound(msg("u1", { direction: "out", id: "r-s" }), "sent");
    await store.saveWindow({
      account: "wx1",
      openid: "u1",
      lastMessageAt: 1,
      messageUsed: 0,
      lastEventAt: 2,
      eventUsed: 0,
    });

    assert.equal(await store.sweep(0), 0, "nothing is older than the epoch");
    const deleted = await store.sweep(Date.now() + 60_000);
    assert.equal(deleted, 12_000 + 1 + 1);
    assert.deepEqual((await store.history("u1", { limit: 10 })).map((m) => m.id).sort(), [pending.id, "r-q"].sort());
    assert.equal((await store.stats()).messages, 2);
    assert.deepEqual((await store.load()).windows, []);
    // A new message after the sweep still gets a larger seq than any before it.
    await store.saveInbound(msg("u1"), contact("u1"));
    const [newest, ...rest] = await store.history("u1", { limit: 10 });
    assert.ok(rest.every((m) => m.seq < newest.seq) && newest.seq > 12_000);
    await store.close();
  });
});

Deno.test("a 64-bit MsgId round-trips exactly, and so does extra", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    const m = msg("u1", { id: "9223372036854775807", extra: { MsgDataId: "18446744073709551615", Idx: "1" } });
    await store.saveInbound(m, contact("u1"));
    await store.close();
    const again = open(dir);
    const [got] = await again.history("u1", { limit: 1 });
    assert.equal(got.id, "9223372036854775807");
    assert.deepEqual(got.extra, m.extra);
    assert.equal(await again.saveInbound({ ...m }, contact("u1")), "duplicate");
    assert.equal(await again.saveInbound({ ...m, id: "9223372036854775806" }, contact("u1")), "stored");
    assert.deepEqual(query(dir, "SELECT DISTINCT typeof(id) AS t FROM messages"), [{ t: "text" }]);
    await again.close();
  });
});

Deno.test("close flushes what is queued; later calls reject; ':memory:' works the same", async () => {
  await withDir(async (dir) => {
    const store = open(dir, { groupCommitMs: 1000 });
    const saved = store.saveInbound(msg("u1", { id: "late" }), contact("u1"));
    await store.close();
    assert.equal(await saved, "stored");
    await assert.rejects(
      store.saveInbound(msg("u1"), contact("u1")),
      /cannot save inbound message ".*": the store ".*kefu.db" is closed/,
    );
    await assert.rejects(store.load(), /cannot load the store: the store .* is closed/);
    assert.deepEqual(query(dir, "SELECT id FROM messages"), [{ id: "late" }]);

    const mem = new SqliteStore({ path: ":memory:" });
    assert.equal(await mem.saveInbound(msg("u1", { id: "m" }), contact("u1")), "stored");
    assert.equal(await mem.saveInbound(msg("u1", { id: "m" }), contact("u1")), "duplicate");
    assert.equal((await mem.stats()).fileBytes, 0);
    await mem.close();
  });
});

Deno.test("kill -9 in the middle of writing: every id reported committed is there after reopening", async () => {
  await withDir(async (dir) => {
    const path = storePath(dir);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        new URL("../fixtures/store_writer.ts", import.meta.url).pathname,
        path,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const printed: string[] = [];
    let killed = false;
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop()!;
      printed.push(...lines);
      if (!killed && printed.length >= 5000) {
        child.kill("SIGKILL");
        killed = true;
      }
    }
    const status = await child.status;
    assert.ok(killed, `the writer stopped early: ${await stderr}`);
    await stderr;
    assert.equal(status.signal, "SIGKILL");

    const store = open(dir);
    const stored = new Set(query(dir, "SELECT id FROM messages").map((r) => String(r.id)));
    const lost = printed.filter((id) => !stored.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${printed.length} committed ids lost`);
    assert.deepEqual(query(dir, "PRAGMA integrity_check"), [{ integrity_check: "ok" }]);
    assert.equal((await store.load()).unacked.get("a1")!.length, stored.size);
    await store.close();
  });
});

Deno.test("media: a message waits in state 'media' (not unacked) until finishMedia; the files in use are listed", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  const voice = msg("u1", { type: "voice", media: "MEDIA_ID", extra: { MediaId: "MEDIA_ID" } });
  await store.saveInbound(voice, contact("u1"), "media");
  assert.deepEqual(await store.unacked("a1"), [], "not delivered while its file is prepared");
  assert.deepEqual((await store.load()).media.map((m) => m.id), [voice.id], "resumed after a restart");
  const extra = { MediaId: "MEDIA_ID", media_original: `/media/${"b".repeat(64)}.amr` };
  assert.equal(await store.finishMedia(voice, `/media/${"a".repeat(64)}.ogg`, extra, "accepted"), true);
  assert.equal(await store.finishMedia(voice, "/media/x", extra, "accepted"), false, "only once");
  assert.deepEqual((await store.unacked("a1")).map((m) => m.media), [`/media/${"a".repeat(64)}.ogg`]);
  assert.deepEqual([...await store.mediaInUse()].sort(), [`${"a".repeat(64)}.ogg`, `${"b".repeat(64)}.amr`]);
  const path = `/media/${"a".repeat(64)}.ogg`;
  assert.equal(await store.mediaOwnedBy([path, `https://kefu.example${path}`], "a1"), true);
  assert.equal(await store.mediaOwnedBy([path, `https://kefu.example${path}`], "a2"), false);
  await store.close();
});

Deno.test("WAL checkpoints run in the background worker: the WAL is copied back while writes go on", async () => {
  await withDir(async (dir) => {
    const store = open(dir, { checkpointMs: 20 });
    try {
      const big = "x".repeat(3000);
      for (let i = 0; i < 3; i++) {
        await Promise.all(Array.from({ length: 500 }, () => store.saveInbound(msg("u1", { content: big }))));
      }
      // A checkpoint after the last write has copied everything in the WAL (it may have started over meanwhile).
      const after = store.backgroundStats()!.checkpoints;
      let stats = store.backgroundStats()!;
      for (let i = 0; i < 300 && !(stats.checkpoints > after && stats.walCheckpointed === stats.walFrames); i++) {
        await new Promise((r) => setTimeout(r, 10));
        stats = store.backgroundStats()!;
      }
      assert.ok(stats.checkpoints > after, JSON.stringify(stats));
      assert.ok(stats.walFrames > 0 && stats.walCheckpointed === stats.walFrames, JSON.stringify(stats));
      // The worker's second connection also answers searches.
      assert.equal((await store.search("a1", "xxx", 5)).length, 0);
      await store.upsertContact(contact("u1"));
      assert.equal((await store.search("a1", "xxx", 5)).length, 5);
    } finally {
      await store.close();
    }
    // Closed: the last connection removed the WAL.
    await assert.rejects(Deno.stat(`${storePath(dir)}-wal`), Deno.errors.NotFound);
    const plain = open(dir, { checkpointMs: 0 });
    assert.equal(plain.backgroundStats(), undefined);
    await plain.close();
  });
});

Deno.test("under steady writes the WAL stays bounded: the worker copies it back and the backstop lets it start over", async () => {
  await withDir(async (dir) => {
    const store = open(dir, { checkpointMs: 5 });
    try {
      // ~60 MB of messages, committed in a steady stream of batches with no quiet moment in between.
      const big = "y".repeat(4000);
      let largest = 0;
      for (let round = 0; round < 60; round++) {
        await Promise.all(Array.from({ length: 250 }, () => store.saveInbound(msg("u1", { content: big }))));
        largest = Math.max(largest, (await Deno.stat(`${storePath(dir)}-wal`)).size);
      }
      assert.ok(largest < 32 << 20, `the WAL reached ${largest} bytes`);
    } finally {
      await store.close();
    }
  });
});
