/**
 * kefu's command line: `kefu [serve]`, `simulate`, `check-config`, `backup FILE`, `hash-password`, `help`,
 * `version`. `main.ts` hands it the arguments and what it composes (`start`, `channelSettings`). Every refusal is
 * one `kefu: …` line on standard error and exit code 2 (1 for what the operator did not set), never a backtrace.
 *
 * @module
 */

import type { ChannelSettings, Service, StartOptions } from "../../main.ts";
import { type Config, parseConfig } from "../config/config.ts";
import { configWarnings } from "../config/warnings.ts";
import { createLogger } from "../core/log.ts";
import { describeAccounts } from "../channels/wx_official/config.ts";
import { VERSION } from "../version.ts";
import { backupStore } from "./backup.ts";
import { checkConfig, formatReport } from "./check_config.ts";
import { hashPasswordCommand } from "./hash_password.ts";
import { helpText } from "./help.ts";
import { EXIT_REFUSED, exitWith, type Listen, refusal } from "./refusal.ts";
import { KNOWN_VARIABLES } from "./variables.ts";

/** What the command line needs of the composition root. */
export interface CliDeps {
  start(config: Config, options?: StartOptions): Promise<Service>;
  channelSettings(config: Pick<Config, "channelSources">): ChannelSettings;
}

/** Something running that a signal stops. */
interface Running {
  shutdown(): Promise<void>;
}

/** The simulator's module, loaded only for `simulate` (kept out of the service's module graph). */
interface SimulateModule {
  simulate(env: Record<string, string | undefined>, listening: (l: Listen) => void): Running;
}
// Not a literal: `deno info main.ts` and the service's graph do not follow it; `deno task compile` --includes it.
const SIMULATE_MODULE = "./simulate.ts";

const USAGE = "expected serve (default), simulate, check-config, backup FILE, hash-password, help or version";

/** Run the command `args` names; long-running ones stop on SIGINT/SIGTERM, the others exit with their code. */
export async function runCli(args: readonly string[], deps: CliDeps): Promise<void> {
  const [command = "serve", ...rest] = args;
  try {
    switch (command) {
      case "help":
      case "--help":
      case "-h":
        console.log(helpText());
        return Deno.exit(0);
      case "version":
      case "--version":
      case "-V":
        console.log(`kefu ${VERSION}`);
        return Deno.exit(0);
      case "hash-password":
        return Deno.exit(await hashPasswordCommand());
      case "check-config": {
        const report = await checkConfig(Deno.env.toObject(), deps);
        console.log(formatReport(report));
        return Deno.exit(report.problems.length === 0 ? 0 : EXIT_REFUSED);
      }
      case "backup":
        return Deno.exit(await backup(rest));
      case "serve":
        return stopOnSignal(await serve(deps));
      case "simulate":
        return stopOnSignal(await simulate());
      default:
        return exitWith(`unknown command ${JSON.stringify(command)}: ${USAGE} (kefu --help)`, EXIT_REFUSED);
    }
  } catch (e) {
    const { line, code } = refusal(e);
    exitWith(line, code);
  }
}

function stopOnSignal(running: Running): void {
  const stop = () => running.shutdown().then(() => Deno.exit(0), (e) => exitWith(refusal(e).line, 1));
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}

/** `kefu serve`: read the configuration, say what deserves a warning, start. */
async function serve(deps: CliDeps): Promise<Running> {
  const env = Deno.env.toObject();
  let listen: Listen | undefined;
  try {
    const config = parseConfig(env);
    const settings = deps.channelSettings(config);
    listen = { host: config.host, port: config.port, vars: "HOST, PORT" };
    const log = createLogger({ level: config.logLevel });
    for (const w of configWarnings(env, config, KNOWN_VARIABLES)) {
      const { event, ...fields } = w;
      log.warn(event, fields);
    }
    const service = await deps.start(config, { log, settings });
    // Which webhooks answer, so that an operator sees a missing or misplaced account at once (no secrets).
    log.info("accounts", { accounts: describeAccounts(settings.accounts) });
    return service;
  } catch (e) {
    const { line, code } = refusal(e, listen);
    return exitWith(line, code);
  }
}

/** `kefu simulate`: the simulator module is loaded now, and only now. */
async function simulate(): Promise<Running> {
  let listen: Listen | undefined;
  try {
    const mod = await import(new URL(SIMULATE_MODULE, import.meta.url).href) as SimulateModule;
    return mod.simulate(Deno.env.toObject(), (l) => listen = l);
  } catch (e) {
    const { line, code } = refusal(e, listen);
    return exitWith(line, code);
  }
}

/** `kefu backup FILE`. */
async function backup(args: readonly string[]): Promise<number> {
  if (args.length !== 1 || args[0] === "") {
    return exitWith("backup takes one argument, the file to write: kefu backup /var/backups/kefu.db", EXIT_REFUSED);
  }
  const config = parseConfig(Deno.env.toObject());
  const result = await backupStore(config, args[0]);
  console.log(JSON.stringify({ event: "backup", ...result }));
  console.error(
    `kefu: backed up ${result.contacts} contacts and ${result.messages} messages to ${result.file} ` +
      `(${result.bytes} bytes, ${result.seconds} s); copy DATA_DIR/media too for users' files (rsync -a)`,
  );
  return 0;
}
