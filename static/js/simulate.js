// "Simulate a WeChat user": a user's message in the seed's XML through POST /send, for trying the page alone. A
// development tool: shown only when kefu says so (GET /healthz `simulate`: sign-in off and the push open), never in
// production, where the panel is not on the page at all.

import { HEALTH_PATH, TEST_SEND_PATH } from "./protocol.js";
import { $, randomDigits, text } from "./dom.js";
import { t } from "./i18n.js";
import { nowSeconds } from "./time.js";

function cdata(s) {
  return `<![CDATA[${s.replaceAll("]]>", "]]]]><![CDATA[>")}]]>`;
}

async function simulate() {
  const out = $("sim-result");
  const field = (id) => $(id).value;
  const xml = `<xml><ToUserName>${cdata(field("sim-to").trim())}</ToUserName>` +
    `<FromUserName>${cdata(field("sim-from").trim())}</FromUserName>` +
    `<CreateTime>${nowSeconds()}</CreateTime><MsgType>${cdata(field("sim-type").trim() || "text")}</MsgType>` +
    `<Content>${cdata(field("sim-content"))}</Content><MsgId>${randomDigits(18)}</MsgId></xml>`;
  out.dataset.status = "sending";
  out.textContent = t("sim.sending");
  try {
    const res = await fetch(TEST_SEND_PATH, { method: "POST", headers: { "content-type": "text/xml" }, body: xml });
    const body = await res.text();
    let json;
    try {
      json = JSON.parse(body);
    } catch {
      json = undefined;
    }
    const status = text(json?.data?.status) || (json?.data?.error ? "error" : `HTTP ${res.status}`);
    const detail = text(json?.data?.detail);
    out.dataset.status = status;
    out.textContent = `${res.status} ${status}${detail ? `: ${detail}` : ""}\n${
      json ? JSON.stringify(json, null, 2) : body
    }`;
  } catch (e) {
    out.dataset.status = "error";
    out.textContent = t("sim.failed", { reason: e.message });
  }
}

/** Show the panel only when kefu says it is a development setup; anything else (no answer, no field) keeps it out. */
export async function offerSimulate() {
  const panel = $("simulate");
  try {
    const res = await fetch(HEALTH_PATH, { cache: "no-store" });
    const body = await res.json();
    panel.hidden = body?.simulate !== true;
  } catch {
    panel.hidden = true;
  }
  if (panel.hidden) panel.open = false;
  // Decided (the browser tests wait for it): "on" or "off".
  panel.dataset.offered = panel.hidden ? "off" : "on";
}

export function wireSimulate() {
  $("sim-to").addEventListener("input", (e) => e.target.dataset.edited = "1");
  $("sim-form").addEventListener("submit", (e) => {
    e.preventDefault();
    simulate();
  });
}
