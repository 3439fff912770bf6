// The console's account pages: signing in (with a second factor) and up, the forgotten password
// and its reset link, and the account itself (password, two-factor enrolment, the admins' policy).
// Built on app.js's helpers (api, h, field, submit, say); every element from the DOM API.
"use strict";

Object.assign(PAGES, { "#/signin": signinPage, "#/signup": signupPage, "#/forgot": forgotPage, "#/account": accountPage });

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
