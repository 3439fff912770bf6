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
  otp_required: "Enter the code of your authenticator app.",
  bad_otp: "That code is wrong or was used already.",
  otp_enrolment_required: "Admins must use two-factor sign-in. Set it up now.",
};

function explain(e) {
  if (!(e instanceof ApiError)) return "Could not reach the service. Check your connection.";
  const text = REASONS[e.reason] || e.reason;
  return e.message && e.message !== e.reason ? `${text} (${e.message})` : text;
}

async function api(action, params = {}) {
  let r;
  try {
    r = await fetch("/api", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ action, params }),
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
    if (body.reason === "auth_required" && me && action !== "authorization") {
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

// ---------------------------------------------------------------- state and routing

let me = null; // whoami, once signed in
let timer = null; // a short recheck of the current page while a node has not applied it yet
let live = 0; // bumped by every page: a change-feed poll of an earlier page stops

// Follows the change feed while the current page stays, calling `onChange` with each batch of
// news. One request waits up to a minute at a time, so an idle console costs at most 60 an hour.
async function follow(onChange) {
  const mine = live;
  let since = "now";
  while (mine === live && me) {
    try {
      const r = await api("get_changes", { since, wait: 60 });
      if (mine !== live) return;
      since = r.cursor;
      if (r.changes.length) await onChange(r.changes);
    } catch (e) {
      if (mine !== live || !me) return;
      await new Promise((ok) => setTimeout(ok, 10000));
    }
  }
}

const PAGES = {
  "#/signin": signinPage,
  "#/signup": signupPage,
  "#/forgot": forgotPage,
  "#/": sitesPage,
  "#/mail": mailPage,
  "#/keys": keysPage,
  "#/webhooks": webhooksPage,
  "#/account": accountPage,
  "#/admin/users": usersPage,
  "#/admin/nodes": nodesPage,
  "#/admin/review": reviewPage,
  "#/admin/audit": auditPage,
  "#/admin/stats": statsPage,
};
const PUBLIC = ["#/signin", "#/signup", "#/forgot"];

function nav() {
  const links = me
    ? [
        ["#/", "Sites"],
        ["#/mail", "Mail"],
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

async function render(hash, message) {
  if (timer) clearTimeout(timer);
  timer = null;
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
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  say(message || "");
  try {
    main.replaceChildren(await page());
  } catch (e) {
    main.replaceChildren(h("div", { class: "card" }, explain(e)));
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
  const [nodes, usage] = await Promise.all([api("get_node_list", { limit: 1000 }), api("get_user_stats")]);
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
    h("button", { type: "submit" }, "Create a site"));
  submit(create, () => null, async (d) => {
    const site = await api("create_site", { nodeid: Number(d.nodeid), properties: "default" });
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
        ...sites.map((s) => siteBlock(n.nodeid, s, refresh))));
    }
    // Typing in a form is not interrupted: the lists are redrawn once it loses focus.
    if (shown !== live) return;
    if (document.querySelector("#site-lists form input:focus")) {
      timer = setTimeout(() => refresh().catch(() => {}), 4000);
      return;
    }
    lists.replaceChildren(...(cards.length ? cards : [h("div", { class: "card muted" }, "No sites yet.")]));
    // Until the node has applied a change, look again every few seconds; then only the feed.
    if (waiting) timer = setTimeout(() => refresh().catch(() => {}), 4000);
  }
  await refresh();
  follow(() => refresh().catch(() => {}));
  return page;
}

function usageCard(u) {
  const item = (name, x) => h("div", { class: "stat" }, h("span", { class: "muted" }, name), h("b", {}, `${x.used} / ${x.limit}`));
  return h("div", { class: "grid", id: "usage" }, item("Sites", u.sites), item("Domains", u.domains),
    item("Mail domains", u.mail_domains), item("Mailboxes", u.mailboxes));
}

function siteBlock(nodeid, s, refresh) {
  const add = h("form", { class: "row", "data-add-domain": s.siteid },
    field("Add a domain", "domain", { placeholder: "www.example.com", required: true }),
    h("button", { type: "submit" }, "Add"));
  submit(add, (r) => (["bad_domain", "domain_exists", "domain_taken", "quota_exceeded", "bad_params"].includes(r) ? "domain" : null), async (d) => {
    const r = await api("add_domain", { nodeid, siteid: s.siteid, domain: d.domain });
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
  const domains = s.servername.map((d) =>
    h("li", {}, h("code", {}, d), " ",
      h("button", { class: "plain", type: "button", "aria-label": `Delete ${d}`, onclick: async () => {
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
    h("p", { class: "muted" }, "Document root: ", h("code", {}, s.docroot)),
    h("ul", { class: "domains" }, domains),
    add);
}

// ---------------------------------------------------------------- mail

async function mailPage() {
  const list = await api("get_list_mail_domain", { limit: 1000 });
  const page = h("div", {}, h("h1", {}, "Mail"));
  const add = h("form", { class: "row", id: "add-mail-domain" },
    field("Mail domain", "domain", { required: true, placeholder: "example.com" }),
    field("Region", "region", { placeholder: "default" }),
    h("button", { type: "submit" }, "Add"));
  submit(add, (r) => (["bad_domain", "domain_exists", "domain_taken"].includes(r) ? "domain" : null), async (d) => {
    const p = { domain: d.domain };
    if (d.region) p.region = d.region;
    await api("add_mail_domain", p);
    render();
  });
  page.append(h("div", { class: "card" }, add));
  for (const d of list.domains) page.append(await mailDomainCard(d));
  return page;
}

async function mailDomainCard(d) {
  const [boxes, aliases] = await Promise.all([
    api("get_list_mailbox", { domain: d.domain, limit: 1000 }),
    api("get_list_alias", { domain: d.domain, limit: 1000 }),
  ]);
  let dkim = null;
  try {
    dkim = await api("get_dkim", { domain: d.domain });
  } catch (e) {
    /* no key yet */
  }
  const addBox = h("form", { class: "row" },
    field("New mailbox (local part)", "local", { required: true }),
    field("Password", "password", { type: "password", required: true }),
    field("Quota (MB, 0: none)", "quota", { type: "number", min: 0, value: 0 }),
    h("button", { type: "submit" }, "Add mailbox"));
  submit(addBox, (r) => ({ bad_password: "password", bad_email: "local", already_exists: "local" })[r], async (f) => {
    await api("add_mailbox", { domain: d.domain, local: f.local, password: f.password, quota_bytes: Number(f.quota || 0) * 1048576 });
    render();
  });
  const addAlias = h("form", { class: "row" },
    field("Alias (or @domain for a catch-all)", "source", { required: true, placeholder: `sales@${d.domain}` }),
    field("Forward to", "destination", { required: true }),
    h("button", { type: "submit" }, "Add alias"));
  submit(addAlias, (r) => ({ bad_email: "source" })[r], async (f) => {
    await api("add_alias", { source: f.source, destination: f.destination });
    render();
  });
  const makeKey = h("button", { type: "button", class: "plain", onclick: async () => {
    try {
      // A new selector each time (a DNS label: "hp" and the time in base 36), so a rotation
      // publishes the next key beside the current one.
      const selector = `hp${Date.now().toString(36)}`;
      await api("set_dkim", { domain: d.domain, selector });
      render(undefined, `DKIM key ${selector} made: publish its record, then activate it.`);
    } catch (e) {
      say(explain(e), "error");
    }
  } }, dkim ? "New DKIM key" : "Make a DKIM key");
  return h("div", { class: "card" },
    h("h2", {}, d.domain, " ", badge(d.status || "active"), d.disabled ? " (disabled)" : ""),
    d.reject_reason ? h("p", { class: "field-error" }, `Rejected: ${d.reject_reason}`) : null,
    table(["Mailbox", "Used", "Forwarding", ""], boxes.mailboxes.map((m) =>
      h("tr", {}, h("td", {}, m.address),
        h("td", {}, quotaBar(m)),
        h("td", { class: "hide-narrow" }, (m.forward_to || []).join(", ")),
        h("td", {}, h("button", { class: "danger", type: "button", onclick: async () => {
          if (!confirm(`Delete ${m.address}?`)) return;
          try { await api("delete_mailbox", { address: m.address }); render(); } catch (e) { say(explain(e), "error"); }
        } }, "Delete"))))),
    addBox,
    h("h2", {}, "Aliases"),
    table(["Alias", "Goes to"], aliases.aliases.map((a) => h("tr", {}, h("td", {}, a.source), h("td", {}, a.destination.join(", "))))),
    addAlias,
    h("h2", {}, "DKIM"),
    dkim ? h("div", {}, h("p", { class: "muted" }, `TXT record ${dkim.name}:`), h("div", { class: "secret" }, dkim.record),
      copyButton(dkim.record)) : h("p", { class: "muted" }, "No key yet."),
    makeKey);
}

function quotaBar(m) {
  const used = m.used_bytes || 0;
  if (!m.quota_bytes) return `${(used / 1048576).toFixed(1)} MB`;
  const pct = Math.min(100, Math.round((used * 100) / m.quota_bytes));
  const fill = h("span", {});
  fill.style.width = `${pct}%`; // set through the CSSOM: the CSP allows no style attributes
  return h("div", {}, h("div", { class: "bar", role: "progressbar", "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100 },
    fill), h("span", { class: "muted" }, `${pct}% of ${(m.quota_bytes / 1048576).toFixed(0)} MB`));
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
  const list = await api("get_list_api_key");
  const shown = h("div", { id: "new-key" });
  const form = h("form", { class: "row", id: "create-key" },
    field("Name", "name", { placeholder: "billing" }),
    field("Actions (comma-separated, empty: all)", "actions"),
    field("Expires in", "expires", { placeholder: "90d" }),
    h("label", {}, "Read-only", h("input", { type: "checkbox", name: "read_only", value: "yes" })),
    h("button", { type: "submit" }, "Create key"));
  submit(form, () => null, async (d) => {
    const p = { name: d.name || "" };
    if (d.actions) p.actions = d.actions.split(",").map((a) => a.trim()).filter(Boolean);
    if (d.expires) p.expires = d.expires;
    if (d.read_only) p.read_only = true;
    const k = await api("create_api_key", p);
    await render();
    document.getElementById("new-key").replaceChildren(h("div", { class: "card" },
      h("p", {}, "Your new key. It is shown only now:"), h("div", { class: "secret" }, k.key), copyButton(k.key)));
  });
  return h("div", {}, h("h1", {}, "API keys"), shown, h("div", { class: "card" }, form),
    h("div", { class: "card" }, table(["Name", "Key", "Scope", "Expires", "Last used", ""], list.keys.map((k) =>
      h("tr", {}, h("td", {}, k.name || "—"), h("td", {}, h("code", {}, `${k.prefix}…`)),
        h("td", {}, [k.read_only ? "read-only" : "read-write", k.actions ? k.actions.join(", ") : "all actions"].join("; ")),
        h("td", {}, k.expires_at || "never"),
        h("td", { class: "hide-narrow" }, k.last_used_at ? `${k.last_used_at} from ${k.last_used_ip}` : "never"),
        h("td", {}, h("button", { class: "danger", type: "button", onclick: async () => {
          try { await api("revoke_api_key", { keyid: k.keyid }); render(); } catch (e) { say(explain(e), "error"); }
        } }, "Revoke")))))));
}

const EVENTS = ["site.created", "site.deleted", "domain.added", "domain.deleted", "domain.reviewed",
  "mail_domain.added", "mail_domain.deleted", "mailbox.created", "mailbox.deleted", "user.created",
  "node.applied", "node.error"];

async function webhooksPage() {
  const list = await api("get_list_webhook");
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
  const rows = [];
  for (const w of list.webhooks) {
    const d = await api("get_webhook_deliveries", { webhookid: w.webhookid, limit: 5 });
    rows.push(h("div", { class: "card" }, h("h2", {}, w.url),
      h("p", { class: "muted" }, w.events.join(", ")),
      table(["Event", "State", "Attempts", "Last answer"], d.deliveries.map((x) =>
        h("tr", {}, h("td", {}, x.event), h("td", {}, badge(x.state)), h("td", {}, x.attempts),
          h("td", {}, x.last_error || (x.last_status ? `HTTP ${x.last_status}` : "—"))))),
      h("button", { class: "danger", type: "button", onclick: async () => {
        try { await api("delete_webhook", { webhookid: w.webhookid }); render(); } catch (e) { say(explain(e), "error"); }
      } }, "Delete webhook")));
  }
  return h("div", {}, h("h1", {}, "Webhooks"), h("div", { class: "card" }, form), ...rows);
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

// ---------------------------------------------------------------- admin

async function usersPage(offset = 0, q = "") {
  const limit = 20;
  const list = await api("get_list_user", { q, limit, offset });
  const search = h("form", { class: "row", role: "search", id: "user-search" },
    field("Search login or e-mail", "q", { value: q }), h("button", { type: "submit" }, "Search"));
  submit(search, () => null, async (d) => swap(await usersPage(0, d.q)));
  const page = h("div", { id: "users-page" }, h("h1", {}, "Users"), h("div", { class: "card" }, search));
  const swap = (el) => page.replaceWith(el);
  page.append(h("div", { class: "card" },
    table(["Login", "Role", "Sites", "Domains", "Limits", ""], list.users.map((u) => userRow(u))),
    pager(list.total, offset, limit, async (o) => swap(await usersPage(o, q)))));
  return page;
}

function userRow(u) {
  const act = (params, done) => async () => {
    try {
      await api("set_user", { userid: u.userid, ...params });
      say(done);
      render();
    } catch (e) {
      say(explain(e), "error");
    }
  };
  return h("tr", { "data-user": u.login },
    h("td", {}, u.login, u.disabled ? " (disabled)" : "", h("div", { class: "muted" }, u.email.join(", "))),
    h("td", {}, u.role),
    h("td", {}, u.sites), h("td", {}, u.domains),
    h("td", { class: "hide-narrow" }, `sites ${u.max_sites ?? "default"}, domains ${u.max_domains ?? "default"}`),
    h("td", {},
      h("button", { class: u.disabled ? "plain" : "danger", type: "button", "data-toggle-disabled": u.login,
        onclick: act({ disabled: !u.disabled }, `${u.login} ${u.disabled ? "enabled" : "disabled"}.`) },
        u.disabled ? "Enable" : "Disable"), " ",
      h("button", { class: "plain", type: "button", onclick: act({ role: u.role === "admin" ? "user" : "admin" }, "Role changed.") },
        u.role === "admin" ? "Make user" : "Make admin"), " ",
      h("button", { class: "plain", type: "button", onclick: async () => {
        const n = prompt(`Most sites for ${u.login} (empty: default)`, u.max_sites ?? "");
        if (n === null) return;
        await act({ max_sites: n === "" ? null : Number(n) }, "Limit set.")();
      } }, "Site limit")));
}

async function nodesPage() {
  const nodes = await api("get_node_list", { limit: 1000 });
  const add = h("form", { class: "row", id: "add-node" },
    field("Name", "name", { required: true }), field("Address", "address", { required: true }),
    h("label", {}, "Public", h("input", { type: "checkbox", name: "public", value: "yes" })),
    h("button", { type: "submit" }, "Add node"));
  submit(add, () => null, async (d) => {
    const n = await api("add_node", { name: d.name, address: d.address, public: !!d.public });
    await render();
    document.getElementById("main").prepend(h("div", { class: "card" },
      h("p", {}, `Node ${n.nodeid}'s agent token, shown only now:`), h("div", { class: "secret" }, n.token), copyButton(n.token)));
  });
  const grant = h("form", { class: "row", id: "grant-node" },
    field("User id", "userid", { required: true }), field("Node id", "nodeid", { required: true, type: "number" }),
    h("button", { type: "submit" }, "Grant"), h("button", { type: "button", class: "plain", onclick: async () => {
      const d = Object.fromEntries(new FormData(grant).entries());
      try { await api("revoke_node", { userid: d.userid, nodeid: Number(d.nodeid) }); say("Revoked."); } catch (e) { say(explain(e), "error"); }
    } }, "Revoke"));
  submit(grant, () => null, async (d) => {
    await api("grant_node", { userid: d.userid, nodeid: Number(d.nodeid) });
    say("Granted.");
  });
  const rows = [];
  for (const n of nodes.nodes) {
    let s = null;
    try {
      s = await api("get_node_status", { nodeid: n.nodeid });
    } catch (e) {
      /* shown as unknown */
    }
    rows.push(h("tr", {}, h("td", {}, `${n.name} (#${n.nodeid})`), h("td", {}, n.address),
      h("td", {}, s ? badge(s.in_sync ? "ok" : s.last_error ? "error" : "pending") : "?"),
      h("td", {}, s ? `${s.applied_revision} / ${s.revision}` : ""),
      h("td", { class: "hide-narrow" }, s?.last_seen || "never"),
      h("td", { class: "hide-narrow" }, s?.last_error || "")));
  }
  return h("div", {}, h("h1", {}, "Nodes"), h("div", { class: "card" }, add), h("div", { class: "card" }, grant),
    h("div", { class: "card" }, table(["Node", "Address", "Sync", "Applied / revision", "Last seen", "Last error"], rows)));
}

async function reviewPage() {
  const [web, mail] = await Promise.all([
    api("get_list_domain", { status: "reviewing", limit: 1000 }),
    api("get_list_mail_domain", { status: "reviewing", limit: 1000 }),
  ]);
  const names = [...new Set([...web.domainlist, ...mail.domains.map((d) => d.domain)])];
  const decide = (domain, audit_status) => async () => {
    const p = { domain, audit_status };
    if (audit_status === "rejected") {
      const why = prompt(`Why is ${domain} rejected?`);
      if (!why) return;
      p.reject_reason = why;
    }
    try { await api("review_domain", p); render(); } catch (e) { say(explain(e), "error"); }
  };
  return h("div", {}, h("h1", {}, "Domains waiting for review"), h("div", { class: "card" },
    names.length ? table(["Domain", ""], names.map((d) => h("tr", {}, h("td", {}, d), h("td", {},
      h("button", { type: "button", onclick: decide(d, "passed") }, "Pass"), " ",
      h("button", { type: "button", class: "danger", onclick: decide(d, "rejected") }, "Reject")))))
      : h("p", { class: "muted" }, "Nothing waits.")));
}

async function auditPage(before = null, action = "") {
  const p = { limit: 50 };
  if (before) p.before = before;
  if (action) p.action = action;
  const log = await api("get_audit_log", p);
  const filter = h("form", { class: "row", id: "audit-filter" }, field("Action", "action", { value: action }),
    h("button", { type: "submit" }, "Filter"));
  const page = h("div", {}, h("h1", {}, "Audit log"), h("div", { class: "card" }, filter));
  submit(filter, () => null, async (d) => page.replaceWith(await auditPage(null, d.action)));
  page.append(h("div", { class: "card" },
    table(["When", "Who", "Action", "Object"], log.entries.map((e) =>
      h("tr", {}, h("td", {}, e.at), h("td", {}, e.login || "—"), h("td", {}, e.action), h("td", {}, e.object || "")))),
    h("p", { class: "muted" }, `${log.total}${log.total_exact === false ? " (about)" : ""} entries`),
    log.next ? h("button", { class: "plain", type: "button", onclick: async () => page.replaceWith(await auditPage(log.next, action)) }, "Older") : null));
  return page;
}

async function statsPage() {
  const s = await api("get_stats");
  const stat = (name, v) => h("div", { class: "stat" }, h("span", { class: "muted" }, name), h("b", {}, v));
  return h("div", {}, h("h1", {}, "Statistics"), h("div", { class: "grid" },
    stat("Users", s.users), stat("Active sessions", s.active_sessions), stat("Nodes in sync", `${s.nodes_in_sync} / ${s.nodes}`),
    stat("Sites", s.sites), stat("Domains", s.domains.active), stat("Waiting for review", s.domains.reviewing + s.mail_domains.reviewing),
    stat("Mail domains", s.mail_domains.active), stat("Mailboxes", s.mailboxes), stat("Mail used", `${(s.mail_bytes_used / 1048576).toFixed(1)} MB`),
    stat("Changes today", s.changes_today), stat("Webhooks pending", s.webhook_deliveries_pending), stat("Webhooks failed", s.webhook_deliveries_failed)));
}
