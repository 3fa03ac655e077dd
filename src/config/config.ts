/**
 * The service's configuration from environment variables (and the agents of CONFIG_FILE). Every variable is
 * documented in docs/configuration.md; a bad value stops the start with a message that names it.
 *
 * The channels own their settings (`src/channels/<channel>/config.ts`): this module imports no channel. It hands each
 * channel what it reads — the environment and CONFIG_FILE's section of that channel — in {@link Config.channelSources},
 * and the composition root (`main.ts`) asks each channel for its settings.
 *
 * @module
 */

import { postgresUrlProblem } from "./postgres_url.ts";
import { type AgentAccount, isPasswordHash } from "../agents/auth/passwords.ts";
import { isLogLevel, type LogLevel } from "../core/log.ts";
import { isRole, type Role, ROLES } from "../core/roles.ts";

/** What the channels read their settings from: the environment and CONFIG_FILE's sections, as parsed. */
export interface ChannelSources {
  env: Readonly<Record<string, string | undefined>>;
  /** CONFIG_FILE's top-level sections other than `agents` (`accounts`, `pc_hook`, `wxbot`); {} without a file. */
  file: Readonly<Record<string, unknown>>;
}

/** The stores kefu can keep its data in. */
export const STORES = ["sqlite", "memory", "postgres"] as const;
/** `sqlite`: a file under DATA_DIR; `memory`: nothing survives a restart; `postgres`: DATABASE_URL. */
export type StoreKind = typeof STORES[number];

/** The service's settings. */
export interface Config {
  port: number;
  host: string;
  heartbeatSeconds: number;
  idleTimeoutSeconds: number;
  maxBodyBytes: number;
  maxWsMessageBytes: number;
  maxHeldPerAgent: number;
  maxHeldTotal: number;
  maxSocketsPerAgent: number;
  dedupeWindow: number;
  logLevel: LogLevel;
  /** `sqlite`: a file under dataDir; `memory`: nothing survives a restart (tests, measurements); `postgres`. */
  store: StoreKind;
  dataDir: string;
  /** `MEDIA_DIR`: where media files are kept; undefined: `<dataDir>/media`. Several nodes need one they all share. */
  mediaDir?: string;
  /** `DATABASE_URL` (postgres://…), required with STORE=postgres; holds a password: log {@link redactUrl} of it. */
  databaseUrl?: string;
  /** `DATABASE_POOL_SIZE`: connections each process keeps to PostgreSQL (the server's `max_connections` is shared). */
  databasePoolSize: number;
  /** `REDIS_URL` (redis://…, rediss://…) for cluster mode; undefined: one process. Log {@link redactUrl} of it. */
  redisUrl?: string;
  /** `NODE_ID`: this process's name among several (default: host name and pid). */
  nodeId: string;
  /** Longest wait for a group commit to fill; 0 commits each message alone. */
  groupCommitMs: number;
  /** SQLite's `synchronous`: NORMAL survives a crash, FULL a power loss too. */
  storeSync: "NORMAL" | "FULL";
  /** Messages older than this are swept (unacknowledged ones are kept). */
  retentionDays: number;
  /** Unacknowledged messages read per page when an agent connects (every page is sent). */
  redeliverPage: number;
  /** A socket with more unsent bytes than this is closed with 4001. */
  maxBufferedBytes: number;
  /** A user whose agent has been offline this long goes to an online agent. */
  reassignAfterSeconds: number;
  /** `AGENT_CAPACITY`: open conversations an agent holds before new users wait in the queue; 0: no limit. */
  agentCapacity: number;
  /** Per-agent capacities (CONFIG_FILE `agents[].capacity`), over `agentCapacity`. */
  capacities: Record<string, number>;
  /** `ASSIGN_POLICY`: who a new user goes to among the available agents under capacity. */
  assignPolicy: "fewest" | "round_robin";
  /** Where replies to users who came over the HTTP push are POSTed; undefined: nowhere (no_route). */
  pushReplyUrl?: string;
  /** Bearer token the push endpoints require; undefined: they are open only with sign-in off or `pushOpen`. */
  pushToken?: string;
  /** `PUSH_OPEN=1`: with sign-in on and no PUSH_TOKEN, pushes are taken from anyone all the same (the start log says so). */
  pushOpen: boolean;
  /** `AGENT_SECRET`: turns agent sign-in on (never logged); undefined: off. */
  agentSecret?: string;
  /** Life of an agent's token. */
  authTokenSeconds: number;
  /** A seed 003 token request whose timestamp is further from now is refused. */
  authMaxSkewSeconds: number;
  /** Agents who sign in on the agent page with a password (`CONFIG_FILE` `agents`). */
  agents: AgentAccount[];
  /** Roles other than `agent` (CONFIG_FILE `agents[].role`: `supervisor` or `admin`), by agent id. */
  roles: Record<string, Role>;
  /** ffmpeg for converting users' voice notes: `FFMPEG_PATH`, else `ffmpeg` on PATH. */
  ffmpegPath: string;
  /** Longest the work on one user's file may take before the message is delivered without it. */
  mediaTimeoutSeconds: number;
  /** Largest user file kept (voice: at most 2 MiB, WeChat's own limit, whatever this says). */
  mediaMaxBytes: number;
  /** Hosts users' files may be fetched from, besides the accounts' API bases. */
  mediaAllowedHosts: string[];
  /** Where agents reach kefu (`https://kefu.example.com`): media URLs are absolute under it; undefined: paths. */
  publicUrl?: string;
  /** Life of a signed link to a media file. */
  mediaUrlSeconds: number;
  /** `METRICS_TOKEN`: turns `/metrics` on, for scrapers that send it as a Bearer token; undefined: off (404). */
  metricsToken?: string;
  /** What each channel reads its own settings from (see `main.ts`). */
  channelSources: ChannelSources;
}

