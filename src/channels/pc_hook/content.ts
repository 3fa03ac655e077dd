/**
 * The body of one pushed chat message by its WeChat `type` (1 text, 3 image,
 * 34 voice, 43 video, 47 emoji, 48 location, 49 app/link/file, 42 card,
 * 37 friend request, 50 call, 10000 system notice, 10002 recall) as kefu's
 * message type, content and extra fields. Pure: no I/O, no state.
 *
 * The hook pushes media as WeChat XML with CDN handles, never the bytes or a
 * URL: such messages reach agents as a line saying what came and that it was
 * not downloaded, the XML kept in `extra.xml`.
 *
 * @module
 */

import { readMessageXml } from "../../core/xml.ts";

/** What a message body became. */
export interface Body {
  type: string;
  content: string;
  /** Fields for `Message.extra` (the envelope shows some: location, link). */
  extra: Record<string, string>;
  /** A user message from a group member gets the member shown before it; system lines do not. */
  fromMember: boolean;
}

type Node = Record<string, unknown>;

// The document as objects, or undefined when it is not well-formed XML (the raw text is shown then).
function readXml(text: string): Node | undefined {
  return readMessageXml(text);
}

function child(n: unknown, key: string): Node | undefined {
  const v = (n as Node | undefined)?.[key];
  return typeof v === "object" && v !== null && !Array.isArray(v) ? v as Node : undefined;
}

function text(n: unknown, key: string): string {
  const v = (n as Node | undefined)?.[key];
  if (typeof v === "string") return v.trim();
  // An element with attributes and text: fast-xml-parser puts the text under "#text".
  const inner = child(n, key)?.["#text"];
  return typeof inner === "string" ? inner.trim() : "";
}

const NOT_DOWNLOADED = "未下载：PC hook 只推送微信 CDN 句柄，请在登录该微信的电脑上查看";

const MEDIA: Record<number, [string, string]> = {
  3: ["image", "图片"],
  34: ["voice", "语音"],
  43: ["video", "视频"],
  47: ["emoji", "表情"],
};

/** The body of a pushed message of WeChat type `wxType` with `content` (the member prefix already removed). */
export function describeBody(wxType: number, content: string): Body {
  const media = MEDIA[wxType];
  if (wxType === 1) return { type: "text", content, extra: {}, fromMember: true };
  if (media !== undefined) {
    return {
      type: media[0],
      content: `[${media[1]}] ${NOT_DOWNLOADED}`,
      extra: { xml: content },
      fromMember: true,
    };
  }
  const doc = readXml(content);
  switch (wxType) {
    case 48: {
      const loc = child(child(doc, "msg"), "location");
      if (loc === undefined) break;
      const label = String(loc["@label"] ?? "");
      const poi = String(loc["@poiname"] ?? "");
      return {
        type: "location",
        content: [poi, label].filter((s) => s !== "").join(" ") || "[位置]",
        extra: {
          Location_X: String(loc["@x"] ?? ""),
          Location_Y: String(loc["@y"] ?? ""),
          Scale: String(loc["@scale"] ?? ""),
          Label: label,
        },
        fromMember: true,
      };
    }
    case 49:
      return appMessage(doc, content);
    case 42: {
      const msg = child(doc, "msg");
      if (msg === undefined) break;
      const user = String(msg["@username"] ?? "");
      return {
        type: "card",
        content: `[名片] ${String(msg["@nickname"] ?? "") || user}${user ? ` (${user})` : ""}`,
        extra: { card_user: user, xml: content },
        fromMember: true,
      };
    }
    case 37: {
      const msg = child(doc, "msg");
      if (msg === undefined) break;
      const user = String(msg["@fromusername"] ?? "");
      return {
        type: "friend_request",
        content: `[好友验证] ${String(msg["@fromnickname"] ?? "") || user} (${user})：${String(msg["@content"] ?? "")}`,
        extra: { request_user: user, xml: content },
        fromMember: false,
      };
    }
    case 50:
      return { type: "voip", content: "[音视频通话]", extra: { xml: content }, fromMember: true };
    case 10000:
      return { type: "event", content, extra: { Event: "system_notice" }, fromMember: false };
    case 10002: {
      const replace = text(child(child(doc, "sysmsg"), "revokemsg"), "replacemsg");
      return {
        type: "event",
        content: replace || "[撤回了一条消息]",
        extra: { Event: "recall", xml: content },
        fromMember: false,
      };
    }
  }
  if (wxType === 48 || wxType === 42 || wxType === 37) {
    // A documented type whose body did not read: shown as it came, with the reason.
    return {
      type: `wx_type_${wxType}`,
      content: `[未能解析的类型 ${wxType} 消息] ${content}`,
      extra: { xml: content },
      fromMember: true,
    };
  }
  return {
    type: `wx_type_${wxType}`,
    content: `[未知类型 ${wxType} 的消息] ${content}`,
    extra: { raw: content },
    fromMember: true,
  };
}

// Type 49: WeChat's app message; `appmsg.type` tells a link (5) from a file (6), a quote (57) and the rest.
function appMessage(doc: Node | undefined, raw: string): Body {
  const app = child(child(doc, "msg"), "appmsg");
  if (app === undefined) {
    return { type: "app", content: `[未能解析的应用消息] ${raw}`, extra: { xml: raw }, fromMember: true };
  }
  const title = text(app, "title");
  const kind = text(app, "type");
  switch (kind) {
    case "5":
      return {
        type: "link",
        content: title,
        extra: { Title: title, Description: text(app, "des"), Url: text(app, "url") },
        fromMember: true,
      };
    case "6":
      return {
        type: "file",
        content: `[文件] ${title} ${NOT_DOWNLOADED}`,
        extra: { Title: title, xml: raw },
        fromMember: true,
      };
    case "57": {
      // A reply quoting an earlier message: the title is what the user wrote.
      const ref = child(app, "refermsg");
      const quoted = ref ? `${text(ref, "displayname")}: ${text(ref, "content")}` : "";
      return { type: "text", content: title, extra: quoted ? { quoted } : {}, fromMember: true };
    }
  }
  return {
    type: "app",
    content: `[应用消息${kind ? ` ${kind}` : ""}] ${title}`.trim(),
    extra: { app_type: kind, Title: title, xml: raw },
    fromMember: true,
  };
}
