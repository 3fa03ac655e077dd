/**
 * The HTTP push channel: the seed's JSON (§2.1) and simplified XML (§2.2)
 * endpoints and the test alias `/send`. Each answers what happened to the
 * message: delivered now (200), queued for an offline agent (202), a repeat
 * (200), or rejected with a JSON error (4xx/503).
 *
 * Replies go back only when the operator names where (`PUSH_REPLY_URL`): each
 * is POSTed there as the seed's JSON envelope, `data.contact_id` the user, and a
 * 2xx answer means sent. Without it the push is one-way: an agent's reply to a
 * user who came in here is refused by the reply router (`no_route`) and kept as
 * `failed`, never shown as sent.
 *
 * Who the message is for: an XML push's `ToUserName` names the agent (empty:
 * the contact list picks one); a JSON push names the user in `contact_id`
 * (the contact list picks the agent), or, with `from_id`, the user in
 * `from_id` and the agent in `contact_id`.
 *
 * @module
 */

import { type Context, Hono } from "hono";
import { timingSafeEqual } from "node:crypto";
import { readBody } from "../../core/body.ts";
import { KefuError, quote } from "../../core/errors.ts";
import type { Message } from "../../core/message.ts";
import { decodeEnvelope, encodeEnvelope } from "../../envelope/codec.ts";
import { Code, SEND_PATH, SEND_XML_PATH, TEST_SEND_PATH } from "../../envelope/protocol.ts";
import type { InboundResult } from "../../hub/hub.ts";
import type { ContactRecord } from "../../store/store.ts";
import type { ChannelAdapter, ChannelFactory } from "../channel.ts";
import { decodeXml } from "../wx_official/xml_codec.ts";

/** The channel's name. */
export const HTTP_PUSH = "http_push";

/**
 * Decode a pushed body: XML when it starts with `<`, JSON when it starts with `{`
 * (or `[`), after whitespace and a BOM, whatever the Content-Type says.
 */
export function decodeBody(text: string, accept: "auto" | "xml"): Message {
  let i = 0;
  while (i < text.length && (text.charCodeAt(i) <= 32 || text.charCodeAt(i) === 0xfeff)) i++;
  if (i === text.length) throw new KefuError("empty_body", "the request body is empty: expected XML or JSON");
  const first = text[i];
  if (first === "<") return decodeXml(text);
  if ((first === "{" || first === "[") && accept === "auto") return decodeEnvelope(text, { direction: "in" });
  throw new KefuError(
    "unsupported_body",
    `expected ${accept === "xml" ? "WeChat XML <xml>…</xml>" : "WeChat XML <xml>…</xml> or a JSON envelope {…}"}, got ${
      quote(text.slice(i, i + 40))
    }`,
    415,
  );
}

function answer(c: Context, r: InboundResult): Response {
  return c.json(
    {
      data: { id: r.id, status: r.status, agent_id: r.agent, contact_id: r.contact, sockets: r.sockets },
      result: { code: Code.ok, message: r.status },
    },
    r.status === "queued" ? 202 : 200,
  );
}

/** Options for {@link httpPush}. */
export interface HttpPushOptions {
  /** Where agents' replies are POSTed (`PUSH_REPLY_URL`); without it there is no way back. */
  replyUrl?: string;
  /** How long the reply URL may take to answer; default 5000 ms. */
  replyTimeoutMs?: number;
  /** `PUSH_TOKEN`: pushes must carry `Authorization: Bearer <token>`. */
  token?: string;
  /**
   * Without a token, whether pushes are taken from anyone: sign-in off, or `PUSH_OPEN=1` (main.ts decides). Default
   * true (as before); false refuses every push (401) saying what to set.
   */
  open?: boolean;
}

/** The HTTP push channel, for `main.ts` to register. */
export function httpPush(options: HttpPushOptions = {}): ChannelFactory {
  return (ctx): ChannelAdapter => {
    const app = new Hono();
    const { token } = options;
    if (token !== undefined) {
      const expected = new TextEncoder().encode(`Bearer ${token}`);
      const guard = async (c: Context, next: () => Promise<void>) => {
        const got = new TextEncoder().encode(c.req.header("authorization")?.trim() ?? "");
        if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
          await c.req.raw.body?.cancel();
          throw new KefuError(
            "auth_required",
            "this push needs PUSH_TOKEN: send the header Authorization: Bearer <PUSH_TOKEN>",
            401,
          );
        }
        await next();
      };
      for (const path of [SEND_PATH, SEND_XML_PATH, TEST_SEND_PATH]) app.use(path, guard);
    } else if (options.open === false) {
      // Sign-in is on and no PUSH_TOKEN: anyone could write as any user, so no one does until the operator decides.
      const closed = async (c: Context) => {
        await c.req.raw.body?.cancel();
        throw new KefuError(
          "auth_required",
          "pushes are closed: sign-in is on (AGENT_SECRET) and PUSH_TOKEN is not set; set PUSH_TOKEN and send " +
            "Authorization: Bearer <PUSH_TOKEN>, or PUSH_OPEN=1 to take pushes from anyone",
          401,
        );
      };
      for (const path of [SEND_PATH, SEND_XML_PATH, TEST_SEND_PATH]) app.use(path, closed);
    }
    const accept = (format: "auto" | "xml") => async (c: Context) => {
      const m = decodeBody(await readBody(c.req.raw, ctx.maxBodyBytes), format);
      m.channel = HTTP_PUSH;
      m.account = "";
      return answer(c, await ctx.accept(m, { agent: m.to?.trim() }));
    };
    app.post(SEND_PATH, accept("auto"));
    app.post(SEND_XML_PATH, accept("xml"));
    app.post(TEST_SEND_PATH, accept("auto"));
    const { replyUrl } = options;
    const timeoutMs = options.replyTimeoutMs ?? 5000;
    return {
      name: HTTP_PUSH,
      routes: app,
      send: replyUrl === undefined ? undefined : (reply, contact) => postReply(replyUrl, reply, contact, timeoutMs),
      health: () => ({
        replies: replyUrl === undefined ? "none" : "reply_url",
        token: token !== undefined,
        open: token === undefined && options.open !== false,
      }),
    };
  };
}

// The reply as the envelope an agent would see it, addressed to the user; 2xx is sent, anything else says why not.
async function postReply(url: string, reply: Message, contact: ContactRecord, timeoutMs: number): Promise<string> {
  const body = encodeEnvelope({ ...reply, contact: contact.user, name: contact.name, avatar: contact.avatar });
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      body,
      headers: { "content-type": "application/json" },
      signal: AbortSignal.timeout(timeoutMs),
      // A redirect is the receiver's mistake or a way to another host: not followed, the reply not taken.
      redirect: "manual",
    });
  } catch (e) {
    throw new KefuError(
      "push_reply_failed",
      `cannot POST the reply to PUSH_REPLY_URL: ${(e as Error).message}; nothing was sent, try again`,
      502,
    );
  }
  await res.body?.cancel();
  if (!res.ok) {
    throw new KefuError(
      "push_reply_failed",
      `PUSH_REPLY_URL answered ${res.status} ${res.statusText}: the reply was not taken; try again`,
      502,
      { status: res.status },
    );
  }
  return "sent";
}
