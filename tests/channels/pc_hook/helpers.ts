/**
 * The real service with the PC-hook channel registered, against fake hooks
 * (`src/simulator/pc_hook.ts`) on real sockets.
 *
 * @module
 */

import { start } from "../../../main.ts";
import { parsePcHookConfig, type PcHookOptions } from "../../../src/channels/pc_hook/config.ts";
import { parseConfig } from "../../../src/config/config.ts";
import { type PcHookSimOptions, type PcHookSimulator, startPcHookSimulator } from "../../../src/simulator/pc_hook.ts";
import { freePort, type TestService } from "../../helpers.ts";

export { freePort };

/** A fake hook that is shut down with the test. */
export function fakeHook(options: PcHookSimOptions = {}): PcHookSimulator & AsyncDisposable {
  const sim = startPcHookSimulator({ reconnectMs: 50, ...options });
  return Object.assign(sim, { [Symbol.asyncDispose]: () => sim.shutdown() });
}

/** kefu with the channel, and the options it was given. */
export interface HookService extends TestService {
  options: PcHookOptions;
}

/** Short timings for tests: the API is checked every 200 ms, a failure retried after 50 ms. */
export const FAST: Partial<PcHookOptions> = { checkMs: 200, retryMinMs: 50, retryMaxMs: 400, timeoutMs: 2000 };

/**
 * Start kefu with one hook from the environment (`HOOK_API_URL` of `sim`) or, with `file`, CONFIG_FILE's
 * `pc_hook` section; `env` adds variables, `more` overrides options.
 */
export async function startWithHook(
  sim: PcHookSimulator | undefined,
  more: Partial<PcHookOptions> = {},
  env: Record<string, string> = {},
  file?: unknown,
): Promise<HookService> {
  const port = freePort();
  const all = {
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "silent",
    STORE: env.DATA_DIR ? "sqlite" : "memory",
    ...(sim ? { HOOK_API_URL: sim.apiUrl } : {}),
    ...env,
  };
  const parsed = parsePcHookConfig(all, file);
  if (parsed === undefined) throw new Error("the PC-hook channel is off: give a HOOK_API_URL or a pc_hook section");
  const options = { ...parsed, ...FAST, ...more };
  // main.ts registers the channel; the test's options (shorter waits) replace the ones it read.
  const svc = await start(parseConfig(all), { settings: { pcHook: options } });
  return {
    svc,
    options,
    port: svc.port,
    http: `http://127.0.0.1:${svc.port}`,
    ws: `ws://127.0.0.1:${svc.port}`,
    [Symbol.asyncDispose]: () => svc.shutdown(),
  };
}

/** Wait until `check` holds, polling every 10 ms; throws `what` after `ms`. */
export async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An agent's reply envelope (seed 004). */
export function reply(contact: string, content: string, id: string, type = "text", media = "") {
  const msg = type === "text" ? { content } : { media_path: media };
  const code = type === "text" ? 1001 : type === "image" ? 1002 : 1000;
  return { data: { id, msg_type: type, contact_id: contact, msg }, result: { code } };
}
