//! DKIM: `set_dkim`, `activate_dkim` and `get_dkim`, with staged key rotation.
//!
//! DKIM: `set_dkim` (a key made here or given), `activate_dkim` and `get_dkim`, each answering
//! the DNS records to publish. Rotation is staged (db/dkim.rs): a new key is published first and
//! signs once activated or after HOSTPLANE_DKIM_ACTIVATE_AFTER_SECS; the key it replaces keeps
//! its record 7 days. The private key reaches OpenDKIM through a view; the API never answers it.

use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

use crate::actions::audit;
use crate::actions::mail::domains::{domain_param, own_mail_domain};
use crate::db::{self, dkim::DkimView};
use crate::error::{ApiError, Reason};
use crate::registry::Ctx;

/// The size of a key made here.
const KEY_BITS: usize = 2048;
/// The largest key text accepted.
const MAX_KEY_TEXT: usize = 16 * 1024;

/// A selector: 1-63 of a-z, 0-9 and '-', a DNS label.
fn selector(raw: &str) -> Result<String, ApiError> {
    let s = raw.trim().to_ascii_lowercase();
    let ok = (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(s)
    } else {
        Err(Reason::bad_params.msg("param `selector`: a DNS label of a-z, 0-9 and '-'"))
    }
}

/// A private key given as PEM (PKCS#8 or PKCS#1), 1024 to 4096 bits.
fn given_key(pem: &str) -> Result<RsaPrivateKey, ApiError> {
    let bad = |m: &str| Reason::bad_params.msg(format!("param `private_key`: {m}"));
    if pem.len() > MAX_KEY_TEXT {
        return Err(bad("too long"));
    }
    let key = RsaPrivateKey::from_pkcs8_pem(pem.trim())
        .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem.trim()))
        .map_err(|_| bad("an RSA private key in PEM (PKCS#8 or PKCS#1)"))?;
    let bits = key.size() * 8;
    if !(1024..=4096).contains(&bits) {
        return Err(bad("1024 to 4096 bits"));
    }
    Ok(key)
}

/// One key: its public half, what to publish and where it stands in the rotation.
#[derive(Clone, Serialize)]
pub struct DkimRecord {
    domain: String,
    selector: String,
    /// The DNS name of the TXT record.
    name: String,
    /// Its value.
    record: String,
    /// SHA-512 of the public key's DER, hex.
    fingerprint: String,
    /// `published` (not signing yet), `active` (signing) or `retiring` (replaced).
    state: String,
    created_at: String,
    active_since: Option<String>,
    activates_at: Option<String>,
    retiring_since: Option<String>,
    dropped_at: Option<String>,
}

fn record(view: DkimView) -> Result<DkimRecord, ApiError> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(&view.public_key)
        .map_err(ApiError::internal)?;
    Ok(DkimRecord {
        name: format!("{}._domainkey.{}", view.selector, view.domain),
        record: format!("v=DKIM1; k=rsa; p={}", view.public_key),
        fingerprint: hex::encode(Sha512::digest(&der)),
        domain: view.domain,
        selector: view.selector,
        state: view.state,
        created_at: view.created_at,
        active_since: view.active_since,
        activates_at: view.activates_at,
        retiring_since: view.retiring_since,
        dropped_at: view.dropped_at,
    })
}

/// The key just written or activated.
async fn written(
    c: &impl deadpool_postgres::GenericClient,
    domain: &str,
    selector: &str,
) -> Result<DkimRecord, ApiError> {
    let view = db::dkim::key(c, domain, selector)
        .await?
        .ok_or_else(|| ApiError::internal("the DKIM key just written is gone"))?;
    record(view)
}

#[derive(Deserialize)]
pub struct SetDkimParams {
    domain: String,
    selector: String,
    private_key: Option<String>,
}

/// A key pair ready to store, base64 DER: made before any transaction opens.
pub struct DkimKeys {
    private_key: String,
    public_key: String,
}

