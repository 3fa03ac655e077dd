/**
 * `kefu --help`: every command and every variable, grouped as docs/configuration.md groups them.
 *
 * @module
 */

import { VERSION } from "../version.ts";
import { VARIABLE_GROUPS } from "./variables.ts";

/** The commands, as `--help` lists them. */
export const COMMANDS: readonly { usage: string; about: string }[] = [
  { usage: "serve", about: "serve the gateway (the default): webhooks, agent sockets, the agent page" },
  { usage: "simulate", about: "serve the other ends for a local run: WeChat, a PC hook, a WXBot platform" },
  {
    usage: "check-config",
    about: "read the environment and CONFIG_FILE, report every problem, reach the store (and Redis); exit 0 or 2",
  },
  {
    usage: "backup FILE",
    about: "copy the SQLite store to FILE while kefu runs (for PostgreSQL it prints the pg_dump way)",
  },
  { usage: "hash-password", about: "read a password (not echoed at a terminal), print its hash for CONFIG_FILE" },
  { usage: "help, --help, -h", about: "this text" },
  { usage: "version, --version, -V", about: "print the version" },
];

/** The help text. */
export function helpText(): string {
  const lines = [
    `kefu ${VERSION}: a WeChat customer-service gateway (Official Accounts, PC hook, WXBot) for agents' WebSockets`,
    "",
    "Usage: kefu [command]      (deno task start | check-config | backup FILE | hash-password | simulate)",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.usage.padEnd(24)} ${c.about}`),
    "",
    "Environment variables (docs/configuration.md; CONFIG_FILE holds several accounts, the agents, hooks):",
  ];
  for (const group of VARIABLE_GROUPS) {
    lines.push("", `${group.title}:`);
    for (const v of group.variables) {
      const fallback = v.default === "" ? "" : `[${v.default}]`;
      lines.push(`  ${v.name.padEnd(26)} ${v.about}${fallback === "" ? "" : ` ${fallback}`}`);
    }
  }
  lines.push(
    "",
    "Exit codes: 0 done; 2 refused for something the operator sets (a variable, CONFIG_FILE, DATA_DIR, a",
    "permission, the address, a command), with one `kefu: …` line naming it; 1 anything else.",
    "Docs: README.md, docs/operations.md (deployment, metrics, backup), docs/configuration.md.",
  );
  return lines.join("\n");
}
