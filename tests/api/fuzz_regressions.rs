//! Inputs the fuzzer found (fuzz/regressions) and the seed corpus (fuzz/seeds) go through the
//! same database-free path as the fuzz target, and must come out as answers, not panics.

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
