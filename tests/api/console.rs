//! The web console in a real browser: headless Chromium (Debian's `chromium`) driven through
//! WebDriver (`chromedriver`), both installed by scripts/test. Screenshots of the main pages go
//! to target/screenshots/.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::helpers::World;

/// A headless Chromium at a given window size, and the chromedriver driving it.
pub struct Browser {
    pub client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver (scripts/test installs Debian's chromium-driver)");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        // As the machine's notes advise: no background networking (the network is closed) and
        // no sandbox (tests may run as root).
        let caps: serde_json::Map<String, Value> = serde_json::from_value(json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }))
        .unwrap();
        // Plain HTTP to chromedriver on loopback: no TLS needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session in Chromium");
        client.set_window_size(width, height).await.unwrap();
        Browser {
            client,
            _driver: driver,
            _profile: profile,
        }
    }

    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Waits until nothing on the page matches `css` (a list redrawn without it).
    pub async fn wait_gone(&self, css: &str) {
        let started = Instant::now();
        while self.client.find(Locator::Css(css)).await.is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{css} stayed on the page"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the first element matching `css` has text containing `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) {
        self.wait_for_text_within(css, text, Duration::from_secs(20))
            .await
    }

    /// `wait_for_text` for what takes longer than a click (a certificate from a CA).
    pub async fn wait_for_text_within(&self, css: &str, text: &str, limit: Duration) {
        let started = Instant::now();
        loop {
            let mut seen = String::new();
            if let Ok(el) = self.client.find(Locator::Css(css)).await {
                seen = el.text().await.unwrap_or_default();
                if seen.contains(text) {
                    return;
                }
            }
            if started.elapsed() >= limit {
                let status = match self.client.find(Locator::Css("#status")).await {
                    Ok(el) => el.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                panic!(
                    "{css} never showed {text:?}: it showed {seen:?}; the status line {status:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Types `text` into a field, replacing what it held. The old text goes by script, not by
    /// WebDriver's clear, which also takes the focus away. Pages are live: the change feed may
    /// redraw one between finding the field and typing, so a field gone stale is found again.
    pub async fn fill(&self, css: &str, text: &str) {
        for _ in 0..5 {
            let el = self.wait_for(css).await;
            let arg = serde_json::to_value(&el).unwrap();
            let typed = match self
                .client
                .execute("arguments[0].value = '';", vec![arg])
                .await
            {
                Ok(_) => el.send_keys(text).await,
                Err(e) => Err(e),
            };
            match typed {
                Ok(()) => return,
                Err(e) if is_stale(&e) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => panic!("typing into {css}: {e}"),
            }
        }
        panic!("{css} could not take input five times in a row");
    }

    /// Clicks the element; one gone stale (the page was redrawn) is found again.
    pub async fn click(&self, css: &str) {
        for _ in 0..5 {
            match self.wait_for(css).await.click().await {
                Ok(()) => return,
                Err(e) if is_stale(&e) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => panic!("clicking {css}: {e}"),
            }
        }
        panic!("{css} could not be clicked five times in a row");
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = screenshots();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// True when the page is no wider than the window (nothing to scroll sideways).
    pub async fn fits_the_width(&self) -> bool {
        let v = self
            .client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        v == json!(true)
    }
}

/// target/screenshots, beside the build's other output.
fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("screenshots")
}

/// API requests this instance has answered so far, from its metrics.
fn requests_served(w: &World) -> f64 {
    let text = String::from_utf8(w.app.service.metrics.render(&w.app.state)).unwrap();
    text.lines()
        .filter(|l| l.starts_with("hostplane_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_customer_signs_up_builds_a_site_and_sees_it_go_live() {
    let w = World::new().await;
    let token = w.node_with_token(2).await;
    let b = Browser::start(1280, 900).await;
    let base = format!("http://{}", w.app.addr);

    b.client.goto(&format!("{base}/#/signup")).await.unwrap();
    b.fill("#signup-form input[name=login]", "carol").await;
    b.fill("#signup-form input[name=email]", "carol@example.com")
        .await;
    b.fill("#signup-form input[name=password]", "password-carol")
        .await;
    b.click("#signup-form button[type=submit]").await;
    b.wait_for("#create-site").await;
    b.wait_for_text("#who", "carol").await;

    // A document root outside the site's own is refused beside its field, with the rule.
    b.click("#site-node option[value='2']").await;
    b.fill("#create-site input[name=docroot]", "/var/www/shop")
        .await;
    b.click("#create-site button[type=submit]").await;
    b.wait_for_text("#create-site [data-error-for=docroot]", "or below it")
        .await;
    // A site on node 2, whose agent we play below.
    b.fill("#create-site input[name=docroot]", "").await;
    b.click("#create-site button[type=submit]").await;
    b.wait_for_text("section.site .badge", "pending").await;
    // The action's own message stays (it was wiped in the same tick before).
    b.wait_for_text("#status", "created").await;

    // A bad domain shows the API's reason beside the field, in words.
    b.fill("form[data-add-domain] input[name=domain]", "not a domain!")
        .await;
    b.click("form[data-add-domain] button[type=submit]").await;
    b.wait_for_text(
        "form[data-add-domain] .field-error",
        "not a valid domain name",
    )
    .await;
    let invalid = b
        .wait_for("form[data-add-domain] input[name=domain]")
        .await
        .attr("aria-invalid")
        .await
        .unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));
    b.screenshot("desktop-domain-error").await;

    b.fill(
        "form[data-add-domain] input[name=domain]",
        "shop.example.com",
    )
    .await;
    b.click("form[data-add-domain] button[type=submit]").await;
    b.wait_for_text("section.site ul.domains", "shop.example.com")
        .await;

    // Idle with a site still pending (its node has not applied it), the console only waits on
    // the change feed (a minute at a time): no request of its completes for a while, where a
    // timer would have refreshed the page every 4 s until the node reported, an hour and more if
    // it never does. (The feed may still bring the news of the page's own changes late, once:
    // up to three windows.)
    let mut quiet = false;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let before = requests_served(&w);
        tokio::time::sleep(Duration::from_secs(6)).await;
        let done = requests_served(&w) - before;
        seen.push(done);
        if done == 0.0 {
            quiet = true;
            break;
        }
    }
    assert!(
        quiet,
        "an idle console polled: {seen:?} requests in 6 s windows"
    );
    // The node's agent applies the revision; the open console hears `site.applied` on the feed
    // (it has no timer left) and shows the site go live.
    let sync = w
        .app
        .call_node(&token, "node_sync", json!({"since": 0}))
        .await;
    let revision = sync.ok()["revision"].clone();
    w.app
        .call_node(
            &token,
            "node_report",
            json!({"revision": revision, "status": "ok"}),
        )
        .await
        .ok();
    b.wait_for_text("section.site .badge", "active").await;
    b.screenshot("desktop-sites").await;

    // Live without polling: a domain added elsewhere (an admin's API call) shows at once, and
    // what the customer typed meanwhile into a form they left is still there after the redraw.
    b.fill(
        "form[data-add-domain] input[name=domain]",
        "typed.example.com",
    )
    .await;
    b.client
        .execute("document.activeElement.blur();", vec![])
        .await
        .unwrap();
    let sites = w
        .app
        .call_as(&w.admin, "get_list_site", json!({"nodeid": 2}))
        .await;
    let site = sites.ok()[0]["site"][0]["siteid"].clone();
    let p = json!({"nodeid": 2, "siteid": site, "domain": "live.example.com"});
    w.app.call_as(&w.admin, "add_domain", p).await.ok();
    b.wait_for_text("section.site ul.domains", "live.example.com")
        .await;
    let typed = b
        .client
        .execute(
            "return document.querySelector('form[data-add-domain] input[name=domain]').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(typed, "typed.example.com");

    // Signing out ends the session: the API no longer knows the cookie.
    b.click("#signout").await;
    b.wait_for("#signin-form").await;
    let cookies = b.client.get_all_cookies().await.unwrap();
    assert!(
        cookies
            .iter()
            .all(|c| c.name() != "hostplane_session" || c.value().is_empty()),
        "{cookies:?}"
    );
    b.client.goto(&format!("{base}/#/")).await.unwrap();
    b.wait_for("#signin-form").await;
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn a_disabled_user_is_signed_out_at_the_next_action_on_a_phone() {
    let w = World::new().await;
    let b = Browser::start(360, 740).await;
    let base = format!("http://{}", w.app.addr);
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.fill("#signin-form input[name=login]", "alice").await;
    b.fill("#signin-form input[name=password]", "password-alice")
        .await;
    b.click("#signin-form button[type=submit]").await;
    b.wait_for("#create-site").await;
    assert!(b.fits_the_width().await, "readable at 360 px");
    b.screenshot("mobile-sites").await;

    w.app
        .call_as(
            &w.admin,
            "set_user",
            json!({"userid": w.alice.0, "disabled": true}),
        )
        .await
        .ok();
    b.click("#create-site button[type=submit]").await;
    b.wait_for("#signin-form").await;
    b.wait_for_text("#status", "sign in again").await;
    // And she cannot sign in again.
    b.fill("#signin-form input[name=login]", "alice").await;
    b.fill("#signin-form input[name=password]", "password-alice")
        .await;
    b.click("#signin-form button[type=submit]").await;
    b.wait_for_text("#status", "disabled").await;
    assert!(b.fits_the_width().await);
    b.screenshot("mobile-signin").await;
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn an_admin_reviews_domains_and_reads_the_service() {
    let w = World::with(|c| c.domain_review = hostplane::config::DomainReview::All).await;
    let site = w.site(&w.alice.1, 1).await;
    w.domain(&w.alice.1, 1, site, "wait.example.com").await;
    let b = Browser::start(1280, 900).await;
    let base = format!("http://{}", w.app.addr);
    crate::console_pages::add_boss(&w).await;
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.fill("#signin-form input[name=login]", "boss").await;
    b.fill("#signin-form input[name=password]", "password-boss")
        .await;
    b.click("#signin-form button[type=submit]").await;
    b.wait_for_text("#nav", "Review").await;

    b.client
        .goto(&format!("{base}/#/admin/users"))
        .await
        .unwrap();
    b.wait_for("tr[data-user=alice]").await;
    b.screenshot("desktop-admin-users").await;
    b.fill("#user-search input[name=q]", "bob").await;
    b.click("#user-search button[type=submit]").await;
    // The search answers with bob only: alice's row goes (bob's was there before it, too).
    b.wait_gone("tr[data-user=alice]").await;
    b.wait_for("tr[data-user=bob]").await;

    b.client
        .goto(&format!("{base}/#/admin/review"))
        .await
        .unwrap();
    b.wait_for_text("main table", "wait.example.com").await;
    b.click("main table button").await; // Pass
    b.wait_for_text("main", "Nothing waits").await;
    let listed = w
        .app
        .call_as(&w.alice.1, "get_list_domain", json!({"nodeid": 1}))
        .await;
    assert!(listed.ok().get("review").is_none(), "{}", listed.body);

    b.client
        .goto(&format!("{base}/#/admin/stats"))
        .await
        .unwrap();
    b.wait_for_text("main .grid", "Sites").await;
    b.client
        .goto(&format!("{base}/#/admin/audit"))
        .await
        .unwrap();
    b.wait_for_text("main table", "review_domain").await;
    b.client.close().await.unwrap();
}

/// Two-factor sign-in in the console: the account page draws the QR code itself (SVG), takes a
/// code, shows the recovery codes once; signing in then asks for a code.
async fn two_factor_enrolment_and_sign_in(width: u32, height: u32, name: &str) {
    let w = crate::totp::spawn().await;
    let b = Browser::start(width, height).await;
    let base = format!("http://{}", w.app.addr);
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.fill("#signin-form input[name=login]", "alice").await;
    b.fill("#signin-form input[name=password]", "password-alice")
        .await;
    b.click("#signin-form button[type=submit]").await;
    b.wait_for("#create-site").await;
    b.client.goto(&format!("{base}/#/account")).await.unwrap();
    b.click("#totp-enable").await;
    b.fill("#totp-start input[name=password]", "password-alice")
        .await;
    b.click("#totp-start button[type=submit]").await;
    // The QR code is drawn in the page: an SVG with the modules as one path.
    let qr = b.wait_for("svg.qr path").await;
    let modules = qr.attr("d").await.unwrap().unwrap_or_default();
    assert!(modules.matches('M').count() > 200, "{modules}");
    let secret = b.wait_for("#totp-secret").await.text().await.unwrap();
    let mut app = crate::totp::Authenticator::from_secret(&secret);
    assert!(b.fits_the_width().await, "enrolment fits {width} px");
    b.screenshot(&format!("{name}-totp-qr")).await;
    let code = app.code().await;
    b.fill("#totp-confirm input[name=otp]", &code).await;
    b.click("#totp-confirm button[type=submit]").await;
    b.wait_for("#recovery-codes").await;
    let codes = b
        .client
        .find_all(Locator::Css("#recovery-codes li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    assert!(b.fits_the_width().await, "recovery codes fit {width} px");
    b.click("#totp-done").await;
    b.wait_for_text("#totp-state", "10 recovery codes left")
        .await;

    b.click("#signout").await;
    b.wait_for("#signin-form").await;
    b.fill("#signin-form input[name=login]", "alice").await;
    b.fill("#signin-form input[name=password]", "password-alice")
        .await;
    b.click("#signin-form button[type=submit]").await;
    b.wait_for_text("#status", "authenticator").await;
    let code = app.code().await;
    b.fill("#signin-form input[name=otp]", &code).await;
    assert!(b.fits_the_width().await, "the code field fits {width} px");
    b.screenshot(&format!("{name}-totp-signin")).await;
    b.click("#signin-form button[type=submit]").await;
    b.wait_for("#create-site").await;
    b.wait_for_text("#who", "alice").await;
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn two_factor_sign_in_on_a_desktop() {
    two_factor_enrolment_and_sign_in(1280, 900, "desktop").await;
}

#[tokio::test]
async fn two_factor_sign_in_on_a_phone() {
    two_factor_enrolment_and_sign_in(360, 740, "mobile").await;
}

/// An admin without a second factor, once admins must have one, is walked through enrolment by
/// the sign-in form itself (no session yet), then signs in with a code.
#[tokio::test]
async fn an_admin_who_must_enrol_does_so_at_sign_in_on_a_phone() {
    let w = crate::totp::spawn().await;
    let p = json!({"login": "boss", "password": "password-boss", "email": "boss@example.com", "role": "admin"});
    w.app.call_as(&w.admin, "adduser", p).await.ok();
    crate::totp::enrol(&w.app, &w.admin, "root").await;
    let p = json!({"totp_required_for_admins": true});
    w.app.call_as(&w.admin, "set_auth_policy", p).await.ok();

    let b = Browser::start(360, 740).await;
    let base = format!("http://{}", w.app.addr);
    b.client.goto(&format!("{base}/")).await.unwrap();
    b.fill("#signin-form input[name=login]", "boss").await;
    b.fill("#signin-form input[name=password]", "password-boss")
        .await;
    b.click("#signin-form button[type=submit]").await;
    b.wait_for_text("#status", "Admins must use two-factor sign-in")
        .await;
    b.click("#signin-enrolment #totp-start button[type=submit]")
        .await;
    b.wait_for("#signin-enrolment svg.qr path").await;
    let secret = b.wait_for("#totp-secret").await.text().await.unwrap();
    let mut app = crate::totp::Authenticator::from_secret(&secret);
    assert!(b.fits_the_width().await);
    let code = app.code().await;
    b.fill("#totp-confirm input[name=otp]", &code).await;
    b.click("#totp-confirm button[type=submit]").await;
    b.wait_for("#recovery-codes").await;
    b.click("#totp-done").await;
    let code = app.code().await;
    b.fill("#signin-form input[name=otp]", &code).await;
    b.click("#signin-form button[type=submit]").await;
    b.wait_for_text("#nav", "Users").await;
    b.wait_for_text("#who", "boss").await;
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn console_answers_carry_strict_security_headers() {
    let w = World::new().await;
    for path in ["/", "/reset", "/assets/app.js", "/assets/app.css"] {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let r = client
            .get(format!("http://{}{path}", w.app.addr).parse().unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
    // No inline script or style in the page itself.
    let page = include_str!("../../web/index.html");
    assert!(!page.contains("<script>") && !page.contains("style="));
    // Nothing kept in web storage, no markup built from strings, in any of the console's scripts;
    // and the page loads each of them.
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    for entry in std::fs::read_dir(web).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "js") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for banned in [
            "localStorage",
            "sessionStorage",
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
        ] {
            assert!(!text.contains(banned), "{} uses {banned}", path.display());
        }
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(
            page.contains(&format!("src=\"/assets/{name}\"")),
            "index.html loads {name}"
        );
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        let url = format!("http://{}/assets/{name}", w.app.addr);
        let served = client.get(url.parse().unwrap()).await.unwrap();
        assert_eq!(served.status(), 200, "/assets/{name}");
    }
}

/// An element that a redraw replaced.
/// The element went away or cannot take input at this moment: a redraw replaced it, or (seen
/// once on a loaded machine) the field was found before the page had laid it out.
fn is_stale(e: &fantoccini::error::CmdError) -> bool {
    use fantoccini::error::ErrorStatus::{ElementNotInteractable, StaleElementReference};
    matches!(e, fantoccini::error::CmdError::Standard(w)
        if w.error == StaleElementReference || w.error == ElementNotInteractable)
}
