//! Outgoing mail of the service: SMTP, or `.eml` files in a spool folder.
//!
//! Outgoing mail: through SMTP when `HOSTPLANE_SMTP_URL` is set, else as RFC 5322 `.eml` files in
//! the spool folder (`HOSTPLANE_MAIL_SPOOL`), which is readable only by the service's user.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Config;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Spool(AsyncFileTransport<Tokio1Executor>),
}

/// Sends the service's messages.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    public_url: String,
}

impl Mailer {
    /// Builds the mailer from the configuration; creates the spool folder when it is used.
    pub fn new(config: &Config) -> Result<Self, String> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| format!("HOSTPLANE_MAIL_FROM is not a mailbox: {e}"))?;
        let transport = match &config.smtp_url {
            Some(url) => Transport::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| format!("HOSTPLANE_SMTP_URL: {e}"))?
                    .build(),
            ),
            None => {
                std::fs::create_dir_all(&config.mail_spool).map_err(|e| {
                    format!(
                        "cannot create mail spool {}: {e}",
                        config.mail_spool.display()
                    )
                })?;
                restrict_to_owner(&config.mail_spool);
                Transport::Spool(AsyncFileTransport::<Tokio1Executor>::new(
                    &config.mail_spool,
                ))
            }
        };
        Ok(Mailer {
            transport,
            from,
            public_url: config.public_url.clone(),
        })
    }

    /// Mails a password reset link to `to`.
    pub async fn send_reset(&self, to: &str, login: &str, token: &str) -> Result<(), String> {
        let to: Mailbox = to.parse().map_err(|e| format!("bad recipient: {e}"))?;
        let link = format!("{}/reset?token={token}", self.public_url);
        let body = format!(
            "Hello {login},\n\n\
             someone (hopefully you) asked to reset the password of your hostplane account.\n\
             Open this link within one hour to choose a new password:\n\n{link}\n\n\
             The link works once. If you did not ask for it, ignore this message;\n\
             your password stays as it is.\n"
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject("Reset your hostplane password")
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| e.to_string())?;
        match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
            Transport::Spool(t) => t.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

#[cfg(unix)]
fn restrict_to_owner(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn restrict_to_owner(_: &std::path::Path) {}
