//! Monitors: an organisation's URL probed on a schedule. Settings are checked by
//! `helpdesk_domain::monitoring::settings`; URLs also by the egress guard, which resolves names
//! ([`check_url`], called before the transaction since DNS is slow I/O).
//!
//! Deleting is soft (the row stays, paused for good), because the monitor's incidents are kept.

use chrono::{DateTime, Utc};
use helpdesk_domain::egress::EgressPolicy;
use helpdesk_domain::monitoring::schedule::{next_planned, phase_offset};
use helpdesk_domain::monitoring::settings::{self, Keyword, MonitorSettings, SettingsError};
use helpdesk_domain::monitoring::status::{KeywordMode, MonitorStatus, ProbeErrorKind};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::caller::Caller;
use crate::pagination::{self, PageRequest};
use crate::{CoreError, FieldError};

/// A monitor as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub url: String,
    pub expected_status_codes: Vec<i32>,
    pub keyword: Option<String>,
    pub keyword_mode: Option<String>,
    pub latency_threshold_ms: Option<i32>,
    pub interval_seconds: i32,
    pub timeout_seconds: i32,
    pub tls_warning_days: i32,
    pub paused: bool,
    pub phase_offset_seconds: i32,
    pub next_check_at: DateTime<Utc>,
    pub state: String,
    pub state_changed_at: Option<DateTime<Utc>>,
    pub consecutive_failures: i32,
    pub consecutive_successes: i32,
    pub confirming: bool,
    pub open_incident_id: Option<Uuid>,
    pub tls_incident_id: Option<Uuid>,
    pub last_check_scheduled_at: Option<DateTime<Utc>>,
    pub last_check_started_at: Option<DateTime<Utc>>,
    pub last_check_status_code: Option<i32>,
    pub last_check_latency_ms: Option<i32>,
    pub last_check_error_kind: Option<String>,
    pub tls_expires_at: Option<DateTime<Utc>>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Monitor {
    pub fn status(&self) -> MonitorStatus {
        MonitorStatus::parse(&self.state).unwrap_or(MonitorStatus::Unknown)
    }

    pub fn last_error_kind(&self) -> Option<ProbeErrorKind> {
        self.last_check_error_kind.as_deref().and_then(ProbeErrorKind::parse)
    }

    pub fn keyword_rule(&self) -> Option<Keyword> {
        let text = self.keyword.clone()?;
        let mode = self.keyword_mode.as_deref().and_then(KeywordMode::parse).unwrap_or(KeywordMode::Present);
        Some(Keyword { text, mode })
    }

    /// Status codes that count as up; empty means any 2xx.
    pub fn expected_codes(&self) -> Vec<u16> {
        self.expected_status_codes.iter().filter_map(|c| u16::try_from(*c).ok()).collect()
    }

    /// The monitor's settings, as an agent would write them.
    pub fn settings(&self) -> MonitorSettings {
        let positive = |v: i32| u32::try_from(v).unwrap_or(0);
        MonitorSettings {
            name: self.name.clone(),
            url: self.url.clone(),
            expected_status_codes: self.expected_codes(),
            keyword: self.keyword_rule(),
            latency_threshold_ms: self.latency_threshold_ms.map(positive),
            interval_seconds: positive(self.interval_seconds),
            timeout_seconds: positive(self.timeout_seconds),
            tls_warning_days: positive(self.tls_warning_days),
        }
    }
}

/// A change to a monitor's settings; `None` leaves a field as it is. `keyword` and
/// `latency_threshold_ms` take `Some(None)` to remove them.
#[derive(Debug, Clone, Default)]
pub struct MonitorPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    pub expected_status_codes: Option<Vec<u16>>,
    pub keyword: Option<Option<Keyword>>,
    pub latency_threshold_ms: Option<Option<u32>>,
    pub interval_seconds: Option<u32>,
    pub timeout_seconds: Option<u32>,
    pub tls_warning_days: Option<u32>,
}

impl MonitorPatch {
    fn apply(self, s: MonitorSettings) -> MonitorSettings {
        MonitorSettings {
            name: self.name.unwrap_or(s.name),
            url: self.url.unwrap_or(s.url),
            expected_status_codes: self.expected_status_codes.unwrap_or(s.expected_status_codes),
            keyword: self.keyword.unwrap_or(s.keyword),
            latency_threshold_ms: self.latency_threshold_ms.unwrap_or(s.latency_threshold_ms),
            interval_seconds: self.interval_seconds.unwrap_or(s.interval_seconds),
            timeout_seconds: self.timeout_seconds.unwrap_or(s.timeout_seconds),
            tls_warning_days: self.tls_warning_days.unwrap_or(s.tls_warning_days),
        }
    }
}

