// The on-call console: sign-in, ticket queue, ticket page, board, reviews.
// Client-side routing with the history API; live updates from /api/stream
// read with fetch() (SSE format, bearer header); every value from the API
// is written with textContent or as an attribute, never as HTML.

import { h, svg, safeUrl, callApi, ApiError } from "./dom.js";
import { t, setLang, lang, statusName, actionName } from "./i18n.js";

const BASE = "/console";
const TOKEN_KEY = "monitor.console.token";
const LANG_KEY = "monitor.console.lang";
const STATUSES = ["open", "acknowledged", "in_progress", "resolved", "closed"];
const ACTIVE = ["open", "acknowledged", "in_progress"];
const PRIORITIES = ["P1", "P2", "P3", "P4"];
// Statuses each action is allowed from (the API decides; this only picks buttons).
const ACTION_SOURCES = {
  acknowledge: ["open"],
  start: ["open", "acknowledged"],
  assign: ["open", "acknowledged", "in_progress", "resolved"],
  transfer: ["open", "acknowledged", "in_progress", "resolved"],
  comment: STATUSES,
  escalate: ACTIVE,
  resolve: ACTIVE,
  close: ["resolved"],
  reopen: ["resolved", "closed"],
};
// Fields each action's form shows besides the note.
const ACTION_FIELDS = {
  assign: ["owner"],
  transfer: ["team", "owner"],
  close: ["root_cause", "resolution", "lessons"],
};
// Actions done in one tap (the note is optional).
const ONE_TAP = new Set(["acknowledge", "start"]);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  me: null,
  tickets: [],
  total: 0,
  filters: { status: ACTIVE.join(","), priority: "", topic: "", owner: "", team: "", q: "" },
  ticket: null,
  events: [],
  copies: {},
  live: "connecting",
  stream: null,
  view: null,
};

const main = () => document.getElementById("main");
const alertBox = () => document.getElementById("alert");

// --- alerts --------------------------------------------------------------

function showError(error) {
  const box = alertBox();
  const message =
    error instanceof ApiError
      ? error.status === 0
        ? t("networkError", { message: error.message })
        : t("errorPrefix", { status: error.status, message: error.message })
      : String(error?.message ?? error);
  box.textContent = message;
  box.className = "alert alert-error";
  box.hidden = false;
  box.dataset.status = error instanceof ApiError ? String(error.status) : "";
}

function showNotice(message) {
  const box = alertBox();
  box.textContent = message;
  box.className = "alert alert-ok";
  box.hidden = false;
  box.dataset.status = "";
}

function clearAlert() {
  const box = alertBox();
  box.hidden = true;
  box.textContent = "";
}

// --- API -----------------------------------------------------------------

async function api(path, options = {}) {
  try {
    return await callApi("/api" + path, { ...options, token: state.token });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401 && state.token) {
      signOut(error.message);
    }
    throw error;
  }
}

// --- time ----------------------------------------------------------------

function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(lang() === "zh" ? "zh-CN" : "en-GB", {
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  });
}

function formatSpan(ms) {
  const total = Math.floor(Math.abs(ms) / 1000);
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  const clock = `${pad(hours)}:${pad(minutes)}:${pad(seconds)}`;
  return days > 0 ? `${days}d ${clock}` : clock;
}

// Which SLA deadline runs: acknowledge while open, resolve while being worked.
function slaDue(ticket) {
  if (ticket.status === "open") return { kind: "ack", due: ticket.ack_due };
  if (ticket.status === "acknowledged" || ticket.status === "in_progress") {
    return { kind: "resolve", due: ticket.resolve_due };
  }
  return null;
}

function clockElement(ticket) {
  const sla = slaDue(ticket);
  const node = h("span", { class: "clock", "data-testid": "sla-clock" });
  if (!sla || !sla.due) {
    node.textContent = t("noClock");
    return node;
  }
  node.dataset.due = sla.due;
  node.title = `${sla.kind === "ack" ? t("ackDue") : t("resolveDue")} ${formatTime(sla.due)}`;
  node.append(h("span", { class: "clock-label", text: sla.kind === "ack" ? t("ackDue") : t("resolveDue") }), h("span", { class: "clock-value" }));
  tickClock(node, Date.now());
  return node;
}

function tickClock(node, now) {
  const due = Date.parse(node.dataset.due);
  if (Number.isNaN(due)) return;
  const left = due - now;
  const value = node.querySelector(".clock-value");
  const overdue = left < 0;
  value.textContent = overdue ? t("overdue", { time: formatSpan(left) }) : t("remaining", { time: formatSpan(left) });
  node.classList.toggle("overdue", overdue);
  node.classList.toggle("soon", !overdue && left < 5 * 60 * 1000);
  node.closest(".ticket-card")?.classList.toggle("is-overdue", overdue);
}

