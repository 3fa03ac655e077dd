/**
 * Automatic messages' timed work (src/automation/automatic.ts, src/jobs/automatic_job.ts) with an injected clock, on
 * the real modules: a SQLite file, the hub, the Official Account channel and the reply router, sending to the
 * simulator's WeChat API over real HTTP. Please-wait after the set time (once per wait, with the position; a restart
 * sends nothing again), auto-resolve after the idle time (the conditional update, its line and closing text), a
 * refused window (not sent, not retried), and the job's lease (one node at a time).
 */

import assert from "node:assert/strict";
import { Automatic, type AutomaticOptions } from "../../src/automation/automatic.ts";
import { parseAutomaticConfig } from "../../src/automation/config.ts";
import { ReplyRouter } from "../../src/channels/channel.ts";
import { WX_OFFICIAL, wxOfficial } from "../../src/channels/wx_official/channel.ts";
import { parseWxOfficialConfig } from "../../src/channels/wx_official/config.ts";
import { PassiveReplies } from "../../src/channels/wx_official/passive_reply.ts";
import { ReplyWindows } from "../../src/channels/wx_official/reply_window.ts";
import { silentLogger } from "../../src/core/log.ts";
import type { Message } from "../../src/core/message.ts";
import { Hub } from "../../src/hub/hub.ts";
import { startAutomaticJob } from "../../src/jobs/automatic_job.ts";
import { MediaFiles } from "../../src/media/files.ts";
import { Uploads } from "../../src/media/uploads.ts";
import { SqliteStore } from "../../src/store/sqlite_store.ts";
import { startWechat } from "../helpers.ts";

const APPID = "wx00000000000000aa";
const MINUTE = 60_000;

// The store as Automatic sees it, some of its methods replaced (each replacement calls the real one).
function withStore(store: SqliteStore, over: Partial<AutomaticOptions["store"]>): AutomaticOptions["store"] {
  return {
    claimAutomatic: (...a) => store.claimAutomatic(...a),
    contact: (...a) => store.contact(...a),
    history: (...a) => store.history(...a),
    idleContacts: (...a) => store.idleContacts(...a),
    queue: () => store.queue(),
    saveReply: (...a) => store.saveReply(...a),
    setOutboundState: (...a) => store.setOutboundState(...a),
    ...over,
  };
}

