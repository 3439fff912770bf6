//! Private keys sealed at rest with the operator's key (XChaCha20-Poly1305).
//!
//! Private keys sealed at rest: XChaCha20-Poly1305 with the operator's key, read from
//! `HOSTPLANE_SECRET_KEY_FILE` (32 bytes, e.g. `head -c 32 /dev/urandom > key`). A sealed value is
//! a random 24-byte nonce followed by the ciphertext; the name it belongs to is bound in as
//! associated data, so a sealed key copied to another row does not open.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// The operator's sealing key. Its `Debug` shows nothing of it.
pub struct SealKey(XChaCha20Poly1305);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey([redacted])")
    }
}

const NONCE: usize = 24;

impl SealKey {
    /// Reads the key file: exactly 32 bytes.
    pub fn from_file(path: &Path) -> Result<SealKey, String> {
        let bytes = std::fs::read(path).map_err(|e| {
            format!(
                "HOSTPLANE_SECRET_KEY_FILE {}: cannot read: {e}",
                path.display()
            )
        })?;
        Self::from_bytes(&bytes).map_err(|e| {
            format!(
                "HOSTPLANE_SECRET_KEY_FILE {}: {e} (make one with `head -c 32 /dev/urandom > key`)",
                path.display()
            )
        })
    }

    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<SealKey, String> {
        if bytes.len() != 32 {
            return Err(format!("holds {} bytes, not 32", bytes.len()));
        }
        XChaCha20Poly1305::new_from_slice(bytes)
            .map(SealKey)
            .map_err(|_| "not a key".to_string())
    }

    /// Seals `plain`, bound to `label` (e.g. the domain the key is for).
    pub fn seal(&self, label: &str, plain: &[u8]) -> Result<Vec<u8>, String> {
        let mut nonce = [0u8; NONCE];
        getrandom::getrandom(&mut nonce).map_err(|e| format!("no randomness: {e}"))?;
        let sealed = self
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| "cannot seal".to_string())?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Opens what [`seal`](Self::seal) made with the same label; an error when the key or label
    /// differ or the bytes were changed.
    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
        if sealed.len() < NONCE {
            return Err("the sealed value is too short".into());
        }
        let (nonce, body) = sealed.split_at(NONCE);
        self.0
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| format!("the sealed key of {label} does not open with this key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_key_and_label() {
        let key = SealKey::from_bytes(&[7; 32]).unwrap();
        let sealed = key
            .seal("a.example", b"-----BEGIN PRIVATE KEY-----")
            .unwrap();
        assert!(
            !sealed.windows(5).any(|w| w == b"BEGIN"),
            "sealed, not plain"
        );
        assert_eq!(
            key.open("a.example", &sealed).unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );
        assert!(key.open("b.example", &sealed).is_err());
        let other = SealKey::from_bytes(&[8; 32]).unwrap();
        assert!(other.open("a.example", &sealed).is_err());
        assert!(SealKey::from_bytes(&[1; 31]).is_err());
    }
}