setInterval(() => {
  const now = Date.now();
  for (const node of document.querySelectorAll(".clock[data-due]")) tickClock(node, now);
}, 1000);

// --- chrome ----------------------------------------------------------------

function roleName(role) {
  return { viewer: t("roleViewer"), responder: t("roleResponder"), admin: t("roleAdmin") }[role] ?? role;
}

function canAct() {
  return state.me && (state.me.role === "responder" || state.me.role === "admin");
}

function link(path, text, attrs = {}) {
  return h("a", { href: BASE + path, "data-route": "", ...attrs, text });
}

function renderHeader() {
  const header = document.getElementById("header");
  header.replaceChildren();
  document.title = t("title");
  const brand = h("a", { class: "brand", href: BASE + "/", "data-route": "", text: t("title") });
  const nav = h("nav", { class: "nav" });
  const right = h("div", { class: "header-right" });
  const langButton = h("button", {
    type: "button",
    class: "lang",
    "data-testid": "lang-switch",
    text: t("language"),
    onclick: () => {
      const next = lang() === "zh" ? "en" : "zh";
      localStorage.setItem(LANG_KEY, next);
      setLang(next);
      renderHeader();
      route();
    },
  });
  if (state.me) {
    nav.append(
      link("/", t("queue"), { "data-nav": "queue" }),
      link("/board", t("board"), { "data-nav": "board" }),
      link("/reviews", t("reviews"), { "data-nav": "reviews" }),
    );
    const live = h("span", { class: `live live-${state.live}`, id: "live", "data-testid": "live" });
    updateLive(live);
    right.append(
      live,
      h("span", { class: "me", "data-testid": "me", text: `${state.me.name} · ${roleName(state.me.role)}` }),
      langButton,
      h("button", { type: "button", class: "signout", text: t("signOut"), onclick: () => signOut() }),
    );
  } else {
    right.append(langButton);
  }
  header.append(brand, nav, right);
  markNav();
}

