//! Webhooks: `add_webhook`, `get_list_webhook`, `delete_webhook`, `get_webhook_deliveries`.
//!
//! A user's webhook hears of changes to their own objects; an admin's hears of everything.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::actions::audit;
use crate::actions::checks::{me, page_after, paged, Paging};
use crate::auth::random_secret;
use crate::db::{self, changes::EVENTS, webhooks::Delivery, webhooks::Webhook};
use crate::error::{ApiError, Reason};
use crate::registry::types::OptNum;
use crate::registry::Ctx;

#[derive(Deserialize)]
pub struct AddWebhookParams {
    url: String,
    events: Vec<String>,
    /// The HMAC key; absent: one is made and returned once.
    secret: Option<String>,
}

#[derive(Serialize)]
pub struct AddedWebhook {
    #[serde(flatten)]
    webhook: Webhook,
    /// Present only when the service made the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

/// A webhook URL whose host was looked up (a network call) before any transaction opened.
pub struct CheckedUrl(String);

/// `add_webhook`'s slow part: the URL's checks, its host's name lookup included.
pub async fn prepare_url(ctx: Ctx, p: AddWebhookParams) -> Result<CheckedUrl, ApiError> {
    let url =
        crate::notify::webhooks::check_url(p.url.trim(), ctx.state.config.webhook_allow_private)
            .await?
            .to_string();
    Ok(CheckedUrl(url))
}

/// `add_webhook` {url, events, secret?}.
pub async fn add_webhook(ctx: Ctx, p: AddWebhookParams) -> Result<AddedWebhook, ApiError> {
    let caller = me(&ctx)?.user_id;
    if p.events.is_empty() || p.events.len() > EVENTS.len() {
        return Err(Reason::bad_params.msg("param `events`: one or more event names"));
    }
    if let Some(e) = p.events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        return Err(Reason::bad_params.msg(format!(
            "param `events`: no event named {e:?} (known: {})",
            EVENTS.join(", ")
        )));
    }
    // Node events are told to admins only: a user's webhook could never hear them.
    if let Some(e) = p.events.iter().find(|e| e.starts_with("node.")) {
        if !ctx.is_admin() {
            return Err(
                Reason::bad_params.msg(format!("param `events`: {e} is told to admins only"))
            );
        }
    }
    let mut events = p.events;
    events.sort();
    events.dedup();
    let (secret, made) = match p.secret {
        Some(s)
            if (16..=256).contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b)) =>
        {
            (s, false)
        }
        Some(_) => {
            return Err(
                Reason::bad_params.msg("param `secret`: 16 to 256 letters, digits, '_' or '-'")
            )
        }
        None => (format!("whsec_{}", random_secret(32)?), true),
    };
    let url = ctx.prepared::<CheckedUrl>()?.0.clone();
    // An admin's webhook is global; a user's hears of their own objects.
    let owner = (!ctx.is_admin()).then_some(caller);
    let tx = ctx.begin().await?;
    let webhook = db::webhooks::insert(&*tx, owner, caller, &url, &events, &secret)
        .await?
        .ok_or_else(|| {
            Reason::quota_exceeded.msg(format!(
                "at most {} webhooks per user",
                db::webhooks::MAX_PER_USER
            ))
        })?;
    audit(&*tx, &ctx, &format!("webhook:{}", webhook.webhookid)).await?;
    tx.commit().await?;
    Ok(AddedWebhook {
        webhook,
        secret: made.then_some(secret),
    })
}

#[derive(Deserialize)]
pub struct ListWebhookParams {
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    /// Keyset paging: the `next` of the previous page.
    after: Option<String>,
}

#[derive(Serialize)]
pub struct WebhookList {
    webhooks: Vec<Webhook>,
    #[serde(flatten)]
    paging: Paging<String>,
}

/// `get_list_webhook`: the caller's webhooks (an admin: every one), oldest first.
pub async fn get_list_webhook(ctx: Ctx, p: ListWebhookParams) -> Result<WebhookList, ApiError> {
    let order = &db::webhooks::WEBHOOK_ORDER;
    let ask = page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    let who = (!ctx.is_admin()).then_some(me(&ctx)?.user_id);
    let (webhooks, paging) = paged(db::webhooks::list(&*ctx.db().await?, who, &ask).await?);
    Ok(WebhookList { webhooks, paging })
}

/// The webhook, if the caller made it (or is an admin); else `not_found`.
async fn own_webhook(ctx: &Ctx, id: Uuid) -> Result<(), ApiError> {
    let caller = me(ctx)?.user_id;
    match db::webhooks::creator(&*ctx.db().await?, id).await? {
        Some(c) if c == caller || ctx.is_admin() => Ok(()),
        _ => Err(Reason::not_found.msg("no such webhook")),
    }
}

#[derive(Deserialize)]
pub struct DeleteWebhookParams {
    webhookid: Uuid,
}

#[derive(Serialize)]
pub struct DeletedWebhook {
    webhookid: Uuid,
}

/// `delete_webhook` {webhookid}: the webhook and its undelivered events.
pub async fn delete_webhook(ctx: Ctx, p: DeleteWebhookParams) -> Result<DeletedWebhook, ApiError> {
    own_webhook(&ctx, p.webhookid).await?;
    let tx = ctx.begin().await?;
    if !db::webhooks::delete(&*tx, p.webhookid).await? {
        return Err(Reason::not_found.msg("no such webhook"));
    }
    audit(&*tx, &ctx, &format!("webhook:{}", p.webhookid)).await?;
    tx.commit().await?;
    Ok(DeletedWebhook {
        webhookid: p.webhookid,
    })
}

#[derive(Deserialize)]
pub struct DeliveriesParams {
    webhookid: Uuid,
    #[serde(default)]
    limit: OptNum,
    #[serde(default)]
    offset: OptNum,
    /// Keyset paging: the `next` of the previous page (older deliveries).
    after: Option<String>,
}

#[derive(Serialize)]
pub struct DeliveryList {
    deliveries: Vec<Delivery>,
    #[serde(flatten)]
    paging: Paging<String>,
}

/// `get_webhook_deliveries` {webhookid, limit, offset, after}: newest first.
pub async fn get_webhook_deliveries(
    ctx: Ctx,
    p: DeliveriesParams,
) -> Result<DeliveryList, ApiError> {
    let order = &db::webhooks::DELIVERY_ORDER;
    let ask = page_after(p.limit, p.offset, order, "after", p.after.as_deref())?;
    own_webhook(&ctx, p.webhookid).await?;
    let listed = db::webhooks::deliveries(&*ctx.db().await?, p.webhookid, &ask).await?;
    let (deliveries, paging) = paged(listed);
    Ok(DeliveryList { deliveries, paging })
}
