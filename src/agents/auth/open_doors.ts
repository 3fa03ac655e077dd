/**
 * The doors anyone who reaches kefu could walk through: sign-in off, pushes without `PUSH_TOKEN`, the PC hook's
 * callback socket without `HOOK_CALLBACK_TOKEN`. With sign-in on, the last two are closed unless a setting opens
 * them on purpose (`PUSH_OPEN=1`, `HOOK_OPEN=1`); whatever is open is said in the start log, one warning each.
 *
 * @module
 */

import { ConfigError } from "../../config/config.ts";

/** What decides the doors. */
export interface DoorSettings {
  agentSecret?: string;
  pushToken?: string;
  pushOpen: boolean;
  /** The PC-hook channel, when on. */
  pcHook?: { callbackToken?: string; open?: boolean };
}

/** A warning for the start log. */
export interface OpenDoor {
  event: "auth_off" | "push_open" | "hook_open";
  detail: string;
}

/** Whether pushes are taken without a token: sign-in off, or PUSH_OPEN=1 (a PUSH_TOKEN, when set, always applies). */
export function pushesOpen(s: DoorSettings): boolean {
  return s.pushToken === undefined && (s.agentSecret === undefined || s.pushOpen);
}

/**
 * Refuse to start with sign-in on and a PC hook whose callback socket would take anyone (no HOOK_CALLBACK_TOKEN and
 * no HOOK_OPEN=1): anyone could then write as any wxid.
 */
export function checkDoors(s: DoorSettings): void {
  if (s.agentSecret !== undefined && s.pcHook && s.pcHook.callbackToken === undefined && !s.pcHook.open) {
    throw new ConfigError(
      "cannot leave the PC hook's callback socket open with sign-in on (AGENT_SECRET): set HOOK_CALLBACK_TOKEN " +
        "(the hook dials the URL kefu registers, which carries it), or HOOK_OPEN=1 to take any caller on purpose",
    );
  }
}

/** One warning per open door, for the start log. */
export function openDoors(s: DoorSettings): OpenDoor[] {
  const doors: OpenDoor[] = [];
  if (s.agentSecret === undefined) {
    doors.push({
      event: "auth_off",
      detail:
        "AGENT_SECRET is not set: anyone who reaches kefu can act as any agent with ?userid=; set it to sign agents in",
    });
  }
  if (pushesOpen(s)) {
    doors.push({
      event: "push_open",
      detail: `pushes (POST /send, …/send, …/send_xml) take no token${
        s.agentSecret === undefined ? "" : " (PUSH_OPEN=1)"
      }: anyone who reaches kefu can write as any user; set PUSH_TOKEN`,
    });
  }
  if (s.pcHook && s.pcHook.callbackToken === undefined) {
    doors.push({
      event: "hook_open",
      detail: `the PC hook's callback socket takes any caller${
        s.agentSecret === undefined ? "" : " (HOOK_OPEN=1)"
      }: anyone who reaches kefu can write as any wxid; set HOOK_CALLBACK_TOKEN`,
    });
  }
  return doors;
}
