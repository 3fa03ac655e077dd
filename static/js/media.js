// Users' images inline (click to enlarge), voice and video in players with their length, a file kefu could not
// fetch with a retry button; never the bare URL. And the image overlay.

import { state } from "./state.js";
import { $, button, el, isWebUrl, link, text, toast } from "./dom.js";
import { t } from "./i18n.js";
import { formatDuration } from "./time.js";
import { isKefuFile, mediaUrl } from "./api.js";
import { isOpen, sendFrame } from "./socket.js";

// What to show a file as: by its stored type when kefu says it, else by the message type.
function mediaKind(m) {
  const [major] = text(m.mediaType).split("/");
  if (major === "image" || m.type === "image") return "image";
  if (major === "audio" || m.type === "voice") return "voice";
  if (major === "video" || m.type === "video" || m.type === "shortvideo") return "video";
  return "file";
}

// A file kefu or the browser cannot show: the reason, and a link to the file itself when there is one.
function mediaProblem(wrap, message, src) {
  const line = el("div", "media-error", message);
  line.dataset.testid = "media-error";
  line.setAttribute("role", "note");
  wrap.append(line);
  if (src) wrap.append(link(src, t("media.open")));
}

// Ask kefu to fetch a failed file again; the message comes back under its id, with its file or a new reason.
function retryButton(m) {
  const b = button(t("media.retry"), "media-retry", "media-retry");
  b.addEventListener("click", () => {
    const c = state.contacts.get(state.selected);
    if (!c || !isOpen()) return toast(t("media.notConnected"));
    (c.retrying ??= new Set()).add(m.id);
    b.disabled = true;
    b.textContent = t("media.retrying");
    sendFrame({ data: { msg_type: "media_retry", contact_id: c.id, id: m.id } });
  });
  return b;
}

// The conversation grows when an image or a player learns its size: stay at the end if the agent was there.
function keepAtBottom() {
  if (state.atBottom) $("conversation").scrollTop = $("conversation").scrollHeight;
}

function renderImage(wrap, src) {
  // A link, so a middle click still opens the file in a tab; a plain click enlarges it here.
  const a = link(src, "");
  a.className = "thumb";
  a.title = t("media.enlarge");
  a.dataset.testid = "thumb";
  const img = el("img");
  img.src = src;
  img.alt = t("media.image");
  img.addEventListener("load", keepAtBottom);
  img.addEventListener("error", () => {
    a.hidden = true;
    mediaProblem(wrap, t("media.imageFailed"), src);
  }, { once: true });
  a.append(img);
  a.addEventListener("click", (e) => {
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    openLightbox(src, a);
  });
  wrap.append(a);
}

function renderPlayer(wrap, kind, src) {
  const player = el(kind === "voice" ? "audio" : "video", `player ${kind}`);
  player.controls = true;
  // Enough to learn the length; the rest loads when the agent plays it (kefu answers Range requests).
  player.preload = "metadata";
  player.dataset.testid = kind;
  const label = t(`media.${kind}`);
  const info = el("span", "media-info", label);
  info.dataset.testid = "duration";
  const showLength = () => {
    if (!Number.isFinite(player.duration)) return;
    info.textContent = `${label} ${formatDuration(player.duration)}`;
    wrap.dataset.duration = String(player.duration);
  };
  player.addEventListener("loadedmetadata", () => {
    showLength();
    keepAtBottom();
  });
  player.addEventListener("durationchange", showLength);
  player.addEventListener("error", () => {
    player.remove();
    info.remove();
    // Chromium says which: a format it cannot play, or an answer that was not the file (expired sign-in, …).
    const why = text(player.error?.message) || t("media.cannotLoad");
    mediaProblem(wrap, t("media.cannotPlay", { why }), src);
  }, { once: true });
  player.src = src;
  const row = el("div", "player-row");
  row.append(player, info);
  wrap.append(row);
}

export function renderMedia(m) {
  const wrap = el("div", "media");
  wrap.dataset.testid = "media";
  // kefu serves its own files (users' media, the agent's uploads); other http(s) URLs are shown as they are.
  const src = m.media !== "" && (isWebUrl(m.media) || isKefuFile(m.media)) ? mediaUrl(m.media) : "";
  if (m.preparing) {
    wrap.dataset.state = "preparing";
    wrap.append(el("span", "media-preparing", t("media.preparing")));
    return wrap;
  }
  if (m.mediaError) {
    // With no file kefu could not fetch it; with one it kept the file as it came (not converted).
    mediaProblem(wrap, t(src ? "media.notConverted" : "media.notFetched", { reason: m.mediaError }), src);
    if (!src && m.id) wrap.append(retryButton(m));
    return wrap;
  }
  if (src === "") {
    // A MediaId rather than a URL: there is nothing to show or link to.
    wrap.append(el("code", "", m.media));
    return wrap;
  }
  const kind = mediaKind(m);
  wrap.dataset.kind = kind;
  if (kind === "image") renderImage(wrap, src);
  else if (kind === "voice" || kind === "video") renderPlayer(wrap, kind, src);
  else wrap.append(link(src, t("media.open")));
  return wrap;
}

export function openLightbox(src, opener) {
  state.lightboxOpener = opener;
  $("lightbox-img").src = src;
  $("lightbox-open").href = src;
  $("lightbox").hidden = false;
  $("lightbox-close").focus();
}

export function closeLightbox() {
  if ($("lightbox").hidden) return;
  $("lightbox").hidden = true;
  $("lightbox-img").removeAttribute("src");
  const opener = state.lightboxOpener;
  state.lightboxOpener = null;
  if (opener?.isConnected) opener.focus();
}
