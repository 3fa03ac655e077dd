/**
 * What three kefu nodes on one PostgreSQL and one Redis share on WeChat's side (issue 19), each node a child process
 * on 127.0.0.1 talking to the simulator's WeChat API in this process:
 *
 * - replies from an agent's sockets on all three nodes at once: exactly one access_token fetch among them;
 * - WeChat invalidates the token (40001): exactly one refresh, and every node's next reply goes out;
 * - a signed webhook replayed with another body to another node is refused; WeChat's retry of it is taken;
 * - an agent's sign-out on one node refuses its token on the others at once, and closes its socket there.
 */

import assert from "node:assert/strict";
import { seedSign } from "../../src/agents/auth/auth.ts";
import { startPostgres } from "../support/postgres.ts";
import { startRedis } from "../support/redis.ts";
import { eventually, getJson, signedQuery, startWechat, wechatText } from "../helpers.ts";
import { type Node, startNodes } from "./cluster_support.ts";

const SECRET = "the-cluster's-agent-secret";
const WECHAT = { token: "wxtoken", appId: "wx0123456789abcdef", appSecret: "the-app-secret" };
const BASE = "/im_component/wx_official_account";

// deno-lint-ignore no-explicit-any
type Envelope = any;

/** One agent socket, keeping every envelope it got (heartbeats aside). */
class Tab implements AsyncDisposable {
  readonly got: Envelope[] = [];
  readonly socket: WebSocket;
  readonly closed: Promise<CloseEvent>;

  private constructor(url: string) {
    this.socket = new WebSocket(url);
    this.closed = new Promise((resolve) => this.socket.addEventListener("close", resolve, { once: true }));
    this.socket.addEventListener("message", (e) => {
      const env = JSON.parse(String(e.data));
      if (Number(env.result?.code) !== 101) this.got.push(env);
    });
  }

  static async open(node: Node, token: string): Promise<Tab> {
    const tab = new Tab(`${node.ws}${BASE}/msg?token=${encodeURIComponent(token)}`);
    await new Promise<void>((resolve, reject) => {
      tab.socket.addEventListener("open", () => resolve(), { once: true });
      tab.socket.addEventListener("error", () => reject(new Error(`cannot open a socket on ${node.id}`)), {
        once: true,
      });
    });
    return tab;
  }

  /** Send a text reply (or an image: `media_path`); answers the confirmation (103) or the error (-1) about it. */
  async reply(id: string, contact: string, content: string, image?: string): Promise<Envelope> {
    const data = image === undefined
      ? { id, msg_type: "text", contact_id: contact, msg: { content } }
      : { id, msg_type: "image", contact_id: contact, msg: { media_path: image } };
    this.socket.send(JSON.stringify({ data }));
    let answer: Envelope;
    await eventually(`an answer to reply ${id}`, () => {
      answer = this.got.find((e) =>
        (Number(e.result?.code) === 103 && e.data?.id === id) || Number(e.result?.code) === -1
      );
      return answer !== undefined;
    }, 30_000);
    return answer;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close();
    await this.closed;
  }
}

/** A token for `agent` by the seed's signed request, from `node`. */
async function tokenFor(node: Node, agent: string): Promise<string> {
  const ts = String(Math.floor(Date.now() / 1000));
  const r = await getJson(
    `${node.http}/auth/websocket?uid=${agent}&timestamp=${ts}&sign=${seedSign(agent, ts, SECRET)}`,
  );
  assert.equal(r.status, 200, `a token for ${agent}`);
  return r.body.content.token;
}

/** A user's text message posted to `node` as WeChat posts it (plaintext, signed). */
async function webhook(node: Node, openid: string, msgId: string, query?: string): Promise<Response> {
  return await fetch(`${node.http}/wechat${query ?? await signedQuery(WECHAT.token)}`, {
    method: "POST",
    body: wechatText(openid, `hello ${msgId}`, msgId),
  });
}

