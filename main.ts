/**
 * kefu: the composition root. {@link start} builds the store, the hub, the channels, the background jobs and the
 * application from a configuration and serves them with `Deno.serve`; run as a program it hands its arguments to
 * the command line (`src/cli/cli.ts`: serve, simulate, check-config, backup, hash-password, help, version).
 *
 * @module
 */

import { createApp } from "./src/http/app.ts";
import { type Config, ConfigError } from "./src/config/config.ts";
import { parseWxOfficialConfig, type WechatAccount } from "./src/channels/wx_official/config.ts";
import { parsePcHookConfig, type PcHookOptions } from "./src/channels/pc_hook/config.ts";
import { parseWxbotConfig, type WxbotConfig } from "./src/channels/wxbot/config.ts";
import { HttpStats } from "./src/http/http_stats.ts";
import { capacityOf } from "./src/hub/assignment.ts";
import { Hub } from "./src/hub/hub.ts";
import { ReplyService } from "./src/hub/replies.ts";
import { startDeadlineSweeper, stopDeadlineSweeper } from "./src/core/body.ts";
import { createLogger, type Logger } from "./src/core/log.ts";
import { PassiveReplies } from "./src/channels/wx_official/passive_reply.ts";
import { wxOfficial } from "./src/channels/wx_official/channel.ts";
import { httpPush } from "./src/channels/http_push/routes.ts";
import { pcHook } from "./src/channels/pc_hook/channel.ts";
import { wxbot } from "./src/channels/wxbot/channel.ts";
import { type ChannelAdapter, type ChannelContext, type ChannelFactory, ReplyRouter } from "./src/channels/channel.ts";
import { Converter } from "./src/media/convert.ts";
import { MediaFiles } from "./src/media/files.ts";
import { MediaPipeline } from "./src/media/pipeline.ts";
import type { AgentDialect } from "./src/agents/dialect.ts";
import { seed004 } from "./src/agents/dialects/seed004.ts";
import { seed003 } from "./src/agents/dialects/seed003.ts";
import { Auth } from "./src/agents/auth/auth.ts";
import { checkDoors, openDoors, pushesOpen } from "./src/agents/auth/open_doors.ts";
import type { AgentBusFactory } from "./src/hub/bus.ts";
import { Close } from "./src/envelope/protocol.ts";
import { ReplyWindows } from "./src/channels/wx_official/reply_window.ts";
import type { ReplyWindowOf } from "./src/hub/routing.ts";
import { openStore } from "./src/store/open.ts";
import { resumeMedia, startJobs } from "./src/jobs/jobs.ts";
import { runCli } from "./src/cli/cli.ts";
import { VERSION } from "./src/version.ts";
import { clearGaugeSource, observeAccept, setGaugeSource } from "./src/metrics/metrics.ts";
import { channelStates, opsRoutes } from "./src/metrics/routes.ts";
import { Uploads } from "./src/media/uploads.ts";
import { checkCluster, checkRedisServer } from "./src/cluster/check.ts";
import { redisBus } from "./src/cluster/redis_bus.ts";
import { sharedCluster } from "./src/cluster/shared_cluster.ts";
import { type AutomaticConfig, parseAutomaticConfig } from "./src/automation/config.ts";
import { Automatic } from "./src/automation/automatic.ts";
import { startAutomaticJob } from "./src/jobs/automatic_job.ts";
import { WX_OFFICIAL } from "./src/channels/wx_official/webhook.ts";
import { HTTP_PUSH } from "./src/channels/http_push/routes.ts";
import { PC_HOOK } from "./src/channels/pc_hook/codec.ts";
import { WXBOT } from "./src/channels/wxbot/channel.ts";
import { type Hold, Holder } from "./src/cluster/holder.ts";

/** A running service. */
export interface Service {
  /** The port it listens on (useful with `PORT=0`). */
  port: number;
  hub: Hub;
  /** Close agent sockets with 1001, stop the heartbeat, stop listening. Idempotent. */
  shutdown(): Promise<void>;
}

