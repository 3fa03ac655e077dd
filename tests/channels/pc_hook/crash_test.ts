/**
 * `ok` means kept: kefu with the PC-hook channel as a child process on a real
 * DATA_DIR, the fake hook pushing one message after another; kill -9 right
 * after an `ok`. After a restart on the same directory and port (the new kefu
 * removes the dead one's callback and registers its own), every message that
 * had been answered `ok` reaches the agent.
 */

import assert from "node:assert/strict";
import { chatFrame } from "../../../src/simulator/pc_hook.ts";
import { AgentClient, spawnKefu } from "../../helpers.ts";
import { fakeHook, freePort } from "./helpers.ts";

const OKS_BEFORE_KILL = 150;

// `deno run tests/fixtures/pc_hook_kefu.ts` (kefu with the channel), ready once it logs "listening".
function spawn(port: number, dataDir: string, apiUrl: string) {
  return spawnKefu(
    { PORT: String(port), DATA_DIR: dataDir, HOOK_API_URL: apiUrl, HOOK_CHECK_SECONDS: "1" },
    "tests/fixtures/pc_hook_kefu.ts",
  );
}

Deno.test("pc_hook crash: kill -9 right after an ok: every message answered ok is there after a restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "kefu-pc-hook-crash-" });
  await using hook = fakeHook({ wxid: "wxid_crash" });
  const port = freePort();
  const oked: string[] = [];
  let inFlight: { id: string; ok: Promise<boolean> } | undefined;
  try {
    {
      await using child = await spawn(port, dataDir, hook.apiUrl);
      await hook.waitConnected(1, 10_000);
      for (let i = 0; oked.length < OKS_BEFORE_KILL; i++) {
        const id = String(7_500_000_000_000_000_000n + BigInt(i));
        const ok = await hook.push(chatFrame("wxid_crash", `wxid_u${i % 7}`, `message ${i}`, { id }));
        assert.ok(ok);
        oked.push(id);
      }
      child.process.kill("SIGKILL");
      // One more on its way as kefu dies: it has no ok, and the hook holds it for the next socket.
      const id = "7500000000000009999";
      inFlight = { id, ok: hook.push(chatFrame("wxid_crash", "wxid_late", "in flight", { id })) };
    }
    await using _restarted = await spawn(port, dataDir, hook.apiUrl);
    await hook.waitConnected(1, 10_000);
    await using agent = await AgentClient.open(`ws://127.0.0.1:${port}/im_component/wx_official_account/msg?userid=a1`);
    const received = new Set<string>();
    const deadline = Date.now() + 20_000;
    const missing = () => oked.filter((id) => !received.has(id));
    while (missing().length > 0 && Date.now() < deadline) {
      try {
        received.add((await agent.next(1001, 500)).data.id);
      } catch { /* none yet */ }
    }
    assert.deepEqual(missing(), [], `${missing().length} of ${oked.length} messages answered ok never arrived`);
    // The message in flight went again to the new kefu, or was dropped with the dead one's callback: if the
    // hook was told ok, it is there too.
    if (await inFlight!.ok) {
      while (!received.has(inFlight!.id) && Date.now() < deadline) received.add((await agent.next(1001)).data.id);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
