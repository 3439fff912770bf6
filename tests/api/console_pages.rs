//! Each console page in headless Chromium: its main path and one error path, at desktop width and
//! again at 360 px (where it must also fit without scrolling sideways). Screenshots of both go to
//! target/screenshots/.

use std::time::Duration;

use serde_json::{json, Value};

use crate::console::Browser;
use crate::helpers::World;
use crate::receiver::Receiver;

/// Signs `login` in through the sign-in form; dialogs (confirm, prompt) answer yes from then on.
pub async fn sign_in(w: &World, b: &Browser, login: &str, password: &str) {
    b.client
        .goto(&format!("http://{}/", w.app.addr))
        .await
        .unwrap();
    b.fill("#signin-form input[name=login]", login).await;
    b.fill("#signin-form input[name=password]", password).await;
    b.click("#signin-form button[type=submit]").await;
    b.wait_for_text("#who", login).await;
    yes_to_dialogs(b).await;
}

/// A second admin, `boss` (password `password-boss`), to sign in through the form: the
/// harness's own admin's password is known to its helper only.
pub async fn add_boss(w: &World) {
    let p = json!({"login": "boss", "password": "password-boss", "email": "boss@example.com", "role": "admin"});
    w.app.call_as(&w.admin, "adduser", p).await.ok();
}

async fn yes_to_dialogs(b: &Browser) {
    b.client
        .execute("window.confirm = () => true;", vec![])
        .await
        .unwrap();
}

async fn goto(w: &World, b: &Browser, hash: &str) {
    b.client
        .goto(&format!("http://{}/{hash}", w.app.addr))
        .await
        .unwrap();
    yes_to_dialogs(b).await;
}

/// A window a page is driven in: a desktop's, or a phone's 360 px.
#[derive(Clone, Copy)]
struct Width {
    width: u32,
    height: u32,
    tag: &'static str,
}

const DESKTOP: Width = Width {
    width: 1280,
    height: 900,
    tag: "desktop",
};
const PHONE: Width = Width {
    width: 360,
    height: 740,
    tag: "mobile",
};

impl Width {
    async fn browser(self) -> Browser {
        Browser::start(self.width, self.height).await
    }

    /// The page as it stands: on a phone readable without scrolling sideways; a screenshot.
    async fn shot(self, b: &Browser, name: &str) {
        if self.width <= 360 {
            assert!(b.fits_the_width().await, "{name} is readable at 360 px");
        }
        b.screenshot(&format!("{}-{name}", self.tag)).await;
    }
}

/// Each page's test runs its main path and its error path at both widths.
macro_rules! at_both_widths {
    ($page:ident: $desktop:ident, $phone:ident) => {
        #[tokio::test]
        async fn $desktop() {
            $page(DESKTOP).await
        }

        #[tokio::test]
        async fn $phone() {
            $page(PHONE).await
        }
    };
}

at_both_widths!(mail_page_makes_a_mailbox_with_a_quota_an_alias_a_dkim_key_and_an_autoreply: mail_page_at_desktop_width, mail_page_at_phone_width);

