/**
 * HTTP pushes into kefu: the seed's JSON (§2.1) and simplified XML (§2.2)
 * endpoints and the test alias `/send`. Each answers what happened to the
 * message: delivered now (200), queued for an offline agent (202), a repeat
 * (200), or rejected with a JSON error (4xx/503).
 *
 * @module
 */

import { type Context, Hono } from "hono";
import { readBody } from "../../core/body.ts";
import { KefuError, quote } from "../../core/errors.ts";
import type { Hub, InboundResult } from "../../hub/hub.ts";
import { decodeEnvelope } from "../../envelope/codec.ts";
import type { Message } from "../../core/message.ts";
import { Code, SEND_PATH, SEND_XML_PATH, TEST_SEND_PATH } from "../../envelope/protocol.ts";
import { decodeXml } from "../wx_official/xml_codec.ts";

/** Options for {@link inboundRoutes}. */
export interface InboundRoutesOptions {
  hub: Hub;
  /** Largest request body accepted; larger gets 413. */
  maxBodyBytes: number;
}

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

/** The push endpoints, as a sub-app to mount at `/`. */
export function inboundRoutes(options: InboundRoutesOptions): Hono {
  const { hub, maxBodyBytes } = options;
  const app = new Hono();
  const accept = (format: "auto" | "xml") => async (c: Context) =>
    answer(c, await hub.inbound(decodeBody(await readBody(c.req.raw, maxBodyBytes), format)));
  app.post(SEND_PATH, accept("auto"));
  app.post(SEND_XML_PATH, accept("xml"));
  app.post(TEST_SEND_PATH, accept("auto"));
  return app;
}
