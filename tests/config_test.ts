import assert from "node:assert/strict";
import { ConfigError, DEFAULTS, parseConfig } from "../src/config.ts";

Deno.test("config: defaults match the README (PORT 1234, heartbeat 30 s)", () => {
  const c = parseConfig({});
  assert.deepEqual(c, DEFAULTS);
  assert.equal(c.port, 1234);
  assert.equal(c.heartbeatSeconds, 30);
});

Deno.test("config: every variable is read", () => {
  const c = parseConfig({
    PORT: "8080",
    HOST: "127.0.0.1",
    HEARTBEAT_SECONDS: "5",
    IDLE_TIMEOUT_SECONDS: "10",
    MAX_BODY_BYTES: "2048",
    MAX_WS_MESSAGE_BYTES: "4096",
    MAX_HELD_PER_AGENT: "7",
    MAX_HELD_TOTAL: "70",
    MAX_SOCKETS_PER_AGENT: "2",
    DEDUPE_WINDOW: "0",
    LOG_LEVEL: "WARN",
  });
  assert.deepEqual(c, {
    port: 8080,
    host: "127.0.0.1",
    heartbeatSeconds: 5,
    idleTimeoutSeconds: 10,
    maxBodyBytes: 2048,
    maxWsMessageBytes: 4096,
    maxHeldPerAgent: 7,
    maxHeldTotal: 70,
    maxSocketsPerAgent: 2,
    dedupeWindow: 0,
    logLevel: "warn",
  });
});

Deno.test("config: a bad value names the variable and quotes it", () => {
  for (
    const [name, value] of [["PORT", "abc"], ["PORT", "70000"], ["HEARTBEAT_SECONDS", "0"], ["MAX_BODY_BYTES", "1.5"], [
      "LOG_LEVEL",
      "loud",
    ]]
  ) {
    assert.throws(() => parseConfig({ [name]: value }), (e) => {
      assert.ok(e instanceof ConfigError);
      assert.ok(e.message.includes(`${name}="${value}"`), e.message);
      return true;
    });
  }
});
