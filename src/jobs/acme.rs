//! One ACME order for one name set with instant-acme, with no transaction open.
//!
//! One ACME order for one name set with instant-acme: the account (kept, sealed, in PostgreSQL),
//! the HTTP-01 tokens handed to the domain's node or the DNS-01 values put in its zone, the key
//! and CSR made with rcgen, and the chain. Only network work happens here; the caller records
//! the outcome in a short transaction, and no transaction is open while the CA is asked.

use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};

use crate::db::certificates::Leased;
use crate::state::AppState;

/// An issued certificate: the chain, its key (PEM), and its validity (unix seconds).
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// The ACME account of the configured directory: the stored one, or a new one stored for every
/// instance to share.
pub async fn account(state: &AppState) -> Result<Account, String> {
    let config = &state.config;
    let key = state
        .seal_key
        .as_ref()
        .ok_or("no HOSTPLANE_SECRET_KEY_FILE")?;
    let label = format!("acme-account {}", config.acme_directory);
    let builder = || match &config.acme_ca_file {
        Some(ca) => Account::builder_with_root(ca)
            .map_err(|e| format!("HOSTPLANE_ACME_CA_FILE {}: {e}", ca.display())),
        None => Account::builder().map_err(|e| e.to_string()),
    };
    let stored = {
        let client = state.db().await.map_err(|e| e.to_string())?;
        crate::db::certificates::account(&client, &config.acme_directory)
            .await
            .map_err(|e| e.to_string())?
    };
    if let Some(sealed) = stored {
        let json = key.open(&label, &sealed)?;
        let credentials: AccountCredentials =
            serde_json::from_slice(&json).map_err(|e| format!("stored ACME account: {e}"))?;
        return builder()?
            .from_credentials(credentials)
            .await
            .map_err(|e| format!("ACME account: {e}"));
    }
    let contact = config.acme_email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            config.acme_directory.clone(),
            None,
        )
        .await
        .map_err(|e| {
            format!(
                "cannot create an ACME account at {}: {e}",
                config.acme_directory
            )
        })?;
    let json = serde_json::to_vec(&credentials).map_err(|e| e.to_string())?;
    let sealed = key.seal(&label, &json)?;
    let client = state.db().await.map_err(|e| e.to_string())?;
    let kept = crate::db::certificates::keep_account(&client, &config.acme_directory, &sealed)
        .await
        .map_err(|e| e.to_string())?;
    if kept == sealed {
        return Ok(account);
    }
    // Another instance stored its account first: use that one.
    let json = key.open(&label, &kept)?;
    let credentials: AccountCredentials =
        serde_json::from_slice(&json).map_err(|e| format!("stored ACME account: {e}"))?;
    builder()?
        .from_credentials(credentials)
        .await
        .map_err(|e| format!("ACME account: {e}"))
}