function markNav() {
  const path = location.pathname;
  for (const a of document.querySelectorAll("[data-nav]")) {
    const target = a.getAttribute("href");
    const current = target === BASE + "/" ? path === BASE + "/" || path.startsWith(BASE + "/tickets/") : path === target;
    if (current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function updateLive(node = document.getElementById("live")) {
  if (!node) return;
  node.className = `live live-${state.live}`;
  if (state.live === "live") node.textContent = t("live");
  else if (state.live === "connecting") node.textContent = t("connecting");
  else node.textContent = t("reconnecting", { seconds: state.retryIn ?? 1 });
}

// --- sign-in -----------------------------------------------------------------

function renderSignIn(message) {
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    required: true,
    "data-testid": "token-input",
  });
  const form = h(
    "form",
    {
      class: "card signin",
      "data-testid": "signin",
      onsubmit: async (event) => {
        event.preventDefault();
        await signIn(input.value.trim());
      },
    },
    h("h1", { text: t("signIn") }),
    h("label", { for: "token", text: t("tokenLabel") }),
    input,
    h("p", { class: "help", text: t("tokenHelp") }),
    h("button", { type: "submit", class: "primary", "data-testid": "signin-submit", text: t("signIn") }),
  );
  main().replaceChildren(form);
  if (message) showError(message);
  input.focus();
}

async function signIn(token) {
  if (!token) return;
  clearAlert();
  try {
    const me = await callApi("/api/me", { token });
    state.token = token;
    state.me = me;
    sessionStorage.setItem(TOKEN_KEY, token);
    startStream();
    renderHeader();
    route();
  } catch (error) {
    showError(error instanceof ApiError ? new ApiError(error.status, t("signInFailed", { message: error.message })) : error);
  }
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.me = null;
  stopStream();
  renderHeader();
  renderSignIn(message ? new ApiError(401, message) : null);
}

// --- routing -------------------------------------------------------------------

function navigate(path) {
  if (location.pathname !== path) history.pushState({}, "", path);
  clearAlert();
  route();
}

document.addEventListener("click", (event) => {
  const anchor = event.target.closest("a[data-route]");
  if (!anchor || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(anchor.getAttribute("href"));
});

window.addEventListener("popstate", () => {
  clearAlert();
  route();
});

function route() {
  markNav();
  if (!state.me) {
    renderSignIn();
    return;
  }
  const path = location.pathname.replace(/\/+$/, "") || BASE;
  const ticketMatch = path.match(/^\/console\/tickets\/([^/]+)$/);
  if (path === BASE) {
    state.view = "queue";
    renderQueue();
  } else if (ticketMatch) {
    state.view = "ticket";
    renderTicketPage(decodeURIComponent(ticketMatch[1]));
  } else if (path === BASE + "/board") {
    state.view = "board";
    renderBoard();
  } else if (path === BASE + "/reviews") {
    state.view = "reviews";
    renderReviews();
  } else {
    state.view = null;
    main().replaceChildren(h("p", { class: "card", text: t("notFound") }));
  }
}

// --- queue -----------------------------------------------------------------------

function queueQuery() {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(state.filters)) if (value) params.set(name, value);
  params.set("limit", "200");
  return params.toString();
}

async function loadQueue() {
  const data = await api("/tickets?" + queueQuery());
  state.tickets = data.tickets ?? [];
  state.total = data.total ?? state.tickets.length;
}

function filterForm() {
  const f = state.filters;
  const select = (name, options) =>
    h(
      "select",
      { name, id: `f-${name}`, "data-testid": `filter-${name}` },
      options.map(([value, label]) => h("option", { value, text: label, selected: f[name] === value })),
    );
  const text = (name) => h("input", { name, id: `f-${name}`, type: "search", value: f[name], "data-testid": `filter-${name}` });
  const field = (name, label, control) => h("div", { class: "field" }, h("label", { for: `f-${name}`, text: label }), control);
  const form = h(
    "form",
    {
      class: "filters",
      "data-testid": "filters",
      onsubmit: async (event) => {
        event.preventDefault();
        const data = new FormData(form);
        for (const name of Object.keys(state.filters)) state.filters[name] = String(data.get(name) ?? "").trim();
        await refreshQueue();
      },
    },
    field(
      "status",
      t("status"),
      select("status", [[ACTIVE.join(","), t("active")], ["", t("all")], ...STATUSES.map((s) => [s, statusName(s)])]),
    ),
    field("priority", t("priority"), select("priority", [["", t("any")], ...PRIORITIES.map((p) => [p, p])])),
    field("topic", t("topic"), text("topic")),
    field("owner", t("owner"), text("owner")),
    field("team", t("team"), text("team")),
    field("q", t("search"), text("q")),
    h(
      "div",
      { class: "filter-buttons" },
      h("button", { type: "submit", class: "primary", text: t("apply") }),
      h("button", {
        type: "button",
        text: t("clear"),
        onclick: async () => {
          state.filters = { status: ACTIVE.join(","), priority: "", topic: "", owner: "", team: "", q: "" };
          renderQueue();
        },
      }),
    ),
  );
  return form;
}

function ticketCard(ticket) {
  const card = h(
    "li",
    { class: `ticket-card prio-${ticket.priority} status-${ticket.status}`, "data-ticket-id": ticket.ticket_id, "data-testid": "ticket-row" },
    h(
      "div",
      { class: "card-top" },
      h("span", { class: `badge prio prio-${ticket.priority}`, text: ticket.priority }),
      h("span", { class: `badge status status-${ticket.status}`, "data-testid": "ticket-status", "data-status": ticket.status, text: statusName(ticket.status) }),
      clockElement(ticket),
    ),
    h("a", { class: "card-title", href: `${BASE}/tickets/${encodeURIComponent(ticket.ticket_id)}`, "data-route": "", text: ticket.topic || ticket.rule || ticket.ticket_id }),
    h("p", { class: "reason", text: ticket.priority_reason ?? "" }),
    h(
      "div",
      { class: "card-meta" },
      h("span", { text: `${t("owner")}: ${ticket.owner ?? "—"}` }),
      h("span", { text: `${t("team")}: ${ticket.team ?? "—"}` }),
      h("span", { text: `${t("opened")}: ${formatTime(ticket.opened_at)}` }),
      h("span", { class: "ticket-id", text: ticket.ticket_id }),
    ),
  );
  return card;
}

function renderQueueList() {
  const section = document.getElementById("queue-list");
  if (!section) return;
  const list = h("ul", { class: "tickets", "data-testid": "queue" }, state.tickets.map(ticketCard));
  section.replaceChildren(
    h("p", { class: "total", text: t("total", { total: state.total }) }),
    state.tickets.length ? list : h("p", { class: "empty", text: t("noTickets") }),
  );
}

async function refreshQueue() {
  try {
    await loadQueue();
    renderQueueList();
  } catch (error) {
    showError(error);
  }
}

function renderQueue() {
  // Filters fold away on a phone screen, open on wider ones.
  const narrow = window.matchMedia("(max-width: 600px)").matches;
  main().replaceChildren(
    h("h1", { class: "page-title", text: t("queue") }),
    h("details", { class: "filter-box", open: !narrow }, h("summary", { text: t("filters") }), filterForm()),
    h("section", { id: "queue-list", "aria-live": "polite" }, h("p", { text: t("loading") })),
  );
  if (state.tickets.length) renderQueueList();
  refreshQueue();
}

// A live change to one ticket: patch the queue if it still matches, else refetch.
function matchesFilters(ticket) {
  const f = state.filters;
  if (f.status && !f.status.split(",").includes(ticket.status)) return false;
  if (f.priority && !f.priority.split(",").includes(ticket.priority)) return false;
  if (f.topic && ticket.topic !== f.topic) return false;
  if (f.owner && ticket.owner !== f.owner) return false;
  if (f.team && ticket.team !== f.team) return false;
  return !f.q;
}

function applyQueueUpdate(ticket) {
  const index = state.tickets.findIndex((item) => item.ticket_id === ticket.ticket_id);
  const keep = matchesFilters(ticket);
  if (index >= 0 && keep) state.tickets[index] = ticket;
  else if (index >= 0) {
    state.tickets.splice(index, 1);
    state.total = Math.max(0, state.total - 1);
  } else if (keep) {
    state.tickets.unshift(ticket);
    state.total += 1;
  } else if (state.filters.q) {
    refreshQueue();
    return;
  }
  if (state.view === "queue") renderQueueList();
}

// --- ticket page -------------------------------------------------------------------

async function renderTicketPage(id) {
  main().replaceChildren(h("p", { text: t("loading") }));
  try {
    const data = await api(`/tickets/${encodeURIComponent(id)}`);
    state.ticket = data.ticket;
    state.events = data.events ?? [];
    state.copies = data.copies ?? {};
    drawTicket();
  } catch (error) {
    main().replaceChildren(link("/", t("back"), { class: "back" }));
    showError(error);
  }
}

function section(title, testid, ...children) {
  return h("section", { class: "card", "data-testid": testid }, h("h2", { text: title }), ...children);
}

function definitionList(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.flatMap(([term, value, attrs = {}]) => [h("dt", { text: term }), h("dd", { ...attrs, text: value ?? "—" })]),
  );
}