/** Defaults, as the README's configuration table lists them. */
export const DEFAULTS: Config = {
  port: 1234,
  host: "0.0.0.0",
  heartbeatSeconds: 30,
  idleTimeoutSeconds: 60,
  maxBodyBytes: 256 * 1024,
  maxWsMessageBytes: 64 * 1024,
  maxHeldPerAgent: 1000,
  maxHeldTotal: 100_000,
  maxSocketsPerAgent: 8,
  dedupeWindow: 100_000,
  logLevel: "info",
  store: "sqlite",
  dataDir: "./data",
  mediaDir: undefined,
  databaseUrl: undefined,
  databasePoolSize: 10,
  redisUrl: undefined,
  nodeId: defaultNodeId(),
  groupCommitMs: 2,
  storeSync: "NORMAL",
  retentionDays: 30,
  redeliverPage: 1000,
  maxBufferedBytes: 4 << 20,
  reassignAfterSeconds: 30,
  agentCapacity: 0,
  capacities: {},
  assignPolicy: "fewest",
  pushReplyUrl: undefined,
  pushToken: undefined,
  pushOpen: false,
  agentSecret: undefined,
  authTokenSeconds: 86400,
  authMaxSkewSeconds: 300,
  agents: [],
  roles: {},
  ffmpegPath: "ffmpeg",
  mediaTimeoutSeconds: 30,
  mediaMaxBytes: 10 << 20,
  mediaAllowedHosts: ["mmbiz.qpic.cn", "*.qpic.cn", "*.qlogo.cn", "*.weixin.qq.com", "*.video.qq.com"],
  publicUrl: undefined,
  mediaUrlSeconds: 3600,
  metricsToken: undefined,
  channelSources: { env: {}, file: {} },
};

/**
 * Raised for a bad environment variable (or CONFIG_FILE, DATA_DIR, …). `problems` lists every problem found when
 * there were several (the message is the first): `kefu check-config` shows them all.
 */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(message: string, problems?: readonly string[]) {
    super(message);
    this.name = "ConfigError";
    this.problems = problems && problems.length > 0 ? problems : [message];
  }
}

/** `NODE_ID`'s default: the host name (when Deno may read it, without asking) and the process id. */
export function defaultNodeId(): string {
  let host = "";
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") host = Deno.hostname();
  } catch { /* no host name: the pid alone */ }
  host ||= (() => {
    try {
      return Deno.permissions.querySync({ name: "env", variable: "HOSTNAME" }).state === "granted"
        ? Deno.env.get("HOSTNAME") ?? ""
        : "";
    } catch {
      return "";
    }
  })();
  return `${host || "kefu"}-${Deno.pid}`;
}

