// The reply box: text (Enter sends, Shift+Enter a new line), files, "typing…", a draft per contact, and disabled
// with the reason when WeChat would refuse the reply (its reply window is closed).

import { Code, CODE_OF_TYPE, UPLOAD_PATH } from "./protocol.js";
import { saveDraft, state } from "./state.js";
import { $, newId, text, toast } from "./dom.js";
import { t } from "./i18n.js";
import { nowSeconds } from "./time.js";
import { agentFetch, agentUrl, SignedOut } from "./api.js";
import { isOpen, sendFrame } from "./socket.js";
import { contactChanged } from "./contacts.js";
import { appendMessage, messageChanged } from "./conversation.js";
import { windowRefusal } from "./reply_window.js";

// WeChat shows "typing…" for 15 s; a keystroke re-announces it at most this often.
const TYPING_EVERY_MS = 10_000;

// One reply envelope (seed §1.2 shape, contact_id = the user); shown as pending until the server answers 103 or -1.
function sendEnvelope(c, type, msgBody) {
  if (!isOpen()) {
    toast(t("reply.notConnected"));
    return;
  }
  const id = newId();
  sendFrame({
    data: { id, msg_type: type, contact_id: c.id, msg: msgBody },
    result: { code: CODE_OF_TYPE[type], message: "common" },
  });
  const msg = {
    id,
    direction: "out",
    code: CODE_OF_TYPE[type],
    type,
    content: text(msgBody.content),
    media: text(msgBody.media_path),
    time: nowSeconds(),
    status: "pending",
  };
  c.messages.push(msg);
  c.seen.add(id);
  state.pending.push({ contact: c.id, msg, lastTimeBefore: c.lastTime });
  c.lastTime = Math.max(c.lastTime, msg.time);
  state.typingSent.delete(c.id);
  contactChanged(c);
  // The agent's own reply: the conversation goes to its end.
  appendMessage(c, msg);
}

export function sendReply() {
  const box = $("reply-text");
  const content = box.value.trim();
  const c = state.contacts.get(state.selected);
  if (content === "" || !c) return;
  if (!isOpen()) {
    toast(t("reply.notConnected"));
    return;
  }
  const refusal = windowRefusal(c);
  if (refusal) {
    toast(refusal);
    return;
  }
  sendEnvelope(c, "text", { content });
  box.value = "";
  saveDraft(c, "");
}

/**
 * 重发: a failed reply `m` of `c` goes again as a new attempt (a new id, at the end of the conversation, so replies
 * keep the order the agent sent them in); the failed one stays as it was, without its button.
 */
export function resend(c, m) {
  if (m.direction !== "out" || m.status !== "failed" || m.resent) return;
  if (!isOpen()) {
    toast(t("reply.notConnected"));
    return;
  }
  const refusal = windowRefusal(c);
  if (refusal) {
    toast(refusal);
    return;
  }
  m.resent = true;
  messageChanged(c, m);
  sendEnvelope(c, m.type, m.media !== "" ? { media_path: m.media } : { content: m.content });
}

// "typing…" on the user's phone while the agent writes (kefu checks WeChat's rules and may skip it).
function announceTyping() {
  const c = state.contacts.get(state.selected);
  if (!c || !isOpen() || $("reply-text").value.trim() === "") return;
  const last = state.typingSent.get(c.id) ?? 0;
  if (Date.now() - last < TYPING_EVERY_MS) return;
  state.typingSent.set(c.id, Date.now());
  sendFrame({ data: { msg_type: "typing", contact_id: c.id }, result: { code: Code.typing } });
}

// A file goes to kefu first (it uploads it to WeChat when the reply is sent), then the reply names it.
async function sendFile(file) {
  const c = state.contacts.get(state.selected);
  if (!c || !file) return;
  const type = file.type.startsWith("image/")
    ? "image"
    : file.type.startsWith("audio/")
    ? "voice"
    : file.type.startsWith("video/")
    ? "video"
    : "";
  if (type === "") {
    toast(t("reply.fileType", { name: file.name }));
    return;
  }
  try {
    const url = agentUrl(UPLOAD_PATH, { filename: file.name });
    const body = await agentFetch(url, { method: "POST", body: file, headers: { "content-type": file.type } });
    sendEnvelope(c, type, { media_path: text(body.data.media_path) });
  } catch (e) {
    if (!(e instanceof SignedOut)) toast(t("reply.cannotUpload", { name: file.name, reason: e.message }));
  }
}

/** Enabled when connected with a conversation open whose reply window (if it has one) is open. */
export function updateReplyControls() {
  const c = state.contacts.get(state.selected);
  const refusal = windowRefusal(c);
  const ready = isOpen() && c !== undefined && refusal === "";
  const box = $("reply-text");
  // Called for every message: what is already so is not written again (a write, even the same, costs a layout).
  const set = (node, key, value) => {
    if (node[key] !== value) node[key] = value;
  };
  set(box, "disabled", !ready);
  set($("reply-send"), "disabled", !ready);
  set($("reply-file"), "disabled", !ready);
  // Why a reply is refused is said once, above the box; the box itself says only that it cannot be used.
  set(box, "placeholder", refusal ? t("reply.closedPlaceholder") : t("reply.placeholder"));
  set(box.dataset, "refusal", refusal);
  set($("reply-refusal"), "textContent", refusal);
  set($("reply-refusal"), "hidden", refusal === "");
}

export function wireComposer() {
  $("reply-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sendReply();
  });
  $("reply-text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      sendReply();
    }
  });
  $("reply-text").addEventListener("input", () => {
    const c = state.contacts.get(state.selected);
    if (c) saveDraft(c, $("reply-text").value);
    announceTyping();
  });
  // A failed reply's 重发 (one listener for the whole conversation).
  $("conversation").addEventListener("click", (e) => {
    const again = e.target.closest('[data-testid="resend"]');
    const id = again?.closest("[data-id]")?.dataset.id;
    const c = state.contacts.get(state.selected);
    const m = id && c ? c.messages.find((x) => x.id === id && x.direction === "out") : undefined;
    if (m) resend(c, m);
  });
  $("reply-file").addEventListener("change", (e) => {
    const file = e.target.files?.[0];
    e.target.value = "";
    sendFile(file);
  });
}
