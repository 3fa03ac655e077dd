import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { KefuError } from "../../src/core/errors.ts";
import type { Message } from "../../src/core/message.ts";
import { MIGRATIONS, SqliteStore, type SqliteStoreOptions, storePath } from "../../src/store/sqlite_store.ts";
import type { ContactSummary, InboundOutcome, Store } from "../../src/store/store.ts";
import { seedInbound } from "./seed.ts";

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

// What a contact list shows of a contact: its row and the fields derived from its messages (previews aside).
function listed(c: ContactSummary | undefined) {
  assert.ok(c, "the contact exists");
  const { last: _, lastEvent: __, ...fields } = c;
  return fields;
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

// One inbound message through the accept path; `m.contact` is the user id, owner `agent` (requested).
function save(store: Store, m: Message, agent = "a1", state?: "accepted" | "acked" | "media"): Promise<InboundOutcome> {
  return seedInbound(store, m, { agent, state });
}

// The status of each save: "stored" or "duplicate".
async function status(outcome: Promise<InboundOutcome>): Promise<string> {
  return (await outcome).status;
}

async function saveAll(store: Store, messages: Message[], owner = "a1"): Promise<void> {
  for (const m of messages) await save(store, m, owner);
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
      assert.deepEqual(tables.map((t) => t.name), [
        "agents",
        "automatic_sent",
        "canned_replies",
        "contact_tags",
        "contacts",
        "leases",
        "messages",
        "sqlite_sequence",
        "windows",
      ]);
    } finally {
      db.close();
    }
  });
});

Deno.test("a migration from an older version runs at open; a failing one leaves the file as it was", async () => {
  await withDir(async (dir) => {
    const n = MIGRATIONS.length;
    const old = open(dir);
    await save(old, msg("u1", { id: "kept" }));
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
    const contacts = await store.contactsOf("a1");
    const byId = Object.fromEntries(contacts.map((c) => [c.id, [c.user, c.channel, c.account, c.unread]]));
    assert.deepEqual(byId, {
      oUser: ["oUser", "wx_official_account", "wx1", 1],
      pushed: ["pushed", "http_push", "", 1],
    });
    assert.deepEqual((await store.unacked("a1")).map((m) => [m.id, m.contact, m.channel]), [
      ["m1", "oUser", "wx_official_account"],
      ["m2", "pushed", "http_push"],
    ]);
    // The same user id under another account is another contact, with its own id; its next message finds it.
    const other = await save(store, msg("oUser", { account: "wx2" }));
    assert.deepEqual([other.contact.id, other.contact.user, other.contact.account, other.created], [
      "oUser@wx2",
      "oUser",
      "wx2",
      true,
    ]);
    const again = await save(store, msg("oUser", { account: "wx2" }));
    assert.deepEqual([again.contact.id, again.created], ["oUser@wx2", false]);
    // The known user of the old file is found by identity too, and an old message's key is still a duplicate.
    assert.deepEqual([
      (await save(store, msg("oUser"))).contact.id,
      (await save(store, msg("oUser", { id: "m1" }))).status,
    ], [
      "oUser",
      "duplicate",
    ]);
    assert.deepEqual(query(dir, "SELECT count(*) AS n FROM contacts"), [{ n: 3 }]);
    await store.close();
  });
});

