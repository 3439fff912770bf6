//! The audit log: one row per successful change, written in the change's own transaction.

use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use super::execute;
use crate::error::ApiError;

/// Param names whose values never reach the audit log.
const SECRET_KEYS: &[&str] = &[
    "password",
    "oldpassword",
    "newpassword",
    "uniqcode",
    "token",
    "cookie",
    "invite",
];

/// A copy of the params with every secret value replaced.
pub fn redact(params: &Value) -> Value {
    match params {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if SECRET_KEYS.contains(&k.as_str()) {
                        Value::String("[redacted]".into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// Who did it, for an audit row.
pub struct Actor<'a> {
    pub user_id: Option<Uuid>,
    pub login: Option<&'a str>,
}

/// Writes one audit row; call it inside the transaction of the change.
pub async fn record(
    c: &impl GenericClient,
    actor: &Actor<'_>,
    action: &str,
    object: &str,
    params: &Value,
) -> Result<(), ApiError> {
    let params = redact(params);
    execute(
        c,
        "INSERT INTO audit_log (actor, actor_login, action, object, params) VALUES ($1, $2, $3, $4, $5)",
        &[&actor.user_id, &actor.login, &action, &object, &params],
    )
    .await?;
    Ok(())
}
