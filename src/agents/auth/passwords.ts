/**
 * Agents' passwords for the agent page: scrypt from `node:crypto` (a memory-hard
 * KDF), stored as `scrypt$N$r$p$salt$hash` (base64url), compared in constant time.
 * `kefu hash-password` prints a hash for `CONFIG_FILE`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** An agent who signs in on the agent page (`CONFIG_FILE` `agents`). */
export interface AgentAccount {
  id: string;
  /** Shown in the page's header; the id when not given. */
  name: string;
  /** From `kefu hash-password`. */
  passwordHash: string;
}

// N=2^15, r=8, p=1: 32 MiB and some tens of ms per hash, a login now and then, not a request each.
const N = 1 << 15;
const R = 8;
const P = 1;
const KEY_LENGTH = 32;
const MAX_MEM = 256 * N * R;

function derive(password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(
      password,
      salt,
      KEY_LENGTH,
      { N: n, r, p, maxmem: Math.max(MAX_MEM, 256 * n * r) },
      (e, key) => e ? reject(e) : resolve(key),
    )
  );
}

/** A new hash of `password`, in the form `CONFIG_FILE` takes. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, N, R, P);
  return `scrypt$${N}$${R}$${P}$${salt.toString("base64url")}$${key.toString("base64url")}`;
}

/** Whether a stored hash is well-formed (checked at start, so a typo stops kefu rather than every login). */
export function isPasswordHash(hash: string): boolean {
  return /^scrypt\$\d{1,8}\$\d{1,3}\$\d{1,3}\$[A-Za-z0-9_-]{16,}\$[A-Za-z0-9_-]{40,}$/.test(hash);
}

// A hash to spend the same time on when the agent does not exist.
const DUMMY = `scrypt$${N}$${R}$${P}$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`;

/** Whether `password` matches `hash`; false (after the same work) when there is no hash. */
export async function verifyPassword(password: string, hash: string | undefined): Promise<boolean> {
  const [kind, n, r, p, salt, key] = (hash ?? DUMMY).split("$");
  if (kind !== "scrypt" || key === undefined) return false;
  const expected = Buffer.from(key, "base64url");
  const got = await derive(password, Buffer.from(salt, "base64url"), Number(n), Number(r), Number(p));
  return hash !== undefined && got.length === expected.length && timingSafeEqual(got, expected);
}
