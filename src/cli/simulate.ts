/**
 * `kefu simulate`: the other ends, for local runs — WeChat (API and phone page) when WECHAT_TOKEN is set, a PC hook
 * when SIM_HOOK=1 (or SIM_HOOK_PORT), a WXBot platform when WXBOT_KEY is set; at least one.
 *
 * Loaded by `cli.ts` with a dynamic `import()` only when `simulate` runs, so the simulator is not in the service's
 * module graph (`deno info main.ts`); `deno task compile` names it with `--include`.
 *
 * @module
 */

import { ConfigError } from "../config/config.ts";
import { createLogger } from "../core/log.ts";
import { parseSimulatorConfig, startSimulator } from "../simulator/simulator.ts";
import { parsePcHookSimConfig, servePcHookSimulator } from "../simulator/pc_hook.ts";
import { parseWxbotSimConfig, startWxbotSim } from "../simulator/wxbot.ts";
import type { Listen } from "./refusal.ts";

/** The simulators asked for by `env`, started; `listening` is told each address before it is taken. */
export function simulate(
  env: Record<string, string | undefined>,
  listening: (l: Listen) => void,
): { shutdown(): Promise<void> } {
  const running: { shutdown(): Promise<void> }[] = [];
  const staticDir = `${import.meta.dirname}/../../static`;
  if (env.WECHAT_TOKEN?.trim()) {
    const sim = parseSimulatorConfig(env);
    listening({ host: sim.host, port: sim.port, vars: "SIM_HOST, SIM_PORT" });
    running.push(startSimulator(sim, createLogger({ level: sim.logLevel }), staticDir));
  }
  if (/^(1|on|true)$/i.test(env.SIM_HOOK?.trim() ?? "") || env.SIM_HOOK_PORT?.trim()) {
    const hook = parsePcHookSimConfig(env);
    listening({ host: hook.host, port: hook.port, vars: "SIM_HOOK_HOST, SIM_HOOK_PORT" });
    running.push(servePcHookSimulator(hook, createLogger({ level: hook.logLevel })));
  }
  const wx = parseWxbotSimConfig(env);
  if (wx !== undefined) {
    listening({ host: wx.host, port: wx.port, vars: "SIM_HOST, SIM_WXBOT_PORT" });
    running.push(startWxbotSim(wx, createLogger({ level: wx.logLevel })));
  }
  if (running.length === 0) {
    throw new ConfigError(
      "nothing to simulate: set WECHAT_TOKEN (WeChat), SIM_HOOK=1 (a PC hook) or WXBOT_KEY and WXBOT_TOKEN (WXBot)",
    );
  }
  return { shutdown: () => Promise.all(running.map((r) => r.shutdown())).then(() => undefined) };
}
