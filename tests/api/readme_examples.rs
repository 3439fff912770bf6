//! The README's curl examples, run as written and in order against a fresh service: each `api` /
//! `key` call must answer `ok`, each `# =>` answer must match what came (`…` and `COOKIE` stand for
//! anything), and each value the reader is told to copy (`C=COOKIE`, `A=COOKIE`, `KEY=hpk_…`,
//! `S=2`) is taken from, or checked against, the answer before it.

use serde_json::Value;

use crate::helpers::TestApp;

/// One step of the README's shell sessions.
#[derive(Debug)]
enum Step {
    /// `api '…'` or `key '…'` (with the key), the body as the shell would send it.
    Call { with_key: bool, body: String },
    /// `# => {…}`: the answer the README shows.
    Shows(String),
    /// `NAME=VALUE`: a value copied from the previous answer.
    Set(String, String),
}

/// The steps of the fenced `sh` blocks under the two session headings, in order.
fn steps(readme: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut in_session = false;
    let mut in_block = false;
    let mut pending: Option<(bool, String)> = None;
    for line in readme.lines() {
        if line.starts_with("## ") {
            in_session = line == "## A session with curl" || line == "## For integration scripts";
            continue;
        }
        if !in_session {
            continue;
        }
        if line.starts_with("```") {
            in_block = line == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some((with_key, mut body)) = pending.take() {
            body.push('\n');
            body.push_str(line);
            if line.trim_end().ends_with('\'') {
                out.push(call(with_key, &body));
            } else {
                pending = Some((with_key, body));
            }
            continue;
        }
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed
            .strip_prefix("api '")
            .map(|r| (false, r))
            .or_else(|| trimmed.strip_prefix("key '").map(|r| (true, r)))
        {
            let (with_key, rest) = rest;
            if rest.trim_end().ends_with('\'') {
                out.push(call(with_key, rest));
            } else {
                pending = Some((with_key, rest.to_string()));
            }
        } else if let Some(shown) = trimmed.strip_prefix("# => ") {
            out.push(Step::Shows(shown.to_string()));
        } else if let Some((name, value)) = trimmed.split_once('=') {
            if name.chars().all(|c| c.is_ascii_uppercase()) && !name.is_empty() {
                let value = value.split_whitespace().next().unwrap_or("").to_string();
                out.push(Step::Set(name.to_string(), value));
            }
        }
    }
    out
}

fn call(with_key: bool, quoted: &str) -> Step {
    let body = quoted.trim_end().strip_suffix('\'').unwrap().to_string();
    Step::Call { with_key, body }
}

/// Does `got` hold everything `shown` shows? `…`, `COOKIE` and `hpk_…` match anything.
fn matches(shown: &Value, got: &Value) -> bool {
    match (shown, got) {
        (Value::String(s), _) if s == "…" || s == "COOKIE" || s == "hpk_…" => true,
        (Value::Object(s), Value::Object(g)) => s
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| matches(v, gv))),
        (Value::Array(s), Value::Array(g)) => {
            s.len() == g.len() && s.iter().zip(g).all(|(a, b)| matches(a, b))
        }
        _ => shown == got,
    }
}

#[tokio::test]
async fn every_readme_example_runs_as_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let steps = steps(&readme);
    assert!(steps.len() > 10, "the sessions were not found: {steps:?}");
    let app = TestApp::spawn().await;
    let password = "readme-admin-password";
    hostplane::actions::create_admin(&app.state.config, "admin", password.into())
        .await
        .unwrap();
    let mut vars: std::collections::HashMap<String, String> = Default::default();
    let mut last = Value::Null;
    for step in &steps {
        match step {
            Step::Call { with_key, body } => {
                let mut text = body.replace("'\"$(cat var/admin-password)\"'", password);
                for (name, value) in &vars {
                    text = text.replace(&format!("'${name}'"), value);
                }
                let mut headers = vec![("content-type", "application/json")];
                let auth;
                if *with_key {
                    auth = format!("Bearer {}", vars["KEY"]);
                    headers.push(("authorization", &auth));
                }
                let a = app.raw("POST", "/api", &headers, text.clone()).await;
                assert_eq!(a.body["response"], "ok", "{text}\n=> {}", a.body);
                last = a.body;
            }
            Step::Shows(shown) => {
                let shown: Value = serde_json::from_str(shown)
                    .unwrap_or_else(|e| panic!("the README shows no JSON ({e}): {shown}"));
                assert!(matches(&shown, &last), "README shows {shown}\ngot {last}");
            }
            Step::Set(name, value) => {
                let got = match name.as_str() {
                    "KEY" => last["result"]["key"].clone(),
                    "S" => last["result"]["siteid"].clone(),
                    _ => last["result"]["cookie"].clone(),
                };
                let got = match got {
                    Value::String(s) => s,
                    Value::Null => panic!("{name}: the answer before holds no such value: {last}"),
                    other => other.to_string(),
                };
                if !["COOKIE", "hpk_…"].contains(&value.as_str()) {
                    assert_eq!(&got, value, "the README says {name}={value}");
                }
                vars.insert(name.clone(), got);
            }
        }
    }
}