/// `set_dkim`'s slow part: checks the params and that the domain is the caller's, then makes the
/// key (RSA-2048, on the key-generation workers behind their bounded queue) unless one is given.
pub async fn prepare_key(ctx: Ctx, p: SetDkimParams) -> Result<DkimKeys, ApiError> {
    let domain = domain_param(&p.domain)?;
    selector(&p.selector)?;
    let given = p.private_key.as_deref().map(given_key).transpose()?;
    own_mail_domain(&*ctx.db().await?, &ctx, &domain, false).await?;
    let key = match given {
        Some(k) => k,
        None => ctx
            .state
            .keygen
            .run_in(ctx.lane(), || {
                RsaPrivateKey::new(&mut rand_core::OsRng, KEY_BITS)
            })
            .await?
            .map_err(ApiError::internal)?,
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let private_der = key.to_pkcs8_der().map_err(ApiError::internal)?;
    let public_der = key
        .to_public_key()
        .to_public_key_der()
        .map_err(ApiError::internal)?;
    Ok(DkimKeys {
        private_key: b64.encode(private_der.as_bytes()),
        public_key: b64.encode(public_der.as_bytes()),
    })
}

/// `set_dkim`: a key under a new selector, made here (RSA-2048) unless one is given. A domain's
/// first key signs at once; a later one is published and signs when activated or after the
/// configured delay.
pub async fn set_dkim(ctx: Ctx, p: SetDkimParams) -> Result<DkimRecord, ApiError> {
    let domain = domain_param(&p.domain)?;
    let selector = selector(&p.selector)?;
    let keys: &DkimKeys = ctx.prepared()?;
    let tx = ctx.begin().await?;
    own_mail_domain(&*tx, &ctx, &domain, true).await?;
    db::dkim::add(
        &*tx,
        &domain,
        &selector,
        &keys.private_key,
        &keys.public_key,
        ctx.state.config.dkim_activate_after.as_secs_f64(),
    )
    .await?;
    audit(&*tx, &ctx, &format!("dkim:{domain}")).await?;
    let answer = written(&*tx, &domain, &selector).await?;
    tx.commit().await?;
    Ok(answer)
}

#[derive(Deserialize)]
pub struct ActivateDkimParams {
    domain: String,
    selector: String,
}

/// `activate_dkim`: a published key signs from now on; the one it replaces starts retiring.
pub async fn activate_dkim(ctx: Ctx, p: ActivateDkimParams) -> Result<DkimRecord, ApiError> {
    let domain = domain_param(&p.domain)?;
    let selector = selector(&p.selector)?;
    let tx = ctx.begin().await?;
    own_mail_domain(&*tx, &ctx, &domain, true).await?;
    db::dkim::activate(&*tx, &domain, &selector).await?;
    audit(&*tx, &ctx, &format!("dkim:{domain}")).await?;
    let answer = written(&*tx, &domain, &selector).await?;
    tx.commit().await?;
    Ok(answer)
}

#[derive(Deserialize)]
pub struct GetDkimParams {
    domain: String,
}

/// `get_dkim`'s answer: the signing key's record at the top (as before rotation existed) and
/// every key kept, oldest first.
#[derive(Serialize)]
pub struct DkimAnswer {
    #[serde(flatten)]
    active: DkimRecord,
    keys: Vec<DkimRecord>,
}

/// `get_dkim`: the records to publish, with each key's state and dates.
pub async fn get_dkim(ctx: Ctx, p: GetDkimParams) -> Result<DkimAnswer, ApiError> {
    let domain = domain_param(&p.domain)?;
    let client = ctx.db().await?;
    own_mail_domain(&*client, &ctx, &domain, false).await?;
    let views = db::dkim::keys(&*client, &domain).await?;
    let keys = views
        .into_iter()
        .map(record)
        .collect::<Result<Vec<_>, _>>()?;
    let top = keys
        .iter()
        .find(|k| k.state == "active")
        .or(keys.last())
        .cloned()
        .ok_or_else(|| Reason::not_found.msg(format!("{domain} has no DKIM key")))?;
    Ok(DkimAnswer { active: top, keys })
}
