//! Time-based one-time passwords (RFC 6238), recovery codes and the QR code of the URI.
//!
//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP with HMAC-SHA-1, 6 digits, 30 s
//! steps, what every authenticator app reads from an `otpauth://` URI), the recovery codes that
//! stand in for a lost authenticator, and the QR code of the URI as a module matrix.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Seconds per time step.
pub const PERIOD: u64 = 30;
/// Digits of a code.
pub const DIGITS: u32 = 6;
/// Bytes of a new secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// Recovery codes made at each enrolment.
pub const RECOVERY_CODES: usize = 10;
/// Steps accepted either side of the current one (clock drift, a code typed as it changed).
const SKEW: i64 = 1;

/// Wrong codes (and recovery codes) one account may be sent per [`CODE_WINDOW`], from all
/// addresses together, on top of the login limits: a second factor of a million codes must not
/// be guessable by whoever has the password and many addresses.
pub const CODE_ATTEMPTS: i32 = 10;
pub const CODE_WINDOW: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The issuer and label prefix of the `otpauth://` URI.
const ISSUER: &str = "hostplane";

/// A new random secret.
pub fn new_secret() -> Result<Vec<u8>, ApiError> {
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::getrandom(&mut secret).map_err(ApiError::internal)?;
    Ok(secret)
}

/// The secret as authenticator apps take it typed in: base32 without padding.
pub fn secret_base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI an authenticator app reads from the QR code.
pub fn uri(login: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{ISSUER}:{login}?secret={}&issuer={ISSUER}&digits={DIGITS}&period={PERIOD}",
        secret_base32(secret)
    )
}

/// HOTP (RFC 4226): the code of counter value `counter`.
pub fn hotp(secret: &[u8], counter: u64) -> u32 {
    // HMAC takes keys of any length: this cannot fail.
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(secret) else {
        return u32::MAX;
    };
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    binary % 10u32.pow(DIGITS)
}

/// The time step of a Unix time.
pub fn step_at(unix_secs: u64) -> i64 {
    (unix_secs / PERIOD) as i64
}

/// The time step now.
pub fn current_step() -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    step_at(now)
}

/// True when `otp` has the form of a code (six digits, spaces allowed as apps show them).
pub fn looks_like_code(otp: &str) -> bool {
    let digits: String = otp.chars().filter(|c| !c.is_whitespace()).collect();
    digits.len() == DIGITS as usize && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The step whose code `otp` is, among the steps around `now_step` later than `last_step` (a
/// code of a step already used is refused: a replay). Every candidate is compared, in constant
/// time, so the time taken says nothing of which step matched.
pub fn matching_step(
    secret: &[u8],
    otp: &str,
    now_step: i64,
    last_step: Option<i64>,
) -> Option<i64> {
    if !looks_like_code(otp) {
        return None;
    }
    let given: String = otp.chars().filter(|c| !c.is_whitespace()).collect();
    let mut found = None;
    for step in now_step - SKEW..=now_step + SKEW {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let code = format!("{:0width$}", hotp(secret, counter), width = DIGITS as usize);
        let same: bool = code.as_bytes().ct_eq(given.as_bytes()).into();
        let fresh = last_step.is_none_or(|last| step > last);
        if same && fresh && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// New recovery codes: 16 random hex digits each, shown in four groups (`1a2b-3c4d-5e6f-7a8b`).
pub fn new_recovery_codes() -> Result<Vec<String>, ApiError> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let hex = super::random_secret(8)?;
            Ok(hex
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join("-"))
        })
        .collect()
}

/// The form in which a recovery code is hashed: lowercase, without dashes or spaces, so it may be
/// typed either way.
pub fn normalise_recovery_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The QR code of `text` as rows of modules (`true`: dark), without the quiet zone around it.
pub fn qr_matrix(text: &str) -> Result<Vec<Vec<bool>>, ApiError> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)
        .map_err(ApiError::internal)?;
    let width = code.width();
    let colors = code.to_colors();
    Ok(colors
        .chunks(width)
        .map(|row| row.iter().map(|c| *c == qrcode::Color::Dark).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 column (8 digits there; the last 6 are ours).
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, code8) in [
            (59u64, 94287082u32),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            let step = step_at(time) as u64;
            assert_eq!(hotp(secret, step), code8 % 1_000_000, "T = {time}");
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_never_for_a_used_step() {
        let secret = b"12345678901234567890";
        let now = step_at(1234567890);
        let code = |step: i64| format!("{:06}", hotp(secret, step as u64));
        assert_eq!(matching_step(secret, &code(now), now, None), Some(now));
        assert_eq!(
            matching_step(secret, &code(now - 1), now, None),
            Some(now - 1)
        );
        assert_eq!(
            matching_step(secret, &code(now + 1), now, None),
            Some(now + 1)
        );
        assert_eq!(matching_step(secret, &code(now - 2), now, None), None);
        assert_eq!(matching_step(secret, &code(now + 2), now, None), None);
        assert_eq!(matching_step(secret, &code(now), now, Some(now)), None);
        assert_eq!(
            matching_step(secret, &code(now), now, Some(now - 1)),
            Some(now)
        );
        assert_eq!(matching_step(secret, "12345", now, None), None);
        assert_eq!(matching_step(secret, "abcdef", now, None), None);
    }

    #[test]
    fn the_uri_names_the_issuer_and_the_login() {
        let uri = uri("alice", b"12345678901234567890");
        assert_eq!(
            uri,
            "otpauth://totp/hostplane:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=hostplane&digits=6&period=30"
        );
        let m = qr_matrix(&uri).unwrap();
        assert!(m.len() >= 21 && m.iter().all(|r| r.len() == m.len()));
    }

    #[test]
    fn recovery_codes_are_random_and_typed_either_way() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(codes[0].len(), 19);
        assert_ne!(codes[0], codes[1]);
        assert_eq!(
            normalise_recovery_code(" 1A2B-3c4d 5e6f-7a8b "),
            "1a2b3c4d5e6f7a8b"
        );
    }
}
