// The hostplane console: a client of the public POST /api actions with the session cookie
// (HttpOnly, set by `authorization`; nothing is kept in web storage). Every element is built
// with the DOM API, never from HTML strings, so no user data can become markup.
"use strict";

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(reason, message) {
    super(message || reason);
    this.reason = reason;
  }
}

// What each reason means to a person.
const REASONS = {
  bad_login: "That login is not valid or already taken.",
  bad_password: "The password is wrong, or not 8-72 characters.",
  bad_email: "That e-mail address is not valid.",
  bad_invite: "Registration needs a valid invite code.",
  bad_token: "This reset link is unknown, used or expired.",
  bad_domain: "That is not a valid domain name.",
  bad_docroot: "That document root is not allowed.",
  bad_url: "That URL is not allowed (it must be public http or https).",
  bad_params: "Some input is missing or not valid.",
  auth_required: "Please sign in.",
  forbidden: "You may not do this.",
  account_disabled: "This account is disabled. Contact your provider.",
  not_found: "It does not exist (any more).",
  domain_exists: "That domain is already in use.",
  domain_taken: "That domain belongs to another customer's domain family.",
  quota_exceeded: "You reached your limit.",
  node_not_empty: "The node still has sites.",
  not_empty: "It is not empty.",
  already_exists: "It exists already.",
  too_many_attempts: "Too many attempts. Please wait a while and try again.",
  busy: "The service is busy. Try again in a moment.",
  unavailable: "The service cannot reach its database right now. Try again shortly.",
  idempotency_conflict: "This request was already made with other values.",
  bad_record: "That record is not valid.",
  record_managed: "hostplane keeps that record itself; it cannot be changed here.",
  record_conflict: "That record clashes with another one at the same name.",
  zone_required: "A wildcard with HTTPS needs the domain's DNS zone here first.",
  otp_required: "Enter the code of your authenticator app.",
  bad_otp: "That code is wrong or was used already.",
  otp_enrolment_required: "Admins must use two-factor sign-in. Set it up now.",
};

// Reasons whose message from the server says what to fix (which field, which character).
const DETAILED = ["bad_params", "bad_record", "bad_email", "record_conflict", "forbidden", "bad_docroot"];

function capital(m) {
  return m.charAt(0).toUpperCase() + m.slice(1).replace(/\.$/, "");
}

function explain(e) {
  if (!(e instanceof ApiError)) return "Could not reach the service. Check your connection.";
  const text = REASONS[e.reason];
  if (!text) return e.message || e.reason;
  return DETAILED.includes(e.reason) && e.message && e.message !== e.reason ? `${text} ${capital(e.message)}.` : text;
}

async function api(action, params = {}, signal = undefined) {
  let r;
  try {
    r = await fetch("/api", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ action, params }),
      signal,
    });
  } catch (e) {
    throw new ApiError("network", "the service did not answer");
  }
  let body;
  try {
    body = await r.json();
  } catch (e) {
    throw new ApiError("system", "the answer was not understood");
  }
  if (body.response === "ok") return body.result;
  if (body.response === "error") {
    const err = new ApiError(body.reason, body.message);
    // A session that ended (logout elsewhere, a disabled account) sends the console to sign-in.
    if ((body.reason === "auth_required" || body.reason === "account_disabled") && me && action !== "authorization") {
      me = null;
      render("#/signin", "Your session has ended. Please sign in again.");
    }
    throw err;
  }
  throw new ApiError("system", `something failed on the server (reference ${body.request_id || "?"})`);
}

// ---------------------------------------------------------------- DOM helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function say(text, kind = "") {
  const box = document.getElementById("status");
  box.replaceChildren(text ? h("div", { class: `msg ${kind}` }, text) : "");
}

function badge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

// A list with limit/offset paging and its total.
function pager(total, offset, limit, go) {
  const last = Math.min(offset + limit, total);
  return h(
    "div",
    { class: "pager" },
    h("button", { class: "plain", disabled: offset === 0, onclick: () => go(Math.max(0, offset - limit)) }, "Previous"),
    h("span", { class: "muted" }, total ? `${offset + 1}–${last} of ${total}` : "none"),
    h("button", { class: "plain", disabled: last >= total, onclick: () => go(offset + limit) }, "Next"),
  );
}

function table(headers, rows) {
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows),
  );
}

// A list a page at a time: each item drawn into `into`, then the total (when the list tells it)
// and "More" while the API gives a next page (a keyset cursor). Returns the footer and the first
// page's answer.
async function paged(action, params, key, draw, into) {
  const foot = h("div", { class: "pager" });
  async function load(after) {
    const r = await api(action, after ? { ...params, after } : params);
    into.append(...r[key].map(draw));
    const total = r.total === undefined ? ""
      : h("span", { class: "muted" }, `${r.total}${r.total_exact === false ? " (about)" : ""} in all`);
    const more = r.next ? h("button", { class: "plain", type: "button",
      onclick: () => load(r.next).catch((e) => say(explain(e), "error")) }, "More") : "";
    foot.replaceChildren(total, more);
    return r;
  }
  return { foot, first: await load(null) };
}

// An item whose drawing needs more requests: a placeholder now, the drawing once it is ready.
function later(draw) {
  const slot = h("div", {});
  draw().then((el) => slot.replaceWith(el), (e) => slot.replaceChildren(h("div", { class: "card" }, explain(e))));
  return slot;
}