/// Orders a certificate for the leased name: over HTTP-01 (the tokens go to its node, and the
/// order waits until the node applied them), or over DNS-01 (TXT records in its zone here,
/// which PowerDNS answers at once) for a wildcard domain or a mail node's name in an admin's zone; then lets the CA check, and finalizes. The
/// error is in words.
pub async fn order(state: &AppState, account: &Account, job: &Leased) -> Result<Issued, String> {
    let mut names = vec![job.domain.clone()];
    if job.wildcard {
        names.push(format!("*.{}", job.domain));
    }
    let kind = if job.dns01 {
        ChallengeType::Dns01
    } else {
        ChallengeType::Http01
    };
    let identifiers: Vec<Identifier> = names.iter().cloned().map(Identifier::Dns).collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .map_err(|e| format!("new order: {e}"))?;
    // First the answers of the authorizations still pending: (token, key authorization) for
    // HTTP-01, the digest for DNS-01.
    let mut answers = Vec::new();
    let mut auths = order.authorizations();
    while let Some(authz) = auths.next().await {
        let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        let challenge = authz
            .challenge(kind.clone())
            .ok_or_else(|| format!("the CA offers no {} challenge", challenge_name(&kind)))?;
        let key_authorization = challenge.key_authorization();
        answers.push(match kind {
            ChallengeType::Dns01 => (String::new(), key_authorization.dns_value()),
            _ => (
                challenge.token.clone(),
                key_authorization.as_str().to_string(),
            ),
        });
    }
    if !answers.is_empty() {
        if job.dns01 {
            let values: Vec<String> = answers.into_iter().map(|(_, v)| v).collect();
            publish_dns(state, job, &values).await?;
        } else {
            publish_and_wait(state, job, &answers).await?;
        }
        let mut auths = order.authorizations();
        while let Some(authz) = auths.next().await {
            let mut authz = authz.map_err(|e| format!("authorization: {e}"))?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            if let Some(mut challenge) = authz.challenge(kind.clone()) {
                challenge
                    .set_ready()
                    .await
                    .map_err(|e| format!("challenge: {e}"))?;
            }
        }
    }
    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .timeout(Duration::from_secs(90));
    let status = order
        .poll_ready(&retries)
        .await
        .map_err(|e| format!("order: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(why_invalid(&mut order).await);
    }
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(|e| e.to_string())?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(|e| format!("finalize: {e}"))?;
    let chain_pem = order
        .poll_certificate(&retries)
        .await
        .map_err(|e| format!("certificate: {e}"))?;
    let (not_before, not_after) = validity(&chain_pem)?;
    Ok(Issued {
        chain_pem,
        key_pem: key.serialize_pem(),
        not_before,
        not_after,
    })
}

fn challenge_name(kind: &ChallengeType) -> &'static str {
    match kind {
        ChallengeType::Dns01 => "dns-01",
        _ => "http-01",
    }
}

/// Publishes the DNS-01 values in the zone hosted here that the domain lies in (its owner's).
/// PowerDNS reads the zone live, so the CA may look at once.
async fn publish_dns(state: &AppState, job: &Leased, values: &[String]) -> Result<(), String> {
    let mut client = state.db().await.map_err(|e| e.to_string())?;
    let tx = client.transaction().await.map_err(|e| e.to_string())?;
    let zone = crate::db::certificates::add_dns_challenges(&tx, &job.domain, job.user_id, values)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    match (zone, job.user_id) {
        (Some(_), _) => Ok(()),
        (None, Some(_)) => Err(format!(
            "a wildcard certificate needs the zone of {} hosted here by its owner (add_zone)",
            job.domain
        )),
        (None, None) => Err(format!(
            "no admin's zone here holds {} any more (add_zone)",
            job.domain
        )),
    }
}

/// Hands the tokens to the domain's node and waits (at most a minute) until it applied them.
async fn publish_and_wait(
    state: &AppState,
    job: &Leased,
    tokens: &[(String, String)],
) -> Result<(), String> {
    let revision = {
        let mut client = state.db().await.map_err(|e| e.to_string())?;
        let tx = client.transaction().await.map_err(|e| e.to_string())?;
        let r = crate::db::certificates::add_challenges(&tx, &job.domain, job.node_id, tokens)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        r
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (applied, failed) = {
            let client = state.db().await.map_err(|e| e.to_string())?;
            crate::db::certificates::node_progress(&client, job.node_id)
                .await
                .map_err(|e| e.to_string())?
        };
        if applied >= revision {
            return Ok(());
        }
        // The node refused this revision (or a later one): no use asking the CA to look.
        if let Some((_, error)) = failed.filter(|(r, _)| *r >= revision) {
            return Err(format!(
                "node {} could not apply the challenge: {error}",
                job.node_id
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "node {} did not apply the challenge (revision {revision}) within a minute",
                job.node_id
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Why an order did not become ready, from its authorizations' challenge errors.
async fn why_invalid(order: &mut instant_acme::Order) -> String {
    let mut reasons = Vec::new();
    let mut auths = order.authorizations();
    while let Some(Ok(authz)) = auths.next().await {
        for c in &authz.challenges {
            if let Some(e) = &c.error {
                reasons.push(format!("{}: {}", authz.identifier(), e));
            }
        }
    }
    if reasons.is_empty() {
        "the CA did not validate the order".into()
    } else {
        reasons.join("; ")
    }
}

/// The first certificate's validity, in unix seconds.
fn validity(chain_pem: &str) -> Result<(i64, i64), String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes())
        .map_err(|e| format!("the CA's certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| format!("the CA's certificate: {e}"))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}