Deno.test("a version 5 file (times and unread kept on the contact) migrates to 6 with its contacts and messages", async () => {
  await withDir(async (dir) => {
    // Written as kefu wrote it before the store derived what a contact shows: steps 1-5, rows in raw SQL.
    const db = new DatabaseSync(storePath(dir));
    for (const m of MIGRATIONS.slice(0, 5)) db.exec(m.sql);
    db.exec("PRAGMA user_version = 5");
    db.exec(`INSERT INTO contacts (id, agent, name, avatar, company, account, channel, last_message_time,
      last_inbound_time, unread, user_id, status, display_name, note) VALUES
      ('oAnn', 'a1', 'Ann', 'https://a/ann.png', 'c1', 'wx1', 'wx_official_account', 300, 200, 9, 'oAnn', 'open',
        '安女士', 'VIP'),
      ('oAnn@wx2', 'a2', 'Ann 2', '', 'c1', 'wx2', 'wx_official_account', 150, 150, 0, 'oAnn', 'resolved', '', ''),
      ('oBob', '', 'Bob', '', '', 'wx1', 'wx_official_account', 120, 120, 1, 'oBob', 'queued', '', 'released'),
      ('oQuiet', 'a1', 'Quiet', '', '', 'wx1', 'wx_official_account', 90, 0, 0, 'oQuiet', 'open', '', '')`);
    db.exec(`INSERT INTO messages (id, direction, channel, account, contact, agent, company, type, content, media,
      send_time, name, avatar, extra, state, stored_at) VALUES
      ('m1', 'in', 'wx_official_account', 'wx1', 'oAnn', 'a1', 'c1', 'text', 'hi', '', 100, 'Ann', '', NULL,
        'acked', 1),
      ('m2', 'in', 'wx_official_account', 'wx1', 'oAnn', 'a1', 'c1', 'text', 'again', '', 200, 'Ann', '', NULL,
        'accepted', 2),
      ('r1', 'out', 'wx_official_account', 'wx1', 'oAnn', 'a1', 'c1', 'text', 'hello', '', 250, 'Ann', '', NULL,
        'sent', 3),
      ('t1', 'out', 'wx_official_account', 'wx1', 'oAnn', 'a1', 'c1', 'system', 'transferred', '', 300, 'Ann', '',
        NULL, 'sent', 4),
      ('m3', 'in', 'wx_official_account', 'wx2', 'oAnn@wx2', 'a2', 'c1', 'text', 'other', '', 150, 'Ann 2', '',
        NULL, 'acked', 5),
      ('m4', 'in', 'wx_official_account', 'wx1', 'oBob', '', '', 'image', '', '/media/x.jpg', 120, 'Bob', '',
        '{"MediaId":"M"}', 'media', 6)`);
    db.close();

    const store = open(dir);
    const view = async (id: string) => {
      const c = await store.contact(id);
      assert.ok(c, id);
      return [
        c.agent,
        c.status,
        c.name,
        c.displayName,
        c.note,
        c.version,
        c.unread,
        c.lastMessageTime,
        c.lastInboundTime,
      ];
    };
    // Owners, statuses, names kept; unread counted from the messages (not the stale 9), times derived from them.
    assert.deepEqual(await view("oAnn"), ["a1", "open", "Ann", "安女士", "VIP", 1, 1, 300, 200]);
    assert.deepEqual(await view("oAnn@wx2"), ["a2", "resolved", "Ann 2", "", "", 1, 0, 150, 150]);
    assert.deepEqual(await view("oBob"), ["", "queued", "Bob", "", "released", 1, 1, 120, 120]);
    // No messages left (swept): the time it showed becomes its creation time.
    assert.deepEqual(await view("oQuiet"), ["a1", "open", "Quiet", "", "", 1, 0, 90, 0]);
    const ann = (await store.contact("oAnn"))!;
    assert.deepEqual([ann.user, ann.avatar, ann.company, ann.last?.id, ann.lastEvent?.id, ann.awaiting], [
      "oAnn",
      "https://a/ann.png",
      "c1",
      "r1",
      "t1",
      false,
    ]);
    assert.deepEqual((await store.contactsOf("a1")).map((c) => c.id), ["oAnn", "oQuiet"]);
    assert.deepEqual(Object.fromEntries(await store.openCounts()), { a1: 2 });
    // The messages, their states and keys are intact.
    assert.deepEqual((await store.history("oAnn", { limit: 10 })).map((m) => [m.id, m.state]), [
      ["t1", "sent"],
      ["r1", "sent"],
      ["m2", "accepted"],
      ["m1", "acked"],
    ]);
    assert.deepEqual((await store.unacked("a1")).map((m) => m.id), ["m2"]);
    assert.deepEqual((await store.waitingMedia()).map((m) => [m.id, m.extra]), [["m4", { MediaId: "M" }]]);
    assert.equal(await status(save(store, msg("oAnn", { id: "m1" }))), "duplicate");
    // Found by identity: the user on wx2 writes to the resolved contact, which reopens, owner kept.
    const back = await seedInbound(store, msg("oAnn", { account: "wx2", name: "oAnn" }), { agent: "" });
    assert.deepEqual([back.contact.id, back.contact.agent, back.reopened, back.contact.version], [
      "oAnn@wx2",
      "a2",
      true,
      2,
    ]);
    await store.close();

    assert.deepEqual(query(dir, "PRAGMA user_version"), [{ user_version: MIGRATIONS.length }]);
    assert.deepEqual(query(dir, "SELECT name FROM pragma_table_info('contacts') ORDER BY cid").map((r) => r.name), [
      "id",
      "agent",
      "name",
      "avatar",
      "company",
      "account",
      "channel",
      "user_id",
      "status",
      "display_name",
      "note",
      "version",
      "created_at",
      // Step 7 (issue 22): when the user began to wait for an agent.
      "queued_at",
    ]);
    assert.deepEqual(query(dir, "SELECT count(*) AS n FROM messages"), [{ n: 7 }]);
  });
});

