import assert from "node:assert/strict";
import { DirLockError, LOCK_FILE, lockDir } from "../../src/store/lock.ts";

const LOCK_MODULE = new URL("../../src/store/lock.ts", import.meta.url).href;

Deno.test("lock: creates the directory, writes the holder's pid, refuses a second lock naming the directory and pid", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kefu-lock-" });
  const dir = `${tmp}/a/b`;
  try {
    const lock = lockDir(dir);
    assert.equal(lock.path, `${dir}/${LOCK_FILE}`);
    assert.equal(Deno.readTextFileSync(lock.path), `${Deno.pid}\n`);
    // flock locks belong to an open file, so a second open in this process is refused as another process would be.
    assert.throws(() => lockDir(dir), (e) => {
      assert.ok(e instanceof DirLockError);
      assert.equal(e.holder, Deno.pid);
      assert.equal(e.dir, dir);
      assert.match(e.message, new RegExp(`"${dir}".*pid ${Deno.pid}.*${LOCK_FILE}`));
      return true;
    });
    lock.release();
    lock.release(); // idempotent
    // Released: no stale pid left behind, and the next one gets in.
    assert.equal(Deno.readTextFileSync(`${dir}/${LOCK_FILE}`), "");
    lockDir(`${dir}/`).release();
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("lock: a directory that cannot be created is a DirLockError naming it", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "kefu-lock-" });
  try {
    Deno.writeTextFileSync(`${tmp}/file`, "");
    assert.throws(() => lockDir(`${tmp}/file`), (e) => {
      assert.ok(e instanceof DirLockError);
      assert.equal(e.holder, undefined);
      assert.ok(e.message.startsWith(`cannot use the directory "${tmp}/file": `), e.message);
      return true;
    });
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("lock: another process is refused while it is held, and a killed holder leaves it free", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kefu-lock-" });
  const tryLock = `import { lockDir } from ${JSON.stringify(LOCK_MODULE)};
    try { lockDir(${JSON.stringify(dir)}).release(); console.log("locked"); } catch (e) { console.log(e.message); }`;
  const other = async () =>
    new TextDecoder().decode((await new Deno.Command(Deno.execPath(), { args: ["eval", tryLock] }).output()).stdout);
  try {
    const lock = lockDir(dir);
    assert.match(await other(), new RegExp(`another process \\(pid ${Deno.pid}\\) holds its lock`));
    lock.release();
    assert.equal(await other(), "locked\n");

    // A holder that dies without releasing (kill -9): the system drops its lock.
    const holder = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { lockDir } from ${JSON.stringify(LOCK_MODULE)};
        lockDir(${JSON.stringify(dir)}); console.log("held"); setTimeout(() => {}, 60_000);`,
      ],
      stdout: "piped",
    }).spawn();
    const reader = holder.stdout.pipeThrough(new TextDecoderStream()).getReader();
    assert.equal((await reader.read()).value, "held\n");
    assert.throws(() => lockDir(dir), (e) => e instanceof DirLockError && e.holder === holder.pid);
    holder.kill("SIGKILL");
    await holder.status;
    await reader.cancel();
    lockDir(dir).release();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