/** The built-in channels' settings, each read by its channel. */
export interface ChannelSettings {
  /** The Official Accounts (`WECHAT_*`, CONFIG_FILE `accounts`); [] when none. */
  accounts: WechatAccount[];
  /** The PC-hook channel (`HOOK_*`, CONFIG_FILE `pc_hook`); undefined: off. */
  pcHook?: PcHookOptions;
  /** The WXBot channel (`WXBOT_*`, CONFIG_FILE `wxbot`); undefined: off. */
  wxbot?: WxbotConfig;
  /** What kefu sends by itself per account (CONFIG_FILE `automatic`): business hours, welcome, please-wait… */
  automatic: AutomaticConfig;
}

/**
 * Ask each built-in channel for its settings, from what the configuration hands on (the environment and
 * CONFIG_FILE's sections). Every channel is asked; the `ConfigError` says the first problem and lists all.
 */
export function channelSettings(config: Pick<Config, "channelSources">): ChannelSettings {
  const { env, file } = config.channelSources;
  const problems: string[] = [];
  const read = <T>(f: () => T, fallback: T): T => {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      problems.push(...e.problems);
      return fallback;
    }
  };
  const settings: ChannelSettings = {
    accounts: read(() => parseWxOfficialConfig(env, file.accounts), []),
    pcHook: read(() => parsePcHookConfig(env, file.pc_hook), undefined),
    wxbot: read(() => parseWxbotConfig(env, file.wxbot), undefined),
    automatic: read(
      () => parseAutomaticConfig(file.automatic, [WX_OFFICIAL, HTTP_PUSH, PC_HOOK, WXBOT]),
      parseAutomaticConfig(undefined, []),
    ),
  };
  if (problems.length > 0) throw new ConfigError(problems[0], problems);
  return settings;
}

/** What {@link start} can be given besides the configuration (tests register their own parts). */
export interface StartOptions {
  /** Channel settings used instead of the ones the channels read from the configuration. */
  settings?: Partial<ChannelSettings>;
  log?: Logger;
  /** More channels, after the built-in ones. */
  channels?: ChannelFactory[];
  /** More agent dialects, after the built-in ones. */
  dialects?: AgentDialect[];
  /** The agent bus; default: this process's own. */
  bus?: AgentBusFactory;
  /** Agents' uploads; default: kept with the users' media files (a channel registered here may share them). */
  uploads?: Uploads;
  /** The automatic messages' job cadence (tests shorten it); default that of src/jobs/automatic_job.ts. */
  automaticJob?: { everyMs?: number; resolveEveryMs?: number };
}

/**
 * Start the service with a configuration: open the store, rebuild the hub from it, register the channels and the
 * agent dialects, then listen. `log` defaults to one made from `config.logLevel`.
 */