function drawTicket() {
  const ticket = state.ticket;
  if (!ticket) return;
  const heading = h(
    "div",
    { class: "ticket-head" },
    link("/", t("back"), { class: "back" }),
    h(
      "h1",
      { class: "page-title" },
      h("span", { class: `badge prio prio-${ticket.priority}`, "data-testid": "ticket-priority", text: ticket.priority }),
      " ",
      h("span", { text: ticket.topic || ticket.rule || ticket.ticket_id }),
    ),
    h(
      "div",
      { class: "card-top" },
      h("span", { class: `badge status status-${ticket.status}`, "data-testid": "ticket-status", "data-status": ticket.status, text: statusName(ticket.status) }),
      clockElement(ticket),
    ),
  );
  const facts = definitionList([
    [t("ticket"), ticket.ticket_id, { class: "ticket-id" }],
    [t("priorityReason"), ticket.priority_reason],
    [t("owner"), ticket.owner],
    [t("team"), ticket.team],
    [t("opened"), formatTime(ticket.opened_at)],
    [t("ackDue"), formatTime(ticket.ack_due)],
    [t("resolveDue"), formatTime(ticket.resolve_due)],
    [t("occurrences"), String(ticket.occurrences ?? "")],
    [t("escalation"), ticket.escalation_contact],
  ]);
  const parts = [heading, h("section", { class: "card" }, facts)];
  if (canAct()) parts.push(actionPanel(ticket));
  parts.push(
    section(t("series"), "series", seriesChart(ticket)),
    section(t("signals"), "signals", signalTable(ticket.signals ?? [])),
    section(t("evidence"), "evidence", evidenceList(ticket.evidence ?? [], state.copies ?? {})),
    section(
      t("keywords"),
      "keywords",
      (ticket.keywords ?? []).length
        ? h("ul", { class: "chips" }, ticket.keywords.map((word) => h("li", { class: "chip", text: word })))
        : h("p", { class: "empty", text: t("none") }),
    ),
    section(
      t("linked"),
      "linked",
      (ticket.linked ?? []).length
        ? h("ul", { class: "plain" }, ticket.linked.map((other) => h("li", {}, link(`/tickets/${encodeURIComponent(other)}`, other))))
        : h("p", { class: "empty", text: t("none") }),
    ),
  );
  if (ticket.review) parts.push(reviewSection(ticket.review));
  parts.push(section(t("audit"), "audit", auditTrail(state.events)));
  main().replaceChildren(...parts);
}

