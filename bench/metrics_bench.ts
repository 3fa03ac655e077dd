/**
 * The cost of kefu's metrics per message (`deno task bench:metrics`): what the accept path and the delivery add —
 * `observeAccept` (the accept time on the message, a labelled counter once the promise settles) and
 * `observeDelivered` (a counter and a histogram observation) — against the same promise without them. Each
 * iteration is 1,000 messages (divide by 1,000 for one). The gauges cost nothing per message (read at scrape time);
 * a scrape is measured too.
 *
 * @module
 */

import { metricsText, observeAccept, observeDelivered, observeReplySent } from "../src/metrics/metrics.ts";
import type { Message } from "../src/core/message.ts";

const N = 1000;
const result = { status: "delivered", id: "m", agent: "1", contact: "c", sockets: 1 };
const message = (i: number): Message => ({
  id: `m${i}`,
  direction: "in",
  channel: "wx_official_account",
  contact: "oUser",
  agent: "1",
  company: "",
  account: "wxAccount",
  type: "text",
  content: "hello",
  media: "",
  sendTime: Math.floor(Date.now() / 1000),
  name: "",
  avatar: "",
});
const accept = () => Promise.resolve(result);

Deno.bench(
  { name: "1,000 messages: accept + delivery, bare", group: "per 1,000 messages", baseline: true },
  async () => {
    for (let i = 0; i < N; i++) {
      const m = message(i);
      const r = await accept();
      if (r.sockets > 0) m.agent = r.agent;
    }
  },
);

Deno.bench({ name: "1,000 messages: accept + delivery, with metrics", group: "per 1,000 messages" }, async () => {
  for (let i = 0; i < N; i++) {
    const m = message(i);
    const r = await observeAccept(m, accept);
    if (r.sockets > 0) observeDelivered(m, "live");
  }
});

Deno.bench({ name: "1,000 replies: observeReplySent", group: "per 1,000 replies" }, () => {
  for (let i = 0; i < N; i++) observeReplySent("wx_official_account", "wxAccount");
});

Deno.bench({ name: "a scrape (/metrics text)", group: "scrape" }, async () => {
  await metricsText();
});
