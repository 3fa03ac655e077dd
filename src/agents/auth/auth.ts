/**
 * Agent sign-in: seed 003's signed token request and the tokens kefu issues.
 *
 * The seed writes the request's sign as `MD5(用户标识) + MD5(时间戳) + MD5(系统签名秘钥)` and shows a 32-hex-digit
 * value, so it is read as `md5(md5(uid) + md5(timestamp) + md5(secret))`, each MD5 in lower-case hex.
 *
 * Tokens are signed: `v1.<payload>.<mac>`, the payload `{"a":agent,"e":expiry,"i":id,"t":issued ms}` in base64url
 * and the MAC an HMAC-SHA-256 of `v1.<payload>` under a key derived from `AGENT_SECRET`. Any kefu process with the
 * same secret checks them, and they survive restarts. A token is refused before it expires when it was revoked (a
 * sign-out revokes its own; an administrator revokes all of an agent's), kept by the store so that a restart does not
 * forget it, or when its agent is no longer configured (CONFIG_FILE `agents`, when any are). Changing `AGENT_SECRET`
 * still revokes them all. Among several nodes a revocation is told to the others ({@link AuthOptions.onRevoked}),
 * which read the store's again ({@link Auth.load}): it takes effect everywhere at once, sockets included.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { KefuError, quote } from "../../core/errors.ts";
import { MAX_ID_LENGTH } from "../../core/message.ts";
import type { Revocation } from "../../store/store.ts";
import { type AgentAccount, verifyPassword } from "./passwords.ts";
import { Gate } from "./throttle.ts";

/** Options for {@link Auth}. */
export interface AuthOptions {
  /** `AGENT_SECRET`: signs tokens and the seed 003 request; never logged or quoted. */
  secret: string;
  /** Life of a token in seconds (`AUTH_TOKEN_SECONDS`, 86400). */
  tokenSeconds: number;
  /** A token request whose timestamp is further from now is refused (`AUTH_MAX_SKEW_SECONDS`, 300). */
  maxSkewSeconds: number;
  /** Agents who sign in with a password on the agent page (`CONFIG_FILE` `agents`). */
  agents?: readonly AgentAccount[];
  /** Clock in epoch seconds (tests move it). */
  now?: () => number;
  /** Where revocations are kept (the store); without it they last until the process ends. */
  revocations?: RevocationStore;
  /** How many password checks (scrypt, 32 MiB each) run at once; default 2, with 8 more waiting. */
  maxConcurrentChecks?: number;
  /** Called once a revocation made here is kept by the store (several nodes: to tell the others). */
  onRevoked?: (r: Revocation) => void;
}

/** The store's side of revocation (`Store.revoke`, `Store.revocations`). */
export interface RevocationStore {
  revoke(r: Revocation): Promise<void>;
  revocations(): Promise<Revocation[]>;
}

/** What a valid token says. */
export interface TokenClaims {
  agent: string;
  /** Epoch seconds. */
  expiresAt: number;
  /** The token's own id ("" for a token issued before tokens had one). */
  tokenId: string;
  /** Epoch ms it was issued at. */
  issuedAt: number;
}

/** A token and its life, as seed 003 answers them. */
export interface IssuedToken {
  token: string;
  /** Seconds it is valid for. */
  expire: number;
  /** Epoch seconds it expires at. */
  expiresAt: number;
  /** The token's id (what a sign-out revokes). */
  tokenId: string;
}

/** Why a sign-in was refused, with seed 003's non-zero `code`. */
export class AuthError extends KefuError {
  constructor(readonly code: number, message: string, status = 401) {
    super(status === 400 ? "missing_field" : "auth_failed", message, status);
  }
}