function reviewSection(review) {
  return section(
    t("review"),
    "review",
    definitionList([
      [t("rootCause"), review.root_cause],
      [t("resolution"), review.resolution],
      [t("lessons"), review.lessons],
    ]),
    h("p", { class: "help", text: t("reviewBy", { author: review.author ?? "", at: formatTime(review.at) }) }),
  );
}

function signalTable(signals) {
  if (!signals.length) return h("p", { class: "empty", text: t("none") });
  const number = (value) => (typeof value === "number" ? String(Math.round(value * 100) / 100) : "—");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, [t("rule"), t("kind"), t("keyword"), t("value"), t("peak"), t("threshold"), t("priority")].map((name) => h("th", { text: name })))),
      h(
        "tbody",
        {},
        signals.map((signal) =>
          h(
            "tr",
            { class: signal.retracted ? "retracted" : "" },
            h("td", { text: signal.rule }),
            h("td", { text: signal.kind }),
            h("td", { text: signal.keyword ?? "—" }),
            h("td", { text: number(signal.last_value) }),
            h("td", { text: number(signal.peak_value) }),
            h("td", { text: number(signal.threshold) }),
            h("td", { text: signal.priority }),
          ),
        ),
      ),
    ),
  );
}

function evidenceList(items, copies) {
  if (!items.length) return h("p", { class: "empty", text: t("none") });
  return h(
    "ul",
    { class: "evidence" },
    items.map((item) => {
      const url = safeUrl(item.url);
      return h(
        "li",
        { "data-testid": "evidence-post" },
        h("p", { class: "excerpt", text: item.excerpt ?? item.text ?? "" }),
        h(
          "div",
          { class: "card-meta" },
          h("span", { text: item.author ?? "—" }),
          h("span", { text: formatTime(item.published_at) }),
          h("span", { text: t("followers", { n: item.followers ?? 0 }) }),
          h("span", { text: t("reposts", { n: item.reposts ?? 0 }) }),
          (copies[item.post_id] ?? 0) > 1
            ? h("span", { class: "copies", "data-testid": "evidence-copies", text: t("copies", { n: copies[item.post_id] }) })
            : null,
          url ? h("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: t("openPost") }) : null,
        ),
      );
    }),
  );
}

function auditTrail(events) {
  if (!events.length) return h("p", { class: "empty", text: t("none") });
  const sorted = [...events].sort((a, b) => String(a.at).localeCompare(String(b.at)));
  return h(
    "ol",
    { class: "audit" },
    sorted.map((event) =>
      h(
        "li",
        { "data-testid": "audit-event", "data-action": event.action },
        h("span", { class: "audit-time", text: formatTime(event.at) }),
        h("strong", { class: "audit-action", text: actionName(event.action) }),
        h("span", { class: "audit-actor", text: event.actor ?? "" }),
        event.from_status && event.from_status !== event.to_status
          ? h("span", { class: "audit-move", text: `${statusName(event.from_status)} → ${statusName(event.to_status)}` })
          : null,
        event.note ? h("p", { class: "audit-note", text: event.note }) : null,
      ),
    ),
  );
}

// --- the series chart (hand-written SVG) ---------------------------------------

function seriesChart(ticket) {
  const history = (ticket.history ?? []).filter((item) => item.window_end);
  if (history.length < 1) return h("p", { class: "empty", text: t("noSeries") });
  const W = 640;
  const H = 220;
  const pad = { left: 40, right: 12, top: 12, bottom: 28 };
  const times = history.map((item) => Date.parse(item.window_end));
  const observed = history.map((item) => Number(item.observed_value ?? 0));
  const expected = history.map((item) => (item.expected_value === null || item.expected_value === undefined ? null : Number(item.expected_value)));
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const vmax = Math.max(1, ...observed, ...expected.filter((v) => v !== null), Number(ticket.threshold) || 0) * 1.1;
  const x = (time) => pad.left + (t1 === t0 ? (W - pad.left - pad.right) / 2 : ((time - t0) / (t1 - t0)) * (W - pad.left - pad.right));
  const y = (value) => H - pad.bottom - (value / vmax) * (H - pad.top - pad.bottom);
  const path = (values) => {
    let d = "";
    values.forEach((value, i) => {
      if (value === null) return;
      d += `${d ? "L" : "M"}${x(times[i]).toFixed(1)},${y(value).toFixed(1)} `;
    });
    return d.trim();
  };
  const parts = [];
  // Grid and axis labels.
  for (const fraction of [0, 0.5, 1]) {
    const value = (vmax / 1.1) * fraction;
    parts.push(
      svg("line", { x1: pad.left, x2: W - pad.right, y1: y(value), y2: y(value), class: "grid" }),
      svg("text", { x: pad.left - 4, y: y(value) + 4, "text-anchor": "end", class: "axis", text: String(Math.round(value)) }),
    );
  }
  parts.push(
    svg("text", { x: pad.left, y: H - 8, class: "axis", text: formatTime(history[0].window_end) }),
    svg("text", { x: W - pad.right, y: H - 8, "text-anchor": "end", class: "axis", text: formatTime(history[history.length - 1].window_end) }),
  );
  if (Number(ticket.threshold) > 0) {
    parts.push(svg("line", { x1: pad.left, x2: W - pad.right, y1: y(Number(ticket.threshold)), y2: y(Number(ticket.threshold)), class: "threshold" }));
  }
  // The trigger: when the first signal fired.
  const fired = (ticket.signals ?? []).map((signal) => Date.parse(signal.first_fired)).filter((v) => !Number.isNaN(v));
  const trigger = fired.length ? Math.min(...fired) : Date.parse(ticket.first_seen);
  if (!Number.isNaN(trigger) && trigger >= t0 && trigger <= t1) {
    parts.push(
      svg("line", { x1: x(trigger), x2: x(trigger), y1: pad.top, y2: H - pad.bottom, class: "trigger" }),
      svg("text", { x: x(trigger) + 4, y: pad.top + 10, class: "axis trigger-label", text: t("trigger") }),
    );
  }
  const expectedPath = path(expected);
  if (expectedPath) parts.push(svg("path", { d: expectedPath, class: "expected" }));
  parts.push(svg("path", { d: path(observed), class: "observed" }));
  observed.forEach((value, i) => parts.push(svg("circle", { cx: x(times[i]), cy: y(value), r: 2.5, class: "observed-dot" }, svg("title", { text: `${formatTime(history[i].window_end)}: ${value}` }))));
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": t("series"), "data-testid": "series-chart" }, parts);
  const legend = h(
    "div",
    { class: "legend" },
    h("span", { class: "key key-observed", text: t("observed") }),
    h("span", { class: "key key-expected", text: t("expected") }),
    h("span", { class: "key key-trigger", text: t("trigger") }),
  );
  return h("div", {}, chart, legend);
}

// --- actions ---------------------------------------------------------------------

function actionPanel(ticket) {
  const form = h("div", { class: "action-form", id: "action-form" });
  const buttons = Object.keys(ACTION_SOURCES)
    .filter((action) => ACTION_SOURCES[action].includes(ticket.status))
    .map((action) =>
      h("button", {
        type: "button",
        class: action === "acknowledge" || action === "start" ? "primary" : "",
        "data-action": action,
        "data-testid": `action-${action}`,
        text: actionName(action),
        onclick: () => (ONE_TAP.has(action) ? act(ticket, action, {}) : openActionForm(form, ticket, action)),
      }),
    );
  return h("section", { class: "card actions", "data-testid": "actions" }, h("h2", { text: t("actions") }), h("div", { class: "action-buttons" }, buttons), form);
}

const FIELD_LABELS = { owner: "owner", team: "team", root_cause: "rootCause", resolution: "resolution", lessons: "lessons" };

function openActionForm(container, ticket, action) {
  const fields = ACTION_FIELDS[action] ?? [];
  const inputs = {};
  const rows = fields.map((name) => {
    const id = `act-${name}`;
    const long = ["root_cause", "resolution", "lessons"].includes(name);
    inputs[name] = h(long ? "textarea" : "input", { id, name, rows: long ? 2 : null, "data-testid": `field-${name}` });
    if (!long && ticket[name]) inputs[name].value = ticket[name];
    return h("div", { class: "field" }, h("label", { for: id, text: t(FIELD_LABELS[name]) }), inputs[name]);
  });
  const note = h("textarea", { id: "act-note", name: "note", rows: 2, "data-testid": "field-note" });
  const form = h(
    "form",
    {
      "data-testid": `form-${action}`,
      onsubmit: async (event) => {
        event.preventDefault();
        const extra = {};
        for (const [name, input] of Object.entries(inputs)) {
          const value = input.value.trim();
          if (value) extra[name] = value;
        }
        const text = note.value.trim();
        if (text) extra.note = text;
        await act(ticket, action, extra);
      },
    },
    h("h3", { text: actionName(action) }),
    rows,
    h("div", { class: "field" }, h("label", { for: "act-note", text: t("note") }), note),
    h(
      "div",
      { class: "filter-buttons" },
      h("button", { type: "submit", class: "primary", "data-testid": "action-submit", text: t("submit") }),
      h("button", { type: "button", text: t("cancel"), onclick: () => container.replaceChildren() }),
    ),
  );
  container.replaceChildren(form);
  (rows.length ? Object.values(inputs)[0] : note).focus();
}

async function act(ticket, action, extra) {
  clearAlert();
  const buttons = document.querySelectorAll(".actions button");
  buttons.forEach((button) => (button.disabled = true));
  try {
    const data = await api(`/tickets/${encodeURIComponent(ticket.ticket_id)}/actions`, {
      method: "POST",
      body: { action, ...extra },
    });
    applyTicketEvent(data.ticket, data.event);
    showNotice(t("done", { action: actionName(action) }));
  } catch (error) {
    buttons.forEach((button) => (button.disabled = false));
    showError(error);
  }
}

// --- live updates --------------------------------------------------------------------

function applyTicketEvent(ticket, event) {
  if (!ticket) return;
  applyQueueUpdate(ticket);
  if (state.view === "ticket" && state.ticket && state.ticket.ticket_id === ticket.ticket_id) {
    const sameRevision = state.ticket.revision !== undefined && state.ticket.revision > (ticket.revision ?? 0);
    if (!sameRevision) state.ticket = ticket;
    if (event && !state.events.some((known) => known.event_id === event.event_id)) state.events.push(event);
    const form = document.getElementById("action-form");
    const keepForm = form && form.childElementCount > 0 && event?.action === "comment";
    if (!keepForm) drawTicket();
    else {
      const audit = document.querySelector('[data-testid="audit"]');
      audit?.replaceChildren(h("h2", { text: t("audit") }), auditTrail(state.events));
    }
  }
  if (state.view === "board") scheduleBoardRefresh();
}

function stopStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
}

