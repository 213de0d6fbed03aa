//! Connecting to PostgreSQL, creating the database when it is missing, and migrating it.

use sqlx::migrate::{MigrateDatabase, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL is not a valid PostgreSQL URL: {0}")]
    BadUrl(sqlx::Error),
    #[error("cannot reach PostgreSQL at {target}: {source}")]
    Unreachable { target: String, source: sqlx::Error },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Where a URL points, without its password, for error messages.
fn describe(url: &str) -> String {
    PgConnectOptions::from_str(url)
        .map(|o| format!("{}:{}/{}", o.get_host(), o.get_port(), o.get_database().unwrap_or("")))
        .unwrap_or_else(|_| "(unparseable URL)".into())
}

/// How PostgreSQL plans a pool's prepared statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plans {
    /// Plan every execution for its parameters (`plan_cache_mode = force_custom_plan`). The API's
    /// list queries take optional filters as `($1 IS NULL OR column = $1)`, and a prepared
    /// statement may switch to a generic plan after five runs, which for them is a sequential
    /// scan (265 ms instead of 0.1 ms over a million tickets, measured). Planning each execution
    /// costs ~0.1 ms and always picks the right index.
    PerExecution,
    /// PostgreSQL's default, which caches a generic plan when it is as good: for the worker, whose
    /// statements have no optional filters and run thousands of times a second, so that planning
    /// would be a large share of its database time (measured).
    Cached,
}

/// Connects with [`Plans::PerExecution`].
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    connect_with(url, max_connections, Plans::PerExecution).await
}

pub async fn connect_with(url: &str, max_connections: u32, plans: Plans) -> Result<PgPool, DbError> {
    let mut options = PgConnectOptions::from_str(url).map_err(DbError::BadUrl)?;
    if plans == Plans::PerExecution {
        options = options.options([("plan_cache_mode", "force_custom_plan")]);
    }
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|source| DbError::Unreachable { target: describe(url), source })
}

/// Creates the database if it does not exist, connects and applies pending migrations. Safe to run
/// from several processes at once: sqlx takes an advisory lock while migrating.
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> Result<PgPool, DbError> {
    connect_and_migrate_with(url, max_connections, Plans::PerExecution).await
}

/// [`connect_and_migrate`] with the given planning.
pub async fn connect_and_migrate_with(url: &str, max_connections: u32, plans: Plans) -> Result<PgPool, DbError> {
    let exists = Postgres::database_exists(url)
        .await
        .map_err(|source| DbError::Unreachable { target: describe(url), source })?;
    if !exists {
        tracing::info!(database = %describe(url), "creating database");
        if let Err(source) = Postgres::create_database(url).await {
            // Another process may have created it in between.
            if !Postgres::database_exists(url).await.unwrap_or(false) {
                return Err(DbError::Unreachable { target: describe(url), source });
            }
        }
    }
    let pool = connect_with(url, max_connections, plans).await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Runs operations in one transaction of their own, committed when they succeed; an error rolls
/// everything back. For callers that own no transaction yet (a handler, a job, the seed).
pub async fn in_tx<T>(
    pool: &PgPool,
    operations: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<T, crate::CoreError>,
) -> Result<T, crate::CoreError> {
    let mut tx = pool.begin().await?;
    let out = operations(&mut tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// A `LISTEN` connection of its own, outside `pool`, with the same settings: a listener holds its
/// connection for the life of the process, and taking it from the pool would leave the pool's
/// work that many connections short (with three listeners, a pool of three had none left).
pub async fn dedicated_listener(pool: &PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let own = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_with((*pool.connect_options()).clone())
        .await?;
    sqlx::postgres::PgListener::connect_with(&own).await
}
