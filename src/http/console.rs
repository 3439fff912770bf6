//! The web console: static files embedded in the binary, served at `/` with strict headers.
//!
//! The web console: static files embedded in the binary (`web/`), served at `/` with
//! strict security headers. It is a plain client of `POST /api` with the session cookie, so
//! everything it does, a script can do the same way.

/// The console's files by path: (content type, body).
pub fn asset(path: &str) -> Option<(&'static str, &'static str)> {
    const JS: &str = "text/javascript; charset=utf-8";
    const INDEX: &str = include_str!("../../web/index.html");
    match path {
        // `/reset?token=...` is the link of the password reset mail.
        "/" | "/index.html" | "/reset" => Some(("text/html; charset=utf-8", INDEX)),
        // The core (API, DOM helpers, routing, sign-in, sites, keys, webhooks, account), then
        // the pages each script adds to it.
        "/assets/app.js" => Some((JS, include_str!("../../web/app.js"))),
        "/assets/forms.js" => Some((JS, include_str!("../../web/forms.js"))),
        "/assets/account.js" => Some((JS, include_str!("../../web/account.js"))),
        "/assets/sites.js" => Some((JS, include_str!("../../web/sites.js"))),
        "/assets/integrations.js" => Some((JS, include_str!("../../web/integrations.js"))),
        "/assets/mail.js" => Some((JS, include_str!("../../web/mail.js"))),
        "/assets/dns.js" => Some((JS, include_str!("../../web/dns.js"))),
        "/assets/admin.js" => Some((JS, include_str!("../../web/admin.js"))),
        "/assets/app.css" => Some(("text/css; charset=utf-8", include_str!("../../web/app.css"))),
        _ => None,
    }
}

/// Scripts, styles and requests from this origin only; no inline script or style, no framing,
/// no plugins, no foreign form targets.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Every console answer's headers besides its content type.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=()",
    ),
    // Small files, always checked again: a new binary's console is used at once.
    ("cache-control", "no-cache"),
];
