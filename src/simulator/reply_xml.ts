/**
 * Passive replies as WeChat reads them: the XML in the answer to its push,
 * checked for what WeChat checks (addressee, sender, type) and decoded.
 *
 * @module
 */

import { XMLParser, XMLValidator } from "fast-xml-parser";
import { hasDeclaration } from "../core/xml.ts";

/** A passive reply, decoded from the answer's XML. */
export interface PassiveReply {
  type: "text" | "image" | "voice" | "video" | "music" | "news";
  content?: string;
  mediaId?: string;
  title?: string;
  description?: string;
  musicUrl?: string;
  hqMusicUrl?: string;
  thumbMediaId?: string;
  articles?: { title: string; description: string; picUrl: string; url: string }[];
}

const REPLY_TYPES = new Set(["text", "image", "voice", "video", "music", "news"]);

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  processEntities: true,
  htmlEntities: false,
  trimValues: false,
});

/** A parsed XML element. */
export type Xml = Record<string, unknown>;

/** A parsed element's text; "" for a missing or nested one. */
export function text(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** Parse a document whose root is `<xml>`; a string says why it cannot be read. */
export function parseXml(source: string): Xml | string {
  if (hasDeclaration(source)) return "a DOCTYPE or ENTITY declaration";
  const valid = XMLValidator.validate(source);
  if (valid !== true) return valid.err.msg;
  const xml = (parser.parse(source) as Xml).xml;
  return xml !== null && typeof xml === "object" && !Array.isArray(xml) ? xml as Xml : "the root is not <xml>";
}

/**
 * A passive reply as WeChat reads it: addressed to the user from the account, of a type
 * WeChat can send; null for `transfer_customer_service` (nothing shown), a string for why it is unusable.
 */
export function decodeReply(x: Xml, openid: string, accountId: string): PassiveReply | null | string {
  const to = text(x.ToUserName).trim();
  const from = text(x.FromUserName).trim();
  const type = text(x.MsgType).trim();
  if (to !== openid) return `the reply's ToUserName ${JSON.stringify(to)} is not the user ${JSON.stringify(openid)}`;
  if (from !== accountId) {
    return `the reply's FromUserName ${JSON.stringify(from)} is not the account ${JSON.stringify(accountId)}`;
  }
  if (!/^\d+$/.test(text(x.CreateTime).trim())) return "the reply has no integer CreateTime";
  // The server handed the message to WeChat's own customer-service system: nothing to show.
  if (type === "transfer_customer_service") return null;
  if (!REPLY_TYPES.has(type)) return `the reply's MsgType ${JSON.stringify(type)} is not one WeChat can send`;
  const t = type as PassiveReply["type"];
  const part = (name: string): Xml => {
    const v = x[name];
    return v !== null && typeof v === "object" && !Array.isArray(v) ? v as Xml : {};
  };
  const media = (name: string) => text(part(name).MediaId).trim();
  switch (t) {
    case "text":
      if (text(x.Content) === "") return "the text reply has no Content";
      return { type: t, content: text(x.Content) };
    case "image":
    case "voice": {
      const mediaId = media(t === "image" ? "Image" : "Voice");
      return mediaId === "" ? `the ${t} reply has no MediaId` : { type: t, mediaId };
    }
    case "video": {
      const v = part("Video");
      const mediaId = text(v.MediaId).trim();
      if (mediaId === "") return "the video reply has no MediaId";
      return { type: t, mediaId, title: text(v.Title), description: text(v.Description) };
    }
    case "music": {
      const m = part("Music");
      return {
        type: t,
        title: text(m.Title),
        description: text(m.Description),
        musicUrl: text(m.MusicUrl).trim(),
        hqMusicUrl: text(m.HQMusicUrl).trim(),
        thumbMediaId: text(m.ThumbMediaId).trim(),
      };
    }
    case "news": {
      const items = part("Articles").item;
      const list = (Array.isArray(items) ? items : items === undefined ? [] : [items]) as Xml[];
      if (list.length === 0 || list.length > 8) return `a news reply holds 1 to 8 articles, got ${list.length}`;
      return {
        type: t,
        articles: list.map((a) => ({
          title: text(a?.Title),
          description: text(a?.Description),
          picUrl: text(a?.PicUrl).trim(),
          url: text(a?.Url).trim(),
        })),
      };
    }
  }
}