/** A URL with its password (and a `password=` parameter) replaced by `***`, for logs and messages. */
export function redactUrl(raw: string): string {
  let out = raw;
  try {
    const url = new URL(raw);
    if (url.password) url.password = "***";
    if (url.searchParams.has("password")) url.searchParams.set("password", "***");
    out = url.href;
  } catch { /* not a URL: the pattern below */ }
  // Whatever still looks like user:password@ (a URL the parser read another way, or none).
  return out.replace(/:[^:@/?#]+@/g, ":***@");
}

/** A URL of one of `protocols` (`postgres:`…), or undefined when unset or blank; never quotes a password. */
export function readServiceUrl(
  value: string | undefined,
  where: string,
  protocols: readonly string[],
  example: string,
): string | undefined {
  const v = value?.trim();
  if (v === undefined || v === "") return undefined;
  let url: URL | undefined;
  try {
    url = new URL(v);
  } catch { /* answered below */ }
  if (url === undefined || !protocols.includes(url.protocol) || url.hostname === "" && !url.searchParams.has("host")) {
    throw new ConfigError(
      `cannot read ${where}=${JSON.stringify(redactUrl(v))}: expected a URL like ${example}`,
    );
  }
  return v;
}

/** An integer variable from `min` to `max`; `fallback` when unset or blank. Throws `ConfigError` naming it. */
export function readInt(
  env: Record<string, string | undefined>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw.trim());
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`cannot read ${name}=${JSON.stringify(raw)}: expected an integer from ${min} to ${max}`);
  }
  return n;
}

/** LOG_LEVEL, `info` when unset. Throws `ConfigError` naming it. */
export function readLogLevel(env: Record<string, string | undefined>): LogLevel {
  const level = (env.LOG_LEVEL?.trim() || DEFAULTS.logLevel).toLowerCase();
  if (!isLogLevel(level)) {
    throw new ConfigError(
      `cannot read LOG_LEVEL=${JSON.stringify(env.LOG_LEVEL)}: expected debug, info, warn, error or silent`,
    );
  }
  return level;
}

/**
 * Read the configuration from an environment (`Deno.env.toObject()`); `readFile` reads CONFIG_FILE. Every problem
 * is found before it throws: the `ConfigError` says the first and lists them all in `problems`.
 */
export function parseConfig(
  env: Record<string, string | undefined>,
  readFile: (path: string) => string = (path) => Deno.readTextFileSync(path),
): Config {
  const { config, problems } = readConfig(env, readFile);
  if (problems.length > 0) throw new ConfigError(problems[0], problems);
  return config;
}

/**
 * The configuration and every problem found reading it (`kefu check-config` reports them all): a value that cannot
 * be read is its default in `config`, and a CONFIG_FILE that cannot be read counts as empty.
 */
