//! Password hashing with argon2id (OWASP parameters: m=19 MiB, t=2, p=1 are argon2's defaults).
//! Hashing costs tens of milliseconds of CPU, so it runs on the blocking pool, never on the
//! async executor.

use crate::CoreError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use std::sync::OnceLock;

pub async fn hash(password: String) -> Result<String, CoreError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| CoreError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| CoreError::Internal(format!("password hashing task failed: {e}")))?
}

/// Verifies `password` against a stored hash. With no stored hash (unknown account) it verifies
/// against a fixed dummy hash, so both cases take the same time and an attacker cannot tell
/// registered e-mails from others by timing.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, CoreError> {
    let dummy = stored.is_none();
    let hash = match stored {
        Some(hash) => hash,
        None => dummy_hash()?.to_owned(),
    };
    let matches = tokio::task::spawn_blocking(move || {
        Argon2::default().verify_password(password.as_bytes(), hash.as_str()).is_ok()
    })
    .await
    .map_err(|e| CoreError::Internal(format!("password verification task failed: {e}")))?;
    Ok(matches && !dummy)
}

fn dummy_hash() -> Result<&'static str, CoreError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let hash = Argon2::default()
        .hash_password(b"not a real password, only spends the time a real check would")
        .map_err(|e| CoreError::Internal(format!("password hashing failed: {e}")))?
        .to_string();
    Ok(DUMMY.get_or_init(|| hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_verifies_only_the_same_password() -> Result<(), CoreError> {
        let stored = hash("correct horse battery staple".into()).await?;
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery staple".into(), Some(stored.clone())).await?);
        assert!(!verify("wrong horse battery staple".into(), Some(stored)).await?);
        assert!(!verify("anything".into(), None).await?);
        Ok(())
    }
}
