/**
 * What kefu starts with but an operator should hear about: a variable whose name is close to one kefu reads
 * (`AGENT_SECRETS`, `WECHAT_APP_ID`: ignored, so the setting they meant is off), and settings that do less than
 * they seem to (`AGENT_SECRET` with no agent to sign in).
 *
 * @module
 */

import type { Config } from "./config.ts";
import { editDistance } from "./config.ts";

/** One warning: an event name for the log and a sentence for the operator. */
export interface ConfigWarning {
  event: string;
  detail: string;
  /** The variable it is about. */
  variable?: string;
  /** The known variable a near miss most likely meant. */
  did_you_mean?: string;
}

/**
 * The variables of `env` that kefu does not read but whose name is close to one it does (`known`): one edit or
 * two on a longer name, any case, `_` ignored. Only names that look like kefu's are compared — those sharing the
 * first word of a known one (`AGENT_`, `WECHAT_`, `HOOK_`, …) or differing from one in case alone — so the rest of
 * the environment (PATH, HOME, HOSTNAME, …) stays quiet.
 */
export function nearMisses(env: Record<string, string | undefined>, known: readonly string[]): ConfigWarning[] {
  const knownSet = new Set(known);
  const prefixes = new Set(known.filter((k) => k.includes("_")).map((k) => k.slice(0, k.indexOf("_") + 1)));
  const squash = (s: string) => s.toUpperCase().replace(/_/g, "");
  const out: ConfigWarning[] = [];
  for (const name of Object.keys(env).sort()) {
    if (knownSet.has(name)) continue;
    const upper = name.toUpperCase();
    const kefuLike = knownSet.has(upper) || [...prefixes].some((p) => upper.startsWith(p));
    if (!kefuLike) continue;
    let best: string | undefined;
    let bestDistance = Infinity;
    for (const k of known) {
      const d = Math.min(editDistance(upper, k), editDistance(squash(name), squash(k)));
      if (d < bestDistance) [best, bestDistance] = [k, d];
    }
    const limit = squash(name).length >= 10 ? 2 : 1;
    if (best === undefined || bestDistance > limit) continue;
    out.push({
      event: "config_unknown_variable",
      variable: name,
      did_you_mean: best,
      detail: `${name} is not a variable kefu reads (ignored): did you mean ${best}?`,
    });
  }
  return out;
}

/** Every warning about a configuration that starts: near misses of `known` and settings that do less than they seem. */
export function configWarnings(
  env: Record<string, string | undefined>,
  config: Pick<Config, "agentSecret" | "agents">,
  known: readonly string[],
): ConfigWarning[] {
  const warnings = nearMisses(env, known);
  if (config.agentSecret !== undefined && config.agents.length === 0) {
    warnings.push({
      event: "auth_no_agents",
      variable: "AGENT_SECRET",
      detail: "AGENT_SECRET is set but CONFIG_FILE lists no agents: nobody can sign in on the agent page with a " +
        "password (only signed token requests work); add agents with kefu hash-password",
    });
  }
  return warnings;
}