export function readConfig(
  env: Record<string, string | undefined>,
  readFile: (path: string) => string = (path) => Deno.readTextFileSync(path),
): { config: Config; problems: string[] } {
  const problems: string[] = [];
  // A value, or its default when it cannot be read (the problem is kept, so that every one is reported).
  const read = <T>(f: () => T, fallback: T): T => {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      problems.push(...e.problems);
      return fallback;
    }
  };
  const D = DEFAULTS;
  const int = (name: string, fallback: number, min: number, max: number) =>
    read(() => readInt(env, name, fallback, min, max), fallback);
  const file: ConfigFile = env.CONFIG_FILE
    ? read(() => readConfigFile(env.CONFIG_FILE!, readFile), { agents: [], sections: {} })
    : { agents: [], sections: {} };
  const store = read(() => readChoice(env.STORE, "STORE", STORES, D.store, true), D.store);
  const databaseUrl = read(
    () =>
      readServiceUrl(
        env.DATABASE_URL,
        "DATABASE_URL",
        ["postgres:", "postgresql:"],
        "postgres://kefu:…@db.example:5432/kefu",
      ),
    undefined,
  );
  const urlProblem = databaseUrl === undefined ? undefined : postgresUrlProblem(databaseUrl);
  if (urlProblem !== undefined) {
    problems.push(`cannot use DATABASE_URL=${JSON.stringify(redactUrl(databaseUrl!))}: ${urlProblem}`);
  }
  if (store === "postgres" && databaseUrl === undefined && !problems.some((p) => p.includes("DATABASE_URL"))) {
    problems.push("cannot use STORE=postgres: DATABASE_URL is required (postgres://user:password@host:5432/database)");
  }
  const config: Config = {
    port: int("PORT", D.port, 0, 65535),
    host: env.HOST?.trim() || D.host,
    heartbeatSeconds: int("HEARTBEAT_SECONDS", D.heartbeatSeconds, 1, 86400),
    idleTimeoutSeconds: int("IDLE_TIMEOUT_SECONDS", D.idleTimeoutSeconds, 1, 86400),
    maxBodyBytes: int("MAX_BODY_BYTES", D.maxBodyBytes, 1024, 64 * 1024 * 1024),
    maxWsMessageBytes: int("MAX_WS_MESSAGE_BYTES", D.maxWsMessageBytes, 1024, 16 * 1024 * 1024),
    maxHeldPerAgent: int("MAX_HELD_PER_AGENT", D.maxHeldPerAgent, 1, 10_000_000),
    maxHeldTotal: int("MAX_HELD_TOTAL", D.maxHeldTotal, 1, 100_000_000),
    maxSocketsPerAgent: int("MAX_SOCKETS_PER_AGENT", D.maxSocketsPerAgent, 1, 1000),
    dedupeWindow: int("DEDUPE_WINDOW", D.dedupeWindow, 0, 100_000_000),
    logLevel: read(() => readLogLevel(env), D.logLevel),
    store,
    dataDir: dataDirOf(env),
    mediaDir: env.MEDIA_DIR?.trim() || undefined,
    databaseUrl,
    databasePoolSize: int("DATABASE_POOL_SIZE", D.databasePoolSize, 1, 1000),
    redisUrl: read(
      () => readServiceUrl(env.REDIS_URL, "REDIS_URL", ["redis:", "rediss:"], "redis://127.0.0.1:6379/0"),
      undefined,
    ),
    nodeId: read(() => readNodeId(env.NODE_ID), D.nodeId),
    groupCommitMs: int("GROUP_COMMIT_MS", D.groupCommitMs, 0, 1000),
    storeSync: read(
      () => readChoice(env.STORE_SYNC, "STORE_SYNC", ["NORMAL", "FULL"] as const, D.storeSync, true),
      D.storeSync,
    ),
    retentionDays: int("RETENTION_DAYS", D.retentionDays, 1, 36500),
    redeliverPage: int("REDELIVER_PAGE", D.redeliverPage, 1, 1_000_000),
    maxBufferedBytes: int("MAX_BUFFERED_BYTES", D.maxBufferedBytes, 64 * 1024, 1 << 30),
    reassignAfterSeconds: int("REASSIGN_AFTER_SECONDS", D.reassignAfterSeconds, 0, 86400 * 365),
    agentCapacity: int("AGENT_CAPACITY", D.agentCapacity, 0, 100_000),
    capacities: Object.fromEntries(file.agents.flatMap((a) => a.capacity === undefined ? [] : [[a.id, a.capacity]])),
    assignPolicy: read(
      () => readChoice(env.ASSIGN_POLICY, "ASSIGN_POLICY", ["fewest", "round_robin"] as const, D.assignPolicy, true),
      D.assignPolicy,
    ),
    pushReplyUrl: read(() => readUrl(env.PUSH_REPLY_URL, "PUSH_REPLY_URL"), undefined),
    pushToken: read(() => readSecret(env.PUSH_TOKEN, "PUSH_TOKEN"), undefined),
    pushOpen: read(() => readOpen(env.PUSH_OPEN, "PUSH_OPEN"), false),
    agentSecret: read(() => readSecret(env.AGENT_SECRET, "AGENT_SECRET"), undefined),
    authTokenSeconds: int("AUTH_TOKEN_SECONDS", D.authTokenSeconds, 60, 86400 * 365),
    authMaxSkewSeconds: int("AUTH_MAX_SKEW_SECONDS", D.authMaxSkewSeconds, 1, 86400),
    agents: file.agents,
    roles: file.roles ?? {},
    ffmpegPath: env.FFMPEG_PATH?.trim() || D.ffmpegPath,
    mediaTimeoutSeconds: int("MEDIA_TIMEOUT_SECONDS", D.mediaTimeoutSeconds, 1, 3600),
    mediaMaxBytes: int("MEDIA_MAX_BYTES", D.mediaMaxBytes, 1024, 1 << 30),
    mediaAllowedHosts: env.MEDIA_ALLOWED_HOSTS === undefined
      ? D.mediaAllowedHosts
      : env.MEDIA_ALLOWED_HOSTS.split(",").map((h) => h.trim()).filter((h) => h !== ""),
    publicUrl: read(() => readUrl(env.PUBLIC_URL, "PUBLIC_URL"), undefined)?.replace(/\/+$/, ""),
    mediaUrlSeconds: int("MEDIA_URL_SECONDS", D.mediaUrlSeconds, 10, 86400 * 30),
    metricsToken: read(() => readSecret(env.METRICS_TOKEN, "METRICS_TOKEN"), undefined),
    channelSources: { env, file: file.sections },
  };
  return { config, problems };
}