async fn mail_page_makes_a_mailbox_with_a_quota_an_alias_a_dkim_key_and_an_autoreply(width: Width) {
    let w = World::new().await;
    let p = json!({"nodeid": 20, "name": "mx1.hosting.example", "address": "10.0.3.1", "kinds": ["mail"]});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
    let b = width.browser().await;
    sign_in(&w, &b, "alice", "password-alice").await;
    goto(&w, &b, "#/mail").await;
    // Error path: a region no mail server serves is named beside its field.
    b.fill("#add-mail-domain input[name=domain]", "mail.example.org")
        .await;
    b.fill("#add-mail-domain input[name=region]", "mars").await;
    b.click("#add-mail-domain button[type=submit]").await;
    b.wait_for_text(
        "#add-mail-domain [data-error-for=region]",
        "region \"mars\"",
    )
    .await;
    b.fill("#add-mail-domain input[name=region]", "").await;
    b.click("#add-mail-domain button[type=submit]").await;
    let card = "[data-mail-domain='mail.example.org']";
    b.wait_for(card).await;

    // Error path: a password too short shows beside its field.
    let form = format!("{card} form[data-add-mailbox]");
    b.fill(&format!("{form} input[name=local]"), "info").await;
    b.fill(&format!("{form} input[name=password]"), "short")
        .await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for_text(&format!("{form} [data-error-for=password]"), "password")
        .await;
    // Main path: with a good one and a quota, the mailbox shows its quota bar.
    b.fill(&format!("{form} input[name=password]"), "password-info-box")
        .await;
    b.fill(&format!("{form} input[name=quota]"), "100").await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for("[data-mailbox='info@mail.example.org'] [role=progressbar]")
        .await;

    let form = format!("{card} form[data-add-alias]");
    b.fill(
        &format!("{form} input[name=source]"),
        "sales@mail.example.org",
    )
    .await;
    b.fill(
        &format!("{form} input[name=destination]"),
        "info@mail.example.org",
    )
    .await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for("[data-alias='sales@mail.example.org']").await;

    // DKIM rotation: the first key signs at once; the next is published, then activated, and
    // the first retires.
    b.click(&format!("{card} [data-make-dkim]")).await;
    b.wait_for_text("#status", "made and signing").await;
    b.wait_for_text(&format!("{card} .dkim .badge"), "active")
        .await;
    b.click(&format!("{card} [data-make-dkim]")).await;
    b.click(&format!("{card} [data-activate-dkim]")).await;
    b.wait_for_text(&format!("{card} .dkim"), "retiring").await;
    // The records to publish include the MX of the region's mail node.
    b.wait_for_text(card, "mx1.hosting.example").await;

    // Autoreply, from the mailbox's edit panel.
    b.click("[data-mailbox='info@mail.example.org'] button[aria-label^=Edit]")
        .await;
    let form = "form[data-autoreply='info@mail.example.org']";
    b.fill(&format!("{form} input[name=subject]"), "Away").await;
    b.fill(&format!("{form} textarea[name=body]"), "Back on Monday.")
        .await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for_text("#status", "answers automatically").await;
    let auto = w
        .app
        .call_as(
            &w.alice.1,
            "get_autoreply",
            json!({"address": "info@mail.example.org"}),
        )
        .await;
    assert_eq!(auto.ok()["subject"], "Away");
    // An app password, shown once, listed by name, then revoked after confirming.
    b.click("[data-mailbox='info@mail.example.org'] button[aria-label^=Edit]")
        .await;
    let form = "form[data-app-password='info@mail.example.org']";
    b.fill(&format!("{form} input[name=name]"), "phone").await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for("[data-mailbox-extra] .secret").await;
    b.wait_for("[data-app-password-name=phone]").await;
    b.click("[data-app-password-name=phone] button").await;
    b.wait_for_text("#status", "phone revoked").await;
    let left = w
        .app
        .call_as(
            &w.alice.1,
            "get_list_app_password",
            json!({"address": "info@mail.example.org"}),
        )
        .await;
    assert_eq!(left.ok()["total"], 0);
    // The domain's own limits.
    let limits = "form[data-mail-limits='mail.example.org']";
    b.fill(&format!("{limits} input[name=max_mailboxes]"), "5")
        .await;
    b.click(&format!("{limits} button[type=submit]")).await;
    b.wait_for_text("#status", "Limits of mail.example.org set")
        .await;
    let domains = w
        .app
        .call_as(&w.alice.1, "get_list_mail_domain", json!({}))
        .await;
    assert_eq!(domains.ok()["domains"][0]["max_mailboxes"], 5);
    b.wait_for("[data-mailbox='info@mail.example.org'] [role=progressbar]")
        .await;
    width.shot(&b, "mail").await;
    b.client.close().await.unwrap();
}

at_both_widths!(dns_page_adds_a_zone_and_a_record_and_keeps_managed_records_locked: dns_page_at_desktop_width, dns_page_at_phone_width);

async fn dns_page_adds_a_zone_and_a_record_and_keeps_managed_records_locked(width: Width) {
    let w = World::new().await;
    let p = json!({"nodeid": 30, "name": "ns1.hosting.example", "address": "10.0.4.1", "kinds": ["dns"]});
    w.app.call_as(&w.admin, "add_node", p).await.ok();
    let b = width.browser().await;
    sign_in(&w, &b, "alice", "password-alice").await;
    goto(&w, &b, "#/dns").await;
    b.fill("#add-zone input[name=zone]", "zone.example.org")
        .await;
    b.click("#add-zone button[type=submit]").await;
    b.wait_for_text("#status", "ns1.hosting.example").await;
    let card = "[data-zone='zone.example.org']";
    // The zone's NS and SOA are managed: shown, with no buttons.
    b.wait_for(&format!("{card} tr.managed[data-record$=' NS']"))
        .await;
    assert!(b
        .client
        .find(fantoccini::Locator::Css(&format!(
            "{card} tr.managed button"
        )))
        .await
        .is_err());

    // Error path: an A record that is no address.
    let form = format!("{card} form[data-add-record]");
    b.fill(&format!("{form} input[name=name]"), "www").await;
    b.fill(&format!("{form} input[name=content]"), "not-an-address")
        .await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for_text(&format!("{form} [data-error-for=content]"), "not valid")
        .await;
    b.fill(&format!("{form} input[name=content]"), "192.0.2.7")
        .await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for(&format!(
        "{card} tr[data-record='www.zone.example.org A'][data-recordid]"
    ))
    .await;
    width.shot(&b, "dns").await;
    b.client.close().await.unwrap();
}