function startStream() {
  stopStream();
  const controller = new AbortController();
  state.stream = controller;
  (async () => {
    let delay = 1000;
    while (!controller.signal.aborted && state.token) {
      try {
        const response = await fetch("/api/stream", {
          headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
          credentials: "omit",
          cache: "no-store",
          signal: controller.signal,
        });
        if (response.status === 401) {
          signOut((await response.json().catch(() => null))?.error?.message ?? "401");
          return;
        }
        if (!response.ok || !response.body) throw new Error(`stream ${response.status}`);
        delay = 1000;
        // "live" only once the server says hello: it does when its worker
        // follows the tickets topic, so nothing after the refetch is missed.
        await readEvents(response.body, controller.signal);
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      if (controller.signal.aborted) return;
      state.live = "reconnecting";
      state.retryIn = Math.round(delay / 1000);
      updateLive();
      await new Promise((resolve) => setTimeout(resolve, delay + Math.random() * 300));
      delay = Math.min(delay * 2, 30000);
    }
  })();
}

function onReconnect() {
  if (state.view === "queue") refreshQueue();
  else if (state.view === "ticket" && state.ticket) renderTicketSilently(state.ticket.ticket_id);
  else if (state.view === "board") scheduleBoardRefresh();
}

async function renderTicketSilently(id) {
  try {
    const data = await api(`/tickets/${encodeURIComponent(id)}`);
    if (state.view !== "ticket" || state.ticket?.ticket_id !== id) return;
    state.ticket = data.ticket;
    state.events = data.events ?? [];
    state.copies = data.copies ?? {};
    drawTicket();
  } catch {
    // the page keeps what it shows; the next event or reconnect retries
  }
}

async function readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener("abort", () => reader.cancel().catch(() => {}));
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      dispatch(block);
    }
  }
}

