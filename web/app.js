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
const DETAILED = ["bad_params", "bad_record", "bad_email", "record_conflict", "forbidden"];

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

function field(label, name, attrs = {}) {
  const id = `f-${name}-${Math.random().toString(36).slice(2, 8)}`;
  const input = h("input", { id, name, ...attrs });
  const error = h("div", { class: "field-error", id: `${id}-err`, "data-error-for": name });
  input.setAttribute("aria-describedby", error.id);
  return h("label", { for: id }, label, input, error);
}

function say(text, kind = "") {
  const box = document.getElementById("status");
  box.replaceChildren(text ? h("div", { class: `msg ${kind}` }, text) : "");
}

function badge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

// Runs a form's action: disables it meanwhile, shows the reason by the right field or on top.
function submit(form, fieldFor, run) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    for (const e of form.querySelectorAll(".field-error")) e.textContent = "";
    for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    say("Working…");
    try {
      const data = Object.fromEntries(new FormData(form).entries());
      await run(data);
      // Clear only our own "Working…": a message the action said (a one-time code, "password
      // changed") stays.
      if (document.getElementById("status").textContent === "Working…") say("");
    } catch (e) {
      // An ended session already sent the console to the sign-in page, with its own message.
      if (e instanceof ApiError && e.reason === "auth_required" && !me) return;
      const name = e instanceof ApiError ? fieldFor(e.reason) : null;
      const slot = name && form.querySelector(`[data-error-for="${name}"]`);
      if (slot) {
        slot.textContent = explain(e);
        form.querySelector(`[name="${name}"]`)?.setAttribute("aria-invalid", "true");
        say("");
      } else {
        say(explain(e), "error");
      }
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
  return form;
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
      await render(undefined, undefined, true).catch(() => {});
      if (kept.length && main.firstChild) main.firstChild.prepend(...kept);
    };
    if (!main.contains(document.activeElement)) return redraw();
    const later = (e) => {
      if (e.relatedTarget && main.contains(e.relatedTarget)) main.addEventListener("focusout", later, { once: true });
      else redraw();
    };
    main.addEventListener("focusout", later, { once: true });
  });
}

const PAGES = {
  "#/signin": signinPage,
  "#/signup": signupPage,
  "#/forgot": forgotPage,
  "#/": sitesPage,
  "#/keys": keysPage,
  "#/webhooks": webhooksPage,
  "#/account": accountPage,
  // mail.js, dns.js and admin.js add their pages.
};
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

// ---------------------------------------------------------------- signing in and up

function signinPage() {
  // Shown once the server asks for it (otp_required): the code of the authenticator app.
  const otp = field("Code from your authenticator app (or a recovery code)", "otp",
    { autocomplete: "one-time-code", inputmode: "numeric" });
  otp.hidden = true;
  const enrolment = h("div", { id: "signin-enrolment" });
  const form = h(
    "form",
    { class: "stack", id: "signin-form" },
    field("Login", "login", { autocomplete: "username", required: true }),
    field("Password", "password", { type: "password", autocomplete: "current-password" }),
    h("details", {}, h("summary", {}, "Sign in with your one-time code instead"),
      field("Code (uniqcode)", "uniqcode", { autocomplete: "off" })),
    otp,
    h("button", { type: "submit" }, "Sign in"),
  );
  const askForCode = () => {
    otp.hidden = false;
    otp.querySelector("input").focus();
  };
  submit(form, (r) => ({ bad_login: "login", bad_password: "password", bad_otp: "otp" })[r], async (d) => {
    const p = { login: d.login };
    if (d.uniqcode) p.uniqcode = d.uniqcode;
    else p.password = d.password;
    if (d.otp) p.otp = d.otp.trim();
    try {
      await api("authorization", p);
    } catch (e) {
      if (e instanceof ApiError && e.reason === "otp_required") {
        askForCode();
        say(REASONS.otp_required);
        return;
      }
      if (e instanceof ApiError && e.reason === "otp_enrolment_required" && d.password) {
        say(REASONS.otp_enrolment_required);
        enrolment.replaceChildren(totpEnrolment({ login: d.login, password: d.password }, () => {
          enrolment.replaceChildren();
          askForCode();
          say("Two-factor sign-in is on. Sign in with a code from your app.");
        }));
        return;
      }
      throw e;
    }
    me = await api("whoami");
    render("#/");
  });
  return h("div", { class: "card narrow" }, h("h1", {}, "Sign in"), form, enrolment,
    h("p", { class: "muted" }, h("a", { href: "#/forgot" }, "Forgot your password?"), " · ",
      h("a", { href: "#/signup" }, "Create an account")));
}

