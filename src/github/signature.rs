//! Webhook signature verification (`X-Hub-Signature-256`).
//!
//! GitHub signs the raw request body with HMAC-SHA256 keyed by the webhook secret and sends
//! `sha256=<lowercase hex>`. Several secrets may be configured at once so a secret can be
//! rotated without dropping deliveries.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// A webhook secret. `Debug` never prints the value so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl WebhookSecret {
    /// Wraps a secret value; empty secrets are rejected by configuration, not here.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw secret, for signing (tests, load generators).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Why a signature header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 does not start with `sha256=`")]
    BadPrefix,
    #[error("X-Hub-Signature-256 is not 64 hex digits (at byte {offset})")]
    BadHex { offset: usize },
    #[error("X-Hub-Signature-256 does not match any configured secret")]
    Mismatch,
}

/// Returns the `X-Hub-Signature-256` header value for `body` under `secret`.
pub fn sign(secret: &WebhookSecret, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac_of(secret, body)))
}

fn mac_of(secret: &WebhookSecret, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret.0.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    };
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// Parses `sha256=<64 hex>` into the 32 digest bytes.
pub fn parse_header(header: &str) -> Result<[u8; 32], SignatureError> {
    let hex_part = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::BadPrefix)?;
    let bytes = hex_part.as_bytes();
    if bytes.len() != 64 {
        return Err(SignatureError::BadHex {
            offset: 7 + bytes.len().min(64),
        });
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hi = hex_val(pair[0]).ok_or(SignatureError::BadHex { offset: 7 + 2 * i })?;
        let lo = hex_val(pair[1]).ok_or(SignatureError::BadHex { offset: 8 + 2 * i })?;
        out[i] = (hi << 4) | lo;
    }
    Ok(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Verifies `header` against every secret in constant time per secret; returns the index of the
/// secret that matched (useful to tell when an old secret is still in use).
pub fn verify(
    secrets: &[WebhookSecret],
    header: Option<&str>,
    body: &[u8],
) -> Result<usize, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let claimed = parse_header(header.trim())?;
    let mut matched: Option<usize> = None;
    // Check every secret (no early exit) so timing does not reveal which one matched.
    for (i, secret) in secrets.iter().enumerate() {
        let expected = mac_of(secret, body);
        if bool::from(expected.ct_eq(&claimed)) && matched.is_none() {
            matched = Some(i);
        }
    }
    matched.ok_or(SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SPEC_SECRET: &str = "It's a Secret to Everybody";
    const SPEC_DIGEST: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn spec_test_vector() {
        let secret = WebhookSecret::new(SPEC_SECRET);
        assert_eq!(
            sign(&secret, b"Hello, World!"),
            format!("sha256={SPEC_DIGEST}")
        );
        let header = format!("sha256={SPEC_DIGEST}");
        assert_eq!(verify(&[secret], Some(&header), b"Hello, World!"), Ok(0));
    }

    #[test]
    fn rotation_accepts_any_configured_secret() {
        let old = WebhookSecret::new("old");
        let new = WebhookSecret::new("new");
        let header = sign(&old, b"body");
        assert_eq!(verify(&[new.clone(), old], Some(&header), b"body"), Ok(1));
        assert_eq!(
            verify(&[new], Some(&header), b"body"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rejects_malformed_headers() {
        let s = [WebhookSecret::new("s")];
        assert_eq!(verify(&s, None, b"x"), Err(SignatureError::Missing));
        assert_eq!(
            verify(&s, Some("sha1=abc"), b"x"),
            Err(SignatureError::BadPrefix)
        );
        assert!(matches!(
            verify(&s, Some("sha256=zz"), b"x"),
            Err(SignatureError::BadHex { .. })
        ));
        let bad = format!("sha256={}", "g".repeat(64));
        assert_eq!(
            verify(&s, Some(&bad), b"x"),
            Err(SignatureError::BadHex { offset: 7 })
        );
        // Right signature, tampered body.
        let header = sign(&s[0], b"x");
        assert_eq!(
            verify(&s, Some(&header), b"y"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn debug_redacts_secret() {
        let text = format!("{:?}", WebhookSecret::new("hunter2"));
        assert!(!text.contains("hunter2"), "{text}");
    }

    proptest! {
        #[test]
        fn verify_never_panics(header in ".{0,80}", body in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = verify(&[WebhookSecret::new("k")], Some(&header), &body);
        }

        #[test]
        fn sign_then_verify_roundtrips(key in ".{0,40}", body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let secret = WebhookSecret::new(key);
            let header = sign(&secret, &body);
            prop_assert_eq!(verify(&[secret], Some(&header), &body), Ok(0));
        }
    }
}
