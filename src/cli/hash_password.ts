/**
 * `kefu hash-password`: a password in, its scrypt hash out, for CONFIG_FILE's `agents`. At a terminal it prompts
 * twice without echo; otherwise it reads standard input (`printf '%s' 'the password' | kefu hash-password`).
 *
 * @module
 */

import { hashPassword } from "../agents/auth/passwords.ts";

/** Why no password was read: nothing given, the two differ, or Ctrl-C. */
export class PasswordInputError extends Error {}

/** Read one line from a terminal in raw mode, echoing nothing; `prompt` goes to standard error. */
export async function promptHidden(prompt: string): Promise<string> {
  const encoder = new TextEncoder();
  // Echo off before the prompt shows: what is typed as soon as it shows is never echoed.
  Deno.stdin.setRaw(true);
  await Deno.stderr.write(encoder.encode(prompt));
  const bytes: number[] = [];
  const buf = new Uint8Array(64);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      let done = false;
      for (const b of buf.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) {
          done = true;
          break;
        }
        if (b === 0x03) throw new PasswordInputError("interrupted");
        if (b === 0x04) {
          done = true;
          break;
        }
        if (b === 0x7f || b === 0x08) {
          // One character back: drop a whole UTF-8 sequence.
          while (bytes.length > 0 && (bytes.pop()! & 0xc0) === 0x80) { /* continuation byte */ }
          continue;
        }
        bytes.push(b);
      }
      if (done) break;
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(encoder.encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

/** The password: prompted twice at a terminal, else standard input without its trailing newline. */
export async function readPassword(): Promise<string> {
  if (Deno.stdin.isTerminal()) {
    const password = await promptHidden("Password (not shown): ");
    if (password === "") throw new PasswordInputError("no password typed");
    const again = await promptHidden("Again: ");
    if (again !== password) throw new PasswordInputError("the two passwords differ; nothing was hashed");
    return password;
  }
  return (await new Response(Deno.stdin.readable).text()).replace(/\r?\n$/, "");
}

/** `kefu hash-password`: prints the hash; exit code 2 (with a `kefu: …` line) when no password was given. */
export async function hashPasswordCommand(): Promise<number> {
  let password: string;
  try {
    password = await readPassword();
  } catch (e) {
    if (!(e instanceof PasswordInputError)) throw e;
    console.error(`kefu: hash-password: ${e.message}`);
    return 2;
  }
  if (password === "") {
    console.error(
      "kefu: hash-password reads the password on standard input: printf '%s' 'the password' | kefu hash-password",
    );
    return 2;
  }
  console.log(await hashPassword(password));
  return 0;
}
