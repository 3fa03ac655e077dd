// Why a reply did not go out, in the agent's words. The error's kind (and for WeChat's API its errcode) picks a
// sentence that says what happened and what to do; the server's own text (English, with ids) is kept for the
// tooltip only. Pure: no DOM, so tests/static can check the table.

/** WeChat API errcodes: the window (45015 out of time, 45047 over the count), the account's setup (48001 no API
 * permission, 40001/40125 a wrong AppSecret, 40164 an IP not on the allow-list), the user (43004 unfollowed). */
const ERRCODES = {
  45015: "window",
  45047: "window",
  48001: "admin",
  40001: "admin",
  40125: "admin",
  40164: "admin",
  43004: "unfollowed",
};

const KINDS = {
  // WeChat's reply rules: the user must write first.
  reply_window_closed: "window",
  passive_window_closed: "window",
  // The account (its balance, its API permission, its Token): for the one who runs it.
  wxbot_no_balance: "admin",
  wxbot_bad_request: "admin",
  // Nowhere to send it: no channel (or account) can reply to this contact.
  no_route: "noRoute",
  // The channel cannot send this kind of reply (a type, a file it does not take).
  reply_not_supported: "unsupported",
  wxbot_contact_gone: "gone",
  // The contact is another agent's now (transferred, or taken after this agent went offline).
  not_your_contact: "notYours",
  // Nothing went out and it may work in a minute.
  wxbot_busy: "later",
  wxbot_timeout: "later",
  wxbot_unreachable: "later",
  wechat_unreachable: "later",
  push_reply_failed: "later",
  hook_unreachable: "later",
  store_failed: "later",
  // The file.
  media_not_found: "media",
  media_too_large: "media",
};

/** The i18n key (`fail.*`) that says why a reply of error `kind` (with the error's `data`) was not sent. */
export function failureKey(kind, data = {}) {
  if (kind === "wechat_api_error") {
    const code = Number(data?.errcode);
    return `fail.${Object.hasOwn(ERRCODES, code) ? ERRCODES[code] : "generic"}`;
  }
  return `fail.${typeof kind === "string" && Object.hasOwn(KINDS, kind) ? KINDS[kind] : "generic"}`;
}

/** Every sentence {@link failureKey} may answer (the i18n tables must have them all). */
export const FAILURE_KEYS = [
  ...new Set([...Object.values(KINDS), ...Object.values(ERRCODES), "generic"].map((k) => `fail.${k}`)),
];
