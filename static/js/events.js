// A user's WeChat event (a follow, a menu click, a scan…) as one line in the agent's language, worded by the page
// from what happened (`event`, `event_key` of the message), naming the user as the list does, never by openid.

import { getLang, t } from "./i18n.js";

// Events worded the same way whatever their key.
const PLAIN = {
  unsubscribe: "event.unsubscribe",
  LOCATION: "event.location",
  location_select: "event.location",
  scancode_push: "event.scancode",
  scancode_waitmsg: "event.scancode",
  pic_sysphoto: "event.photo",
  pic_photo_or_album: "event.photo",
  pic_weixin: "event.photo",
  view_miniprogram: "event.miniprogram",
  kf_create_session: "event.kfCreate",
  kf_close_session: "event.kfClose",
  kf_switch_session: "event.kfSwitch",
  TEMPLATESENDJOBFINISH: "event.template",
};

/** The line of event message `m` (`wxEvent`, `eventKey`, `content`), `who` the user as the agent knows them. */
export function eventLine(m, who) {
  const event = m.wxEvent ?? "";
  const key = m.eventKey ?? "";
  if (event === "subscribe") {
    return key.startsWith("qrscene_")
      ? t("event.subscribeScene", { who, scene: key.slice("qrscene_".length) })
      : t("event.subscribe", { who });
  }
  if (event === "SCAN") return t("event.scan", { who, scene: key });
  if (event === "CLICK") return t("event.click", { who, key });
  if (event === "VIEW") return t("event.view", { who, url: key });
  if (Object.hasOwn(PLAIN, event)) return t(PLAIN[event], { who });
  if (event !== "") return t("event.other", { who, event });
  // Not told which event (a summary of the last message): kefu's own line is Chinese, so said plainly in English.
  return getLang() === "zh" && m.content ? m.content : t("event.unknown", { who });
}
