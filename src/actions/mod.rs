//! The table of every action: its name, who may call it, and its handler.
//!
//! To add an action, add one line here and its handler in the group's file; protocol.md must then
//! document it (a test compares the two).

mod accounts;
mod checks;
mod dns;
mod hosting;
mod integrations;
pub(crate) mod mail;

// The table below names handlers by their file.
use accounts::{auth_policy, passwords, session, signup, stats, totp, users};
use dns::{records, zones};
use hosting::{agents, domains, nodes, sites};
use integrations::{changes, keys, webhooks};
use mail::{
    app_passwords, autoreply, dkim, dns as mail_dns, domains as mail_domains, mailboxes,
    routing as mail_routing,
};

use deadpool_postgres::GenericClient;

use crate::auth::Caller;
use crate::db::audit::{self, Actor};
use crate::error::ApiError;
use crate::registry::{action, batch, read, Access::*, ActionSpec, Ctx};

pub use keys::{KeyAsk, KeyRequest};

pub use keys::grantable;

/// The `api-key create` command: a key for the user `login`, stored hashed; returns the key.
pub async fn create_key_for(
    config: &crate::config::Config,
    login: &str,
    request: &KeyRequest,
) -> Result<(String, crate::db::keys::KeyInfo), String> {
    let pool = crate::db::create_pool(config)?;
    crate::db::migrate::run(&pool).await?;
    let mut client = pool.get().await.map_err(|e| e.to_string())?;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    let user = crate::db::users::credentials_by_login(&tx, &login.trim().to_lowercase())
        .await
        .map_err(|e| e.to_cli_text())?
        .ok_or_else(|| format!("no user {login:?}"))?;
    let (key, info) = keys::store_key(&tx, user.user_id, request)
        .await
        .map_err(|e| e.to_cli_text())?;
    let actor = Actor::command("api-key create");
    let params = serde_json::json!({"login": login, "name": info.name});
    audit::record(
        &tx,
        &actor,
        "create_api_key",
        &format!("api_key:{}", info.keyid),
        &params,
    )
    .await
    .map_err(|e| e.to_cli_text())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok((key, info))
}