Deno.test("acceptInbound: a new contact goes to the requested agent; unread derived from states, after ack too", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  const away = { has: () => false };
  // Its sessions send no read receipts: a message written to them is read.
  const readsOnWrite = (agent: string) => agent === "a1";
  const first = msg("oNew", { name: "新用户", sendTime: 1_700_000_100 });
  const created = await store.acceptInbound({ message: first, requested: "a1", online: ["a2"], away, readsOnWrite });
  assert.deepEqual(
    [created.status, created.created, created.state, created.contact.id, created.contact.agent, created.movedFrom],
    ["stored", true, "acked", "oNew", "a1", undefined],
  );
  assert.deepEqual([created.contact.name, created.contact.version, created.reopened], ["新用户", 1, false]);
  const after = (c: ContactSummary | undefined) => [c?.unread, c?.lastInboundTime, c?.lastMessageTime, c?.awaiting];
  assert.deepEqual(after(await store.contact("oNew")), [0, 1_700_000_100, 1_700_000_100, true]);

  // Read receipts from a2's sessions: its messages stay accepted until acked.
  const second = msg("oNew", { sendTime: 1_700_000_200 });
  const third = msg("oNew", { sendTime: 1_700_000_300 });
  const moved = await store.acceptInbound({ message: second, requested: "a2", online: [], away, readsOnWrite });
  assert.deepEqual([moved.state, moved.created, moved.movedFrom, moved.contact.agent, moved.contact.version], [
    "accepted",
    false,
    "a1",
    "a2",
    2,
  ]);
  const kept = await store.acceptInbound({ message: third, online: ["a1"], away, readsOnWrite });
  assert.deepEqual([kept.state, kept.contact.agent, kept.movedFrom, kept.contact.version], [
    "accepted",
    "a2",
    undefined,
    2,
  ]);
  assert.deepEqual(after(await store.contact("oNew")), [2, 1_700_000_300, 1_700_000_300, true]);
  assert.deepEqual((await store.unacked("a2")).map((m) => [m.id, m.contact, m.agent]), [
    [second.id, "oNew", "a2"],
    [third.id, "oNew", "a2"],
  ]);

  assert.deepEqual(await store.ack("a1", [second]), [], "a1 no longer owns the contact");
  assert.deepEqual(await store.ack("a2", [second]), [{ contact: "oNew", id: second.id }]);
  assert.deepEqual(after(await store.contact("oNew")), [1, 1_700_000_300, 1_700_000_300, true]);
  // Seed 003's read receipt names the id alone.
  assert.deepEqual(await store.ack("a2", [{ contact: "", id: third.id }]), [{ contact: "oNew", id: third.id }]);
  // A reply answers the user; a workflow line moves the time, not the preview.
  const reply = msg("oNew", { id: "r-1", direction: "out", agent: "a2", sendTime: 1_700_000_400 });
  const saved = await store.saveReply(reply);
  assert.ok(!("refused" in saved) && saved.state === "queued");
  const line = msg("oNew", {
    id: "sys-1",
    direction: "out",
    type: "system",
    content: "resolved",
    sendTime: 1_700_000_500,
  });
  const resolved = await store.updateContact("oNew", { expectStatus: "open", status: "resolved", line });
  assert.deepEqual([resolved?.status, resolved?.version], ["resolved", 3]);
  const c = await store.contact("oNew");
  assert.deepEqual(after(c), [0, 1_700_000_300, 1_700_000_500, false]);
  assert.deepEqual([c?.last?.id, c?.lastEvent?.id, c?.status], ["r-1", "sys-1", "resolved"]);
  assert.deepEqual((await store.contactsOf("a2")).map((x) => [x.id, x.unread]), [["oNew", 0]]);
  assert.deepEqual(await store.contactsOf("a1"), []);
  assert.equal((await store.stats()).unread, 0);
  await store.close();
});