function dispatch(block) {
  let name = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  if (name === "hello") {
    state.live = "live";
    updateLive();
    onReconnect();
    return;
  }
  if (name !== "ticket" || !data.length) return;
  try {
    const payload = JSON.parse(data.join("\n"));
    applyTicketEvent(payload.ticket, payload.event);
  } catch {
    // a malformed event is skipped
  }
}

// --- board ------------------------------------------------------------------------------

let boardTimer = null;
const BOARD_HOURS = 6;

function scheduleBoardRefresh() {
  if (boardTimer) return;
  boardTimer = setTimeout(() => {
    boardTimer = null;
    if (state.view === "board") loadBoard();
  }, 1000);
}

function renderBoard() {
  main().replaceChildren(
    h("h1", { class: "page-title", text: `${t("board")} · ${t("boardHours", { hours: BOARD_HOURS })}` }),
    h("div", { id: "board-body" }, h("p", { text: t("loading") })),
  );
  loadBoard();
}

setInterval(() => {
  if (state.view === "board" && state.me) loadBoard();
}, 60000);

async function loadBoard() {
  try {
    const data = await api(`/board?hours=${BOARD_HOURS}`);
    const body = document.getElementById("board-body");
    if (!body) return;
    const counts = data.open_by_priority ?? {};
    const tiles = h(
      "div",
      { class: "tiles", "data-testid": "open-by-priority" },
      PRIORITIES.map((p) =>
        h("div", { class: `tile prio-${p}` }, h("span", { class: "tile-label", text: p }), h("span", { class: "tile-value", "data-priority": p, text: String(counts[p] ?? 0) })),
      ),
    );
    const topics = data.topics ?? [];
    body.replaceChildren(
      section(t("openByPriority"), "board-priority", tiles),
      section(
        t("negativeVolume"),
        "board-topics",
        topics.length ? topics.map((topic) => topicChart(topic)) : h("p", { class: "empty", text: t("noTopics") }),
      ),
    );
  } catch (error) {
    showError(error);
  }
}

