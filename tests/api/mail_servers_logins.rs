//! Who may send and log in (issue 17): the mailboxes an alias delivers to may send as the alias
//! over submission. Real Postfix and Dovecot as mail-config configures them; a missing tool fails.

use serde_json::json;

use crate::mail_servers::{mail_world, Dovecot, MailNode, Postfix};
use crate::mail_servers_deploy::submit;

#[tokio::test]
async fn the_mailboxes_an_alias_delivers_to_may_send_as_it_over_submission() {
    let w = mail_world().await;
    // mail_world: sales@ delivers to info@ (and an outside address); other@ is not among them.
    let p = json!({"address": "other@alice.example", "password": "other-password"});
    w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
    let node = MailNode::new(&w, "default").await;
    node.make_mail_root();
    let _dovecot = Dovecot::start(&node).await;
    let postfix = Postfix::start(&node).await;
    let info = Some(("info@alice.example", "info-password"));
    let other = Some(("other@alice.example", "other-password"));
    assert_eq!(
        submit(&postfix, info, "sales@alice.example").await,
        None,
        "{}",
        node.maillog()
    );
    let refused = submit(&postfix, other, "sales@alice.example").await;
    assert!(refused >= Some(550), "{refused:?} {}", node.maillog());
    // Not the catch-all's addresses, and no longer once the alias stops delivering to info@.
    let refused = submit(&postfix, info, "anything@alice.example").await;
    assert!(refused >= Some(550), "{refused:?} {}", node.maillog());
    let p = json!({"source": "sales@alice.example"});
    w.app.call_as(&w.alice.1, "delete_alias", p).await.ok();
    let p = json!({"source": "sales@alice.example", "destination": "other@alice.example"});
    w.app.call_as(&w.alice.1, "add_alias", p).await.ok();
    let refused = submit(&postfix, info, "sales@alice.example").await;
    assert!(refused >= Some(550), "{refused:?} {}", node.maillog());
    assert_eq!(
        submit(&postfix, other, "sales@alice.example").await,
        None,
        "{}",
        node.maillog()
    );
}

#[tokio::test]
async fn app_passwords_log_in_beside_the_main_one_until_revoked() {
    let w = mail_world().await;
    let p = json!({"address": "other@alice.example", "password": "other-password"});
    w.app.call_as(&w.alice.1, "add_mailbox", p).await.ok();
    let add = |name: &str| {
        let p = json!({"address": "info@alice.example", "name": name});
        w.app.call_as(&w.alice.1, "add_app_password", p)
    };
    let phone = add("phone").await.ok()["password"]
        .as_str()
        .unwrap()
        .to_string();
    let laptop = add("laptop").await.ok()["password"]
        .as_str()
        .unwrap()
        .to_string();
    add("phone").await.assert_error("already_exists", 409);
    let node = MailNode::new(&w, "default").await;
    node.make_mail_root();
    let imap_port = crate::mail_servers::free_port(24000);
    let imap = format!(
        "protocols = lmtp imap\ndisable_plaintext_auth = no\n\
         service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}\n  \
         inet_listener imaps {{\n    port = 0\n  }}\n}}"
    );
    let dovecot = Dovecot::start_with(&node, &imap).await;
    let auth = |user: &str, password: &str| dovecot.auth(user, password);
    // A real IMAP client logs in with the app password, as a phone's mail app would.
    let login = imap_login(imap_port, "info@alice.example", &phone).await;
    assert!(login.starts_with("a1 OK"), "{login} {}", dovecot.log());
    let wrong = imap_login(imap_port, "info@alice.example", "not-a-password").await;
    assert!(wrong.starts_with("a1 NO"), "{wrong}");
    assert!(
        auth("info@alice.example", "info-password"),
        "{}",
        dovecot.log()
    );
    assert!(auth("info@alice.example", &phone), "{}", dovecot.log());
    assert!(auth("info@alice.example", &laptop), "{}", dovecot.log());
    assert!(!auth("info@alice.example", "not-a-password"));
    assert!(!auth("other@alice.example", &phone), "info's, not other's");
    // Listed by name, never the password; revoked, it no longer logs in.
    let p = json!({"address": "info@alice.example"});
    let list = w.app.call_as(&w.alice.1, "get_list_app_password", p).await;
    let names: Vec<&str> = list.ok()["app_passwords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["laptop", "phone"]);
    assert!(!list.body.to_string().contains(&phone));
    let p = json!({"address": "info@alice.example", "name": "phone"});
    w.app
        .call_as(&w.alice.1, "delete_app_password", p)
        .await
        .ok();
    assert!(!auth("info@alice.example", &phone));
    assert!(auth("info@alice.example", &laptop), "{}", dovecot.log());
    // Another user's mailbox is not found.
    let p = json!({"address": "info@alice.example", "name": "stolen"});
    w.app
        .call_as(&w.bob.1, "add_app_password", p)
        .await
        .assert_error("not_found", 404);
}

/// Logs in over IMAP (LOGIN, on loopback) and returns the server's tagged answer.
async fn imap_login(port: u16, user: &str, password: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut stream = None;
    for _ in 0..50 {
        if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (read, mut write) = stream.expect("Dovecot's IMAP port answers").into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = lines.next_line().await.unwrap().unwrap_or_default();
    assert!(greeting.starts_with("* OK"), "{greeting}");
    write
        .write_all(format!("a1 LOGIN \"{user}\" \"{password}\"\r\n").as_bytes())
        .await
        .unwrap();
    loop {
        let line = lines.next_line().await.unwrap().unwrap_or_default();
        if line.starts_with("a1 ") || line.is_empty() {
            let _ = write.write_all(b"a2 LOGOUT\r\n").await;
            return line;
        }
    }
}