// ---------------------------------------------------------------- two-factor sign-in

const SVG = "http://www.w3.org/2000/svg";

// The QR code the server computed (rows of "0"/"1"), drawn as one SVG path with a quiet zone of
// four modules: no image service ever sees the secret, and the CSP needs no exception.
function qrCode(rows) {
  const n = rows.length;
  const size = n + 8;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("class", "qr");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "QR code of the two-factor secret");
  svg.setAttribute("shape-rendering", "crispEdges");
  const back = document.createElementNS(SVG, "rect");
  back.setAttribute("width", size);
  back.setAttribute("height", size);
  back.setAttribute("fill", "#fff");
  let d = "";
  rows.forEach((row, y) => {
    for (let x = 0; x < row.length; x++) if (row[x] === "1") d += `M${x + 4} ${y + 4}h1v1h-1z`;
  });
  const dark = document.createElementNS(SVG, "path");
  dark.setAttribute("d", d);
  dark.setAttribute("fill", "#000");
  svg.append(back, dark);
  return svg;
}

function recoveryCodes(codes) {
  return h("div", { id: "recovery-codes" },
    h("p", {}, "Recovery codes, shown only now. Each signs you in once if you lose your phone; keep them somewhere safe:"),
    h("div", { class: "secret" }, h("ul", { class: "codes" }, codes.map((c) => h("li", {}, h("code", {}, c))))),
    copyButton(codes.join("\n")));
}