function topicChart(topic) {
  const buckets = topic.buckets ?? [];
  const W = 640;
  const H = 120;
  const pad = { left: 34, right: 6, top: 8, bottom: 20 };
  const max = Math.max(1, ...buckets.map((b) => Number(b.posts ?? 0)), ...buckets.map((b) => Number(b.negative ?? 0)));
  const width = buckets.length ? (W - pad.left - pad.right) / buckets.length : 0;
  const y = (value) => H - pad.bottom - (value / max) * (H - pad.top - pad.bottom);
  const bars = buckets.flatMap((bucket, i) => {
    const x = pad.left + i * width;
    const posts = Number(bucket.posts ?? 0);
    const negative = Number(bucket.negative ?? 0);
    return [
      svg("rect", { x: x + 0.5, y: y(posts), width: Math.max(1, width - 1), height: H - pad.bottom - y(posts), class: "bar-posts" }),
      svg("rect", { x: x + 0.5, y: y(negative), width: Math.max(1, width - 1), height: H - pad.bottom - y(negative), class: "bar-negative" }, svg("title", { text: `${formatTime(bucket.start)} ${t("negative")} ${negative} / ${t("posts")} ${posts}` })),
    ];
  });
  const total = buckets.reduce((sum, b) => sum + Number(b.negative ?? 0), 0);
  const labels = [
    svg("text", { x: pad.left - 4, y: pad.top + 8, "text-anchor": "end", class: "axis", text: String(max) }),
    svg("text", { x: pad.left - 4, y: H - pad.bottom, "text-anchor": "end", class: "axis", text: "0" }),
  ];
  if (buckets.length) {
    labels.push(
      svg("text", { x: pad.left, y: H - 5, class: "axis", text: formatTime(buckets[0].start) }),
      svg("text", { x: W - pad.right, y: H - 5, "text-anchor": "end", class: "axis", text: formatTime(buckets[buckets.length - 1].start) }),
    );
  }
  return h(
    "div",
    { class: "topic", "data-testid": "board-topic" },
    h("h3", {}, h("span", { text: topic.topic }), h("span", { class: "topic-total", text: ` ${t("negative")} ${total}` })),
    svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": topic.topic }, bars, labels),
  );
}

// --- reviews -------------------------------------------------------------------------------

async function renderReviews() {
  main().replaceChildren(h("h1", { class: "page-title", text: t("reviews") }), h("div", { id: "reviews-body" }, h("p", { text: t("loading") })));
  try {
    const data = await api("/reviews?limit=100");
    const reviews = data.reviews ?? [];
    const body = document.getElementById("reviews-body");
    if (!body) return;
    body.replaceChildren(
      reviews.length
        ? h(
            "ul",
            { class: "reviews", "data-testid": "reviews" },
            reviews.map((review) =>
              h(
                "li",
                { class: "card" },
                h(
                  "div",
                  { class: "card-top" },
                  h("span", { class: `badge prio prio-${review.priority}`, text: review.priority }),
                  link(`/tickets/${encodeURIComponent(review.ticket_id)}`, review.topic || review.ticket_id, { class: "card-title" }),
                ),
                definitionList([
                  [t("closedBy"), review.closed_by],
                  [t("closedAt"), formatTime(review.closed_at)],
                  [t("rootCause"), review.root_cause],
                  [t("resolution"), review.resolution],
                  [t("lessons"), review.lessons],
                ]),
              ),
            ),
          )
        : h("p", { class: "empty", text: t("noReviews") }),
    );
  } catch (error) {
    showError(error);
  }
}

// --- start ------------------------------------------------------------------------------------

async function boot() {
  setLang(localStorage.getItem(LANG_KEY) ?? "zh");
  renderHeader();
  if (!state.token) {
    renderSignIn();
    return;
  }
  try {
    state.me = await callApi("/api/me", { token: state.token });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut(error.message);
      return;
    }
    renderSignIn(error);
    return;
  }
  startStream();
  renderHeader();
  route();
}

boot();
