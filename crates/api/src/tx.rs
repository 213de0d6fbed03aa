//! Handlers own the transaction (docs/architecture.md, decision 13): core operations run on the
//! connection they are given, so one request's operations commit together or not at all.

use crate::error::ApiError;
use helpdesk_core::CoreError;
use sqlx::{PgConnection, PgPool};

/// Runs operations in one transaction, committed when they succeed; an error rolls everything
/// back.
pub async fn in_tx<T>(
    pool: &PgPool,
    operations: impl AsyncFnOnce(&mut PgConnection) -> Result<T, CoreError>,
) -> Result<T, ApiError> {
    Ok(helpdesk_core::db::in_tx(pool, operations).await?)
}

/// Runs reads on one pooled connection, outside any transaction.
pub async fn read<T>(
    pool: &PgPool,
    reads: impl AsyncFnOnce(&mut PgConnection) -> Result<T, CoreError>,
) -> Result<T, ApiError> {
    let mut conn = pool.acquire().await.map_err(CoreError::from)?;
    Ok(reads(&mut conn).await?)
}
