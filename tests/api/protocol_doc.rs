//! protocol.md is the contract: it documents exactly the registered actions, and every reason
//! with its HTTP status.

use hostplane::error::Reason;

fn protocol_md() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/protocol.md")).unwrap()
}

/// Action names from the `### \`name\`` headings.
fn documented_actions(doc: &str) -> Vec<String> {
    let mut names: Vec<String> = doc
        .lines()
        .filter_map(|l| {
            l.strip_prefix("### `")?
                .split('`')
                .next()
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn protocol_md_documents_exactly_the_registered_actions() {
    let registry = hostplane::registry::Registry::new(hostplane::actions::all()).unwrap();
    let registered: Vec<String> = registry
        .specs()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(documented_actions(&protocol_md()), registered);
}

#[test]
fn protocol_md_lists_every_reason_with_its_status() {
    let doc = protocol_md();
    for reason in Reason::ALL {
        let row = format!("| `{}` | {} |", reason.as_str(), reason.status().as_u16());
        assert!(doc.contains(&row), "protocol.md lacks the row {row}");
    }
}

#[test]
fn every_action_section_has_a_request_and_an_answer_example() {
    let doc = protocol_md();
    for section in doc.split("\n### `").skip(1) {
        let name = section.split('`').next().unwrap();
        let body = section.split("\n## ").next().unwrap();
        assert!(body.contains("\"action\""), "{name}: no request example");
        assert!(body.contains("\"response\""), "{name}: no answer example");
    }
}

#[test]
fn the_readme_lists_every_setting() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let names = hostplane::config::Config::env_names();
    assert!(names.len() > 30, "{names:?}");
    for name in names {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README.md lacks {name}"
        );
    }
}

/// A bad setting stops the binary with a message naming the variable the operator set.
#[test]
fn a_bad_setting_in_the_environment_is_named() {
    for (name, value) in [
        ("HOSTPLANE_BCRYPT_COST", "99"),
        ("HOSTPLANE_REGISTRATION", "sometimes"),
        ("HOSTPLANE_TRUSTED_PROXIES", "10.0.0.1,not-an-ip"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hostplane"))
            .arg("migrate")
            .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
            .env(name, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}={value} was accepted");
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}
