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

/// The row of the declarations table that protocol.md must hold for an action.
fn declared_row(spec: &hostplane::registry::ActionSpec) -> String {
    use hostplane::registry::{Access, Replay};
    let mut access = match spec.access {
        Access::Public => "anyone",
        Access::Anyone => "anyone",
        Access::User => "user",
        Access::Admin => "admin",
        Access::Node => "node",
        Access::UserOrNode => "user, node",
    }
    .to_string();
    if spec.for_mailboxes {
        access.push_str(", mailbox");
    }
    if spec.sessions_only {
        access.push_str(" (no key)");
    }
    let batch = if spec.in_batch { "yes" } else { "no" };
    let request_id = match spec.replay {
        Replay::Refused => "refused".to_string(),
        _ if spec.reads => "ignored".to_string(),
        Replay::Stored => "replayed".to_string(),
        Replay::WithoutSecrets(fields) => format!(
            "replayed without {}",
            fields
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let cost = match spec.cost(&serde_json::json!({})) {
        0 => "0",
        _ if spec.runs_entries => "1 per entry",
        _ => "1",
    };
    format!(
        "| `{}` | {access} | {batch} | {request_id} | {cost} |",
        spec.name
    )
}

/// What each action declares to the registry (who, batch, request_id, cost) is the table in
/// protocol.md, row for row.
#[test]
fn protocol_md_states_what_each_action_declares() {
    let doc = protocol_md();
    let registry = hostplane::registry::Registry::new(hostplane::actions::all()).unwrap();
    let missing: Vec<String> = registry
        .specs()
        .into_iter()
        .map(declared_row)
        .filter(|row| !doc.contains(row.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "protocol.md lacks these rows:\n{}",
        missing.join("\n")
    );
}
