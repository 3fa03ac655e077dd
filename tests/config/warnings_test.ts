import assert from "node:assert/strict";
import { configWarnings, nearMisses } from "../../src/config/warnings.ts";
import { KNOWN_VARIABLES } from "../../src/cli/variables.ts";

Deno.test("warnings: a variable close to a known one names it; the rest of the environment stays quiet", () => {
  const env = {
    AGENT_SECRETS: "x",
    WECHAT_APP_ID: "wx1",
    agent_secret: "y",
    HOOK_APIURL: "http://h",
    WXBOT_TOKN: "t",
    MEDIA_MAX_BYTE: "1",
    // Not kefu's: no shared first word, or too far from every known name.
    PATH: "/usr/bin",
    HOME: "/root",
    HOSTNAME: "box",
    NODE_ENV: "production",
    NODE_OPTIONS: "--x",
    LOGNAME: "root",
    WECHAT_SOMETHING_ELSE: "x",
    // Known: nothing to say.
    AGENT_SECRET: "z",
    WECHAT_APPID: "wx1",
  };
  assert.deepEqual(nearMisses(env, KNOWN_VARIABLES).map((w) => [w.variable, w.did_you_mean]), [
    ["AGENT_SECRETS", "AGENT_SECRET"],
    ["HOOK_APIURL", "HOOK_API_URL"],
    ["MEDIA_MAX_BYTE", "MEDIA_MAX_BYTES"],
    ["WECHAT_APP_ID", "WECHAT_APPID"],
    ["WXBOT_TOKN", "WXBOT_TOKEN"],
    ["agent_secret", "AGENT_SECRET"],
  ]);
  for (const w of nearMisses(env, KNOWN_VARIABLES)) {
    assert.equal(w.event, "config_unknown_variable");
    assert.match(
      w.detail,
      new RegExp(`^${w.variable} is not a variable kefu reads \\(ignored\\): did you mean ${w.did_you_mean}\\?$`),
    );
  }
  assert.deepEqual(nearMisses(Deno.env.toObject(), KNOWN_VARIABLES).filter((w) => !(w.variable! in env)), []);
});

Deno.test("warnings: AGENT_SECRET with no agent in CONFIG_FILE", () => {
  const secret = "0123456789abcdef";
  assert.deepEqual(configWarnings({}, { agentSecret: secret, agents: [] }, []).map((w) => w.event), ["auth_no_agents"]);
  assert.ok(!JSON.stringify(configWarnings({}, { agentSecret: secret, agents: [] }, [])).includes(secret));
  const agents = [{ id: "1", name: "1", passwordHash: "h" }];
  assert.deepEqual(configWarnings({}, { agentSecret: secret, agents }, []), []);
  assert.deepEqual(configWarnings({}, { agentSecret: undefined, agents: [] }, []), []);
});
