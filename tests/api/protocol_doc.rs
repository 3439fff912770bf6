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
