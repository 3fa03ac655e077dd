/**
 * Where several nodes could keep media files (issue 19), measured on this machine: a shared directory (kefu's own
 * {@link MediaFiles}: write to a temporary name, rename; read the file) against PostgreSQL (`bytea` in a table, insert
 * and select by name, through the `postgres` client the store uses). Typical files: 100 KB, 500 KB and 2 MB of random
 * bytes (images and voice notes do not compress); each write is followed by a read of the same file, every write a new
 * file. PostgreSQL with its durable defaults (fsync, synchronous commit) unless `--fast`.
 *
 *     deno run -A bench/media_store_bench.ts [--rounds 40] [--fast] [--dir /mnt/shared]
 *
 * `--dir` measures a directory of your own (an NFS mount); by default a temporary directory on the local disk.
 *
 * @module
 */

import postgres from "postgres";
import { MediaFiles } from "../src/media/files.ts";
import { startPostgres } from "../tests/support/postgres.ts";
import { parseFlags, round, summarize } from "./lib.ts";

const flags = parseFlags(Deno.args, new Set(["fast"]));
const ROUNDS = Number(flags.get("rounds") ?? 40);
const SIZES = [100_000, 500_000, 2_000_000];

function randomBytes(n: number): Uint8Array {
  const b = new Uint8Array(n);
  // getRandomValues fills at most 64 KiB at a time.
  for (let i = 0; i < n; i += 65_536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65_536)));
  return b;
}

interface Row {
  store: string;
  size: number;
  write: ReturnType<typeof summarize>;
  read: ReturnType<typeof summarize>;
  mbPerS: number;
}

async function measure(
  store: string,
  size: number,
  write: (b: Uint8Array) => Promise<string>,
  read: (name: string) => Promise<Uint8Array>,
): Promise<Row> {
  const w = new Float64Array(ROUNDS);
  const r = new Float64Array(ROUNDS);
  let total = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const bytes = randomBytes(size);
    const t0 = performance.now();
    const name = await write(bytes);
    const t1 = performance.now();
    const back = await read(name);
    const t2 = performance.now();
    if (back.length !== size) throw new Error(`${store}: read ${back.length} bytes of ${size}`);
    w[i] = t1 - t0;
    r[i] = t2 - t1;
    total += t2 - t0;
  }
  return {
    store,
    size,
    write: summarize(w, ROUNDS),
    read: summarize(r, ROUNDS),
    mbPerS: round((2 * size * ROUNDS) / 1e6 / (total / 1000), 1),
  };
}

const rows: Row[] = [];
const dir = flags.get("dir") ?? await Deno.makeTempDir({ prefix: "kefu_media_bench_" });
try {
  const files = new MediaFiles(`${dir}/media`);
  for (const size of SIZES) {
    rows.push(
      await measure("directory", size, async (b) => (await files.put(b, "image/jpeg")).name, (n) => files.read(n)),
    );
  }
} finally {
  if (!flags.has("dir")) await Deno.remove(dir, { recursive: true });
}

{
  await using server = await startPostgres({ durable: !flags.has("fast") });
  const sql = postgres(server.url, { max: 2, onnotice: () => {} });
  try {
    await sql`CREATE TABLE media (name text PRIMARY KEY, content_type text NOT NULL, bytes bytea NOT NULL)`;
    let n = 0;
    for (const size of SIZES) {
      rows.push(
        await measure("postgresql", size, async (b) => {
          const name = `f${++n}.jpg`;
          await sql`INSERT INTO media (name, content_type, bytes) VALUES (${name}, 'image/jpeg', ${b})
            ON CONFLICT (name) DO NOTHING`;
          return name;
        }, async (name) => {
          const [row] = await sql`SELECT bytes FROM media WHERE name = ${name}`;
          return row.bytes as Uint8Array;
        }),
      );
    }
  } finally {
    await sql.end();
  }
}

console.log(`rounds per size: ${ROUNDS}; PostgreSQL ${flags.has("fast") ? "fast (fsync off)" : "durable"}`);
console.log("store        size     write p50/p90 ms     read p50/p90 ms     MB/s (write+read)");
for (const r of rows) {
  console.log(
    `${r.store.padEnd(12)} ${(r.size / 1000 + " KB").padEnd(8)} ${`${r.write.p50} / ${r.write.p90}`.padEnd(20)} ${
      `${r.read.p50} / ${r.read.p90}`.padEnd(19)
    } ${r.mbPerS}`,
  );
}
