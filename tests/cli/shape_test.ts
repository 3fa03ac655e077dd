import assert from "node:assert/strict";
import { KNOWN_VARIABLES } from "../../src/cli/variables.ts";

const ROOT = new URL("../..", import.meta.url).pathname;

/** The local modules of `entry`'s static graph, as `deno info --json` gives them, relative to the project. */
async function graph(entry: string): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json", entry], cwd: ROOT }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: { specifier: string }[] };
  return info.modules.map((m) => m.specifier).filter((s) => s.startsWith("file://")).map((s) =>
    new URL(s).pathname.slice(ROOT.length)
  );
}

Deno.test("shape: the simulator is outside the service's module graph (loaded by kefu simulate only)", async () => {
  const modules = await graph("main.ts");
  assert.ok(modules.includes("src/cli/cli.ts"));
  assert.ok(modules.includes("src/jobs/jobs.ts"));
  assert.deepEqual(modules.filter((m) => m.startsWith("src/simulator/") || m === "src/cli/simulate.ts"), []);
  // deno task compile includes what is loaded dynamically.
  const deno = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  assert.match(deno.tasks.compile, /--include src\/cli\/simulate\.ts/);
});

Deno.test("shape: config imports no channel; each channel owns its settings", async () => {
  for (const m of ["src/config/config.ts", "src/config/permissions.ts", "src/config/warnings.ts"]) {
    const modules = await graph(m);
    assert.deepEqual(modules.filter((x) => x.startsWith("src/channels/")), [], m);
  }
});

Deno.test("shape: every variable read in src/ is in kefu --help's catalogue and in docs/configuration.md", async () => {
  const read = new Set<string>();
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts")) {
        const source = await Deno.readTextFile(path);
        for (const m of source.matchAll(/env\.([A-Z][A-Z0-9_]+)|env\["([A-Z][A-Z0-9_]+)"\]/g)) read.add(m[1] ?? m[2]);
        for (const m of source.matchAll(/\(env, "([A-Z][A-Z0-9_]+)"/g)) read.add(m[1]);
      }
    }
  };
  await walk(`${ROOT}/src`);
  assert.ok(read.has("PORT") && read.has("WXBOT_KEY") && read.has("HOOK_API_URL"), [...read].join(" "));
  assert.deepEqual([...read].filter((v) => !KNOWN_VARIABLES.includes(v)).sort(), []);
  const docs = await Deno.readTextFile(`${ROOT}/docs/configuration.md`);
  assert.deepEqual(KNOWN_VARIABLES.filter((v) => !docs.includes(v)), []);
});