// Enrolment: enable_totp (with the password), the QR code and the secret, then a code to
// confirm, then the recovery codes once. `who` is {password} with a session, or {login,
// password} without one (an admin who must enrol before signing in).
function totpEnrolment(who, done) {
  const box = h("div", { class: "card", id: "totp-enrolment" });
  const start = h("form", { class: "stack", id: "totp-start" },
    who.password ? null : field("Current password", "password", { type: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit" }, "Set up two-factor sign-in"));
  submit(start, (r) => ({ bad_password: "password" })[r], async (d) => {
    const p = { password: who.password || d.password };
    if (who.login) p.login = who.login;
    const e = await api("enable_totp", p);
    const confirm = h("form", { class: "stack", id: "totp-confirm" },
      field("Code shown by the app", "otp", { autocomplete: "one-time-code", inputmode: "numeric", required: true }),
      h("button", { type: "submit" }, "Turn it on"));
    submit(confirm, (r) => ({ bad_otp: "otp" })[r], async (c) => {
      const q = { otp: c.otp.trim() };
      if (who.login) q.login = who.login;
      const r = await api("confirm_totp", q);
      box.replaceChildren(h("h2", {}, "Two-factor sign-in is on"), recoveryCodes(r.recovery_codes),
        h("button", { type: "button", id: "totp-done", onclick: done }, "I have saved them"));
    });
    box.replaceChildren(h("h2", {}, "Scan this with your authenticator app"), qrCode(e.qr),
      h("p", { class: "muted" }, "Or type this key into the app:"), h("div", { class: "secret", id: "totp-secret" }, e.secret),
      confirm);
    confirm.querySelector("input").focus();
  });
  box.append(h("h2", {}, "Two-factor sign-in"),
    h("p", { class: "muted" }, "After your password, signing in will ask for a code from an authenticator app on your phone."),
    start);
  return box;
}

async function totpCard() {
  const t = await api("get_totp");
  const card = h("div", { class: "card", id: "totp" });
  if (!t.available) {
    card.append(h("h2", {}, "Two-factor sign-in"), h("p", { class: "muted" }, "Not available on this service."));
    return card;
  }
  if (!t.enabled) {
    const intro = h("div", {}, h("h2", {}, "Two-factor sign-in"),
      h("p", {}, t.required ? "Admins must use it." : "Off."),
      h("button", { type: "button", id: "totp-enable", onclick: () => {
        card.replaceWith(totpEnrolment({}, () => render()));
      } }, "Set up"));
    card.append(intro);
    return card;
  }
  const off = h("form", { class: "stack narrow", id: "totp-disable" },
    field("Current password", "password", { type: "password", autocomplete: "current-password", required: true }),
    field("Code from the app, or a recovery code", "otp", { autocomplete: "one-time-code", required: true }),
    h("button", { type: "submit", class: "danger" }, "Turn two-factor sign-in off"));
  submit(off, (r) => ({ bad_password: "password", bad_otp: "otp" })[r], async (d) => {
    await api("disable_totp", { password: d.password, otp: d.otp.trim() });
    render(undefined, "Two-factor sign-in is off.");
  });
  card.append(h("h2", {}, "Two-factor sign-in"),
    h("p", { id: "totp-state" }, `On. ${t.recovery_codes_left} recovery codes left.`),
    t.required ? h("p", { class: "muted" }, "Admins must keep it.") : off);
  return card;
}

async function policyCard() {
  const p = await api("get_auth_policy");
  const box = h("input", { type: "checkbox", name: "required", id: "policy-totp", checked: p.totp_required_for_admins });
  const form = h("form", { class: "row", id: "auth-policy" },
    h("label", { for: "policy-totp" }, "Require two-factor sign-in for admins", box),
    h("button", { type: "submit" }, "Save"));
  submit(form, () => null, async () => {
    await api("set_auth_policy", { totp_required_for_admins: box.checked });
    say("Policy saved. Admins without two-factor sign-in were signed out.");
  });
  return h("div", { class: "card" }, h("h2", {}, "Sign-in policy"), form);
}

function signupPage() {
  const form = h(
    "form",
    { class: "stack", id: "signup-form" },
    field("Login", "login", { autocomplete: "username", required: true }),
    field("E-mail", "email", { type: "email", autocomplete: "email", required: true }),
    field("Password (8-72 characters)", "password", { type: "password", autocomplete: "new-password", required: true }),
    field("Invite code (if your provider gave you one)", "invite", { autocomplete: "off" }),
    h("button", { type: "submit" }, "Create account"),
  );
  submit(form, (r) => ({ bad_login: "login", bad_email: "email", bad_password: "password", bad_invite: "invite" })[r], async (d) => {
    const p = { login: d.login, email: d.email, password: d.password, session: "yes" };
    if (d.invite) p.invite = d.invite;
    const made = await api("adduser", p);
    me = await api("whoami");
    render("#/", `Welcome, ${made.login}. Keep your one-time code somewhere safe: ${made.uniqcode}`);
  });
  return h("div", { class: "card narrow" }, h("h1", {}, "Create an account"), form);
}

function forgotPage() {
  const form = h("form", { class: "stack", id: "forgot-form" },
    field("Your e-mail address", "email", { type: "email", required: true }),
    h("button", { type: "submit" }, "Send a reset link"));
  submit(form, (r) => ({ bad_email: "email" })[r], async (d) => {
    await api("restore_password", { email: d.email });
    form.replaceWith(h("p", {}, "If that address belongs to an account, a reset link is on its way."));
  });
  return h("div", { class: "card narrow" }, h("h1", {}, "Reset your password"), form);
}

function resetPage(token) {
  const form = h("form", { class: "stack", id: "reset-form" },
    field("New password (8-72 characters)", "newpassword", { type: "password", autocomplete: "new-password", required: true }),
    h("button", { type: "submit" }, "Set the new password"));
  submit(form, (r) => ({ bad_password: "newpassword" })[r], async (d) => {
    await api("reset_password", { token, newpassword: d.newpassword });
    history.replaceState(null, "", "/#/signin");
    render("#/signin", "Your password is set. Sign in with it.");
  });
  return h("div", { class: "card narrow" }, h("h1", {}, "Choose a new password"), form);
}

// ---------------------------------------------------------------- sites and domains

async function sitesPage() {
  const [all, usage] = await Promise.all([api("get_node_list", { limit: 1000 }), api("get_user_stats")]);
  // Sites live on web nodes only; a mail or DNS node is not offered.
  const nodes = { nodes: all.nodes.filter((n) => !n.kinds || n.kinds.includes("web")) };
  // Admins see everyone's sites: each is labelled with its owner.
  const owners = new Map();
  if (me.role === "admin") {
    const users = await api("get_list_user", { limit: 1000 });
    for (const u of users.users) owners.set(u.userid, u.login);
  }
  const page = h("div", {});
  let usageShown = usageCard(usage);
  page.append(h("h1", {}, "Sites"), usageShown);
  if (!nodes.nodes.length) {
    page.append(h("div", { class: "card" }, "No node is open to you yet. Your provider grants nodes."));
    return page;
  }
  const select = h("select", { name: "nodeid", id: "site-node" },
    nodes.nodes.map((n) => h("option", { value: n.nodeid }, `${n.name} (#${n.nodeid})`)));
  const create = h("form", { class: "row", id: "create-site" },
    h("label", { for: "site-node" }, "Node", select),
    field("Document root (empty: the node's default)", "docroot", { placeholder: "/var/www/shop" }),
    h("button", { type: "submit" }, "Create a site"));
  submit(create, (r) => (r === "bad_params" ? "docroot" : null), async (d) => {
    const properties = d.docroot ? { docroot: d.docroot } : "default";
    const site = await api("create_site", { nodeid: Number(d.nodeid), properties });
    await refresh();
    say(`Site ${site.sitenum} created; it goes live once the node has applied it.`);
  });
  page.append(h("div", { class: "card" }, create));
  const lists = h("div", { id: "site-lists" });
  page.append(lists);
  const shown = live;
  async function refresh() {
    if (timer) clearTimeout(timer);
    timer = null;
    const fresh = usageCard(await api("get_user_stats"));
    usageShown.replaceWith(fresh);
    usageShown = fresh;
    const cards = [];
    let waiting = false;
    for (const n of nodes.nodes) {
      const r = await api("get_list_site", { nodeid: n.nodeid, limit: 1000 });
      const sites = (r[0] && r[0].site) || [];
      if (!sites.length) continue;
      waiting ||= sites.some((s) => s.status === "pending");
      cards.push(h("div", { class: "card", "data-node": n.nodeid },
        h("h2", {}, `${n.name} (#${n.nodeid})`),
        ...sites.map((s) => siteBlock(n, s, refresh, owners))));
    }
    // Working in the lists (typing, or reading the error beside a field after submitting) is not
    // interrupted: they are redrawn once the focus leaves them.
    if (shown !== live) return;
    if (lists.contains(document.activeElement)) {
      const later = (e) => {
        if (e.relatedTarget && lists.contains(e.relatedTarget)) {
          lists.addEventListener("focusout", later, { once: true });
        } else {
          timer = setTimeout(() => refresh().catch(() => {}), 0);
        }
      };
      lists.addEventListener("focusout", later, { once: true });
      return;
    }
    lists.replaceChildren(...(cards.length ? cards : [h("div", { class: "card muted" }, "No sites yet.")]),
      await waitingDomains(refresh));
    // No timer while a site is pending: the feed tells `site.applied` (or `site.failed`) to the
    // site's owner as soon as the node reports, so an idle console waits in one long poll.
    lists.dataset.waiting = waiting ? "yes" : "no";
  }
  await refresh();
  follow(() => refresh().catch(() => {}));
  return page;
}

// A domain's certificate state: issued (until when), pending, failed (why), or none (HTTP only).
function certBadge(c) {
  if (!c || c.cert === "none") return "";
  const b = badge(c.cert === "issued" ? "https" : c.cert);
  b.title = c.cert === "issued" ? `certificate until ${c.not_after}` : c.cert_error || "certificate on its way";
  return b;
}

function usageCard(u) {
  const item = (name, x) => h("div", { class: "stat" }, h("span", { class: "muted" }, name), h("b", {}, `${x.used} / ${x.limit}`));
  return h("div", { class: "grid", id: "usage" }, item("Sites", u.sites), item("Domains", u.domains),
    item("Mail domains", u.mail_domains), item("Mailboxes", u.mailboxes));
}

// The caller's domains under review or rejected (not yet served); a rejected one can be sent back.
async function waitingDomains(refresh) {
  const [reviewing, rejected] = await Promise.all([
    api("get_list_domain", { status: "reviewing", limit: 100 }),
    api("get_list_domain", { status: "rejected", limit: 100 }),
  ]);
  if (!reviewing.domainlist.length && !rejected.domainlist.length) return "";
  const reasons = new Map((rejected.review || []).map((r) => [r.domain, r.reject_reason]));
  return h("div", { class: "card", id: "waiting-domains" }, h("h2", {}, "Domains not served yet"),
    table(["Domain", "State", ""], [
      ...reviewing.domainlist.map((d) => h("tr", {}, h("td", {}, d), h("td", {}, badge("reviewing")), h("td", {}))),
      ...rejected.domainlist.map((d) => h("tr", { "data-rejected": d }, h("td", {}, d),
        h("td", {}, badge("rejected"), reasons.get(d) ? h("div", { class: "field-error" }, reasons.get(d)) : null),
        h("td", {}, h("button", { class: "plain", type: "button", onclick: async () => {
          try {
            await api("resubmit_domain", { domain: d });
            await refresh();
            say(`${d} waits for review again.`);
          } catch (e) {
            say(explain(e), "error");
          }
        } }, "Send for review again")))),
    ]));
}

function siteBlock(node, s, refresh, owners) {
  const nodeid = node.nodeid;
  const add = h("form", { class: "row", "data-add-domain": s.siteid },
    field("Add a domain", "domain", { placeholder: "www.example.com", required: true }),
    h("label", {}, "HTTPS", h("input", { type: "checkbox", name: "https", value: "yes", checked: true })),
    h("label", {}, "Also *.domain", h("input", { type: "checkbox", name: "wildcard", value: "yes" })),
    h("button", { type: "submit" }, "Add"));
  submit(add, (r) => (["bad_domain", "domain_exists", "domain_taken", "quota_exceeded", "bad_params", "zone_required"].includes(r) ? "domain" : null), async (d) => {
    const r = await api("add_domain", { nodeid, siteid: s.siteid, domain: d.domain, https: !!d.https, wildcard: !!d.wildcard });
    add.reset();
    await refresh();
    say(r.status === "reviewing" ? `${r.domain} waits for your provider's review.` : `${r.domain} added.`);
  });
  const remove = async () => {
    if (!confirm(`Delete ${s.sitenum} and its domains?`)) return;
    try {
      await api("delete_site", { nodeid, siteid: s.siteid });
      await refresh();
    } catch (e) {
      say(explain(e), "error");
    }
  };
  const certs = new Map((s.certificates || []).map((c) => [c.domain, c]));
  const target = [node.ipv4, node.ipv6].filter(Boolean).join(" and ") || node.address;
  const domains = s.servername.map((d) =>
    h("li", {}, h("code", {}, d), " ", certBadge(certs.get(d)), " ",
      h("button", { class: "plain", type: "button", "aria-label": `Delete ${d}`, onclick: async () => {
        if (!confirm(`Delete ${d}? The site stops answering for it.`)) return;
        try {
          await api("delete_domain", { domain: d });
          await refresh();
        } catch (e) {
          say(explain(e), "error");
        }
      } }, "Delete")));
  return h("section", { class: "site", "data-site": s.siteid, "aria-label": s.sitenum },
    h("h2", {}, s.sitenum, " ", badge(s.status), " ",
      h("button", { class: "danger", type: "button", onclick: remove }, "Delete site")),
    s.status === "error" ? h("p", { class: "field-error" }, `The node reported: ${s.error}`) : null,
    h("p", { class: "muted" }, "Document root: ", h("code", {}, s.docroot),
      owners.size ? ` · owner ${owners.get(s.userid) || s.userid}` : ""),
    s.servername.length ? h("p", { class: "muted" }, `Point these names at ${target} (A/AAAA), or host their zone on the DNS page.`) : null,
    h("ul", { class: "domains" }, domains),
    add);
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

// ---------------------------------------------------------------- integration

async function keysPage() {
  const body = h("tbody", {});
  const { foot } = await paged("get_list_api_key", {}, "keys", keyRow, body);
  const shown = h("div", { id: "new-key" });
  const form = h("form", { class: "row", id: "create-key" },
    field("Name", "name", { placeholder: "billing" }),
    field("Actions (comma-separated, empty: all)", "actions"),
    field("Expires in", "expires", { placeholder: "90d" }),
    field("Only from networks (comma-separated)", "cidr", { placeholder: "203.0.113.0/24" }),
    field("Requests per hour", "rate_limit", { type: "number", min: 1 }),
    h("label", {}, "Read-only", h("input", { type: "checkbox", name: "read_only", value: "yes" })),
    h("button", { type: "submit" }, "Create key"));
  submit(form, () => null, async (d) => {
    const p = { name: d.name || "" };
    if (d.actions) p.actions = d.actions.split(",").map((a) => a.trim()).filter(Boolean);
    if (d.expires) p.expires = d.expires;
    if (d.cidr) p.cidr = d.cidr.split(",").map((c) => c.trim()).filter(Boolean);
    if (d.rate_limit) p.rate_limit = Number(d.rate_limit);
    if (d.read_only) p.read_only = true;
    const k = await api("create_api_key", p);
    await render();
    document.getElementById("new-key").replaceChildren(h("div", { class: "card" },
      h("p", {}, "Your new key. It is shown only now:"), h("div", { class: "secret" }, k.key), copyButton(k.key)));
  });
  return h("div", {}, h("h1", {}, "API keys"), shown, h("div", { class: "card" }, form),
    h("div", { class: "card" }, h("table", {}, h("thead", {}, h("tr", {},
      ["Name", "Key", "Scope", "Expires", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))), body), foot));
}

function keyRow(k) {
  return h("tr", {}, h("td", {}, k.name || "—"), h("td", {}, h("code", {}, `${k.prefix}…`)),
    h("td", {}, [k.read_only ? "read-only" : "read-write", k.actions ? k.actions.join(", ") : "all actions"].join("; ")),
    h("td", {}, k.expires_at || "never"),
    h("td", { class: "hide-narrow" }, k.last_used_at ? `${k.last_used_at} from ${k.last_used_ip}` : "never"),
    h("td", {}, h("button", { class: "danger", type: "button", onclick: async () => {
      if (!confirm(`Revoke the key ${k.name || k.prefix}? Scripts using it stop working.`)) return;
      try { await api("revoke_api_key", { keyid: k.keyid }); render(); } catch (e) { say(explain(e), "error"); }
    } }, "Revoke")));
}

const EVENTS = ["site.created", "site.deleted", "domain.added", "domain.deleted", "domain.reviewed",
  "mail_domain.added", "mail_domain.deleted", "mailbox.created", "mailbox.deleted", "user.created",
  "node.applied", "node.error"];

async function webhooksPage() {
  const form = h("form", { class: "stack", id: "add-webhook" },
    field("URL", "url", { type: "url", required: true, placeholder: "https://billing.example.com/hook" }),
    h("fieldset", {}, h("legend", {}, "Events"),
      EVENTS.map((e) => h("label", {}, h("input", { type: "checkbox", name: `ev:${e}`, value: e }), e))),
    h("button", { type: "submit" }, "Add webhook"));
  submit(form, (r) => ({ bad_url: "url" })[r], async (d) => {
    const events = Object.keys(d).filter((k) => k.startsWith("ev:")).map((k) => d[k]);
    const w = await api("add_webhook", { url: d.url, events });
    await render();
    if (w.secret) document.getElementById("main").prepend(h("div", { class: "card" },
      h("p", {}, "The signing secret, shown only now:"), h("div", { class: "secret" }, w.secret), copyButton(w.secret)));
  });
  const hooks = h("div", {});
  const { foot } = await paged("get_list_webhook", {}, "webhooks", (w) => later(() => webhookCard(w)), hooks);
  return h("div", {}, h("h1", {}, "Webhooks"), h("div", { class: "card" }, form), hooks, foot);
}

// A webhook with its latest deliveries.
async function webhookCard(w) {
  const body = h("tbody", {});
  const { foot } = await paged("get_webhook_deliveries", { webhookid: w.webhookid, limit: 5 }, "deliveries", (x) =>
    h("tr", {}, h("td", {}, x.event), h("td", {}, badge(x.state)), h("td", {}, x.attempts),
      h("td", {}, x.last_error || (x.last_status ? `HTTP ${x.last_status}` : "—"))), body);
  return h("div", { class: "card", "data-webhook": w.url }, h("h2", {}, w.url),
    h("p", { class: "muted" }, w.events.join(", ")),
    h("table", {}, h("thead", {}, h("tr", {}, ["Event", "State", "Attempts", "Last answer"].map((t) => h("th", { scope: "col" }, t)))), body),
    foot,
    h("button", { class: "danger", type: "button", onclick: async () => {
      if (!confirm(`Delete the webhook to ${w.url}?`)) return;
      try { await api("delete_webhook", { webhookid: w.webhookid }); render(); } catch (e) { say(explain(e), "error"); }
    } }, "Delete webhook"));
}

async function accountPage() {
  const form = h("form", { class: "stack narrow", id: "change-password" },
    field("Current password", "oldpassword", { type: "password", autocomplete: "current-password", required: true }),
    field("New password", "newpassword", { type: "password", autocomplete: "new-password", required: true }),
    h("button", { type: "submit" }, "Change password"));
  submit(form, (r) => ({ bad_password: "oldpassword" })[r], async (d) => {
    await api("change_password", { login: me.login, oldpassword: d.oldpassword, newpassword: d.newpassword });
    form.reset();
    say("Password changed. Other sessions were signed out.");
  });
  return h("div", {}, h("h1", {}, "Account"), h("div", { class: "card" }, h("p", {}, `Signed in as ${me.login}.`), form),
    await totpCard(), me.role === "admin" ? await policyCard() : null);
}