function copyButton(text) {
  return h("button", { type: "button", class: "plain", onclick: async () => {
    try {
      await navigator.clipboard.writeText(text);
      say("Copied.");
    } catch (e) {
      say("Select the text and copy it.", "error");
    }
  } }, "Copy");
}

// ---------------------------------------------------------------- state and routing

let me = null; // whoami, once signed in
let timer = null; // a redraw the current page put off (see sitesPage); cleared when the page changes
let live = 0; // bumped by every page: a change-feed poll of an earlier page stops
let polling = null; // the current page's waiting feed poll, ended when the page changes

// Follows the change feed while the current page stays, calling `onChange` with each batch of
// news. One request waits up to a minute at a time, so an idle console costs at most 60 an hour.
async function follow(onChange) {
  const mine = live;
  let since = "now";
  while (mine === live && me) {
    try {
      // The page's one waiting request: ended at once when the page changes, so the polls of
      // earlier pages never hold the browser's few connections to the service.
      const ctl = new AbortController();
      polling = ctl;
      const r = await api("get_changes", { since, wait: 60 }, ctl.signal);
      if (mine !== live) return;
      since = r.cursor;
      if (r.changes.length) await onChange(r.changes);
    } catch (e) {
      if (mine !== live || !me) return;
      await new Promise((ok) => setTimeout(ok, 10000));
    }
  }
}

// Keeps the current page live for status changes made elsewhere (a node's report, a review, a new
// domain to review): news of an event starting with one of `prefixes` redraws the page in place,
// keeping the status line, once no element of the page has the focus. Events the page's own
// actions cause are left out of `prefixes`: those actions redraw it already.
function followPage(prefixes) {
  const mine = live;
  follow(async (changes) => {
    if (!changes.some((c) => prefixes.some((p) => c.event.startsWith(p)))) return;
    const main = document.getElementById("main");
    // What is shown only once (a new token) stays on top of the redrawn page.
    const redraw = async () => {
      if (mine !== live) return;
      const kept = [...main.querySelectorAll("[data-keep]")];
      const typed = typedIn(main);
      await render(undefined, undefined, true).catch(() => {});
      if (kept.length && main.firstChild) main.firstChild.prepend(...kept);
      restoreTyped(main, typed);
    };
    onceLeft(main, redraw);
  });
}

// The pages by route; each file of pages adds its own (account.js, sites.js, integrations.js,
// mail.js, dns.js, admin.js).
const PAGES = {};
const PUBLIC = ["#/signin", "#/signup", "#/forgot"];

function nav() {
  const links = me
    ? [
        ["#/", "Sites"],
        ["#/mail", "Mail"],
        ["#/dns", "DNS"],
        ["#/keys", "API keys"],
        ["#/webhooks", "Webhooks"],
        ["#/account", "Account"],
        ...(me.role === "admin"
          ? [
              ["#/admin/users", "Users"],
              ["#/admin/nodes", "Nodes"],
              ["#/admin/review", "Review"],
              ["#/admin/audit", "Audit"],
              ["#/admin/stats", "Stats"],
            ]
          : []),
      ]
    : [
        ["#/signin", "Sign in"],
        ["#/signup", "Sign up"],
      ];
  document.getElementById("nav").replaceChildren(
    ...links.map(([href, text]) =>
      h("a", { href, class: location.hash === href || (href === "#/" && !location.hash) ? "here" : "" }, text),
    ),
  );
  document.getElementById("who").replaceChildren(
    ...(me
      ? [
          h("span", {}, `${me.login} (${me.role})`),
          h("button", { id: "signout", type: "button", onclick: signOut }, "Sign out"),
        ]
      : []),
  );
}

// Draws the page of the current route (or `hash`). `message` goes to the status line; a live
// redraw (`inPlace`) keeps the status line and the old page until the new one is ready.
async function render(hash, message, inPlace = false) {
  if (timer) clearTimeout(timer);
  timer = null;
  polling?.abort();
  polling = null;
  live += 1;
  if (hash !== undefined && location.hash !== hash) {
    history.replaceState(null, "", hash);
  }
  let route = location.hash || "#/";
  if (!me && !PUBLIC.includes(route)) route = "#/signin";
  if (me && PUBLIC.includes(route)) route = "#/";
  const page = PAGES[route] || sitesPage;
  nav();
  const main = document.getElementById("main");
  if (!inPlace) {
    main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    say(message || "");
  }
  const mine = live;
  try {
    const shown = await page();
    // A later click already asked for another page: the slower render must not win.
    if (mine === live) main.replaceChildren(shown);
  } catch (e) {
    if (mine === live && me !== null) main.replaceChildren(h("div", { class: "card" }, explain(e)));
  }
}

async function signOut() {
  try {
    await api("logout");
  } catch (e) {
    /* the session may be gone already */
  }
  me = null;
  render("#/signin", "Signed out.");
}

async function start() {
  const params = new URLSearchParams(location.search);
  if (location.pathname === "/reset" && params.get("token")) {
    document.getElementById("main").replaceChildren(resetPage(params.get("token")));
    return;
  }
  try {
    me = await api("whoami");
  } catch (e) {
    me = null;
  }
  render();
}

window.addEventListener("hashchange", () => render());
window.addEventListener("DOMContentLoaded", start);