/// List filters.
#[derive(Debug, Clone, Default)]
pub struct MonitorFilter {
    /// Staff only; customers always see their own organisation's.
    pub organization_id: Option<Uuid>,
    pub state: Option<MonitorStatus>,
    pub paused: Option<bool>,
}

fn field_errors(errors: Vec<SettingsError>) -> CoreError {
    CoreError::Validation(errors.into_iter().map(|e| FieldError::new(e.field, e.message)).collect())
}

/// The egress guard's check of a URL at creation or change: scheme, port, credentials, literal
/// addresses, and every address its name resolves to now. A refusal is a 422 on `url`.
pub async fn check_url(policy: &EgressPolicy, url: &str) -> Result<(), CoreError> {
    crate::egress::check_reachable(policy, url.trim())
        .await
        .map(drop)
        .map_err(|refusal| CoreError::invalid("url", refusal))
}

/// Every check of a new monitor's settings that can be made before its transaction: all the
/// field bounds (every broken one reported), then the URL's resolution.
pub async fn check_new(policy: &EgressPolicy, settings: &MonitorSettings) -> Result<(), CoreError> {
    validate(settings.clone(), policy)?;
    check_url(policy, &settings.url).await
}

fn validate(settings: MonitorSettings, policy: &EgressPolicy) -> Result<MonitorSettings, CoreError> {
    settings::validate(settings, policy).map(|v| v.settings).map_err(field_errors)
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn codes(s: &MonitorSettings) -> Vec<i32> {
    s.expected_status_codes.iter().map(|c| i32::from(*c)).collect()
}

async fn load(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Monitor>, CoreError> {
    let query = if lock {
        sqlx::query_as!(Monitor, "SELECT * FROM monitors WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", id)
            .fetch_optional(&mut *conn)
            .await?
    } else {
        sqlx::query_as!(Monitor, "SELECT * FROM monitors WHERE id = $1 AND deleted_at IS NULL", id)
            .fetch_optional(&mut *conn)
            .await?
    };
    Ok(query)
}

/// A monitor the caller may see (another organisation's is "not found").
pub async fn get(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Monitor, CoreError> {
    match load(conn, id, false).await? {
        Some(m) if caller.may_see_organization(m.organization_id) => Ok(m),
        _ => Err(CoreError::NotFound("monitor")),
    }
}

async fn lock_for_staff(conn: &mut PgConnection, caller: &Caller, id: Uuid) -> Result<Monitor, CoreError> {
    caller.require_staff()?;
    load(conn, id, true).await?.ok_or(CoreError::NotFound("monitor"))
}

/// Creates a monitor (agents and admins). Call [`check_url`] first, outside the transaction.
pub async fn create(
    conn: &mut PgConnection,
    caller: &Caller,
    policy: &EgressPolicy,
    organization_id: Uuid,
    settings: MonitorSettings,
    paused: bool,
    now: DateTime<Utc>,
) -> Result<Monitor, CoreError> {
    caller.require_staff()?;
    let s = validate(settings, policy)?;
    let exists = sqlx::query_scalar!("SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1)", organization_id)
        .fetch_one(&mut *conn)
        .await?;
    if exists != Some(true) {
        return Err(CoreError::invalid("organization_id", "no such organisation"));
    }
    let id = Uuid::now_v7();
    let phase = phase_offset(id, s.interval_seconds);
    let next = next_planned(now, s.interval_seconds, phase);
    let (keyword, mode) = match &s.keyword {
        Some(k) => (Some(k.text.clone()), Some(k.mode.as_str())),
        None => (None, None),
    };
    Ok(sqlx::query_as!(
        Monitor,
        r#"INSERT INTO monitors (id, organization_id, name, url, expected_status_codes, keyword, keyword_mode,
               latency_threshold_ms, interval_seconds, timeout_seconds, tls_warning_days, paused, phase_offset_seconds,
               next_check_at, created_by, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
           RETURNING *"#,
        id,
        organization_id,
        s.name,
        s.url,
        &codes(&s),
        keyword,
        mode,
        s.latency_threshold_ms.map(to_i32),
        to_i32(s.interval_seconds),
        to_i32(s.timeout_seconds),
        to_i32(s.tls_warning_days),
        paused,
        to_i32(phase),
        next,
        caller.user_id,
        now,
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Changes a monitor's settings (agents and admins). A new interval gives a new phase and
/// re-plans the next check from now; the probe state is left to the worker. Call
/// [`check_url`] first when the URL changes.
pub async fn update(
    conn: &mut PgConnection,
    caller: &Caller,
    policy: &EgressPolicy,
    id: Uuid,
    patch: MonitorPatch,
    now: DateTime<Utc>,
) -> Result<Monitor, CoreError> {
    let current = lock_for_staff(conn, caller, id).await?;
    let s = validate(patch.apply(current.settings()), policy)?;
    let interval_changed = to_i32(s.interval_seconds) != current.interval_seconds;
    let (phase, next) = if interval_changed {
        let phase = phase_offset(id, s.interval_seconds);
        (to_i32(phase), next_planned(now, s.interval_seconds, phase))
    } else {
        (current.phase_offset_seconds, current.next_check_at)
    };
    let (keyword, mode) = match &s.keyword {
        Some(k) => (Some(k.text.clone()), Some(k.mode.as_str())),
        None => (None, None),
    };
    Ok(sqlx::query_as!(
        Monitor,
        r#"UPDATE monitors SET name = $2, url = $3, expected_status_codes = $4, keyword = $5, keyword_mode = $6,
               latency_threshold_ms = $7, interval_seconds = $8, timeout_seconds = $9, tls_warning_days = $10,
               phase_offset_seconds = $11, next_check_at = $12, updated_at = $13
           WHERE id = $1 RETURNING *"#,
        id,
        s.name,
        s.url,
        &codes(&s),
        keyword,
        mode,
        s.latency_threshold_ms.map(to_i32),
        to_i32(s.interval_seconds),
        to_i32(s.timeout_seconds),
        to_i32(s.tls_warning_days),
        phase,
        next,
        now,
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Pauses probing (agents and admins); pausing a paused monitor changes nothing.
pub async fn pause(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Monitor, CoreError> {
    let current = lock_for_staff(conn, caller, id).await?;
    if current.paused {
        return Ok(current);
    }
    Ok(sqlx::query_as!(
        Monitor,
        "UPDATE monitors SET paused = true, updated_at = $2 WHERE id = $1 RETURNING *",
        id,
        now
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Resumes probing at the monitor's next slot after now (its phase, not "now"), and drops a
/// pending confirmation: the state from before the pause is stale, so the machine starts its
/// counting afresh. An open incident stays open until the worker sees recovery.
pub async fn resume(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Monitor, CoreError> {
    let current = lock_for_staff(conn, caller, id).await?;
    if !current.paused {
        return Ok(current);
    }
    let interval = u32::try_from(current.interval_seconds).unwrap_or(settings::DEFAULT_INTERVAL_SECONDS);
    let phase = u32::try_from(current.phase_offset_seconds).unwrap_or(0);
    let next = next_planned(now, interval, phase);
    Ok(sqlx::query_as!(
        Monitor,
        r#"UPDATE monitors SET paused = false, next_check_at = $2, confirming = false,
               consecutive_failures = 0, consecutive_successes = 0, updated_at = $3
           WHERE id = $1 RETURNING *"#,
        id,
        next,
        now
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Deletes a monitor (agents and admins): it stops being probed and listed; its incidents stay.
pub async fn delete(conn: &mut PgConnection, caller: &Caller, id: Uuid, now: DateTime<Utc>) -> Result<(), CoreError> {
    lock_for_staff(conn, caller, id).await?;
    sqlx::query!("UPDATE monitors SET paused = true, deleted_at = $2, updated_at = $2 WHERE id = $1", id, now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The monitors the caller may see, newest first.
pub async fn list(
    conn: &mut PgConnection,
    caller: &Caller,
    filter: MonitorFilter,
    page: PageRequest,
) -> Result<(Vec<Monitor>, Option<String>), CoreError> {
    let organization = if caller.role.is_staff() { filter.organization_id } else { caller.organization_id };
    if !caller.role.is_staff() && organization.is_none() {
        return Ok((Vec::new(), None));
    }
    let (after_at, after_id) = page.after.unzip();
    let rows = sqlx::query_as!(
        Monitor,
        r#"SELECT * FROM monitors
           WHERE deleted_at IS NULL
             AND ($1::uuid IS NULL OR organization_id = $1)
             AND ($2::text IS NULL OR state = $2)
             AND ($3::bool IS NULL OR paused = $3)
             AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
           ORDER BY created_at DESC, id DESC
           LIMIT $6"#,
        organization,
        filter.state.map(MonitorStatus::as_str),
        filter.paused,
        after_at,
        after_id,
        page.fetch_limit(),
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(pagination::finish(rows, &page, |m| (m.created_at, m.id)))
}
