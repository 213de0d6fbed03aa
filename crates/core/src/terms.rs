//! The terms of use and privacy notice (DESIGN R14): which version a person accepted, and
//! accepting the current one when it changes.

use crate::CoreError;
use crate::accounts::Caller;
use crate::audit::{self, AuditEntry};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgConnection;

/// Records that the caller accepted `version`, which must be `current`: accepting an old or a
/// future version would record a consent nobody was shown.
pub async fn accept(
    conn: &mut PgConnection,
    caller: &Caller,
    version: &str,
    current: &str,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    if version != current {
        return Err(CoreError::invalid("version", format!("must be the current terms version, {current}")));
    }
    let previous = sqlx::query_scalar!("SELECT terms_version FROM users WHERE id = $1 FOR UPDATE", caller.user_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(CoreError::NotFound("user"))?;
    if previous.as_deref() == Some(current) {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE users SET terms_version = $2, terms_accepted_at = $3, updated_at = $3 WHERE id = $1",
        caller.user_id,
        current,
        now
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        AuditEntry {
            actor_id: Some(caller.user_id),
            action: "user.terms_accepted",
            subject_type: "user",
            subject_id: Some(caller.user_id),
            ip,
            details: json!({ "version": current, "previous_version": previous }),
        },
        now,
    )
    .await?;
    Ok(())
}