/** The parts, built as main.ts builds them, around a clock the test moves. */
async function setup(section: unknown) {
  const dir = await Deno.makeTempDir({ prefix: "kefu-automatic-" });
  const clock = { ms: Math.floor(Date.now() / 1000) * 1000 };
  const now = () => clock.ms;
  const wechat = startWechat({ appId: APPID, appSecret: "s3cr3t-for-tests", now });
  const store = new SqliteStore({ path: `${dir}/kefu.db`, now });
  const hub = new Hub({ store, now, capacity: () => 1 });
  const accounts = parseWxOfficialConfig({
    WECHAT_TOKEN: "tok",
    WECHAT_APPID: APPID,
    WECHAT_APPSECRET: "s3cr3t-for-tests",
    WECHAT_API_BASE: wechat.url,
  });
  const channel = wxOfficial({
    accounts,
    windows: new ReplyWindows({ now }),
    passive: new PassiveReplies(),
    uploads: new Uploads({ files: new MediaFiles(undefined) }),
  })({ accept: (m, o) => hub.accept(m, o), log: silentLogger, maxBodyBytes: 1 << 20 });
  const router = new ReplyRouter([channel]);
  const lines: { event: string; fields: Record<string, unknown> }[] = [];
  const log = {
    ...silentLogger,
    info: (event: string, fields: Record<string, unknown> = {}) => void lines.push({ event, fields }),
  };
  const config = parseAutomaticConfig(section, [WX_OFFICIAL]);
  const automaticOf = (over: Partial<AutomaticOptions["store"]> = {}) =>
    new Automatic({
      config,
      store: withStore(store, over),
      router,
      resolveIdle: (id, agent, by, lastSeq) => hub.workflow.resolveIdle(id, agent, by, lastSeq),
      log,
      now,
    });
  let n = 0;
  return {
    clock,
    store,
    hub,
    sim: wechat.sim,
    lines,
    automatic: automaticOf(),
    /** Another process (or this one after a restart) over the same store. */
    automaticOf,
    /** The user writes (WeChat records it, kefu accepts it); `agent`: the agent it asks for; to `account`. */
    async writes(openid: string, agent?: string, account = APPID): Promise<void> {
      wechat.sim.recordInteraction(openid, "message", clock.ms);
      const m: Message = {
        id: `m${++n}`,
        direction: "in",
        channel: WX_OFFICIAL,
        account,
        contact: openid,
        agent: "",
        company: "",
        type: "text",
        content: `hello ${n}`,
        media: "",
        sendTime: Math.floor(clock.ms / 1000),
        name: openid,
        avatar: "",
      };
      await hub.accept(m, { agent });
    },
    texts: (openid: string) => wechat.sim.inbox(openid).map((b) => (b.text as { content: string }).content),
    async [Symbol.asyncDispose]() {
      await store.close();
      await wechat[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("please-wait: a user waiting in the queue past the set time is told once, with their position", async () => {
  await using s = await setup([{ please_wait: { after_seconds: 120, text: "请稍候，您前面还有 {position} 位" } }]);
  // Nobody online: both users wait in the queue.
  await s.writes("oFirst");
  s.clock.ms += 30_000;
  await s.writes("oSecond");
  assert.deepEqual((await s.store.queue()).map((q) => q.id), ["oFirst", "oSecond"]);

  s.clock.ms += 90_000 - 1;
  assert.deepEqual(await s.automatic.tick(), { pleaseWait: 0, resolved: 0 }, "a millisecond before the set time");
  s.clock.ms += 1;
  assert.deepEqual(await s.automatic.tick(), { pleaseWait: 1, resolved: 0 });
  assert.deepEqual(s.texts("oFirst"), ["请稍候，您前面还有 1 位"]);
  assert.deepEqual(s.texts("oSecond"), []);
  s.clock.ms += 30_000;
  assert.deepEqual(await s.automatic.tick(), { pleaseWait: 1, resolved: 0 });
  assert.deepEqual(s.texts("oSecond"), ["请稍候，您前面还有 2 位"]);

  // Once per wait: later passes, a restarted process or a second node send nothing more.
  s.clock.ms += 10 * MINUTE;
  assert.equal((await s.automatic.tick()).pleaseWait, 0);
  assert.equal((await s.automaticOf().tick()).pleaseWait, 0);
  assert.equal(s.texts("oFirst").length, 1);

  // In the history as kefu's own line, counted like a reply (state sent).
  const [line] = await s.store.history("oFirst", { limit: 1 });
  assert.deepEqual([line.direction, line.agent, line.extra?.automatic, line.state], [
    "out",
    "kefu",
    "please_wait",
    "sent",
  ]);
});

Deno.test("please-wait: a refused reply window means not sent, logged, and not tried again", async () => {
  await using s = await setup([{ please_wait: { after_seconds: 60, text: "请稍候" } }]);
  await s.writes("oSilent");
  // 48 hours later the user is still waiting: WeChat allows no reply any more.
  s.clock.ms += 49 * 60 * MINUTE;
  assert.equal((await s.automatic.tick()).pleaseWait, 0);
  assert.equal((await s.automatic.tick()).pleaseWait, 0);
  assert.equal(s.sim.calls("/cgi-bin/message/custom/send"), 0);
  assert.equal(s.lines.filter((l) => l.event === "automatic_refused").length, 1, "refused once, never retried");
  assert.deepEqual((await s.store.history("oSilent", { limit: 5 })).map((m) => m.direction), ["in"]);
});

Deno.test("auto-resolve: a conversation idle for the set time is resolved by kefu with its closing text", async () => {
  await using s = await setup([{ auto_resolve: { after_minutes: 30, text: "本次会话已结束，如需帮助请再次留言" } }]);
  await s.writes("oIdle", "a1");
  await s.writes("oBusy", "a1");
  s.clock.ms += 20 * MINUTE;
  // The agent answers one of them: its idle time starts again.
  const saved = await s.store.saveReply({
    id: "r1",
    direction: "out",
    channel: WX_OFFICIAL,
    account: APPID,
    contact: "oBusy",
    agent: "a1",
    company: "",
    type: "text",
    content: "我们看一下",
    media: "",
    sendTime: Math.floor(s.clock.ms / 1000),
    name: "",
    avatar: "",
  });
  assert.ok(!("refused" in saved));
  s.clock.ms += 10 * MINUTE - 1;
  assert.equal((await s.automatic.tick()).resolved, 0, "a millisecond before the idle time");
  s.clock.ms += 1;
  assert.equal((await s.automatic.tick()).resolved, 1);
  assert.equal((await s.store.contact("oIdle"))?.status, "resolved");
  assert.equal((await s.store.contact("oBusy"))?.status, "open");
  assert.deepEqual(s.texts("oIdle"), ["本次会话已结束，如需帮助请再次留言"]);
  const [closing, line] = await s.store.history("oIdle", { limit: 2 });
  assert.deepEqual([line.type, line.content, line.extra?.action, line.extra?.by], [
    "system",
    "auto-resolved",
    "resolved",
    "kefu",
  ]);
  assert.deepEqual([closing.agent, closing.extra?.automatic], ["kefu", "auto_resolve"]);
  // Resolved once: the next pass finds nothing, and a user's message reopens it as usual.
  s.clock.ms += 60 * MINUTE;
  assert.equal((await s.automatic.tick()).resolved, 1, "oBusy, idle now too");
  assert.equal((await s.automatic.tick()).resolved, 0);
  await s.writes("oIdle");
  assert.equal((await s.store.contact("oIdle"))?.status, "open");
});

Deno.test("auto-resolve: an agent who acted meanwhile wins (the update is conditional)", async () => {
  await using s = await setup([{ auto_resolve: { after_minutes: 5 } }]);
  await s.writes("oRace", "a1");
  s.clock.ms += 6 * MINUTE;
  // The agent hands the user to a colleague just before kefu's pass: kefu's update expects a1, so it loses.
  await s.store.updateContact("oRace", { expectAgent: "a1", agent: "a2" });
  const automatic = s.automaticOf();
  assert.equal(await s.hub.workflow.resolveIdle("oRace", "a1", "kefu"), undefined);
  assert.equal((await s.store.contact("oRace"))?.status, "open");
  // With the right owner the pass resolves it, without a closing text (none configured).
  assert.equal((await automatic.tick()).resolved, 1);
  assert.equal((await s.store.contact("oRace"))?.status, "resolved");
  assert.equal(s.sim.calls("/cgi-bin/message/custom/send"), 0);
});

Deno.test("auto-resolve: a user who writes between the idle check and the update wins (the update expects no message since)", async () => {
  await using s = await setup([{ auto_resolve: { after_minutes: 5, text: "本次会话已结束" } }]);
  await s.writes("oLate", "a1");
  s.clock.ms += 6 * MINUTE;
  // The user's message comes just after the store answered which conversations are idle, before the update.
  let late = true;
  const automatic = s.automaticOf({
    idleContacts: async (...a) => {
      const idle = await s.store.idleContacts(...a);
      if (late) {
        late = false;
        await s.writes("oLate");
      }
      return idle;
    },
  });
  assert.deepEqual(await automatic.tick(), { pleaseWait: 0, resolved: 0 });
  assert.equal((await s.store.contact("oLate"))?.status, "open");
  assert.deepEqual(s.texts("oLate"), [], "no closing text to a user who just wrote");
  assert.ok(!(await s.store.history("oLate", { limit: 5 })).some((m) => m.type === "system"), "no resolve line");
  // Idle again for the set time: resolved then.
  s.clock.ms += 6 * MINUTE;
  assert.equal((await automatic.tick()).resolved, 1);
  assert.equal((await s.store.contact("oLate"))?.status, "resolved");
});

Deno.test("auto-resolve: conversations of an account without an auto-resolve rule do not fill the pass", async () => {
  // Every account resolves after 5 minutes, except wxQuiet (a rule of its own, without auto-resolve).
  await using s = await setup([
    { auto_resolve: { after_minutes: 5 } },
    { account: "wxQuiet", welcome: "您好" },
  ]);
  // More idle conversations of wxQuiet than a pass looks at, all idle longer than the one to resolve.
  for (let i = 0; i < 201; i++) await s.writes(`oQuiet${i}`, "a1", "wxQuiet");
  s.clock.ms += MINUTE;
  await s.writes("oDue", "a1");
  s.clock.ms += 6 * MINUTE;
  assert.equal((await s.store.idleContacts(s.clock.ms, 1000)).length, 202, "all idle");
  assert.equal((await s.automatic.tick()).resolved, 1);
  assert.equal((await s.store.contact("oDue"))?.status, "resolved");
  assert.equal((await s.store.contact("oQuiet0"))?.status, "open");
  assert.equal((await s.store.idleContacts(s.clock.ms, 1000)).length, 201, "wxQuiet's stay open");
});

Deno.test("auto-resolve: each rule's own idle time, the most specific rule governing an account", async () => {
  await using s = await setup([
    { auto_resolve: { after_minutes: 30 } },
    { account: APPID, auto_resolve: { after_minutes: 5 } },
  ]);
  await s.writes("oHere", "a1");
  await s.writes("oElsewhere", "a1", "wxOther");
  s.clock.ms += 6 * MINUTE;
  assert.equal((await s.automatic.tick()).resolved, 1);
  assert.equal((await s.store.contact("oHere"))?.status, "resolved");
  assert.equal((await s.store.contact("oElsewhere"))?.status, "open", "its rule says 30 minutes");
  s.clock.ms += 24 * MINUTE;
  assert.equal((await s.automatic.tick()).resolved, 1);
  assert.equal((await s.store.contact("oElsewhere"))?.status, "resolved");
});

Deno.test("job: the pass runs on one node at a time (the lease job:automatic)", async () => {
  await using s = await setup([{ please_wait: { after_seconds: 60, text: "请稍候" } }]);
  const passes = { a: 0, b: 0 };
  const resolves: boolean[] = [];
  const job = (name: "a" | "b") =>
    startAutomaticJob({
      automatic: {
        tick: ({ resolve }) => {
          passes[name]++;
          resolves.push(resolve === true);
          return Promise.resolve({ pleaseWait: 0, resolved: 0 });
        },
      },
      store: s.store,
      holder: name,
      log: silentLogger,
      retentionDays: 30,
      everyMs: 3_600_000,
      now: () => s.clock.ms,
    });
  const a = job("a");
  assert.equal(await a.run(), true);
  // Idle conversations are looked for at most once a minute; please-wait at every pass.
  assert.equal(await a.run(), true);
  s.clock.ms += 60_000;
  assert.equal(await a.run(), true);
  assert.deepEqual(resolves.slice(-3), [true, false, true]);
  const b = job("b");
  assert.equal(await b.run(), false, "a holds the lease");
  // a stops (gives the lease back): b takes over.
  await a.stop();
  assert.equal(await b.run(), true);
  await b.stop();
  assert.ok(passes.a >= 1 && passes.b >= 1);
});
