/**
 * A channel that exists only in tests: everything a new channel needs is here
 * and in its registration (`start(config, { channels: [testChannel(…)] })`).
 * Users write with `POST /test/in {"user","text","id"?,"agent"?}`; replies are
 * kept in `sent` and answered `sent`, or refused when `refuse` is set.
 *
 * @module
 */

import { Hono } from "hono";
import type { ChannelAdapter, ChannelFactory } from "../../src/channels/channel.ts";
import { KefuError } from "../../src/core/errors.ts";
import { type Message, newMessageId, nowSeconds } from "../../src/core/message.ts";
import type { ContactRecord } from "../../src/store/store.ts";

/** What the test channel saw go out, and a switch to make it refuse. */
export interface TestChannelState {
  sent: { user: string; account: string; content: string }[];
  refuse?: string;
}

/** The test channel `name` with account `account`, recording into `state`. */
export function testChannel(state: TestChannelState, name = "test", account = "t1"): ChannelFactory {
  return (ctx): ChannelAdapter => {
    const routes = new Hono().post(`/${name}/in`, async (c) => {
      const { user, text, id, agent } = await c.req.json();
      const m: Message = {
        id: id ?? newMessageId(),
        direction: "in",
        channel: name,
        account,
        contact: user,
        agent: "",
        company: "",
        type: "text",
        content: text,
        media: "",
        sendTime: nowSeconds(),
        name: user,
        avatar: "",
      };
      return c.json(await ctx.accept(m, { agent }));
    });
    return {
      name,
      routes,
      send(reply: Message, contact: ContactRecord) {
        if (state.refuse) return Promise.reject(new KefuError("no_route", state.refuse, 502));
        state.sent.push({ user: contact.user, account: contact.account, content: reply.content });
        return Promise.resolve("sent");
      },
    };
  };
}