Deno.test("save, close, reopen: contacts with derived fields, windows, unacked messages in order, outbox, keys", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    const a = [msg("u1"), msg("u1"), msg("u1")];
    const b = [msg("u2", { agent: "", name: "小王", extra: { MsgDataId: "27", Idx: "74" } })];
    await saveAll(store, a);
    await save(store, b[0], "");
    const reply = msg("u1", { id: "r-1", direction: "out", content: "您好", sendTime: 1_800_000_000 });
    await store.saveOutbound(reply, "queued");
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
    const row = { avatar: "", company: "c1", account: "wx1", channel: "wx_official_account", status: "open" };
    assert.deepEqual(listed(await again.contact("u1")), {
      id: "u1",
      user: "u1",
      agent: "a1",
      name: "u1",
      ...row,
      displayName: "",
      note: "",
      version: 1,
      lastMessageTime: 1_800_000_000,
      lastInboundTime: a[2].sendTime,
      unread: 3,
      awaiting: false,
    });
    assert.deepEqual(listed(await again.contact("u2")), {
      id: "u2",
      user: "u2",
      agent: "",
      name: "小王",
      ...row,
      displayName: "",
      note: "",
      version: 1,
      lastMessageTime: b[0].sendTime,
      lastInboundTime: b[0].sendTime,
      unread: 1,
      awaiting: true,
    });
    assert.deepEqual((await again.contactsOf("a1")).map((c) => [c.id, c.last?.id]), [["u1", "r-1"]]);
    assert.deepEqual((await again.contactsOf("")).map((c) => [c.id, c.last?.id]), [["u2", b[0].id]]);
    assert.deepEqual(await again.windows(), [{
      account: "wx1",
      openid: "u1",
      lastMessageAt: 1_700_000_000_123,
      messageUsed: 2,
      lastEventAt: -Infinity,
      eventUsed: 0,
    }]);
    assert.deepEqual((await again.unacked("a1")).map((m) => m.id), a.map((m) => m.id));
    assert.deepEqual((await again.unacked("a1", 2, (await again.unacked("a1", 1))[0].seq)).map((m) => m.id), [
      a[1].id,
      a[2].id,
    ]);
    const [u2] = await again.unacked("");
    assert.deepEqual({ ...u2, seq: 0, storedAt: 0 }, { ...b[0], seq: 0, storedAt: 0, state: "accepted", detail: "" });
    assert.deepEqual((await again.outbox()).map((m) => [m.id, m.direction, m.state, m.content]), [[
      "r-1",
      "out",
      "queued",
      "您好",
    ]]);
    assert.deepEqual(await again.waitingMedia(), []);
    // What the old recent keys did: every key stored before the reopen is a duplicate after it, and writes nothing.
    for (const m of [...a, ...b]) {
      const outcome = await save(again, { ...m, content: "retry" }, "a2");
      assert.deepEqual([outcome.status, outcome.contact.id, outcome.contact.agent], ["duplicate", m.contact, m.agent]);
    }
    assert.equal((await again.stats()).messages, 5);
    assert.equal((await again.contact("u2"))!.agent, "", "a duplicate takes no one");
    await again.close();
  });
});

