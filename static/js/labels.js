// What a contact is called when WeChat gives no name: an Official Account user is only an openid (28 characters
// that look alike), a group without a name only its …@chatroom id. Each gets a short stable label from the id
// (用户·a1b2 / User·a1b2, 群聊·a1b2 / Group·a1b2); the id itself is in the contact's details.

import { t } from "./i18n.js";

/** Four hex digits of the id's FNV-1a hash: the same id, the same label, on every page and after every reload. */
export function shortTag(id) {
  // A label, not a secret: a 32-bit FNV-1a, synchronous (crypto.subtle is missing on a plain-http LAN address).
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h & 0xffff).toString(16).padStart(4, "0");
}

/** A group chat's id (personal WeChat through the PC hook or WXBot). */
export function isGroupId(id) {
  return id.endsWith("@chatroom");
}

/**
 * The name an agent sees for `{id, name, displayName, channel}`: the one agents gave, else the one the channel
 * says (a WeChat nickname, a group's name), else a label for a nameless Official Account user or group, else the id.
 */
export function contactLabel({ id, name, displayName, channel }) {
  if (displayName) return displayName;
  if (name && name !== id) return name;
  if (isGroupId(id)) return t("label.group", { tag: shortTag(id) });
  if (channel === "wx_official_account") return t("label.user", { tag: shortTag(id) });
  return id;
}
