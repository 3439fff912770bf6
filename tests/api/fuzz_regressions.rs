//! Inputs the fuzzer or a probe found (fuzz/regressions) and the seed corpus (fuzz/seeds): the
//! seeds go through the fuzz target's database-free path; the regressions through the real
//! server, where each once ended in a system error.

use std::path::Path;

fn inputs(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn fuzz_inputs_are_answered_without_panicking() {
    let registry = hostplane::registry::Registry::new(hostplane::actions::all()).unwrap();
    let seeds = inputs("fuzz/seeds");
    assert!(seeds.len() >= 20, "the seed corpus is there");
    let mut recognised = 0;
    for (name, body) in seeds.iter().chain(inputs("fuzz/regressions").iter()) {
        match registry.dry_run(body) {
            Ok(_) => recognised += 1,
            Err(e) => assert!(e.reason().is_some(), "{name}: {e}"),
        }
    }
    // The seeds are protocol.md's own examples: their envelopes and params all decode.
    assert!(
        recognised >= seeds.len(),
        "{recognised} of {} seeds decoded",
        seeds.len()
    );
}

#[tokio::test]
async fn past_regressions_are_answered_by_the_real_server_without_a_system_error() {
    let found = inputs("fuzz/regressions");
    assert!(found.len() >= 4, "fuzz/regressions holds the known cases");
    let app = crate::helpers::TestApp::spawn().await;
    // A regression file may act as an admin: `$ADMIN` stands for an admin's cookie.
    let admin = app.admin().await;
    for (name, body) in found {
        let body = String::from_utf8(body)
            .expect("regressions are UTF-8 JSON")
            .replace("$ADMIN", &admin);
        let a = app
            .raw(
                "POST",
                "/api",
                &[("content-type", "application/json")],
                body,
            )
            .await;
        assert_eq!(
            a.body["response"], "error",
            "{name}: {} {}",
            a.status, a.body
        );
        assert!(a.status < 500, "{name}: {} {}", a.status, a.body);
    }
}
