/**
 * The one error type of kefu for what a request, a frame or a message got
 * wrong. Codecs, the hub, channels and routes throw it; `app.onError` turns it
 * into a JSON error body, an agent session into an error event of its dialect.
 *
 * @module
 */

/** Machine-readable error kinds, sent as `data.error`. Documented in README.md. */
export type ErrorKind =
  | "invalid_json"
  | "invalid_xml"
  | "xml_doctype_forbidden"
  | "invalid_envelope"
  | "missing_field"
  | "wrong_type"
  | "invalid_time"
  | "invalid_range"
  | "code_mismatch"
  | "empty_body"
  | "unsupported_body"
  | "invalid_utf8"
  | "body_too_large"
  | "queue_full"
  | "not_your_contact"
  | "already_taken"
  | "conflict"
  | "unknown_agent"
  | "invalid_transfer"
  | "missing_userid"
  | "invalid_userid"
  | "upgrade_required"
  | "not_found"
  | "method_not_allowed"
  | "no_route"
  | "auth_required"
  | "auth_failed"
  | "invalid_token"
  | "token_expired"
  | "agent_mismatch"
  | "link_expired"
  | "token_revoked"
  | "too_many_attempts"
  | "replayed_request"
  | "body_timeout"
  | "push_reply_failed"
  | "wxbot_timeout"
  | "wxbot_unreachable"
  | "wxbot_busy"
  | "wxbot_bad_request"
  | "wxbot_contact_gone"
  | "wxbot_no_balance"
  | "wxbot_refused"
  | "unknown_dialect"
  | "unknown_event"
  | "binary_not_supported"
  | "message_too_big"
  | "bad_signature"
  | "stale_timestamp"
  | "decrypt_failed"
  | "appid_mismatch"
  | "wechat_api_error"
  | "wechat_unreachable"
  | "reply_window_closed"
  | "reply_not_supported"
  | "passive_window_closed"
  | "media_not_found"
  | "media_too_large"
  | "store_failed"
  | "draining"
  | "hook_api_error"
  | "hook_unreachable"
  | "role_required"
  | "internal";

/** An error with an HTTP status and a kind; `message` says what was wrong and quotes the value. */
export class KefuError extends Error {
  readonly kind: ErrorKind;
  readonly status: number;
  /** More fields for `data` of the error answer (e.g. WeChat's `errcode`). */
  readonly data?: Record<string, unknown>;

  constructor(kind: ErrorKind, message: string, status = 400, data?: Record<string, unknown>) {
    super(message);
    this.name = "KefuError";
    this.kind = kind;
    this.status = status;
    this.data = data;
  }
}

/** Quote a value for an error message, cut to a readable length. */
export function quote(value: unknown, max = 60): string {
  let s: string;
  try {
    s = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);
}
