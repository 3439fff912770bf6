//! Autoreply (issue 17): a real delivery to a mailbox with an autoreply makes Dovecot's
//! Pigeonhole Sieve, reading the script live from the database, send one reply to the sender
//! (a sink), once per sender per `days`, never to a bounce or a mailing list. A missing tool fails.

use std::time::Duration;

use serde_json::json;

use crate::mail_servers::{delivered, mail_world, Dovecot, MailNode, Postfix};
use crate::passwords::fake_smtp;

#[tokio::test]
async fn a_mailbox_with_an_autoreply_answers_each_sender_once() {
    let w = mail_world().await;
    let p = json!({"address": "info@alice.example", "subject": "Away \"till\" Monday",
                   "body": "Back on Monday.\nRegards", "days": 1, "from": "sales@alice.example"});
    let set = w.app.call_as(&w.alice.1, "set_autoreply", p).await;
    assert_eq!(set.ok()["days"], 1);
    // Its From is an address the mailbox may send as, nobody else's.
    let p = json!({"address": "info@alice.example", "subject": "x", "body": "y",
                   "from": "ceo@bank.example"});
    w.app
        .call_as(&w.alice.1, "set_autoreply", p)
        .await
        .assert_error("bad_params", 400);
    let p = json!({"address": "info@alice.example", "subject": "x", "body": "y",
                   "from": "sales@alice.example", "days": 31});
    w.app
        .call_as(&w.alice.1, "set_autoreply", p)
        .await
        .assert_error("bad_params", 400);
    let p = json!({"address": "info@alice.example"});
    let got = w.app.call_as(&w.alice.1, "get_autoreply", p).await;
    assert_eq!(got.ok()["subject"], "Away \"till\" Monday");
    let (sink, mut replies) = fake_smtp().await;
    let node = MailNode::new(&w, "default").await;
    node.make_mail_root();
    let submission_host = sink.trim_start_matches("smtp://");
    let dovecot = Dovecot::start_with(&node, &format!("submission_host = {submission_host}")).await;
    let postfix = Postfix::start(&node).await;
    let codes = postfix
        .send("someone@example.net", &["info@alice.example"], "first")
        .await;
    assert_eq!(codes, [250]);
    let reply = tokio::time::timeout(Duration::from_secs(20), replies.recv())
        .await
        .unwrap_or_else(|_| panic!("no reply; {} {}", dovecot.log(), node.maillog()))
        .unwrap();
    assert!(
        reply.contains("To: <someone@example.net>") || reply.contains("To: someone@example.net"),
        "{reply}"
    );
    assert!(reply.contains("Away \"till\" Monday"), "{reply}");
    assert!(reply.contains("Back on Monday."), "{reply}");
    assert!(
        reply.contains("From: sales@alice.example") || reply.contains("<sales@alice.example>"),
        "{reply}"
    );
    // The same sender again, and a bounce (null sender): delivered, not answered.
    postfix
        .send("someone@example.net", &["info@alice.example"], "second")
        .await;
    postfix.send("", &["info@alice.example"], "a-bounce").await;
    for _ in 0..100 {
        if delivered(&node, "info@alice.example", "a-bounce") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered(&node, "info@alice.example", "second"), 1);
    assert_eq!(delivered(&node, "info@alice.example", "a-bounce"), 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(replies.try_recv().is_err(), "a second reply");
    // A mailing list's message is delivered, never answered.
    let list = "List-Id: <news.lists.example.net>\r\nPrecedence: list\r\n";
    postfix
        .send_with_headers(
            "news@lists.example.net",
            &["info@alice.example"],
            "a-list-post",
            list,
        )
        .await;
    for _ in 0..100 {
        if delivered(&node, "info@alice.example", "a-list-post") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(delivered(&node, "info@alice.example", "a-list-post"), 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(replies.try_recv().is_err(), "a reply to a mailing list");
    // Deleted: another sender gets none.
    let p = json!({"address": "info@alice.example"});
    w.app.call_as(&w.alice.1, "delete_autoreply", p).await.ok();
    postfix
        .send("another@example.net", &["info@alice.example"], "third")
        .await;
    for _ in 0..100 {
        if delivered(&node, "info@alice.example", "third") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(replies.try_recv().is_err(), "a reply after delete");
}

/// The From of an autoreply holds only while the mailbox may send as it: once the alias is gone
/// (or its domain another user's), the script the mail server reads no longer names it.
#[tokio::test]
async fn an_autoreply_stops_using_an_alias_the_mailbox_no_longer_has() {
    let w = mail_world().await;
    let p = json!({"address": "info@alice.example", "subject": "Away", "body": "Back soon",
                   "from": "sales@alice.example"});
    w.app.call_as(&w.alice.1, "set_autoreply", p).await.ok();
    let script = || async {
        let db = w.app.db().await;
        let row = db
            .query_one(
                "SELECT script FROM mail_sieve_scripts WHERE address = 'info@alice.example'",
                &[],
            )
            .await
            .unwrap();
        row.get::<_, String>(0)
    };
    assert!(script().await.contains(":from \"sales@alice.example\""));
    let p = json!({"source": "sales@alice.example"});
    w.app.call_as(&w.alice.1, "delete_alias", p).await.ok();
    let now = script().await;
    assert!(!now.contains("sales@alice.example"), "{now}");
    assert!(
        now.contains("vacation"),
        "the autoreply itself stays: {now}"
    );
}