export async function start(config: Config, options: StartOptions = {}): Promise<Service> {
  const log = options.log ?? createLogger({ level: config.logLevel });
  const settings = { ...channelSettings(config), ...options.settings };
  // With sign-in on, the PC hook's socket is not left open by accident: refused before anything is opened.
  checkDoors({ ...config, pcHook: settings.pcHook });
  checkCluster(config);
  if (config.redisUrl !== undefined) await checkRedisServer(config.redisUrl, log);
  const store = await openStore(config);
  // Several nodes (REDIS_URL): deliveries and presence go through Redis; the store stays the truth.
  const cluster = config.redisUrl === undefined || options.bus !== undefined
    ? undefined
    : redisBus({ url: config.redisUrl, nodeId: config.nodeId, log, store });
  // And WeChat's access_tokens, media_ids, the webhook's taken nonces and sign-in revocations are shared on Redis.
  const shared = config.redisUrl === undefined
    ? undefined
    : sharedCluster({ url: config.redisUrl, nodeId: config.nodeId, log });
  // The reply router comes with the channels, after the hub; contacts ask it for their reply windows.
  let replyWindow: ReplyWindowOf = () => null;
  const hub = new Hub({
    store,
    log,
    bus: options.bus ?? cluster?.bus,
    maxLiveWhileSyncing: config.maxHeldPerAgent,
    maxSocketsPerAgent: config.maxSocketsPerAgent,
    redeliverPage: config.redeliverPage,
    maxBufferedBytes: config.maxBufferedBytes,
    reassignAfterMs: config.reassignAfterSeconds * 1000,
    replyWindow: (c) => replyWindow(c),
    agents: config.agents.map((a) => a.id),
    roles: config.roles,
    capacity: capacityOf(config.capacities, config.agentCapacity),
    policy: config.assignPolicy,
  });
  const windows = new ReplyWindows({
    onChange: (account, openid, w) =>
      store.saveWindow({ account, openid, ...w }).catch((e) => log.warn("window_save_failed", { error: String(e) })),
  });
  let kept;
  try {
    kept = { windows: await store.windows(), outbox: await store.outbox(), media: await store.waitingMedia() };
  } catch (e) {
    await store.close().catch((e) => log.error("store_close_failed", { error: String(e) }));
    throw e;
  }
  for (const w of kept.windows) windows.restore(w.account, w.openid, w);
  // Replies that were on their way when kefu stopped may or may not have reached WeChat: the jobs say so, never resend.
  const counts = await hub.stats();
  log.info("store_loaded", {
    store: config.store,
    contacts: counts.contacts,
    unacked: counts.held,
    unconfirmed_replies: kept.outbox.length,
  });

  const stats = new HttpStats();
  const STATS_SECONDS = 10;
  // Users' media files: kept under MEDIA_DIR (shared by every node), else DATA_DIR/media (in memory with
  // STORE=memory), converted by ffmpeg.
  const mediaDir = config.mediaDir?.replace(/\/+$/, "") ??
    (config.store === "memory" ? undefined : `${config.dataDir.replace(/\/+$/, "")}/media`);
  const files = new MediaFiles(mediaDir);
  await files.scan();
  // Agents' uploads are kept with them (content-addressed: the same file twice is one upload).
  const uploads = options.uploads ?? new Uploads({ files, shared: shared?.state });
  const converter = new Converter({
    ffmpeg: config.ffmpegPath,
    timeoutMs: config.mediaTimeoutSeconds * 1000,
    maxOutputBytes: config.mediaMaxBytes,
    tmpDir: mediaDir && `${mediaDir}/tmp`,
  });
  const media = new MediaPipeline({
    hub,
    files,
    converter,
    log,
    timeoutMs: config.mediaTimeoutSeconds * 1000,
    maxBytes: (type) => type === "voice" ? Math.min(2 << 20, config.mediaMaxBytes) : config.mediaMaxBytes,
    publicUrl: config.publicUrl,
    // Several processes over PostgreSQL: each file is worked on by the one that claims it (a lease per message).
    leases: config.store === "postgres" ? { store, holder: config.nodeId } : undefined,
  });
  // The channels, in the order their routes are mounted. A new channel is one folder and one line here. Each
  // hands its messages to the accept path through the media pipeline, which holds media messages for their file.
  const adapters = new Map<ChannelFactory, ChannelAdapter>();
  // Automatic messages (welcome, closed reply) follow a committed message; they go out by the reply router below.
  const automatic = new Automatic({
    config: settings.automatic,
    store,
    router: { send: (m, c) => router.send(m, c), windowRules: (c) => router.windowRules(c) },
    resolveIdle: (id, agent, by, lastSeq) => hub.workflow.resolveIdle(id, agent, by, lastSeq),
    tell: (agent, event) => hub.notify(agent, event),
    log,
  });
  const contextOf = (f: ChannelFactory): ChannelContext => ({
    // Every message and what became of it is counted here, where all channels pass.
    accept: (m, o) =>
      observeAccept(m, () => media.accept(adapters.get(f)!, m, o)).then((r) => (automatic.accepted(m, r), r)),
    log,
    maxBodyBytes: config.maxBodyBytes,
  });
  // Work that must run once among the processes sharing a PostgreSQL store (a WXBot key's socket, a PC hook's
  // registration) is held through a lease there; SQLite's DATA_DIR lock already makes this process the only one.
  const hold: Hold | undefined = config.store !== "postgres"
    ? undefined
    : (key, work) => new Holder({ store, key, node: config.nodeId, work, log });
  const factories: ChannelFactory[] = [
    wxOfficial({
      accounts: settings.accounts,
      windows,
      passive: new PassiveReplies({ shared: cluster?.passive, log }),
      uploads,
      mediaHosts: config.mediaAllowedHosts,
      mediaTimeoutMs: config.mediaTimeoutSeconds * 1000,
      shared: shared?.state,
    }),
    httpPush({ replyUrl: config.pushReplyUrl, token: config.pushToken, open: pushesOpen(config) }),
    ...settings.pcHook ? [pcHook(settings.pcHook, { hold, handover: cluster !== undefined })] : [],
    ...settings.wxbot ? [wxbot({ config: settings.wxbot, uploads, hold })] : [],
    ...options.channels ?? [],
  ];
  const channels = factories.map((f) => {
    const ch = f(contextOf(f));
    adapters.set(f, ch);
    return ch;
  });
  const router = new ReplyRouter(channels, { log });
  // Supervisors watching the team see each reply as it went out (issue 22).
  const replies = new ReplyService({ store, router, log, recorded: (m, state, d) => hub.team.replied(m, state, d) });
  // The gauges (messages waiting, agents online, sockets, channel states) are read from here at scrape time.
  const gauges = { hub: () => hub.stats(), channels: () => channelStates(channels) };
  setGaugeSource(gauges);
  replyWindow = (c) => router.replyWindow(c);
  resumeMedia(media, kept.media, channels);
  if (!await converter.available()) {
    log.warn("ffmpeg_missing", {
      detail: `cannot run ${JSON.stringify(config.ffmpegPath)}: users' voice notes are kept as WeChat sent them ` +
        "(AMR/Speex, which browsers do not play); install ffmpeg or set FFMPEG_PATH",
    });
  }
  // Agent dialects; the first is the default. A new dialect is one module and one line here.
  const dialects = [seed004, seed003, ...options.dialects ?? []];
  const auth = config.agentSecret === undefined ? undefined : new Auth({
    secret: config.agentSecret,
    tokenSeconds: config.authTokenSeconds,
    maxSkewSeconds: config.authMaxSkewSeconds,
    agents: config.agents,
    // Sign-outs and administrators' revocations are kept by the store: a restart does not bring a token back.
    revocations: store,
    onRevoked: () => shared?.revoked(),
  });
  await auth?.load();
  if (auth) shared?.relayRevocations(() => auth.load());
  // Every door anyone could walk through is said at start: sign-in off, pushes or the hook's socket without a token.
  for (const door of openDoors({ ...config, pcHook: settings.pcHook })) log.warn(door.event, { detail: door.detail });
  const app = createApp({
    hub,
    log,
    channels,
    router,
    replies,
    dialects,
    uploads,
    stats,
    auth,
    media: {
      files,
      pipeline: media,
      publicUrl: config.publicUrl,
      linkSeconds: config.mediaUrlSeconds,
      sharedUploads: cluster?.uploads,
    },
    staticDir: `${import.meta.dirname}/static`,
    maxWsMessageBytes: config.maxWsMessageBytes,
    idleTimeoutSeconds: config.idleTimeoutSeconds,
    metricsToken: config.metricsToken,
    ops: opsRoutes({ token: config.metricsToken, store, channels: gauges.channels }),
  });
  await cluster?.start();
  await shared?.start();
  for (const ch of channels) await ch.start?.();
  const server = Deno.serve({
    port: config.port,
    hostname: config.host,
    onListen: ({ hostname, port }) => log.info("listening", { host: hostname, port, version: VERSION }),
  }, app.fetch);
  const heartbeat = setInterval(() => hub.heartbeat(), config.heartbeatSeconds * 1000);
  // Users whose agent is away move to an online agent when the grace period ends, not at their next message.
  // Its run in flight is kept so that shutdown waits for it before the store closes (else: "store is closed").
  let reassigning: Promise<unknown> = Promise.resolve();
  const reassign = setInterval(() => {
    reassigning = hub.reassignAway().catch((e) => log.warn("reassign_failed", { error: String(e) }));
  }, 1000);
  const summary = setInterval(() => stats.flush(log, STATS_SECONDS), STATS_SECONDS * 1000);
  // Messages older than RETENTION_DAYS go (unread ones stay), then the media files no message uses any more.
  // Replies left under way (their lease ran out) are marked failed at start and every minute.
  const jobs = startJobs({
    store,
    media,
    windows,
    log,
    retentionDays: config.retentionDays,
    holder: config.nodeId,
    // Among several processes, media work a dead one left is taken over without waiting for a restart.
    waitingMedia: config.store === "postgres" ? { work: media, channels } : undefined,
  });
  // Please-wait and auto-resolve, on one node at a time (a lease), only when configured.
  const automaticJob = settings.automatic.timed
    ? startAutomaticJob({
      automatic,
      store,
      log,
      holder: config.nodeId,
      retentionDays: config.retentionDays,
      ...options.automaticJob,
    })
    : undefined;

  // Request bodies' deadlines: one timer for all of them from here until the shutdown (src/core/body.ts).
  startDeadlineSweeper();
  let sweeping = true;
  const stopSweeping = () => {
    if (sweeping) stopDeadlineSweeper();
    sweeping = false;
  };
  let stopping: Promise<void> | undefined;
  return {
    port: server.addr.port,
    hub,
    shutdown() {
      stopping ??= (async () => {
        try {
          await stop();
        } finally {
          // Also when a step of the stop failed: the sweeper's timer must not keep the process alive.
          stopSweeping();
        }
      })();
      return stopping;
      async function stop() {
        clearInterval(heartbeat);
        clearInterval(reassign);
        clearInterval(summary);
        stats.flush(log, STATS_SECONDS);
        // Replies under way get a moment to finish and be confirmed to their agents; media work resumes next start.
        await Promise.all([router.drain(5_000), media.stop(2_000)]);
        await Promise.all(channels.map((ch) => ch.stop?.(5_000)));
        const { sockets, held } = await hub.stats().catch(() => ({ sockets: 0, held: 0 }));
        // Among several nodes, the agent pages reconnect at once (through the load balancer, to another node).
        // No new sockets here (503: the load balancer tries another node); our close frames go out (and are answered,
        // 2 s at most) before Deno.serve closes what is left with its own.
        hub.drain();
        if (cluster) await hub.closeAll(Close.reconnect, `node ${config.nodeId} draining: reconnect now`, 2_000);
        else await hub.closeAll(Close.goingAway, "server shutting down", 2_000);
        await server.shutdown();
        stopSweeping();
        await reassigning;
        // Everything accepted is committed before the file is closed.
        await jobs.stop();
        await automaticJob?.stop();
        await automatic.drain();
        // Before the store closes: the revocation relay reads it.
        await shared?.stop();
        // Its agents are offline here at once for the other nodes, not when the announcement expires; and what its
        // sessions were written is marked read before the store closes.
        await cluster?.stop();
        await store.close();
        clearGaugeSource(gauges);
        log.info("stopped", { sockets_closed: sockets, held_kept: held });
      }
    },
  };
}

if (import.meta.main) await runCli(Deno.args, { start, channelSettings });
