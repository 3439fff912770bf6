//! Secrets: random values, and the SHA-256 form in which they are stored and compared.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// A new node token: a prefix that makes it recognisable in config files, and 256 random bits.
pub fn new_node_token() -> Result<String, ApiError> {
    Ok(format!("hpn_{}", random_secret(32)?))
}

/// SHA-256 of a secret, the form in which secrets are stored and looked up.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Constant-time equality of a secret with a stored hash.
pub fn secret_matches(secret: &str, stored_hash: &[u8]) -> bool {
    hash_secret(secret).ct_eq(stored_hash).into()
}

/// A random secret of `bytes` bytes as lowercase hex.
pub fn random_secret(bytes: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf).map_err(ApiError::internal)?;
    Ok(hex::encode(buf))
}