Deno.test("a repeated de-dup key is reported duplicate, also after a reopen, and writes nothing", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    const m = msg("u1", { id: "19" });
    const first = await save(store, m);
    assert.deepEqual([first.status, first.state, first.created], ["stored", "accepted", true]);
    const repeat = await save(store, { ...m, content: "retry" }, "a2", "acked");
    assert.deepEqual(
      [repeat.status, repeat.state, repeat.seq, repeat.created, repeat.contact],
      ["duplicate", "accepted", first.seq, false, first.contact],
      "the stored message's state and seq; the contact as it was",
    );
    // The same MsgId from another user or through another account is another message.
    assert.equal(await status(save(store, { ...m, contact: "u2" })), "stored");
    const wx2 = await save(store, { ...m, account: "wx2" });
    assert.deepEqual([wx2.status, wx2.contact.id], ["stored", "u1@wx2"]);
    // An event's id is user + CreateTime + Event: the retry is a duplicate too.
    const ev = msg("u1", { id: "ev:1700000000:subscribe", type: "event" });
    const both = await Promise.all([status(save(store, ev)), status(save(store, { ...ev }))]);
    assert.deepEqual(both, ["stored", "duplicate"]);
    await store.close();

    const again = open(dir);
    assert.equal((await again.contact("u1"))!.unread, 2);
    assert.equal(await status(save(again, { ...m }, "a2")), "duplicate");
    const u1 = await again.contact("u1");
    assert.deepEqual([u1!.unread, u1!.agent, u1!.version], [2, "a1", 1], "a duplicate changes nothing");
    assert.equal((await again.stats()).messages, 4);
    const kept = async (contact: string) =>
      (await again.history(contact, { limit: 10 })).filter((x) => x.id === "19").map((x) => [x.account, x.content]);
    assert.deepEqual(await kept("u1"), [["wx1", m.content]]);
    assert.deepEqual(await kept("u1@wx2"), [["wx2", m.content]]);
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

    const moved = await store.updateContact("u1", { expectAgent: "a1", agent: "a2" });
    assert.deepEqual([moved?.agent, moved?.version], ["a2", 2]);
    assert.equal(await store.updateContact("u1", { expectAgent: "a1", agent: "a3" }), undefined, "a2 has it now");
    assert.deepEqual((await store.unacked("a2")).map((m) => m.id), [ms[2].id]);
    assert.deepEqual((await store.unackedOf("u1")).map((m) => m.id), [ms[2].id]);
    assert.deepEqual((await store.unacked("a1")).map((m) => m.id), [ms[1].id, ms[3].id]);
    assert.deepEqual((await store.waitingContacts("a1", 10)).map((c) => c.id), ["u2", "u3"]);
    await store.close();

    const again = open(dir);
    assert.deepEqual((await again.unacked("a2")).map((m) => m.id), [ms[2].id]);
    assert.deepEqual((await again.unacked("a1")).map((m) => m.id), [ms[1].id, ms[3].id]);
    assert.deepEqual(
      (await again.contactsOf("a1")).map((c) => [c.id, c.unread]).sort(),
      [["u2", 1], ["u3", 1]],
    );
    assert.deepEqual((await again.contactsOf("a2")).map((c) => [c.id, c.unread]), [["u1", 1]]);
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
      if (m.direction === "in") await save(store, m);
      else await store.saveOutbound(m, "sent");
      await save(store, msg("u2"));
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
      Array.from({ length: 1000 }, (_, i) => save(store, msg(`u${i % 10}`))),
    );
    assert.ok(results.every((r) => r.status === "stored"));
    assert.equal(results.filter((r) => r.created).length, 10, "each user's contact created once");
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
    await Promise.all(Array.from({ length: 20 }, () => save(store, msg("u1"))));
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
      save(store, msg("u1")),
      save(store, bad),
      save(store, msg("u1")),
    ]);
    assert.equal(ok1.status, "fulfilled");
    assert.equal(ok2.status, "fulfilled");
    assert.equal(failed.status, "rejected");
    assert.match(
      String((failed as PromiseRejectedResult).reason),
      new RegExp(`cannot save inbound message "${bad.id}"`),
    );
    assert.equal((await store.stats()).messages, 2);
    assert.equal((await store.contact("u1"))!.unread, 2);
    await store.close();
  });
});

Deno.test("a batch that cannot commit is rejected whole, and the store works again afterwards", async () => {
  await withDir(async (dir) => {
    const store = open(dir, { busyTimeoutMs: 0 });
    await save(store, msg("u1"));
    // Another connection (an operator's sqlite3 shell) holds the write lock.
    const other = new DatabaseSync(storePath(dir));
    other.exec("BEGIN IMMEDIATE");
    const blocked = await Promise.allSettled(
      [msg("u1"), msg("u2")].map((m) => save(store, m)),
    );
    assert.deepEqual(blocked.map((r) => r.status), ["rejected", "rejected"]);
    assert.match(
      String((blocked[0] as PromiseRejectedResult).reason),
      /cannot save inbound message ".*": database is locked/,
    );
    other.exec("ROLLBACK");
    other.close();
    assert.equal(await status(save(store, msg("u1"))), "stored");
    assert.equal((await store.stats()).messages, 2);
    assert.equal(await store.contact("u2"), undefined, "the rejected batch created no contact");
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
    assert.deepEqual((await store.outbox()).map((m) => m.contact), ["u2"]);
    await store.close();
  });
});

