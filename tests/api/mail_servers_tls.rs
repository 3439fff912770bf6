//! Mail TLS as `hostplane mail-config` writes it: Postfix offers STARTTLS on port 25 and Dovecot
//! answers IMAPS, both with the certificate named by `--tls-cert` / `--tls-key` (on a real node,
//! the one the agent writes for the node's host name; `acme_e2e` shows it issued). Checked with
//! `openssl s_client`, which verifies the chain and the host name.

use std::process::Command;

use crate::mail_servers::{free_port, mail_world, Dovecot, MailNode, Postfix};

/// `openssl s_client` to 127.0.0.1:`port` (with `-starttls smtp` when `starttls`), trusting only
/// the node's certificate and checking the name `mx.test`: (verified, what it printed).
fn tls_check(cert: &str, port: u16, starttls: bool) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-brief", "-verify_return_error"])
        .args(["-verify_hostname", "mx.test", "-CAfile", cert])
        .args(["-connect", &format!("127.0.0.1:{port}")]);
    if starttls {
        cmd.args(["-starttls", "smtp"]);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("Verification: OK"),
        text,
    )
}

#[tokio::test]
async fn postfix_starttls_on_25_and_dovecot_imaps_use_the_nodes_certificate() {
    let w = mail_world().await;
    let node = MailNode::new(&w, "default").await;
    node.make_mail_root();
    let imaps = free_port(25000);
    let extra = format!(
        "protocols = lmtp imap\n\
         service imap-login {{\n  inet_listener imap {{\n    port = 0\n  }}\n  \
         inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps}\n  }}\n}}"
    );
    let dovecot = Dovecot::start_with(&node, &extra).await;
    let postfix = Postfix::start(&node).await;
    let cert = node.config.tls_cert.clone();

    let (ok, text) = tls_check(&cert, postfix.port, true);
    assert!(ok, "STARTTLS on port 25: {text}; {}", postfix.log());
    assert!(
        text.contains("TLSv1.3") || text.contains("TLSv1.2"),
        "{text}"
    );

    let mut connected = (false, String::new());
    for _ in 0..50 {
        connected = tls_check(&cert, imaps, false);
        if connected.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        connected.0,
        "IMAPS: {}; dovecot: {}",
        connected.1,
        dovecot.log()
    );
}