/** NODE_ID: 1–64 letters, digits and `_.:-`; the default when unset or blank. */
export function readNodeId(value: string | undefined): string {
  const v = value?.trim();
  if (v === undefined || v === "") return DEFAULTS.nodeId;
  if (!/^[\w.:-]{1,64}$/.test(v)) {
    throw new ConfigError(`cannot read NODE_ID=${JSON.stringify(value)}: expected 1–64 letters, digits, _ . : or -`);
  }
  return v;
}

/** A door left open on purpose (`PUSH_OPEN`, `HOOK_OPEN`): 1/on/true, or 0/off/false (the default when unset). */
export function readOpen(value: string | undefined, where: string): boolean {
  const v = readChoice(value, where, ["1", "0", "on", "off", "true", "false"] as const, "0", true).toLowerCase();
  return v === "1" || v === "on" || v === "true";
}

/** A secret of at least 16 characters, or undefined when unset or blank; the error never quotes it. */
export function readSecret(value: string | undefined, where: string): string | undefined {
  const v = value?.trim();
  if (v === undefined || v === "") return undefined;
  if (v.length < 16) {
    throw new ConfigError(`cannot read ${where}: a secret of at least 16 characters is required (got ${v.length})`);
  }
  return v;
}

/** DATA_DIR, `./data` when unset or blank. */
export function dataDirOf(env: Record<string, string | undefined>): string {
  return env.DATA_DIR?.trim() || DEFAULTS.dataDir;
}

/**
 * One of `values` (`fallback` when unset or blank), exactly or, with `ignoreCase`, in any case; throws
 * `ConfigError` naming `where` (the variable, or the place in CONFIG_FILE).
 */
export function readChoice<T extends string>(
  value: string | undefined,
  where: string,
  values: readonly T[],
  fallback: T,
  ignoreCase = false,
): T {
  const raw = value?.trim();
  if (raw === undefined || raw === "") return fallback;
  const v = values.find((x) => ignoreCase ? x.toLowerCase() === raw.toLowerCase() : x === raw);
  if (v === undefined) {
    throw new ConfigError(`cannot read ${where}=${JSON.stringify(value)}: expected ${values.join(" or ")}`);
  }
  return v;
}

/** The keys CONFIG_FILE knows at its top level; any other key is refused. */
export const FILE_KEYS = ["accounts", "agents", "pc_hook", "wxbot", "automatic"] as const;
/** The keys CONFIG_FILE knows in each agent; any other key is refused. */
export const AGENT_KEYS = ["id", "name", "password_hash", "capacity", "role"] as const;
/** Whether `v` is a plain object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Refuse the first key of `obj` that is not in `known`, naming it and the nearest known key. */
export function refuseUnknownKeys(obj: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key)) continue;
    const near = nearestKey(key, known);
    const hint = near === undefined ? `known keys: ${known.join(", ")}` : `did you mean ${near}?`;
    throw new ConfigError(`cannot read ${where}: unknown key ${JSON.stringify(key)} (${hint})`);
  }
}

