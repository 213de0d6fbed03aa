//! What the api and worker test suites share, so neither keeps a copy: where the test servers are,
//! a database per test and its removal, running operations in a transaction of their own, and a
//! real SMTP listener. A dev-dependency only; nothing here reaches the binaries.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod smtp;

/// The PostgreSQL server (no database name) where tests create `helpdesk_test_*` databases.
pub fn base_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The Redis the tests use, each under a key prefix of its own.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .or_else(|_| std::env::var("REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh id for one test's database and Redis prefix.
pub fn test_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Drops a test database, whoever is still connected.
pub async fn drop_database(name: &str) {
    if let Ok(admin) = helpdesk_core::db::connect(&format!("{}/postgres", base_database_url()), 1).await {
        let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await;
    }
}

/// Runs core operations in one transaction of their own, committed, as the API's handlers and the
/// worker's jobs do.
pub async fn in_tx<T>(pool: &sqlx::PgPool, operation: impl AsyncFnOnce(&mut sqlx::PgConnection) -> T) -> T {
    let mut tx = pool.begin().await.expect("a transaction");
    let out = operation(&mut tx).await;
    tx.commit().await.expect("commit");
    out
}
