import assert from "node:assert/strict";
import { KefuError } from "../../src/core/errors.ts";
import { isKnownType, parseSendTime } from "../../src/core/message.ts";

Deno.test("parseSendTime: epoch seconds, milliseconds and date strings", () => {
  assert.equal(parseSendTime("1348831860"), 1348831860);
  assert.equal(parseSendTime(" 1348831860 "), 1348831860);
  assert.equal(parseSendTime("1348831860123"), 1348831860);
  assert.equal(parseSendTime("0"), 0);
  // No zone: Beijing time.
  assert.equal(parseSendTime("1976-04-10 12:21:47"), Date.UTC(1976, 3, 10, 4, 21, 47) / 1000);
  assert.equal(parseSendTime("2021-08-29T19:40:41Z"), Date.UTC(2021, 7, 29, 19, 40, 41) / 1000);
  assert.equal(parseSendTime("2021-08-29 19:40:41+0000"), Date.UTC(2021, 7, 29, 19, 40, 41) / 1000);
  assert.equal(parseSendTime("2021-08-29 19:40:41.5-01:00"), Date.UTC(2021, 7, 29, 20, 40, 41) / 1000);
});

Deno.test("parseSendTime: anything else is an invalid_time error naming the field and value", () => {
  for (const bad of ["", "abc", "1976-13-45 99:99:99", "-5", "1.5", "12345678901234567890"]) {
    assert.throws(() => parseSendTime(bad, "data.send_time"), (e) => {
      assert.ok(e instanceof KefuError);
      assert.equal(e.kind, "invalid_time");
      assert.match(e.message, /data\.send_time/);
      return true;
    }, `"${bad}" should be refused`);
  }
});

Deno.test("isKnownType: the four seed types only", () => {
  assert.deepEqual(["text", "image", "voice", "video", "enim", "event"].map(isKnownType), [
    true,
    true,
    true,
    true,
    false,
    false,
  ]);
});