/** Seed 003 answer codes of the token request (kefu's numbering; the seed has 0 for success only). */
export const AuthCode = {
  ok: 0,
  /** uid, timestamp or sign missing or malformed. */
  badRequest: 40001,
  /** The timestamp is further than AUTH_MAX_SKEW_SECONDS from the server's clock. */
  staleTimestamp: 40002,
  /** The sign does not match (wrong secret, or a parameter changed). */
  wrongSign: 40003,
  /** Wrong agent id or password on the login form. */
  wrongPassword: 40004,
  /** Too many failed sign-ins (or too many at once): wait `retry_after` seconds (HTTP 429 with Retry-After). */
  throttled: 40006,
  /** The token request's uid is not one of the agents of CONFIG_FILE. */
  unknownAgent: 40007,
  /** The token was revoked, or its agent is no longer configured. */
  revoked: 40008,
} as const;

function md5(s: string): string {
  return createHash("md5").update(s).digest("hex");
}

/** Seed 003's sign of a token request: `md5(md5(uid) + md5(timestamp) + md5(secret))`, lower-case hex. */
export function seedSign(uid: string, timestamp: string, secret: string): string {
  return md5(md5(uid) + md5(timestamp) + md5(secret));
}

function sameText(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const TOKEN_RE = /^v1\.([A-Za-z0-9_-]{1,400})\.([A-Za-z0-9_-]{43})$/;
// deno-lint-ignore no-control-regex
const UID_RE = /^[^\x00-\x1f\x7f]+$/;

/** Issues and checks agents' tokens. */
export class Auth {
  readonly #key: Uint8Array;
  readonly #secret: string;
  readonly #tokenSeconds: number;
  readonly #maxSkew: number;
  readonly #agents: Map<string, AgentAccount>;
  readonly #now: () => number;
  readonly #store: RevocationStore | undefined;
  // Revoked token ids (with when they expire, epoch ms) and, per agent, the latest "all tokens issued up to".
  readonly #revokedTokens = new Map<string, number>();
  readonly #revokedAgents = new Map<string, number>();
  readonly #watchers = new Set<{ claims: TokenClaims; close: (reason: string) => void }>();
  readonly #checks: Gate;
  readonly #onRevoked: (r: Revocation) => void;

  constructor(options: AuthOptions) {
    this.#secret = options.secret;
    // Its own key: a token's MAC is never the same computation as the seed's sign.
    this.#key = createHash("sha256").update("kefu agent token v1\u0000").update(options.secret).digest();
    this.#tokenSeconds = options.tokenSeconds;
    this.#maxSkew = options.maxSkewSeconds;
    this.#agents = new Map((options.agents ?? []).map((a) => [a.id, a]));
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#store = options.revocations;
    const running = options.maxConcurrentChecks ?? 2;
    this.#checks = new Gate({ running, waiting: running * 4 });
    this.#onRevoked = options.onRevoked ?? (() => {});
  }

  /** Whether CONFIG_FILE lists agents: then only they get and keep tokens. */
  get agentsConfigured(): boolean {
    return this.#agents.size > 0;
  }

  /**
   * Read the revocations kept by the store: at start, and when another node made one. Sockets opened with a token
   * revoked meanwhile are closed (4401).
   */
  async load(): Promise<void> {
    if (this.#store === undefined) return;
    for (const r of await this.#store.revocations()) this.#remember(r);
    this.#closeRevoked("token_revoked: sign in again");
  }

  /**
   * Revoke one token (`tokenId`) or every token of `agent` issued until now, for good: kept by the store, and every
   * socket opened with such a token is closed (4401). Resolves once the store has it.
   */
  async revoke(agent: string, tokenId?: string, expiresAt?: number): Promise<void> {
    const at = Date.now();
    const until = tokenId !== undefined && expiresAt !== undefined ? expiresAt * 1000 : at + this.#tokenSeconds * 1000;
    const r: Revocation = { agent, ...(tokenId ? { tokenId } : {}), at, until };
    this.#remember(r);
    this.#closeRevoked(tokenId ? "token_revoked: signed out; sign in again" : "token_revoked: sign in again");
    await this.#store?.revoke(r);
    this.#onRevoked(r);
  }

  #closeRevoked(reason: string): void {
    for (const w of [...this.#watchers]) {
      if (this.#revoked(w.claims)) {
        this.#watchers.delete(w);
        w.close(reason);
      }
    }
  }

  /** Call `close` (once) when the token of `claims` is revoked; answers a function that stops watching. */
  watch(claims: TokenClaims, close: (reason: string) => void): () => void {
    const w = { claims, close };
    this.#watchers.add(w);
    return () => this.#watchers.delete(w);
  }

  /** Whether `given` is AGENT_SECRET itself (what authorises an administrator's revocation), in constant time. */
  isSecret(given: string): boolean {
    return sameText(given, this.#secret);
  }

  #remember(r: Revocation): void {
    if (r.tokenId) this.#revokedTokens.set(r.tokenId, r.until);
    else this.#revokedAgents.set(r.agent, Math.max(r.at, this.#revokedAgents.get(r.agent) ?? 0));
  }

  #revoked(c: TokenClaims): boolean {
    if (c.tokenId !== "" && this.#revokedTokens.has(c.tokenId)) return true;
    return c.issuedAt <= (this.#revokedAgents.get(c.agent) ?? -Infinity);
  }

  /** The agent listed in CONFIG_FILE with this id, if any (its display name). */
  agent(id: string): AgentAccount | undefined {
    return this.#agents.get(id);
  }

  /** Seed 003's token request: check the sign and the timestamp, then issue a token for `uid`. */
  request(uid: string | undefined, timestamp: string | undefined, sign: string | undefined): IssuedToken {
    const id = uid?.trim() ?? "";
    if (id === "" || id.length > MAX_ID_LENGTH || !UID_RE.test(id)) {
      throw new AuthError(
        AuthCode.badRequest,
        `uid is required: the agent's id, 1–${MAX_ID_LENGTH} characters without control characters`,
        400,
      );
    }
    if (timestamp === undefined || !/^\d{1,15}$/.test(timestamp)) {
      throw new AuthError(AuthCode.badRequest, `timestamp must be epoch seconds, got ${quote(timestamp ?? "")}`, 400);
    }
    if (sign === undefined || !/^[0-9a-fA-F]{32}$/.test(sign)) {
      throw new AuthError(
        AuthCode.badRequest,
        "sign must be 32 hex digits: md5(md5(uid) + md5(timestamp) + md5(secret))",
        400,
      );
    }
    const skew = Math.abs(this.#now() - Number(timestamp));
    if (skew > this.#maxSkew) {
      throw new AuthError(
        AuthCode.staleTimestamp,
        `timestamp ${timestamp} is ${skew} s from the server's clock (at most ${this.#maxSkew} s): sign a fresh one`,
      );
    }
    if (!sameText(sign.toLowerCase(), seedSign(id, timestamp, this.#secret))) {
      throw new AuthError(
        AuthCode.wrongSign,
        "sign does not match: md5(md5(uid) + md5(timestamp) + md5(secret)) in lower-case hex, with the server's secret",
      );
    }
    // After the sign: only a holder of the secret learns which agents are configured.
    if (this.agentsConfigured && !this.#agents.has(id)) {
      throw new AuthError(
        AuthCode.unknownAgent,
        `uid ${quote(id)} is not an agent of this kefu (CONFIG_FILE agents): no token is issued for it`,
        403,
      );
    }
    return this.issue(id);
  }

  /** The agent page's login: an agent of CONFIG_FILE and its password; issues a token. */
  async login(id: string, password: string): Promise<IssuedToken> {
    const agent = this.#agents.get(id);
    // The same answer, and about the same time, whether the id or the password was wrong. A few checks at a time:
    // a flood of logins waits or is turned away (429) instead of running a scrypt each.
    const ok = await this.#checks.run(() => verifyPassword(password, agent?.passwordHash));
    if (agent === undefined || !ok) {
      throw new AuthError(AuthCode.wrongPassword, "wrong agent id or password");
    }
    return this.issue(id);
  }

  /** A token for `agent`, valid AUTH_TOKEN_SECONDS from now. */
  issue(agent: string): IssuedToken {
    const expiresAt = this.#now() + this.#tokenSeconds;
    const tokenId = randomBytes(12).toString("base64url");
    const claims = { a: agent, e: expiresAt, i: tokenId, t: Date.now() };
    const payload = Buffer.from(JSON.stringify(claims)).toString("base64url");
    const body = `v1.${payload}`;
    return { token: `${body}.${this.#mac(body)}`, expire: this.#tokenSeconds, expiresAt, tokenId };
  }

  /**
   * What a token says; throws `KefuError` 401 saying whether it is malformed, forged, expired, revoked or of an agent
   * no longer configured. {@link signed} tells the first two (anyone can send them) from the rest (kefu issued it).
   */
  verify(token: string): TokenClaims {
    const claims = this.signed(token);
    if (this.#now() >= claims.expiresAt) {
      throw new KefuError(
        "token_expired",
        `the token expired at ${new Date(claims.expiresAt * 1000).toISOString()}: sign in again`,
        401,
      );
    }
    if (this.#revoked(claims)) {
      throw new KefuError(
        "token_revoked",
        "the token was revoked (signed out, or by an administrator): sign in again",
        401,
      );
    }
    if (this.agentsConfigured && !this.#agents.has(claims.agent)) {
      throw new KefuError(
        "token_revoked",
        `agent ${quote(claims.agent)} is no longer an agent of this kefu (CONFIG_FILE agents): its token is refused`,
        401,
      );
    }
    return claims;
  }

  /** The claims of a token kefu issued, expired or not; throws `invalid_token` (401) for anything else. */
  signed(token: string): TokenClaims {
    const m = TOKEN_RE.exec(token);
    if (m === null) {
      throw new KefuError("invalid_token", "the token is malformed: sign in again for a new one", 401);
    }
    if (!sameText(m[2], this.#mac(`v1.${m[1]}`))) {
      throw new KefuError(
        "invalid_token",
        "the token was not issued by this kefu (or AGENT_SECRET changed): sign in again",
        401,
      );
    }
    let claims: { a?: unknown; e?: unknown; i?: unknown; t?: unknown };
    try {
      claims = JSON.parse(Buffer.from(m[1], "base64url").toString("utf8"));
    } catch {
      throw new KefuError("invalid_token", "the token is malformed: sign in again for a new one", 401);
    }
    if (typeof claims.a !== "string" || typeof claims.e !== "number") {
      throw new KefuError("invalid_token", "the token is malformed: sign in again for a new one", 401);
    }
    return {
      agent: claims.a,
      expiresAt: claims.e,
      tokenId: typeof claims.i === "string" ? claims.i : "",
      // A token from before tokens carried it: as if issued a full life before it expires.
      issuedAt: typeof claims.t === "number" ? claims.t : (claims.e - this.#tokenSeconds) * 1000,
    };
  }

  /** A link to `path` anyone may open until `expiresAt` (epoch s): `?exp=…&sig=…`, MACed like a token. */
  signLink(path: string, expiresAt: number): string {
    return `${path}?exp=${expiresAt}&sig=${this.#mac(`link\u0000${path}\u0000${expiresAt}`)}`;
  }

  /** Whether `exp` and `sig` are a valid, unexpired link to `path`. */
  checkLink(path: string, exp: string | undefined, sig: string | undefined): boolean {
    if (exp === undefined || sig === undefined || !/^\d{1,12}$/.test(exp)) return false;
    if (this.#now() >= Number(exp)) return false;
    return sameText(sig, this.#mac(`link\u0000${path}\u0000${exp}`));
  }

  #mac(body: string): string {
    return createHmac("sha256", this.#key).update(body).digest("base64url");
  }
}
