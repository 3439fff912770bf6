//! `GET /metrics` from memory and behind a token: a scrape does no database work, so it answers
//! at once with every connection taken, and with `HOSTPLANE_METRICS_TOKEN` set it wants the token.

use std::time::{Duration, Instant};

use crate::helpers::TestApp;

/// (status, WWW-Authenticate, body) of `GET http://ADDR/metrics` with an optional bearer token.
async fn scrape(addr: &str, token: Option<&str>) -> (u16, Option<String>, String) {
    let mut request = reqwest::Client::new().get(format!("http://{addr}/metrics"));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let challenge = answer
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    (status, challenge, answer.text().await.unwrap())
}

#[tokio::test]
async fn a_scrape_answers_at_once_while_every_connection_is_taken() {
    let app = TestApp::spawn_with(|c| {
        c.db_pool_size = 2;
        c.db_timeout = Duration::from_secs(3);
    })
    .await;
    let addr = app.addr.to_string();
    let (status, _, _) = scrape(&addr, None).await;
    assert_eq!(status, 200);
    let held = [app.db().await, app.db().await];
    for _ in 0..3 {
        let started = Instant::now();
        let (status, _, text) = scrape(&addr, None).await;
        assert_eq!(status, 200);
        assert!(text.contains("hostplane_webhook_outbox"), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a scrape waited {:?} for the database",
            started.elapsed()
        );
    }
    drop(held);
}

#[tokio::test]
async fn with_a_token_set_a_scrape_must_bring_it() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for own_listener in [false, true] {
        let app = TestApp::spawn_with(|c| {
            c.metrics_token = Some("metrics-token-7".to_string().into());
            if own_listener {
                c.metrics_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
            }
        })
        .await;
        let addr = if own_listener {
            format!("127.0.0.1:{port}")
        } else {
            app.addr.to_string()
        };
        for wrong in [
            None,
            Some(""),
            Some("metrics-token-"),
            Some("metrics-token-77"),
        ] {
            let (status, challenge, body) = scrape(&addr, wrong).await;
            assert_eq!(status, 401, "{wrong:?}");
            assert_eq!(challenge.as_deref(), Some("Bearer realm=\"metrics\""));
            assert!(body.contains("auth_required"), "{body}");
            assert!(!body.contains("hostplane_requests_total"));
        }
        let (status, _, text) = scrape(&addr, Some("metrics-token-7")).await;
        assert_eq!(status, 200);
        assert!(text.contains("hostplane_requests_total"), "{text}");
    }
}
