/**
 * A node that drains opens no new agent sockets: the upgrade is answered 503 `draining` (nginx's kefu-cluster.conf
 * then tries the next node), so a page reconnecting after 4002 is not taken by the node that is going away.
 */

import assert from "node:assert/strict";
import { AgentClient, agentUrl, startService } from "../helpers.ts";

Deno.test("cluster: a draining node refuses new agent sockets with 503 draining; sockets before stay", async () => {
  await using t = await startService();
  await using before = await AgentClient.open(agentUrl(t, "a1"));
  t.svc.hub.drain();
  const res = await fetch(`${t.http}/im_component/wx_official_account/msg?userid=a2`, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-version": "13",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    },
  });
  assert.equal(res.status, 503);
  const body = await res.json();
  assert.equal(body.data.error, "draining", JSON.stringify(body));
  assert.match(body.data.detail, /draining/);
  // The page on / is still served (only sockets are refused), and the socket opened before is still open.
  const page = await fetch(`${t.http}/`);
  assert.equal(page.status, 200);
  await page.body?.cancel();
  assert.equal(before.socket.readyState, WebSocket.OPEN);
});
