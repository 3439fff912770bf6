//! Opening a session: a new cookie whose hash is stored (`http::caller` resolves it again).

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::hash_secret;
use crate::db;
use crate::error::ApiError;

/// Opens a session for a user; returns the cookie value (a UUID v4).
pub async fn open_session(client: &impl GenericClient, user_id: Uuid) -> Result<String, ApiError> {
    let cookie = Uuid::new_v4().to_string();
    db::sessions::insert(client, &hash_secret(&cookie), user_id).await?;
    Ok(cookie)
}
