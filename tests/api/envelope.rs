//! The envelope: every answer is JSON, with the status of its class.

use serde_json::json;

use crate::helpers::TestApp;

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn ping_answers_the_version() {
    let app = TestApp::spawn().await;
    let a = app.call("ping", json!({})).await;
    assert_eq!(a.ok()["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn params_default_to_empty_and_charset_is_accepted() {
    let app = TestApp::spawn().await;
    let a = app
        .raw(
            "POST",
            "/api",
            &[("content-type", "application/json; charset=utf-8")],
            r#"{"action":"ping"}"#,
        )
        .await;
    a.ok();
}

#[tokio::test]
async fn malformed_json_is_bad_json() {
    let app = TestApp::spawn().await;
    app.raw("POST", "/api", &[JSON], "{\"action\": \"ping\"")
        .await
        .assert_error("bad_json", 400);
    app.raw("POST", "/api", &[JSON], vec![0xff, 0xfe, b'{'])
        .await
        .assert_error("bad_json", 400);
    app.raw("POST", "/api", &[JSON], "")
        .await
        .assert_error("bad_json", 400);
}

#[tokio::test]
async fn envelope_without_a_string_action_is_bad_request() {
    let app = TestApp::spawn().await;
    for body in [
        r#"[]"#,
        r#"{}"#,
        r#"{"action":5}"#,
        r#"{"action":"ping","params":"x"}"#,
        r#"{"action":"ping","cookie":7}"#,
    ] {
        app.raw("POST", "/api", &[JSON], body)
            .await
            .assert_error("bad_request", 400);
    }
}

#[tokio::test]
async fn unknown_action_is_400() {
    let app = TestApp::spawn().await;
    app.call("no_such_action", json!({}))
        .await
        .assert_error("unknown_action", 400);
}

#[tokio::test]
async fn wrong_method_is_405_with_an_envelope() {
    let app = TestApp::spawn().await;
    let a = app.raw("GET", "/api", &[], "").await;
    a.assert_error("method_not_allowed", 405);
    app.raw("PUT", "/api", &[JSON], "{}")
        .await
        .assert_error("method_not_allowed", 405);
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = TestApp::spawn().await;
    let body = r#"{"action":"ping"}"#;
    app.raw("POST", "/api", &[("content-type", "text/plain")], body)
        .await
        .assert_error("unsupported_media_type", 415);
    app.raw(
        "POST",
        "/api",
        &[("content-type", "application/x-www-form-urlencoded")],
        body,
    )
    .await
    .assert_error("unsupported_media_type", 415);
    app.raw("POST", "/api", &[], body)
        .await
        .assert_error("unsupported_media_type", 415);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = TestApp::spawn_with(|c| c.max_body = 1024).await;
    let big = format!(
        r#"{{"action":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(2000)
    );
    app.raw("POST", "/api", &[JSON], big)
        .await
        .assert_error("body_too_large", 413);
}

#[tokio::test]
async fn default_body_limit_is_one_mebibyte() {
    let app = TestApp::spawn().await;
    let big = format!(
        r#"{{"action":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(1024 * 1024)
    );
    app.raw("POST", "/api", &[JSON], big)
        .await
        .assert_error("body_too_large", 413);
    let fits = format!(
        r#"{{"action":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(1000 * 1000)
    );
    app.raw("POST", "/api", &[JSON], fits).await.ok();
}

#[tokio::test]
async fn unknown_path_is_404_envelope() {
    let app = TestApp::spawn().await;
    app.raw("GET", "/nope", &[], "")
        .await
        .assert_error("not_found", 404);
}

#[tokio::test]
async fn healthz_is_200_when_the_database_answers() {
    let app = TestApp::spawn().await;
    let a = app.raw("GET", "/healthz", &[], "").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["result"]["database"], "ok");
}

#[tokio::test]
async fn ill_typed_param_is_bad_params_naming_it() {
    let app = TestApp::spawn().await;
    let a = app
        .call(
            "adduser",
            json!({"login": 5, "password": "password1", "email": "a@example.com"}),
        )
        .await;
    a.assert_error("bad_params", 400);
    assert!(
        a.body["message"].as_str().unwrap().contains("login"),
        "{}",
        a.body
    );
    let a = app
        .call(
            "adduser",
            json!({"password": "password1", "email": "a@example.com"}),
        )
        .await;
    a.assert_error("bad_params", 400);
    assert!(
        a.body["message"].as_str().unwrap().contains("login"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn system_error_reveals_nothing() {
    let app = TestApp::spawn().await;
    let (_, cookie) = app.signup("alice").await;
    // Break the database under the app: the answer must be a bare system error.
    app.db()
        .await
        .batch_execute("DROP TABLE sessions CASCADE")
        .await
        .unwrap();
    let a = app.call_as(&cookie, "whoami", json!({})).await;
    assert_eq!(a.status, 500);
    assert_eq!(a.body["response"], "system error");
    let text = a.body.to_string();
    assert!(
        !text.contains("sessions") && !text.contains("relation"),
        "{text}"
    );
}

/// hyper answers these itself, before hostplane sees a request; protocol.md says so.
#[tokio::test]
async fn malformed_http_gets_hypers_own_answers_as_documented() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::helpers::TestApp::spawn().await;
    let huge = format!(
        "POST /api HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    for (request, status) in [
        ("BROKEN REQUEST LINE\r\n\r\n".to_string(), "400"),
        (huge, "431"),
    ] {
        let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let _ = s.write_all(request.as_bytes()).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            s.read_to_end(&mut answer),
        )
        .await;
        let head = String::from_utf8_lossy(&answer);
        assert!(head.starts_with(&format!("HTTP/1.1 {status}")), "{head}");
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md")).unwrap();
    assert!(doc.contains("(`400`)") && doc.contains("(`431`)"));
}
