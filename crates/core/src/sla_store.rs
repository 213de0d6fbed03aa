//! The business calendar and SLA policy in force, as immutable numbered versions. Tickets' clocks
//! cite the versions they used, so any clock can be replayed and explained later; editing the
//! calendar or the targets writes a new version. Versions never change once written, so each
//! process caches them after the first read.

use crate::CoreError;
use crate::webhook_events::ReceiversSeen;
use chrono::{DateTime, Utc};
use helpdesk_domain::calendar::{BusinessCalendar, CalendarSpec};
use helpdesk_domain::sla::SlaPolicy;
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use uuid::Uuid;

pub use helpdesk_domain::sla_versions::SlaSnapshot;

/// Versions read so far, each with the instant it was written.
type Cache<T> = Arc<RwLock<BTreeMap<u32, (T, DateTime<Utc>)>>>;

#[derive(Debug, Clone, Default)]
pub struct SlaStore {
    calendars: Cache<BusinessCalendar>,
    policies: Cache<SlaPolicy>,
}

fn corrupt(what: &str, version: i32, error: impl std::fmt::Display) -> CoreError {
    CoreError::Internal(format!("stored {what} version {version} is unreadable: {error}"))
}

impl SlaStore {
    /// Writes version 1 of the calendar (Brazil's default) and of the policy (DESIGN R5's table)
    /// when the database has none. Safe to run from several processes at once.
    pub async fn ensure_seeded(pool: &PgPool) -> Result<(), CoreError> {
        let calendar = serde_json::to_value(BusinessCalendar::brazil_default().spec())
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        let policy =
            serde_json::to_value(SlaPolicy::default_targets()).map_err(|e| CoreError::Internal(e.to_string()))?;
        sqlx::query!("INSERT INTO calendar_versions (version, spec) VALUES (1, $1) ON CONFLICT DO NOTHING", calendar)
            .execute(pool)
            .await?;
        sqlx::query!("INSERT INTO sla_policy_versions (version, policy) VALUES (1, $1) ON CONFLICT DO NOTHING", policy)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// The versions in force now, read in the caller's transaction so a concurrent edit is seen
    /// consistently.
    pub async fn snapshot(&self, conn: &mut PgConnection) -> Result<SlaSnapshot, CoreError> {
        Ok(self.snapshot_for_change(conn).await?.0)
    }

    /// [`Self::snapshot`], and the webhook receivers the transaction sees, read in the same
    /// statement: a ticket change records its webhook events without a read of its own (see
    /// [`ReceiversSeen`]).
    pub async fn snapshot_for_change(
        &self,
        conn: &mut PgConnection,
    ) -> Result<(SlaSnapshot, ReceiversSeen), CoreError> {
        let current = sqlx::query!(
            r#"SELECT (SELECT max(version) FROM calendar_versions) AS "calendar!", (SELECT max(version) FROM sla_policy_versions) AS "policy!",
                      (SELECT token FROM webhook_subscriber_generation) AS "receivers!""#
        )
        .fetch_one(&mut *conn)
        .await?;
        let seen = ReceiversSeen(current.receivers);
        self.load_calendars(conn, current.calendar).await?;
        self.load_policy(conn, current.policy).await?;
        let calendars = self.calendars.read().unwrap_or_else(PoisonError::into_inner);
        let policies = self.policies.read().unwrap_or_else(PoisonError::into_inner);
        let (calendar, calendar_created_at) = calendars
            .get(&(current.calendar as u32))
            .cloned()
            .ok_or_else(|| CoreError::Internal("current calendar missing".into()))?;
        let (policy, policy_created_at) = policies
            .get(&(current.policy as u32))
            .cloned()
            .ok_or_else(|| CoreError::Internal("current policy missing".into()))?;
        let snapshot = SlaSnapshot {
            calendars: calendars.iter().map(|(v, (c, _))| (*v, c.clone())).collect(),
            calendar,
            calendar_created_at,
            policy,
            policy_created_at,
        };
        Ok((snapshot, seen))
    }

    async fn load_calendars(&self, conn: &mut PgConnection, up_to: i32) -> Result<(), CoreError> {
        let known = self.calendars.read().unwrap_or_else(PoisonError::into_inner).len() as i32;
        if known >= up_to {
            return Ok(());
        }
        let rows = sqlx::query!(
            "SELECT version, spec, created_at FROM calendar_versions WHERE version <= $1 ORDER BY version",
            up_to
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut loaded = BTreeMap::new();
        for row in rows {
            let spec: CalendarSpec =
                serde_json::from_value(row.spec).map_err(|e| corrupt("calendar", row.version, e))?;
            let calendar = BusinessCalendar::new(spec).map_err(|e| corrupt("calendar", row.version, e))?;
            loaded.insert(row.version as u32, (calendar, row.created_at));
        }
        self.calendars.write().unwrap_or_else(PoisonError::into_inner).extend(loaded);
        Ok(())
    }

    async fn load_policy(&self, conn: &mut PgConnection, version: i32) -> Result<(), CoreError> {
        if self.policies.read().unwrap_or_else(PoisonError::into_inner).contains_key(&(version as u32)) {
            return Ok(());
        }
        let row = sqlx::query!("SELECT policy, created_at FROM sla_policy_versions WHERE version = $1", version)
            .fetch_one(&mut *conn)
            .await?;
        let policy: SlaPolicy = serde_json::from_value(row.policy).map_err(|e| corrupt("policy", version, e))?;
        self.policies.write().unwrap_or_else(PoisonError::into_inner).insert(version as u32, (policy, row.created_at));
        Ok(())
    }

    /// Stores a new calendar version (the spec's version must be the current one plus one). A
    /// concurrent edit that took the same number first makes this a conflict, not a lost update.
    pub async fn save_calendar(
        conn: &mut PgConnection,
        spec: &CalendarSpec,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), CoreError> {
        let json = serde_json::to_value(spec).map_err(|e| CoreError::Internal(e.to_string()))?;
        let inserted = sqlx::query!(
            "INSERT INTO calendar_versions (version, spec, created_at, created_by) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            spec.version as i32,
            json,
            now,
            actor
        )
        .execute(conn)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(CoreError::conflict(
                "concurrent_edit",
                "the calendar was changed at the same time; reload and try again",
            ));
        }
        Ok(())
    }

    pub async fn save_policy(
        conn: &mut PgConnection,
        policy: &SlaPolicy,
        actor: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), CoreError> {
        let json = serde_json::to_value(policy).map_err(|e| CoreError::Internal(e.to_string()))?;
        let inserted = sqlx::query!(
            "INSERT INTO sla_policy_versions (version, policy, created_at, created_by) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            policy.version as i32,
            json,
            now,
            actor
        )
        .execute(conn)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(CoreError::conflict(
                "concurrent_edit",
                "the SLA policy was changed at the same time; reload and try again",
            ));
        }
        Ok(())
    }
}

/// Today's date in the zone of the calendar in force: contracts start and end on such dates.
/// One indexed read; before the calendar is seeded, Brazil's default calendar's zone.
pub async fn local_today(db: impl sqlx::PgExecutor<'_>, now: DateTime<Utc>) -> Result<chrono::NaiveDate, CoreError> {
    let zone = sqlx::query_scalar!("SELECT spec->>'time_zone' FROM calendar_versions ORDER BY version DESC LIMIT 1")
        .fetch_optional(db)
        .await?
        .flatten();
    let calendar = BusinessCalendar::brazil_default();
    Ok(match zone.and_then(|z| z.parse::<chrono_tz::Tz>().ok()) {
        Some(tz) => now.with_timezone(&tz).date_naive(),
        None => calendar.today(now),
    })
}
