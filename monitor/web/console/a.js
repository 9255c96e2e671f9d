// The one-tap action page (/console/a#t=<token>). The token comes in the URL
// fragment, which no server, proxy or Referer sees; it is read once, removed
// from the address bar, and sent only in the body of two POSTs. Nothing
// happens without the confirm button; no cookies, no bearer token.

import { h, callApi, ApiError } from "./dom.js";
import { t, setLang, lang, statusName, actionName } from "./i18n.js";

const LANG_KEY = "monitor.console.lang";
const main = () => document.getElementById("main");
let token = null;
let inspected = null;

function readToken() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const value = params.get("t");
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  return value;
}

function alertText(text, kind) {
  const box = document.getElementById("alert");
  box.textContent = text;
  box.className = `alert alert-${kind}`;
  box.hidden = false;
}

function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(lang() === "zh" ? "zh-CN" : "en-GB", { hour12: false });
}

function header() {
  const node = document.getElementById("header");
  document.title = t("linkTitle");
  node.replaceChildren(
    h("a", { class: "brand", href: "/console/", text: t("title") }),
    h("div", { class: "header-right" },
      h("button", {
        type: "button",
        class: "lang",
        "data-testid": "lang-switch",
        text: t("language"),
        onclick: () => {
          const next = lang() === "zh" ? "en" : "zh";
          localStorage.setItem(LANG_KEY, next);
          setLang(next);
          header();
          draw();
        },
      })),
  );
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.flatMap(([term, value]) => [h("dt", { text: term }), h("dd", { text: value ?? "—" })]));
}

function draw(result) {
  if (!token) {
    main().replaceChildren(h("section", { class: "card" }, h("h1", { text: t("linkTitle") }), h("p", { text: t("linkNoToken") }), h("a", { href: "/console/", text: t("openConsole") })));
    return;
  }
  if (!inspected) {
    main().replaceChildren(h("p", { text: t("linkLoading") }));
    return;
  }
  const ticket = inspected.ticket ?? {};
  const card = h(
    "section",
    { class: "card link-card", "data-testid": "link-card" },
    h("h1", {}, h("span", { class: `badge prio prio-${ticket.priority}`, text: ticket.priority ?? "" }), " ", h("span", { text: ticket.topic ?? ticket.ticket_id ?? "" })),
    facts([
      [t("ticket"), ticket.ticket_id],
      [t("status"), statusName((result?.ticket ?? ticket).status)],
      [t("owner"), (result?.ticket ?? ticket).owner],
      [t("priorityReason"), ticket.priority_reason],
      [t("linkAction"), actionName(inspected.action)],
      [t("linkActor"), inspected.actor],
      [t("linkChannel"), inspected.channel],
      [t("linkExpires"), formatTime(inspected.expires_at)],
    ]),
  );
  if (!result && inspected.usable) {
    card.append(
      h("button", { type: "button", class: "primary big", "data-testid": "link-confirm", text: t("linkConfirm", { action: actionName(inspected.action) }), onclick: confirm }),
    );
  } else if (!result) {
    alertText(t("linkUnusable", { reason: inspected.reason ?? "" }), "error");
  }
  if (ticket.ticket_id) {
    card.append(h("p", {}, h("a", { href: `/console/tickets/${encodeURIComponent(ticket.ticket_id)}`, text: t("openConsole") })));
  }
  main().replaceChildren(card);
}

async function confirm(event) {
  event.target.disabled = true;
  try {
    const result = await callApi("/api/links/redeem", { method: "POST", body: { token } });
    alertText(t("linkDone", { action: actionName(inspected.action), status: statusName(result.ticket?.status) }), "ok");
    draw(result);
  } catch (error) {
    const state = error instanceof ApiError ? error.body?.error?.state : null;
    let text = t("linkFailed", { message: error.message });
    if (state) text += " · " + t("linkState", { state: typeof state === "string" ? state : JSON.stringify(state) });
    alertText(text, "error");
    event.target.remove();
  }
}

async function boot() {
  setLang(localStorage.getItem(LANG_KEY) ?? "zh");
  token = readToken();
  header();
  draw();
  if (!token) return;
  try {
    inspected = await callApi("/api/links/inspect", { method: "POST", body: { token } });
    draw();
  } catch (error) {
    main().replaceChildren(h("section", { class: "card" }, h("h1", { text: t("linkTitle") }), h("a", { href: "/console/", text: t("openConsole") })));
    alertText(t("linkFailed", { message: error.message }), "error");
  }
}

boot();
