//! One multiplexed, self-reconnecting Redis connection shared by a process.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("cannot reach Redis at {target}: {source}")]
pub struct RedisUnreachable {
    target: String,
    source: redis::RedisError,
}

pub async fn connect(url: &str) -> Result<ConnectionManager, RedisUnreachable> {
    let fail = |source| RedisUnreachable { target: redact(url), source };
    let client = redis::Client::open(url).map_err(fail)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2);
    ConnectionManager::new_with_config(client, config).await.map_err(fail)
}

fn redact(url: &str) -> String {
    match url.split_once('@') {
        Some((_, host)) => format!("redis://***@{host}"),
        None => url.to_owned(),
    }
}