Deno.test("cluster: WeChat's access_token, replay memory and revocations are shared by three nodes", async (t) => {
  await using pg = await startPostgres();
  await using db = await pg.createDatabase();
  await using redis = await startRedis();
  await using wechat = startWechat({ appId: WECHAT.appId, appSecret: WECHAT.appSecret });
  await using nodes = await startNodes(3, { databaseUrl: db.url, redisUrl: redis.url }, {
    AGENT_SECRET: SECRET,
    WECHAT_TOKEN: WECHAT.token,
    WECHAT_APPID: WECHAT.appId,
    WECHAT_APPSECRET: WECHAT.appSecret,
    WECHAT_API_BASE: wechat.url,
  });
  const sim = wechat.sim;

  await t.step(
    "replies from all three nodes: one token fetch; invalidated: one refresh, every node sends",
    async () => {
      // One agent with a socket on each node: each socket's replies go out through its own node.
      const token = await tokenFor(nodes[0], "A");
      await using t1 = await Tab.open(nodes[0], token);
      await using t2 = await Tab.open(nodes[1], token);
      await using t3 = await Tab.open(nodes[2], token);
      const tabs = [t1, t2, t3];
      const user = "oUser-1";
      sim.recordInteraction(user, "message");
      assert.equal(await (await webhook(nodes[1], user, "1001")).text(), "success");
      for (const tab of tabs) {
        await eventually(
          `${tab === t1 ? "n1" : tab === t2 ? "n2" : "n3"}'s socket got the user's message`,
          () => tab.got.some((e) => e.data?.id === "1001"),
          15_000,
        );
      }
      assert.equal(sim.tokenFetches, 0, "nothing fetched before the first reply");

      // All three nodes reply at once: none has a token yet.
      const first = await Promise.all(tabs.map((tab, i) => tab.reply(`r1-${i}`, user, `first from n${i + 1}`)));
      assert.deepEqual(first.map((e) => Number(e.result.code)), [103, 103, 103], JSON.stringify(first));
      assert.equal(sim.tokenFetches, 1, "one access_token fetch for the three nodes");
      assert.equal(sim.inbox(user).length, 3);

      // WeChat invalidates every token (as when the AppSecret is reset): each node's cached token answers 40001.
      sim.invalidateTokens();
      sim.recordInteraction(user, "message");
      assert.equal(await (await webhook(nodes[2], user, "1002")).text(), "success");
      for (const tab of tabs) await eventually("the second message", () => tab.got.some((e) => e.data?.id === "1002"));
      const second = await Promise.all(tabs.map((tab, i) => tab.reply(`r2-${i}`, user, `second from n${i + 1}`)));
      assert.deepEqual(second.map((e) => Number(e.result.code)), [103, 103, 103], JSON.stringify(second));
      assert.equal(sim.tokenFetches, 2, "exactly one refresh among the three nodes");
      assert.equal(sim.inbox(user).length, 6, "every node's next reply went out");
      assert.equal(sim.calls("/cgi-bin/message/custom/send"), 9, "three refused with 40001, each tried once more");
    },
  );

  await t.step(
    "a file uploaded on n1 and sent to WeChat once is sent by n2 and n3 without uploading it again",
    async () => {
      const token = await tokenFor(nodes[0], "M");
      await using t1 = await Tab.open(nodes[0], token);
      await using t2 = await Tab.open(nodes[1], token);
      await using t3 = await Tab.open(nodes[2], token);
      const user = "oUser-media";
      sim.recordInteraction(user, "message");
      assert.equal(await (await webhook(nodes[0], user, "3001")).text(), "success");
      await eventually("M got the user's message", () => t1.got.some((e) => e.data?.id === "3001"));
      // A 1×1 PNG, uploaded to n1 only (each node keeps its own DATA_DIR/media: n2 and n3 do not have the file).
      const png = Uint8Array.from(
        atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="),
        (ch) => ch.charCodeAt(0),
      );
      const up = await fetch(`${nodes[0].http}${BASE}/media?filename=dot.png`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "image/png" },
        body: png,
      });
      const path = (await up.json()).data.media_path;
      assert.match(path, /^\/im_component\/wx_official_account\/media\/[0-9a-f]{64}\.png$/);
      const uploads = sim.calls("/cgi-bin/media/upload");
      assert.equal(Number((await t1.reply("m1", user, "", path)).result.code), 103);
      assert.equal(sim.calls("/cgi-bin/media/upload"), uploads + 1);
      for (const [i, tab] of [t2, t3].entries()) {
        const answer = await tab.reply(`m${i + 2}`, user, "", path);
        assert.equal(Number(answer.result.code), 103, JSON.stringify(answer));
      }
      assert.equal(sim.calls("/cgi-bin/media/upload"), uploads + 1, "uploaded to WeChat once for the three nodes");
      const sent = sim.inbox(user).filter((m) => m.msgtype === "image");
      assert.equal(sent.length, 3);
      assert.equal(new Set(sent.map((m) => (m.image as { media_id: string }).media_id)).size, 1, "one media_id");
    },
  );

  await t.step("a signed webhook replayed with another body to another node is refused; a retry is taken", async () => {
    const query = await signedQuery(WECHAT.token);
    assert.equal(await (await webhook(nodes[0], "oUser-2", "2001", query)).text(), "success");
    const replay = await webhook(nodes[1], "oUser-2", "2002", query);
    assert.equal(replay.status, 401);
    const body = await replay.json();
    assert.equal(body.data?.error ?? body.error, "replayed_request", JSON.stringify(body));
    // The same body again is WeChat retrying the same delivery (its answer was lost): taken, not refused.
    const retry = await webhook(nodes[2], "oUser-2", "2001", query);
    assert.equal(await retry.text(), "success");
  });

  await t.step("a sign-out on n1 refuses the token on n2 and n3 at once and closes its socket on n2", async () => {
    const token = await tokenFor(nodes[0], "R");
    await using tab = await Tab.open(nodes[1], token);
    for (const node of nodes) assert.equal((await getJson(`${node.http}/auth/me?token=${token}`)).status, 200);
    const out = await fetch(`${nodes[0].http}/auth/logout`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    });
    assert.deepEqual((await out.json()).content, { revoked: true });
    // Well within the nodes' 30 s safety-net read: the notice did it.
    for (const node of nodes.slice(1)) {
      await eventually(`${node.id} refuses the signed-out token`, async () => {
        const me = await getJson(`${node.http}/auth/me?token=${token}`);
        return me.status === 401 && me.body.data.error === "token_revoked";
      }, 10_000);
    }
    const closed = await tab.closed;
    assert.deepEqual([closed.code, closed.reason.split(":")[0]], [4401, "token_revoked"]);
  });
});
