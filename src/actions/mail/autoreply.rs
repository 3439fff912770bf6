//! Autoreply (vacation): `set_autoreply`, `get_autoreply`, `delete_autoreply`.
//!
//! Dovecot's Pigeonhole Sieve answers at delivery, reading the script live from the database.

use serde::Deserialize;

use crate::actions::audit;
use crate::actions::mail::domains::address_param;
use crate::actions::mail::mailboxes::{address, own_mailbox};
use crate::db::{self, autoreply::Autoreply};
use crate::error::{ApiError, Reason};
use crate::registry::types::OptNum;
use crate::registry::Ctx;

/// A text param of 1 to `max` characters; line breaks only where `lines` allows them.
fn text(param: &str, raw: &str, max: usize, lines: bool) -> Result<String, ApiError> {
    // Line breaks as Windows clients send them are line breaks.
    let raw = if lines {
        raw.replace("\r\n", "\n")
    } else {
        raw.to_string()
    };
    let bad = |why: &str| Reason::bad_params.msg(format!("param `{param}`: {why}"));
    if raw.trim().is_empty() || raw.chars().count() > max {
        return Err(bad(&format!("1 to {max} characters")));
    }
    let allowed = |c: char| !c.is_control() || (lines && (c == '\n' || c == '\t'));
    if let Some(c) = raw.chars().find(|c| !allowed(*c)) {
        return Err(bad(&format!(
            "no control characters{} (found U+{:04X})",
            if lines {
                " but line breaks and tabs"
            } else {
                ", one line"
            },
            u32::from(c)
        )));
    }
    Ok(raw)
}

/// A day `YYYY-MM-DD` that exists.
fn day(raw: &str) -> Result<String, ApiError> {
    let bad = || Reason::bad_params.msg("param `until`: a day, YYYY-MM-DD");
    let parts: Vec<&str> = raw.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return Err(bad());
    }
    let (y, m, d): (u32, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let last = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    if y < 2000 || d == 0 || d > last {
        return Err(bad());
    }
    Ok(raw.to_string())
}

#[derive(Deserialize)]
pub struct SetAutoreplyParams {
    address: String,
    subject: String,
    body: String,
    from: Option<String>,
    until: Option<String>,
    #[serde(default)]
    days: OptNum,
}

/// `set_autoreply`: one of the caller's mailboxes answers what it receives, once per sender per
/// `days`, until `until` or until deleted.
pub async fn set_autoreply(ctx: Ctx, p: SetAutoreplyParams) -> Result<Autoreply, ApiError> {
    let (local, domain) = address(&p.address)?;
    let days = match p.days.0 {
        None => 7,
        Some(d @ 1..=30) => d as i32,
        Some(_) => return Err(Reason::bad_params.msg("param `days`: 1 to 30")),
    };
    let reply = Autoreply {
        address: format!("{local}@{domain}"),
        subject: text("subject", &p.subject, 200, false)?,
        body: text("body", &p.body, 10_000, true)?,
        from: p
            .from
            .as_deref()
            .map(|f| address_param("from", f))
            .transpose()?,
        until: p.until.as_deref().map(day).transpose()?,
        days,
    };
    let tx = ctx.begin().await?;
    own_mailbox(&*tx, &ctx, &reply.address).await?;
    if let Some(from) = &reply.from {
        if !db::autoreply::may_send_as(&*tx, &reply.address, from).await? {
            return Err(Reason::bad_params.msg(format!(
                "param `from`: {} may not send as {from}; its own address or an alias that \
                 delivers to it",
                reply.address
            )));
        }
    }
    db::autoreply::set(&*tx, &reply).await?;
    audit(&*tx, &ctx, &format!("mailbox:{}", reply.address)).await?;
    tx.commit().await?;
    Ok(reply)
}

#[derive(Deserialize)]
pub struct AutoreplyAddressParams {
    address: String,
}

/// `get_autoreply`: a mailbox's autoreply; `not_found` when it has none.
pub async fn get_autoreply(ctx: Ctx, p: AutoreplyAddressParams) -> Result<Autoreply, ApiError> {
    let (local, domain) = address(&p.address)?;
    let address = format!("{local}@{domain}");
    let client = ctx.db().await?;
    own_mailbox(&*client, &ctx, &address).await?;
    db::autoreply::get(&*client, &address)
        .await?
        .ok_or_else(|| Reason::not_found.msg(format!("{address} has no autoreply")))
}

/// `delete_autoreply`: the mailbox stops answering.
pub async fn delete_autoreply(
    ctx: Ctx,
    p: AutoreplyAddressParams,
) -> Result<serde_json::Value, ApiError> {
    let (local, domain) = address(&p.address)?;
    let address = format!("{local}@{domain}");
    let tx = ctx.begin().await?;
    own_mailbox(&*tx, &ctx, &address).await?;
    if !db::autoreply::delete(&*tx, &address).await? {
        return Err(Reason::not_found.msg(format!("{address} has no autoreply")));
    }
    audit(&*tx, &ctx, &format!("mailbox:{address}")).await?;
    tx.commit().await?;
    Ok(serde_json::json!({ "address": address }))
}

#[cfg(test)]
mod tests {
    use super::text;

    #[test]
    fn crlf_is_a_line_break_and_other_control_characters_are_named() {
        assert_eq!(text("body", "a\r\nb", 100, true).unwrap(), "a\nb");
        let message = match text("body", "x\u{7}y", 100, true) {
            Err(crate::error::ApiError::Client { message, .. }) => message.unwrap_or_default(),
            _ => String::new(),
        };
        assert!(message.contains("U+0007"), "{message}");
        assert!(text("subject", "a\r\nb", 100, false).is_err());
        assert!(text("body", "   ", 100, true).is_err());
    }
}
