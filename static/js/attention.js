// Getting the agent's attention: the unread total in the tab title ("(3) kefu"), a short tone (WebAudio, no file)
// and a desktop notification, for a new conversation, or a message while the tab is hidden. Notifications only
// after the browser's permission, asked from the bell button (a user gesture, as browsers require).

import { displayName, state } from "./state.js";
import { $ } from "./dom.js";
import { t } from "./i18n.js";
import { previewOf, unreadTotal } from "./contacts.js";
import { summaryMessage } from "./frames.js";
import { queueName } from "./workflow.js";

const ALERTS_KEY = "kefu.alerts";

/** Alerts on (tone and notifications) unless the agent turned them off with the bell. */
let alertsOn = localStorage.getItem(ALERTS_KEY) !== "off";
let audio = null;
/** Counted for the tests (a tone cannot be heard there): tones played, notifications shown. */
export const attentionLog = { tones: 0, notifications: 0 };

export function updateTitle() {
  // The list keeps the sum as contacts change: no walk over every contact for each message. The open conversation's
  // messages that came while the tab was hidden are unread (not seen yet), so they count there too.
  const total = unreadTotal();
  const base = t("app.title");
  const title = total > 0 ? `(${total}) ${base}` : base;
  if (document.title !== title) document.title = title;
}

/** A new message `m` of `c` came live; `isNew`: the first of a new conversation. */
export function attend(c, m, isNew) {
  if (m.direction !== "in") return;
  if (!alertsOn) return;
  if (!isNew && !document.hidden) return;
  tone();
  notify(displayName(c), previewOf(m, displayName(c)), c.id);
}

/** A user waiting in the queue: put back by `by` (not this agent), or writing again ("" by): any agent may take. */
export function attendQueue(s, by) {
  if (!alertsOn || by === state.agent) return;
  const name = queueName(s);
  tone();
  // Why they wait: the agent's release line with its note, or what the user wrote meanwhile.
  const body = s.last_message ? previewOf(summaryMessage(s.last_message), name) : "";
  notify(t("queue.notify", { name }), body, "", "kefu-queue");
}

function tone() {
  // Browsers let an AudioContext play only after a user gesture on the page; until then the tone is skipped.
  try {
    if (audio === null || audio.state !== "running") return;
    const now = audio.currentTime;
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.setValueAtTime(880, now);
    osc.frequency.setValueAtTime(660, now + 0.12);
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.3);
    osc.connect(gain).connect(audio.destination);
    osc.start(now);
    osc.stop(now + 0.32);
    attentionLog.tones++;
  } catch {
    // No audio (a browser without WebAudio, no output device): the title still counts.
  }
}

// `open`: the contact whose conversation a click opens ("" for none); one notification per tag at a time.
function notify(title, body, open, tag = `kefu-${open}`) {
  if (typeof Notification === "undefined" || Notification.permission !== "granted") return;
  const n = new Notification(title, { body, tag, lang: document.documentElement.lang });
  n.onclick = () => {
    globalThis.focus();
    if (open) document.dispatchEvent(new CustomEvent("kefu:open", { detail: open }));
    n.close();
  };
  attentionLog.notifications++;
}

/** The bell: alerts on or off; turning them on asks for notifications (this click is the gesture browsers want). */
export function renderBell() {
  const b = $("bell");
  const denied = typeof Notification !== "undefined" && Notification.permission === "denied";
  b.setAttribute("aria-pressed", String(alertsOn));
  b.title = alertsOn ? (denied ? t("bell.onDenied") : t("bell.on")) : t("bell.off");
  b.setAttribute("aria-label", b.title);
}

export function wireBell() {
  $("bell").addEventListener("click", async () => {
    alertsOn = !alertsOn;
    localStorage.setItem(ALERTS_KEY, alertsOn ? "on" : "off");
    if (alertsOn) {
      audio ??= new AudioContext();
      audio.resume().catch(() => {});
      if (typeof Notification !== "undefined" && Notification.permission === "default") {
        await Notification.requestPermission().catch(() => {});
      }
    }
    renderBell();
  });
  // Any click on the page is a gesture that lets the tone play later.
  document.addEventListener("pointerdown", () => {
    if (!alertsOn) return;
    audio ??= new AudioContext();
    if (audio.state === "suspended") audio.resume().catch(() => {});
  }, { once: true });
}
