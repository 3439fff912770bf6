//! The settings' defaults, checks and redaction.

use super::*;

#[test]
fn defaults_are_as_documented() {
    let c = Config::defaults("postgres://u:pw@h/db");
    assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.registration, Registration::Open);
    assert_eq!(c.bcrypt_cost, 12);
    assert_eq!(c.session_idle, Duration::from_secs(86400));
    assert_eq!(c.db_timeout, Duration::from_millis(5000));
    assert_eq!(c.login_limit, 10);
    assert_eq!(c.login_global_limit, 100);
    assert!(c.list_cache);
    assert!(c.allowed_origins.is_empty());
    assert_eq!(c.audit_retention_days, 365);
}

#[test]
fn flags_are_parsed_and_checked() {
    let c = Config::from_flags([
        "--database-url=x",
        "--registration=invite",
        "--trusted-proxies=10.0.0.1, ::1",
        "--allowed-origins=https://a.example/,https://b.example",
        "--db-timeout-ms=250",
        "--list-cache=false",
    ])
    .unwrap();
    assert_eq!(c.registration, Registration::Invite);
    assert_eq!(c.trusted_proxies.len(), 2);
    assert_eq!(
        c.allowed_origins,
        vec!["https://a.example", "https://b.example"]
    );
    assert_eq!(c.db_timeout, Duration::from_millis(250));
    assert!(!c.list_cache);
    for bad in [
        "--bcrypt-cost=3",
        "--bcrypt-cost=32",
        "--registration=sometimes",
        "--listen=nowhere",
        "--trusted-proxies=10.0.0.300",
        "--session-idle-secs=-1",
        "--bcrypt-threads=0",
    ] {
        let e = Config::from_flags(["--database-url=x", bad]).unwrap_err();
        let flag = bad.split('=').next().unwrap();
        assert!(e.contains(flag), "{bad}: {e}");
    }
    assert!(
        Config::from_flags(["--listen=127.0.0.1:1"]).is_err(),
        "the URL is required"
    );
}

#[test]
fn the_cookie_is_secure_by_default_behind_an_https_public_url() {
    let parse = |flags: &[&str]| {
        Config::from_flags(["--database-url=x"].iter().chain(flags))
            .unwrap()
            .cookie_secure
    };
    assert!(!parse(&[]), "the default public URL is http");
    assert!(parse(&["--public-url=https://panel.example"]));
    assert!(parse(&["--public-url=HTTPS://panel.example"]));
    assert!(!parse(&[
        "--public-url=https://panel.example",
        "--cookie-secure=false"
    ]));
    assert!(parse(&[
        "--public-url=http://panel.example",
        "--cookie-secure=true"
    ]));
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let mut c = Config::defaults("postgres://hostplane:db-secret-pw@localhost/hp");
    c.smtp_url = Some(Secret::from("smtp://u:smtp-secret-pw@mail".to_string()));
    c.metrics_token = Some(Secret::from("metrics-secret-token".to_string()));
    let shown = format!("{c:?}");
    assert!(!shown.contains("metrics-secret-token"), "{shown}");
    assert!(!shown.contains("db-secret-pw"), "{shown}");
    assert!(!shown.contains("smtp-secret-pw"), "{shown}");
    assert!(shown.contains("bcrypt_cost"));
}
