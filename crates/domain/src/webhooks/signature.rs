//! The Standard Webhooks signature (<https://www.standardwebhooks.com>): `webhook-signature` is
//! `v1,<base64 of HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")>`, where the key is
//! the base64 part of the `whsec_…` secret. While a rotated secret's overlap lasts, both
//! signatures are sent, space-separated, so a receiver holding either secret accepts the call.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A signing secret, in the `whsec_<base64>` form receivers' libraries take.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with whsec_")]
    Prefix,
    #[error("a webhook secret's key is base64")]
    Base64,
    #[error("a webhook secret's key has 24 to 64 bytes")]
    Length,
}

impl Secret {
    /// A secret from random bytes (24 to 64 of them).
    pub fn from_key(key: Vec<u8>) -> Result<Self, SecretError> {
        if !(24..=64).contains(&key.len()) {
            return Err(SecretError::Length);
        }
        Ok(Self { key })
    }

    pub fn parse(raw: &str) -> Result<Self, SecretError> {
        let encoded = raw.strip_prefix(PREFIX).ok_or(SecretError::Prefix)?;
        let key = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        Self::from_key(key)
    }

    /// The `whsec_…` form, shown once to the admin and stored for signing.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.key))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body)))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else { return Vec::new() };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }

    /// Whether one of the space-separated signatures in `header` is this secret's, in constant
    /// time per candidate.
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header.split(' ').filter_map(|candidate| candidate.strip_prefix("v1,")).any(|encoded| {
            let Ok(given) = STANDARD.decode(encoded) else { return false };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else { return false };
            mac.update(format!("{id}.{timestamp}.").as_bytes());
            mac.update(body);
            mac.verify_slice(&given).is_ok()
        })
    }
}

/// The `webhook-signature` header: the current secret's signature, then the previous one's while
/// its overlap lasts.
pub fn signature_header(current: &Secret, previous: Option<&Secret>, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut header = current.sign(id, timestamp, body);
    if let Some(previous) = previous {
        header.push(' ');
        header.push_str(&previous.sign(id, timestamp, body));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The example of the Standard Webhooks specification's reference implementations.
    #[test]
    fn matches_the_specifications_example() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_or_else(|e| panic!("{e}"));
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert_eq!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Err(SecretError::Prefix));
        assert_eq!(Secret::parse("whsec_!!!"), Err(SecretError::Base64));
        assert_eq!(Secret::parse("whsec_AAAA"), Err(SecretError::Length));
    }

    proptest! {
        #[test]
        fn both_secrets_verify_during_an_overlap_and_a_change_breaks_it(
            a in proptest::collection::vec(any::<u8>(), 24..48),
            b in proptest::collection::vec(any::<u8>(), 24..48),
            body in proptest::collection::vec(any::<u8>(), 0..200),
            timestamp in 0i64..4_000_000_000,
        ) {
            let (current, previous) = (Secret::from_key(a.clone()).unwrap_or_else(|e| panic!("{e}")), Secret::from_key(b.clone()).unwrap_or_else(|e| panic!("{e}")));
            prop_assert_eq!(Secret::parse(&current.expose()).ok(), Some(current.clone()));
            let header = signature_header(&current, Some(&previous), "evt", timestamp, &body);
            prop_assert!(current.verify("evt", timestamp, &body, &header));
            prop_assert!(previous.verify("evt", timestamp, &body, &header));
            prop_assert!(!current.verify("evt", timestamp + 1, &body, &header));
            prop_assert!(!current.verify("other", timestamp, &body, &header));
            let alone = signature_header(&current, None, "evt", timestamp, &body);
            prop_assert_eq!(previous.verify("evt", timestamp, &body, &alone), a == b);
        }
    }
}
