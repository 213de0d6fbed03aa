//! Access tokens (short-lived JWTs) and opaque secrets (refresh and reset tokens).
//!
//! Access JWTs are HS256 with `exp`, `iat`, `iss`, `aud`, `sub`, role and organisation; decoding
//! pins the algorithm so `alg: none` or a swapped algorithm is refused. Opaque tokens are 256 random
//! bits; only their SHA-256 is stored, so a database leak does not leak sessions.

use crate::config::Config;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_domain::accounts::Role;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: Uuid,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<Uuid>,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl: TimeDelta,
}

impl TokenKeys {
    pub fn from_config(config: &Config) -> Self {
        let secret = config.jwt_secret.expose().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // Expiry is checked against the application's clock below (the one every operation
        // uses), not the library's reading of the system time.
        validation.validate_exp = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            access_ttl: config.access_token_ttl,
        }
    }

    pub fn access_ttl(&self) -> TimeDelta {
        self.access_ttl
    }

    pub fn issue_access(
        &self,
        user: Uuid,
        role: Role,
        org: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Result<String, crate::CoreError> {
        let claims = AccessClaims {
            sub: user,
            role,
            org,
            iat: now.timestamp(),
            exp: (now + self.access_ttl).timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| crate::CoreError::Internal(format!("cannot sign access token: {e}")))
    }

    /// Verifies signature, algorithm, issuer, audience and expiry (at `now`, with 5 s of leeway
    /// for clock skew). Any failure is the same `Unauthenticated`: the caller learns nothing
    /// about which check failed.
    pub fn verify_access(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, crate::CoreError> {
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                tracing::debug!(error = %e, "access token refused");
                crate::CoreError::Unauthenticated
            })?;
        if claims.exp + 5 < now.timestamp() {
            tracing::debug!("access token expired");
            return Err(crate::CoreError::Unauthenticated);
        }
        Ok(claims)
    }
}

/// A new opaque token for the client and the hash to store.
pub fn new_opaque_token() -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_opaque_token(&token);
    (token, hash)
}

pub fn hash_opaque_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A short code people can read out and type: 12 characters without look-alikes (0/O, 1/I/L).
pub fn new_signup_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    let chars: String = (0..12).map(|_| char::from(ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()])).collect();
    format!("{}-{}-{}", &chars[0..4], &chars[4..8], &chars[8..12])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn keys() -> TokenKeys {
        let vars: HashMap<String, String> = [("HELPDESK_DEV_MODE".to_owned(), "true".to_owned())].into();
        match Config::from_map(&vars) {
            Ok(config) => TokenKeys::from_config(&config),
            Err(e) => panic!("config: {e}"),
        }
    }

    #[test]
    fn issued_token_verifies_and_carries_the_caller() -> Result<(), crate::CoreError> {
        let keys = keys();
        let user = Uuid::now_v7();
        let token = keys.issue_access(user, Role::Agent, None, Utc::now())?;
        let claims = keys.verify_access(&token, Utc::now())?;
        assert_eq!((claims.sub, claims.role, claims.org), (user, Role::Agent, None));
        Ok(())
    }

    #[test]
    fn expired_token_is_refused() -> Result<(), crate::CoreError> {
        let keys = keys();
        let token = keys.issue_access(Uuid::now_v7(), Role::Admin, None, Utc::now() - TimeDelta::hours(1))?;
        assert!(keys.verify_access(&token, Utc::now()).is_err());
        Ok(())
    }

    #[test]
    fn opaque_tokens_are_unique_and_hash_stably() {
        let (a, hash_a) = new_opaque_token();
        let (b, _) = new_opaque_token();
        assert_ne!(a, b);
        assert_eq!(hash_opaque_token(&a), hash_a);
        assert_eq!(new_signup_code().len(), 14);
    }
}