Deno.test("sweep deletes old messages and windows but keeps unacked inbound and queued replies", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    const acked = Array.from({ length: 12_000 }, () => msg("u1"));
    await Promise.all(acked.map((m) => save(store, m)));
    await store.ack("a1", acked);
    const pending = msg("u1");
    await save(store, pending);
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
    assert.deepEqual(await store.windows(), []);
    // The contact stays, and what it shows is derived from what is left.
    const u1 = await store.contact("u1");
    assert.deepEqual([u1!.unread, u1!.last?.id, u1!.lastInboundTime], [1, "r-q", pending.sendTime]);
    // A new message after the sweep still gets a larger seq than any before it.
    await save(store, msg("u1"));
    const [newest, ...rest] = await store.history("u1", { limit: 10 });
    assert.ok(rest.every((m) => m.seq < newest.seq) && newest.seq > 12_000);
    await store.close();
  });
});

Deno.test("a 64-bit MsgId round-trips exactly, and so does extra", async () => {
  await withDir(async (dir) => {
    const store = open(dir);
    const m = msg("u1", { id: "9223372036854775807", extra: { MsgDataId: "18446744073709551615", Idx: "1" } });
    await save(store, m);
    await store.close();
    const again = open(dir);
    const [got] = await again.history("u1", { limit: 1 });
    assert.equal(got.id, "9223372036854775807");
    assert.deepEqual(got.extra, m.extra);
    assert.equal(await status(save(again, { ...m })), "duplicate");
    assert.equal(await status(save(again, { ...m, id: "9223372036854775806" })), "stored");
    assert.deepEqual(query(dir, "SELECT DISTINCT typeof(id) AS t FROM messages"), [{ t: "text" }]);
    await again.close();
  });
});

Deno.test("close flushes what is queued; later calls reject; ':memory:' works the same", async () => {
  await withDir(async (dir) => {
    const store = open(dir, { groupCommitMs: 1000 });
    const saved = save(store, msg("u1", { id: "late" }));
    await store.close();
    assert.equal(await status(saved), "stored");
    await assert.rejects(save(store, msg("u1")), /cannot save inbound message ".*": the store ".*kefu.db" is closed/);
    await assert.rejects(store.contact("u1"), /cannot read contact "u1": the store .* is closed/);
    await assert.rejects(store.outbox(), /cannot list the replies not yet confirmed: the store .* is closed/);
    assert.deepEqual(query(dir, "SELECT id FROM messages"), [{ id: "late" }]);

    const mem = new SqliteStore({ path: ":memory:" });
    assert.equal(await status(save(mem, msg("u1", { id: "m" }))), "stored");
    assert.equal(await status(save(mem, msg("u1", { id: "m" }))), "duplicate");
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
    assert.equal((await store.unacked("a1", stored.size + 1)).length, stored.size);
    assert.equal((await store.contact("u1"))!.unread, stored.size);
    await store.close();
  });
});

Deno.test("media: a message waits in state 'media' (not unacked) until finishMedia; the files in use are listed", async () => {
  const store = new SqliteStore({ path: ":memory:" });
  const voice = msg("u1", { type: "voice", media: "MEDIA_ID", extra: { MediaId: "MEDIA_ID" } });
  const outcome = await save(store, voice, "a1", "media");
  assert.equal(outcome.state, "media");
  assert.deepEqual(await store.unacked("a1"), [], "not delivered while its file is prepared");
  assert.deepEqual((await store.waitingMedia()).map((m) => m.id), [voice.id], "resumed after a restart");
  assert.equal((await store.contact("u1"))!.unread, 1, "a message waiting for its media counts as unread");
  const extra = { MediaId: "MEDIA_ID", media_original: `/media/${"b".repeat(64)}.amr` };
  assert.equal(await store.finishMedia(voice, `/media/${"a".repeat(64)}.ogg`, extra, "accepted"), true);
  assert.equal(await store.finishMedia(voice, "/media/x", extra, "accepted"), false, "only once");
  assert.deepEqual((await store.unacked("a1")).map((m) => m.media), [`/media/${"a".repeat(64)}.ogg`]);
  assert.deepEqual(await store.waitingMedia(), []);
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
        // Nobody online: the user waits in the queue, no agent's contact yet.
        await Promise.all(Array.from({ length: 500 }, () => save(store, msg("u1", { content: big }), "")));
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
      await store.updateContact("u1", { expectAgent: "", agent: "a1" });
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
        await Promise.all(Array.from({ length: 250 }, () => save(store, msg("u1", { content: big }))));
        largest = Math.max(largest, (await Deno.stat(`${storePath(dir)}-wal`)).size);
      }
      assert.ok(largest < 32 << 20, `the WAL reached ${largest} bytes`);
    } finally {
      await store.close();
    }
  });
});
