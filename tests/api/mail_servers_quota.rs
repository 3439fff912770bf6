//! Quota at the door (issue 17, defect 7): with what mail-config writes, Postfix asks Dovecot's
//! quota-status policy service at RCPT, so mail for a mailbox over its quota is refused there
//! (no bounce later), and the API reports the true usage past 100 %. A missing tool fails.

use std::time::Duration;

use serde_json::json;

use crate::mail_servers::{delivered, mail_world, Dovecot, MailNode, Postfix};

#[tokio::test]
async fn a_mailbox_over_its_quota_is_refused_at_rcpt_and_reports_its_true_usage() {
    let w = mail_world().await;
    let node = MailNode::new(&w, "default").await;
    node.make_mail_root();
    let _dovecot = Dovecot::start(&node).await;
    let postfix = Postfix::start(&node).await;
    // Two messages while there is no limit, then a quota below what they take.
    for subject in ["filler-1", "filler-2"] {
        let codes = postfix
            .send("someone@example.net", &["info@alice.example"], subject)
            .await;
        assert_eq!(codes, [250], "{}", node.maillog());
    }
    for _ in 0..100 {
        if delivered(&node, "info@alice.example", "filler-") == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        delivered(&node, "info@alice.example", "filler-"),
        2,
        "{}",
        node.maillog()
    );
    let p = json!({"address": "info@alice.example", "quota_bytes": 400});
    w.app.call_as(&w.alice.1, "set_mailbox", p).await.ok();
    // Refused at RCPT with quota-status's answer; another mailbox still takes mail.
    let p = json!({"address": "roomy@alice.example", "password": "roomy-password"});
    w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
    let codes = postfix
        .send(
            "someone@example.net",
            &["info@alice.example", "roomy@alice.example"],
            "one-too-many",
        )
        .await;
    assert_eq!(codes, [552, 250], "{}", node.maillog());
    assert!(
        node.maillog().contains("Mailbox is full"),
        "{}",
        node.maillog()
    );
    // What Dovecot reported: more than the quota, and the percentage says how much more.
    let mut mailbox = json!(null);
    for _ in 0..50 {
        let list = w
            .app
            .call_as(&w.alice.1, "get_list_mailbox", json!({"q": "info@"}))
            .await;
        mailbox = list.ok()["mailboxes"][0].clone();
        if mailbox["used_bytes"].as_i64() > Some(400) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let used = mailbox["used_bytes"].as_i64().unwrap();
    assert!(used > 400, "{mailbox}");
    assert_eq!(mailbox["percentage"].as_i64(), Some(used * 100 / 400));
    assert!(mailbox["percentage"].as_i64() > Some(100), "{mailbox}");
}