/// Every action of the protocol.
pub fn all() -> Vec<ActionSpec> {
    vec![
        read("ping", Public, session::ping),
        action("authorization", Anyone, session::authorization)
            .secret(&["password", "uniqcode", "otp"])
            .sessions_only()
            .not_in_batch(),
        action("logout", User, session::logout)
            .for_mailboxes()
            .sessions_only(),
        read("whoami", User, session::whoami).for_mailboxes(),
        action("adduser", Anyone, signup::adduser)
            .secret(&["password", "invite"])
            .limit_anonymous()
            .not_in_batch()
            .returns_secret(&["uniqcode", "cookie"])
            .prepare(signup::prepare_adduser),
        action("add_invite", Admin, signup::add_invite).returns_secret(&["invite"]),
        action("change_password", User, passwords::change_password)
            .secret(&["oldpassword", "newpassword"])
            .for_mailboxes()
            .sessions_only(),
        action("restore_password", Anyone, passwords::restore_password)
            .limit_anonymous()
            .not_in_batch()
            .no_request_id(),
        action("reset_password", Anyone, passwords::reset_password)
            .secret(&["token", "newpassword"])
            .limit_anonymous()
            .not_in_batch()
            .no_request_id(),
        read("get_node_list", User, nodes::get_node_list),
        action("add_node", Admin, nodes::add_node).returns_secret(&["token"]),
        action("delete_node", Admin, nodes::delete_node),
        action("grant_node", Admin, nodes::grant_node),
        action("revoke_node", Admin, nodes::revoke_node),
        action("create_site", User, sites::create_site),
        read("get_list_site", UserOrNode, sites::get_list_site),
        action("delete_site", User, sites::delete_site),
        read("get_list_domain", UserOrNode, domains::get_list_domain),
        action("add_domain", User, domains::add_domain),
        action("delete_domain", User, domains::delete_domain),
        read("get_list_user", Admin, users::get_list_user),
        action("set_user", Admin, users::set_user),
        action("delete_user", Admin, users::delete_user),
        read("get_audit_log", Admin, users::get_audit_log),
        // Carries the node's private keys: a long poll is never stored nor replayed.
        action("node_sync", Node, agents::node_sync).long_poll(),
        action("node_report", Node, agents::node_report),
        read("get_node_status", UserOrNode, agents::get_node_status),
        action("rotate_node_token", Admin, agents::rotate_node_token).returns_secret(&["token"]),
        action("add_mail_domain", User, mail_domains::add_mail_domain),
        read(
            "get_list_mail_domain",
            User,
            mail_domains::get_list_mail_domain,
        ),
        action("set_mail_domain", User, mail_domains::set_mail_domain),
        action("delete_mail_domain", User, mail_domains::delete_mail_domain),
        action("add_mailbox", User, mailboxes::add_mailbox)
            .secret(&["password"])
            .prepare(mailboxes::prepare_add),
        read("get_list_mailbox", User, mailboxes::get_list_mailbox).for_mailboxes(),
        action("set_mailbox", User, mailboxes::set_mailbox)
            .secret(&["password"])
            .prepare(mailboxes::prepare_set),
        action("delete_mailbox", User, mailboxes::delete_mailbox),
        action("add_app_password", User, app_passwords::add_app_password)
            .returns_secret(&["password"])
            .prepare(app_passwords::prepare_add),
        read(
            "get_list_app_password",
            User,
            app_passwords::get_list_app_password,
        ),
        action(
            "delete_app_password",
            User,
            app_passwords::delete_app_password,
        ),
        action("set_autoreply", User, autoreply::set_autoreply),
        read("get_autoreply", User, autoreply::get_autoreply),
        action("delete_autoreply", User, autoreply::delete_autoreply),
        action("add_alias", User, mail_routing::add_alias),
        read("get_list_alias", User, mail_routing::get_list_alias),
        action("delete_alias", User, mail_routing::delete_alias),
        action("add_bcc", User, mail_routing::add_bcc),
        read("get_list_bcc", User, mail_routing::get_list_bcc),
        action("delete_bcc", User, mail_routing::delete_bcc),
        action("add_transport", User, mail_routing::add_transport),
        read("get_list_transport", User, mail_routing::get_list_transport),
        action("delete_transport", User, mail_routing::delete_transport),
        action("reset_transports", User, mail_routing::reset_transports),
        action("set_dkim", User, dkim::set_dkim)
            .secret(&["private_key"])
            .prepare(dkim::prepare_key),
        action("activate_dkim", User, dkim::activate_dkim),
        read("get_dkim", User, dkim::get_dkim),
        read("get_mail_dns", User, mail_dns::get_mail_dns),
        action("create_api_key", User, keys::create_api_key).returns_secret(&["key"]),
        read("get_list_api_key", User, keys::get_list_api_key),
        action("revoke_api_key", User, keys::revoke_api_key),
        batch("batch", User),
        action("add_webhook", User, webhooks::add_webhook)
            .secret(&["secret"])
            .returns_secret(&["secret"])
            .prepare(webhooks::prepare_url),
        read("get_list_webhook", User, webhooks::get_list_webhook),
        action("delete_webhook", User, webhooks::delete_webhook),
        read(
            "get_webhook_deliveries",
            User,
            webhooks::get_webhook_deliveries,
        ),
        read("get_changes", User, changes::get_changes).long_poll(),
        action("review_domain", Admin, domains::review_domain),
        action("resubmit_domain", User, domains::resubmit_domain),
        action("add_zone", User, zones::add_zone),
        read("get_list_zone", User, zones::get_list_zone),
        action("delete_zone", User, zones::delete_zone),
        action("add_record", User, records::add_record),
        read("get_list_record", User, records::get_list_record),
        action("set_record", User, records::set_record),
        action("delete_record", User, records::delete_record),
        action("set_node", Admin, nodes::set_node),
        read("get_stats", Admin, stats::get_stats),
        read("get_user_stats", User, stats::get_user_stats),
        // Two-factor sign-in: enrolment takes the password, so it also serves an admin who must
        // enrol before signing in (no session); no API key ever changes it.
        action("enable_totp", Anyone, totp::enable_totp)
            .secret(&["password"])
            .sessions_only(),
        action("confirm_totp", Anyone, totp::confirm_totp)
            .secret(&["otp"])
            .sessions_only(),
        action("disable_totp", User, totp::disable_totp)
            .secret(&["password", "otp"])
            .sessions_only(),
        read("get_totp", User, totp::get_totp),
        read("get_auth_policy", Admin, auth_policy::get_auth_policy),
        action("set_auth_policy", Admin, auth_policy::set_auth_policy).sessions_only(),
    ]
}