at_both_widths!(nodes_page_adds_a_mail_node_in_a_region_and_rotates_its_token: nodes_page_at_desktop_width, nodes_page_at_phone_width);

async fn nodes_page_adds_a_mail_node_in_a_region_and_rotates_its_token(width: Width) {
    let w = World::new().await;
    add_boss(&w).await;
    let b = width.browser().await;
    sign_in(&w, &b, "boss", "password-boss").await;
    goto(&w, &b, "#/admin/nodes").await;
    // Error path: a name with a slash.
    b.fill("#add-node input[name=name]", "bad/name").await;
    b.fill("#add-node input[name=address]", "10.0.5.1").await;
    b.click("#add-node button[type=submit]").await;
    b.wait_for_text("#add-node .field-error", "not valid").await;
    // A mail node (not web) in region eu.
    b.fill("#add-node input[name=name]", "mx-eu.hosting.example")
        .await;
    b.fill("#add-node input[name=region]", "eu").await;
    b.click("#add-node input[name='kind:web']").await;
    b.click("#add-node input[name='kind:mail']").await;
    b.click("#add-node button[type=submit]").await;
    b.wait_for_text("#node-token", "hostplane agent --api")
        .await;
    let row = "tr[data-node='2']";
    b.wait_for_text(row, "mail · eu").await;
    b.wait_for_text(row, "never connected").await;
    let first = b
        .wait_for("#node-token .secret")
        .await
        .text()
        .await
        .unwrap();
    b.click(&format!("{row} button[data-rotate-token]")).await;
    // The page is redrawn with the new token on top.
    let started = std::time::Instant::now();
    let second = loop {
        let shown = match b
            .client
            .find(fantoccini::Locator::Css("#node-token .secret"))
            .await
        {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if !shown.is_empty() && shown != first {
            break shown;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no new token shown"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(second.starts_with("hpn_"), "{second}");
    let sync = w
        .app
        .call_node(&second, "node_sync", json!({"since": 0}))
        .await;
    let revision = sync.ok()["revision"].clone();
    // The agent reports: the open page shows the node in sync as the feed tells it, without a
    // reload, and the token shown once stays on top.
    let report = json!({"revision": revision, "status": "ok"});
    w.app.call_node(&second, "node_report", report).await.ok();
    b.wait_for_text(&format!("{row} .badge"), "ok").await;
    b.wait_for_text("#node-token .secret", &second).await;
    // Grants by login, not by user id.
    b.fill("#grant-node input[name=login]", "alice").await;
    b.fill("#grant-node input[name=nodeid]", "2").await;
    b.click("#grant-node button[type=submit]").await;
    b.wait_for_text("#status", "alice may use node 2").await;
    // The mail node's setup names its mail configuration; made public, every user may use it.
    b.wait_for_text("#node-token", "mail-config --region eu")
        .await;
    b.wait_for(&format!("{row} [data-public=false]")).await;
    b.click(&format!("{row} button[data-toggle-public]")).await;
    b.wait_for(&format!("{row} [data-public=true]")).await;
    let bobs = w.app.call_as(&w.bob.1, "get_node_list", json!({})).await;
    assert_eq!(bobs.ok()["nodeid"], json!([1, 2]));
    width.shot(&b, "admin-nodes").await;
    b.client.close().await.unwrap();
}

at_both_widths!(keys_and_webhooks_pages_make_a_key_and_deliver_to_a_real_receiver: keys_and_webhooks_pages_at_desktop_width, keys_and_webhooks_pages_at_phone_width);

async fn keys_and_webhooks_pages_make_a_key_and_deliver_to_a_real_receiver(width: Width) {
    let w = World::new().await;
    let receiver = Receiver::start().await;
    let b = width.browser().await;
    sign_in(&w, &b, "alice", "password-alice").await;
    goto(&w, &b, "#/keys").await;
    // Error path: an expiry in no known unit.
    b.fill("#create-key input[name=expires]", "forever").await;
    b.click("#create-key button[type=submit]").await;
    b.wait_for_text("#status", "not valid").await;
    b.fill("#create-key input[name=name]", "billing").await;
    b.fill("#create-key input[name=expires]", "90d").await;
    b.click("#create-key button[type=submit]").await;
    b.wait_for_text("#new-key .secret", "hpk_").await;
    width.shot(&b, "keys").await;

    goto(&w, &b, "#/webhooks").await;
    b.fill("#add-webhook input[name=url]", "ftp://example.com/hook")
        .await;
    b.click("#add-webhook button[type=submit]").await;
    b.wait_for_text("#add-webhook .field-error", "not allowed")
        .await;
    b.fill("#add-webhook input[name=url]", &receiver.url())
        .await;
    b.click("#add-webhook input[value='site.created']").await;
    b.click("#add-webhook button[type=submit]").await;
    b.wait_for_text("main", "signing secret").await;
    w.site(&w.alice.1, 1).await;
    receiver.wait_for(1, Duration::from_secs(15)).await;
    b.client.refresh().await.unwrap();
    b.wait_for_text("main table", "delivered").await;
    width.shot(&b, "webhooks").await;
    b.client.close().await.unwrap();
}

at_both_widths!(account_page_refuses_a_wrong_current_password_then_changes_it: account_page_at_desktop_width, account_page_at_phone_width);

async fn account_page_refuses_a_wrong_current_password_then_changes_it(width: Width) {
    let w = World::new().await;
    let b = width.browser().await;
    sign_in(&w, &b, "alice", "password-alice").await;
    goto(&w, &b, "#/account").await;
    let form = "#change-password";
    b.fill(
        &format!("{form} input[name=oldpassword]"),
        "not-her-password",
    )
    .await;
    b.fill(
        &format!("{form} input[name=newpassword]"),
        "password-alice-2",
    )
    .await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for_text(&format!("{form} [data-error-for=oldpassword]"), "wrong")
        .await;
    b.fill(&format!("{form} input[name=oldpassword]"), "password-alice")
        .await;
    b.fill(
        &format!("{form} input[name=newpassword]"),
        "password-alice-2",
    )
    .await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for_text("#status", "Password changed").await;
    w.app.authorize("alice", "password-alice-2").await.ok();
    width.shot(&b, "account").await;
    b.client.close().await.unwrap();
}

at_both_widths!(admin_pages_show_users_review_audit_and_stats: admin_pages_at_desktop_width, admin_pages_at_phone_width);

async fn admin_pages_show_users_review_audit_and_stats(width: Width) {
    let w = World::new().await;
    add_boss(&w).await;
    let b = width.browser().await;
    sign_in(&w, &b, "boss", "password-boss").await;
    goto(&w, &b, "#/admin/users").await;
    b.wait_for("tr[data-user=alice]").await;
    // Error path: a site limit below zero; then a domain limit and review set from the form.
    b.click("button[data-limits=alice]").await;
    let form = "form[data-limits-form=alice]";
    b.fill(&format!("{form} input[name=max_sites]"), "-5").await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for_text("#status", "not valid").await;
    b.fill(&format!("{form} input[name=max_sites]"), "").await;
    b.fill(&format!("{form} input[name=max_domains]"), "7")
        .await;
    b.click(&format!("{form} input[name=review_domains]")).await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for_text("#status", "Limits of alice set").await;
    let alice = w
        .app
        .call_as(&w.admin, "get_list_user", json!({"q": "alice"}))
        .await;
    let alice = &alice.ok()["users"][0];
    assert_eq!(alice["max_domains"], 7);
    assert_eq!(alice["max_sites"], Value::Null);
    assert_eq!(alice["review_domains"], true);
    // A new account made by the admin: a short password is refused beside its field.
    b.fill("#add-user input[name=login]", "dave").await;
    b.fill("#add-user input[name=email]", "dave@example.com")
        .await;
    b.fill("#add-user input[name=password]", "short").await;
    b.click("#add-user button[type=submit]").await;
    b.wait_for_text("#add-user [data-error-for=password]", "8-72")
        .await;
    b.fill("#add-user input[name=password]", "password-dave")
        .await;
    b.click("#add-user button[type=submit]").await;
    b.wait_for_text("#status", "dave added").await;
    b.wait_for("tr[data-user=dave]").await;
    b.click("#add-invite button[type=submit]").await;
    b.wait_for("#add-invite + div .secret").await;
    width.shot(&b, "admin-users").await;
    // Deleting a user asks first, then the row goes.
    b.click("button[data-delete-user=bob]").await;
    b.wait_gone("tr[data-user=bob]").await;
    for (hash, shows, name) in [
        ("#/admin/review", "Nothing waits", "admin-review"),
        ("#/admin/audit", "delete_user", "admin-audit"),
        ("#/admin/stats", "Users", "admin-stats"),
    ] {
        goto(&w, &b, hash).await;
        b.wait_for_text("main", shows).await;
        width.shot(&b, name).await;
    }
    b.client.close().await.unwrap();
}

#[tokio::test]
async fn sign_in_sign_up_and_password_reset_pages_at_both_widths() {
    for (width, height, tag) in [(1280, 900, "desktop"), (360, 740, "mobile")] {
        let w = World::new().await;
        let b = Browser::start(width, height).await;
        let base = format!("http://{}", w.app.addr);
        // Sign-in: a wrong password is refused beside its field.
        b.client.goto(&format!("{base}/#/signin")).await.unwrap();
        b.fill("#signin-form input[name=login]", "alice").await;
        b.fill("#signin-form input[name=password]", "not-her-password")
            .await;
        b.click("#signin-form button[type=submit]").await;
        b.wait_for_text("#signin-form [data-error-for=password]", "wrong")
            .await;
        assert!(b.fits_the_width().await, "sign-in at {width} px");
        b.screenshot(&format!("{tag}-signin")).await;

        // Sign-up: a login that is not one is refused beside its field.
        b.client.goto(&format!("{base}/#/signup")).await.unwrap();
        b.fill("#signup-form input[name=login]", "no spaces!").await;
        b.fill("#signup-form input[name=email]", "erin@example.com")
            .await;
        b.fill("#signup-form input[name=password]", "password-erin")
            .await;
        b.click("#signup-form button[type=submit]").await;
        b.wait_for_text("#signup-form [data-error-for=login]", "not valid")
            .await;
        assert!(b.fits_the_width().await, "sign-up at {width} px");
        b.screenshot(&format!("{tag}-signup")).await;

        // Forgot password: the link arrives by mail; a short password is refused, then a good
        // one is set and signs in.
        b.client.goto(&format!("{base}/#/forgot")).await.unwrap();
        b.fill("#forgot-form input[name=email]", "alice@example.com")
            .await;
        b.click("#forgot-form button[type=submit]").await;
        b.wait_for_text("main", "reset link is on its way").await;
        b.screenshot(&format!("{tag}-forgot")).await;
        let mail = crate::passwords::mails(&w.app, 1).await.remove(0);
        let token = crate::passwords::token_of(&mail);
        b.client
            .goto(&format!("{base}/reset?token={token}"))
            .await
            .unwrap();
        b.fill("#reset-form input[name=newpassword]", "short").await;
        b.click("#reset-form button[type=submit]").await;
        b.wait_for_text("#reset-form [data-error-for=newpassword]", "8-72")
            .await;
        assert!(b.fits_the_width().await, "reset at {width} px");
        b.screenshot(&format!("{tag}-reset")).await;
        b.fill("#reset-form input[name=newpassword]", "brand-new-alice")
            .await;
        b.click("#reset-form button[type=submit]").await;
        b.wait_for_text("#status", "Your password is set").await;
        b.fill("#signin-form input[name=login]", "alice").await;
        b.fill("#signin-form input[name=password]", "brand-new-alice")
            .await;
        b.click("#signin-form button[type=submit]").await;
        b.wait_for_text("#who", "alice").await;
        b.client.close().await.unwrap();
    }
}

/// The sites page pages a node's sites (50 at a time, with the total and "More"), and labels an
/// admin's view of everyone's sites with each owner's login.
#[tokio::test]
async fn sites_page_pages_a_long_list_and_names_the_owners() {
    let w = World::new().await;
    add_boss(&w).await;
    let boss = w.app.login("boss", "password-boss").await.1;
    for _ in 0..50 {
        w.site(&boss, 1).await;
    }
    let last = w.site(&w.alice.1, 1).await;
    let b = DESKTOP.browser().await;
    sign_in(&w, &b, "boss", "password-boss").await;
    let card = "#site-lists [data-node='1']";
    b.wait_for_text(&format!("{card} .pager"), "50 of 51 sites")
        .await;
    let theirs = format!("{card} section[data-site='{last}']");
    assert!(b
        .client
        .find(fantoccini::Locator::Css(&theirs))
        .await
        .is_err());
    b.click("button[data-more-sites='1']").await;
    b.wait_for_text(&theirs, "owner alice").await;
    b.wait_for_text(&format!("{card} .pager"), "51 of 51 sites")
        .await;
    b.wait_gone("button[data-more-sites='1']").await;
    // The admin's own sites carry no label.
    let own = b
        .wait_for(&format!("{card} section[data-site]"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!own.contains("owner"), "{own}");
    b.client.close().await.unwrap();
}
