/**
 * The converter with a scratch directory relative to kefu's working directory (`DATA_DIR=./data`, the default and the
 * demo's): ffmpeg runs inside that directory, so the names it gets must be relative to it.
 */

import assert from "node:assert/strict";
import { relative } from "node:path";
import { Converter } from "../../src/media/convert.ts";

const FFMPEG = new Deno.Command("ffmpeg", { args: ["-version"], stdout: "null", stderr: "null" }).output()
  .then((r) => r.success, () => false);

Deno.test({
  name: "convert: a voice note converts with a relative scratch directory (DATA_DIR=./data)",
  ignore: !(await FFMPEG),
  async fn() {
    // Under the working directory, named relative to it, as ./data/media/tmp is.
    const base = await Deno.makeTempDir({ dir: Deno.cwd(), prefix: ".kefu-convert-" });
    try {
      const converter = new Converter({
        ffmpeg: "ffmpeg",
        timeoutMs: 30_000,
        maxOutputBytes: 1 << 20,
        tmpDir: `./${relative(Deno.cwd(), base)}/media/tmp`,
      });
      const amr = await Deno.readFile(new URL("../fixtures/media/voice.amr", import.meta.url));
      const out = await converter.convert(amr, "audio/amr");
      assert.equal(out.contentType, "audio/ogg");
      assert.equal(new TextDecoder().decode(out.bytes.subarray(0, 4)), "OggS");
      // Its scratch files are gone.
      assert.deepEqual([...Deno.readDirSync(`${base}/media/tmp`)], []);
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
});