/// Writes the audit row of this request's change; call inside the change's transaction.
async fn audit(c: &impl GenericClient, ctx: &Ctx, object: &str) -> Result<(), ApiError> {
    let node_label;
    let (user_id, login, api_key) = match &ctx.caller {
        Caller::Node(agent) => {
            node_label = format!("node:{}", agent.node_id);
            (None, Some(node_label.as_str()), None)
        }
        Caller::User(u) => (
            Some(u.user_id),
            Some(u.login.as_str()),
            u.key.as_ref().map(|k| k.key_id),
        ),
        Caller::Anonymous => (None, None, None),
    };
    let actor = Actor {
        user_id,
        login,
        api_key,
        unit: ctx.unit_id(),
    };
    audit::record(c, &actor, ctx.action, object, &ctx.audit_params()).await
}

/// Records a change for the change feed and webhooks; call inside the change's transaction.
async fn tell(
    c: &impl GenericClient,
    event: &'static str,
    user_id: Option<uuid::Uuid>,
    node_id: Option<i32>,
    data: serde_json::Value,
) -> Result<(), ApiError> {
    crate::db::changes::record(
        c,
        &crate::db::changes::Change {
            event,
            user_id,
            node_id,
            data: &data,
        },
    )
    .await
}

/// The `create-admin` command: creates an admin, or resets an account's password and makes it admin.
pub async fn create_admin(
    config: &crate::config::Config,
    login: &str,
    password: String,
) -> Result<uuid::Uuid, String> {
    let login = crate::validate::login(login)?;
    crate::validate::password(&password)?;
    let pool = crate::db::create_pool(config)?;
    crate::db::migrate::run(&pool).await?;
    let hasher = crate::auth::PasswordHasher::new(config.bcrypt_cost, 1, 1);
    let hash = hasher
        .hash(crate::auth::workers::Lane::SERVICE, password)
        .await
        .map_err(|e| e.to_string())?;
    let uniqcode = crate::auth::random_secret(16).map_err(|e| e.to_string())?;
    let mut client = pool.get().await.map_err(|e| e.to_string())?;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    let id =
        crate::db::users::upsert_admin(&tx, &login, &hash, &crate::auth::hash_secret(&uniqcode))
            .await
            .map_err(|e| e.to_string())?;
    let actor = Actor::command("create-admin");
    audit::record(
        &tx,
        &actor,
        "create_admin",
        &format!("user:{id}"),
        &serde_json::json!({"login": login}),
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A param that looks secret must be declared secret, or the audit log would keep it.
    #[test]
    fn every_secret_looking_param_is_declared_secret() {
        let looks_secret = [
            "password", "token", "uniqcode", "invite", "secret", "cookie", "key",
        ];
        // Names that only look secret: the id of an API key is what its list shows.
        let known_public = ["keyid"];
        for spec in all() {
            for field in spec.fields {
                if looks_secret.iter().any(|w| field.contains(w)) && !known_public.contains(field) {
                    assert!(
                        spec.secrets.contains(field),
                        "{}: param {field} is not declared secret",
                        spec.name
                    );
                }
            }
        }
    }

    #[test]
    fn params_declare_their_fields() {
        let specs = all();
        let add_domain = specs.iter().find(|s| s.name == "add_domain").unwrap();
        assert_eq!(
            add_domain.fields,
            ["nodeid", "siteid", "domain", "https", "wildcard"]
        );
        let logout = specs.iter().find(|s| s.name == "logout").unwrap();
        assert_eq!(logout.fields, ["login"]);
    }
}
