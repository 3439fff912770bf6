//! The table of every action: its name, who may call it, and its handler. To add an action, add
//! one line here and its handler in the group's file; protocol.md must then document it (a test
//! compares the two).

mod accounts;
mod agents;
mod checks;
mod dkim;
mod domains;
mod mail_domains;
mod mail_routing;
pub(crate) mod mailboxes;
mod nodes;
mod passwords;
mod session;
mod sites;
mod users;

use deadpool_postgres::GenericClient;

use crate::auth::Caller;
use crate::db::audit::{self, Actor};
use crate::error::ApiError;
use crate::registry::{action, Access::*, ActionSpec, Ctx};

/// Every action of the protocol.
pub fn all() -> Vec<ActionSpec> {
    vec![
        action("ping", Public, session::ping),
        action("authorization", Anyone, session::authorization).secret(&["password", "uniqcode"]),
        action("logout", User, session::logout).for_mailboxes(),
        action("whoami", User, session::whoami).for_mailboxes(),
        action("adduser", Anyone, accounts::adduser)
            .secret(&["password", "invite"])
            .limit_anonymous(),
        action("add_invite", Admin, accounts::add_invite),
        action("change_password", User, passwords::change_password)
            .secret(&["oldpassword", "newpassword"])
            .for_mailboxes(),
        action("restore_password", Anyone, passwords::restore_password).limit_anonymous(),
        action("reset_password", Anyone, passwords::reset_password)
            .secret(&["token", "newpassword"])
            .limit_anonymous(),
        action("get_node_list", User, nodes::get_node_list),
        action("add_node", Admin, nodes::add_node),
        action("delete_node", Admin, nodes::delete_node),
        action("grant_node", Admin, nodes::grant_node),
        action("revoke_node", Admin, nodes::revoke_node),
        action("create_site", User, sites::create_site),
        action("get_list_site", UserOrNode, sites::get_list_site),
        action("delete_site", User, sites::delete_site),
        action("get_list_domain", UserOrNode, domains::get_list_domain),
        action("add_domain", User, domains::add_domain),
        action("delete_domain", User, domains::delete_domain),
        action("get_list_user", Admin, users::get_list_user),
        action("set_user", Admin, users::set_user),
        action("delete_user", Admin, users::delete_user),
        action("get_audit_log", Admin, users::get_audit_log),
        action("node_sync", Node, agents::node_sync),
        action("node_report", Node, agents::node_report),
        action("get_node_status", UserOrNode, agents::get_node_status),
        action("rotate_node_token", Admin, agents::rotate_node_token),
        action("add_mail_domain", User, mail_domains::add_mail_domain),
        action(
            "get_list_mail_domain",
            User,
            mail_domains::get_list_mail_domain,
        ),
        action("set_mail_domain", User, mail_domains::set_mail_domain),
        action("delete_mail_domain", User, mail_domains::delete_mail_domain),
        action("add_mailbox", User, mailboxes::add_mailbox).secret(&["password"]),
        action("get_list_mailbox", User, mailboxes::get_list_mailbox).for_mailboxes(),
        action("set_mailbox", User, mailboxes::set_mailbox).secret(&["password"]),
        action("delete_mailbox", User, mailboxes::delete_mailbox),
        action("add_alias", User, mail_routing::add_alias),
        action("get_list_alias", User, mail_routing::get_list_alias),
        action("delete_alias", User, mail_routing::delete_alias),
        action("add_bcc", User, mail_routing::add_bcc),
        action("get_list_bcc", User, mail_routing::get_list_bcc),
        action("delete_bcc", User, mail_routing::delete_bcc),
        action("add_transport", User, mail_routing::add_transport),
        action("get_list_transport", User, mail_routing::get_list_transport),
        action("delete_transport", User, mail_routing::delete_transport),
        action("reset_transports", User, mail_routing::reset_transports),
        action("set_dkim", User, dkim::set_dkim).secret(&["private_key"]),
        action("get_dkim", User, dkim::get_dkim),
    ]
}

/// Writes the audit row of this request's change; call inside the change's transaction.
async fn audit(c: &impl GenericClient, ctx: &Ctx, object: &str) -> Result<(), ApiError> {
    let node_label;
    let actor = match &ctx.caller {
        Caller::Node(agent) => {
            node_label = format!("node:{}", agent.node_id);
            Actor {
                user_id: None,
                login: Some(&node_label),
            }
        }
        Caller::User(u) => Actor {
            user_id: Some(u.user_id),
            login: Some(&u.login),
        },
        Caller::Anonymous => Actor {
            user_id: None,
            login: None,
        },
    };
    audit::record(c, &actor, ctx.action, object, &ctx.audit_params()).await
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
    let hash = hasher.hash(password).await.map_err(|e| e.to_string())?;
    let uniqcode = crate::auth::random_secret(16).map_err(|e| e.to_string())?;
    let mut client = pool.get().await.map_err(|e| e.to_string())?;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    let id =
        crate::db::users::upsert_admin(&tx, &login, &hash, &crate::auth::hash_secret(&uniqcode))
            .await
            .map_err(|e| e.to_string())?;
    let actor = Actor {
        user_id: None,
        login: Some("create-admin"),
    };
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
        for spec in all() {
            for field in spec.fields {
                if looks_secret.iter().any(|w| field.contains(w)) {
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
        assert_eq!(add_domain.fields, ["nodeid", "siteid", "domain"]);
        let logout = specs.iter().find(|s| s.name == "logout").unwrap();
        assert_eq!(logout.fields, ["login"]);
    }
}
