//! A short-lived cache of users' authentication records, shared by the state (which holds it)
//! and the `auth` extractor (which reads it). Its own module so neither imports the other both ways.

use helpdesk_core::accounts::AuthRecord;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Users' authentication records, kept for a moment so a burst of requests does not re-read the
/// same row each time. A change this process makes (password change or reset) forgets the entry
/// at once; other instances see it within `ttl` (default 1 s). A zero `ttl` disables the cache.
pub struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<Uuid, (Instant, AuthRecord)>>,
}

/// Bounds memory: past this many users the cache starts afresh.
const AUTH_CACHE_MAX_ENTRIES: usize = 50_000;

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    pub(crate) fn get(&self, user: Uuid) -> Option<AuthRecord> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(&user).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, record)| record.clone())
    }

    pub(crate) fn put(&self, record: AuthRecord) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= AUTH_CACHE_MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(record.user_id, (Instant::now(), record));
    }

    pub fn forget(&self, user: Uuid) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(&user);
    }
}