/**
 * The known key an unknown one most likely meant, or undefined when none is close. Keys are compared without case,
 * `_` and `-` (`app_secret`, `appSecret` → `appsecret`); a key contained in a known one counts as one edit
 * (`aes_key` → `encoding_aes_key`).
 */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  const squash = (s: string) => s.toLowerCase().replace(/[_-]/g, "");
  const k = squash(key);
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(k.length / 3)) + 1;
  for (const candidate of known) {
    const c = squash(candidate);
    let d = editDistance(k, c);
    if (k.length >= 3 && (c.includes(k) || k.includes(c))) d = Math.min(d, 1);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/** Levenshtein distance: the fewest insertions, deletions and substitutions that turn `a` into `b`. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

function readConfigFile(
  path: string,
  readFile: (path: string) => string,
): ConfigFile {
  const file = `CONFIG_FILE=${JSON.stringify(path)}`;
  let doc: unknown;
  try {
    doc = JSON.parse(readFile(path));
  } catch (e) {
    throw new ConfigError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (isObject(doc)) refuseUnknownKeys(doc, FILE_KEYS, file);
  const accounts = isObject(doc) ? doc.accounts ?? [] : undefined;
  const agents = isObject(doc) ? doc.agents ?? [] : undefined;
  if (!Array.isArray(accounts) || !Array.isArray(agents)) {
    throw new ConfigError(
      `cannot read ${file}: expected {"accounts":[{…}],"agents":[{…}],"pc_hook":{…},"wxbot":{…}} (any may be left out)`,
    );
  }
  const sections: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (key !== "agents") sections[key] = value;
  }
  return { agents: agentsFromFile(agents), roles: rolesFromFile(agents), sections };
}

/** What CONFIG_FILE holds; the channels' sections are read by their own parsers. */
interface ConfigFile {
  agents: (AgentAccount & { capacity?: number })[];
  /** Roles other than `agent`, by agent id. */
  roles?: Record<string, Role>;
  /** The sections of the channels (`accounts`, `pc_hook`, `wxbot`), as parsed. */
  sections: Record<string, unknown>;
}

// Each agent's `role` (default `agent`); the list's shape was checked by agentsFromFile.
function rolesFromFile(list: unknown[]): Record<string, Role> {
  const roles: Record<string, Role> = {};
  list.forEach((a, i) => {
    const { id, role } = a as Record<string, unknown>;
    if (role === undefined || role === "agent") return;
    if (!isRole(role)) {
      throw new ConfigError(
        `cannot read CONFIG_FILE agents[${i}].role=${JSON.stringify(role)}: expected ${ROLES.join(", ")} ` +
          "(default agent)",
      );
    }
    roles[String(id).trim()] = role;
  });
  return roles;
}

function agentsFromFile(list: unknown[]): (AgentAccount & { capacity?: number })[] {
  const seen = new Set<string>();
  return list.map((a, i) => {
    const where = `CONFIG_FILE agents[${i}]`;
    if (!isObject(a)) throw new ConfigError(`cannot read ${where}: expected {"id","name","password_hash"}`);
    refuseUnknownKeys(a, AGENT_KEYS, where);
    const { id, name, password_hash: hash } = a;
    if (typeof id !== "string" || id.trim() === "" || typeof hash !== "string") {
      throw new ConfigError(`cannot read ${where}: id and password_hash (from kefu hash-password) are required`);
    }
    if (!isPasswordHash(hash)) {
      throw new ConfigError(`cannot read ${where}.password_hash: not a hash from kefu hash-password`);
    }
    if (name !== undefined && typeof name !== "string") {
      throw new ConfigError(`cannot read ${where}.name: expected a string`);
    }
    if (seen.has(id.trim())) throw new ConfigError(`cannot read ${where}: agent ${JSON.stringify(id)} is listed twice`);
    // kefu's own messages (issue 22: welcome, closed reply…) are kept as agent "kefu": no person may be it.
    if (id.trim() === "kefu") {
      throw new ConfigError(`cannot read ${where}: the id "kefu" is kefu's own; choose another`);
    }
    seen.add(id.trim());
    const { capacity } = a;
    if (capacity !== undefined && (!Number.isSafeInteger(capacity) || (capacity as number) < 0)) {
      throw new ConfigError(
        `cannot read ${where}.capacity=${JSON.stringify(capacity)}: expected a whole number of open conversations ` +
          "(0: no limit)",
      );
    }
    const account = { id: id.trim(), name: name?.trim() || id.trim(), passwordHash: hash };
    return capacity === undefined ? account : { ...account, capacity: capacity as number };
  });
}

/** An http(s) URL, or undefined when unset or blank; throws `ConfigError` naming `where`. */
export function readUrl(value: string | undefined, where: string): string | undefined {
  const v = value?.trim();
  if (v === undefined || v === "") return undefined;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError(`cannot read ${where}=${JSON.stringify(value)}: expected an http:// or https:// URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`cannot read ${where}=${JSON.stringify(value)}: expected an http:// or https:// URL`);
  }
  return url.href;
}
