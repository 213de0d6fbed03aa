//! The monitoring tests' harness: the in-process worker on a test clock, an organisation with a
//! customer and an agent, monitors written straight into the database, and a driver that moves
//! the clock from one planned check to the next and waits for the worker to record it.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::America::Sao_Paulo;
use helpdesk_worker::settings::WorkerSettings;
use std::time::Duration;
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app_with_env};
use crate::targets::KEYWORD;

pub struct Watch {
    pub app: TestApp,
    pub org: Uuid,
}

/// The next `weekday` after today (at least a day ahead), at `hh:mm` São Paulo time, in UTC.
/// Stories start within the coming week so the partitions the migration made cover them.
pub fn next_local(weekday: Weekday, hh: u32, mm: u32) -> DateTime<Utc> {
    let today = Utc::now().with_timezone(&Sao_Paulo).date_naive();
    let mut day: NaiveDate = today + TimeDelta::days(1);
    while day.weekday() != weekday {
        day += TimeDelta::days(1);
    }
    let local = day.and_time(NaiveTime::from_hms_opt(hh, mm, 0).unwrap());
    Sao_Paulo.from_local_datetime(&local).single().unwrap().with_timezone(&Utc)
}

/// Tuesday 10:00 in São Paulo: business hours, nothing special.
pub fn weekday_morning() -> DateTime<Utc> {
    next_local(Weekday::Tue, 10, 0)
}

/// A worker on a test clock at `start`, allowed to reach 127.0.0.0/8 unless `env` says
/// otherwise, with probing ticking every second and the hourly upkeep out of the way.
pub async fn watch(start: DateTime<Utc>, env: &[(&str, String)], adjust: impl Fn(&mut WorkerSettings)) -> Watch {
    let mut vars: Vec<(&str, String)> = vec![("HELPDESK_EGRESS_ALLOW_CIDRS", "127.0.0.0/8".to_owned())];
    for (name, value) in env {
        vars.retain(|(existing, _)| existing != name);
        vars.push((name, value.clone()));
    }
    let app = spawn_app_with_env(start, 1, &vars, |settings| {
        settings.probes.tick_interval = Duration::from_secs(1);
        settings.probes.upkeep_interval = Duration::from_secs(3600);
        adjust(settings);
    })
    .await;
    let desk = app.desk("pro", 1).await;
    let org = desk.customer.organization_id.unwrap();
    Watch { app, org }
}

#[derive(Debug, Clone)]
pub struct IncidentRow {
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub in_maintenance: bool,
    pub in_storm: bool,
    pub maintenance_ended_at: Option<DateTime<Utc>>,
    pub ticket_id: Option<Uuid>,
}

impl Watch {
    /// A monitor of the organisation probing `url` every 5 minutes, its phase on the clock's
    /// instant, first due now; the keyword must be on the page and 1 s is slow.
    pub async fn monitor(&self, url: &str) -> Uuid {
        self.monitor_due(url, self.app.clock.now()).await
    }

    pub async fn monitor_due(&self, url: &str, due: DateTime<Utc>) -> Uuid {
        let id = Uuid::now_v7();
        let now = self.app.clock.now();
        sqlx::query!(
            r#"INSERT INTO monitors (id, organization_id, name, url, keyword, keyword_mode, latency_threshold_ms,
                                     interval_seconds, timeout_seconds, phase_offset_seconds, next_check_at, created_at, updated_at)
               VALUES ($1, $2, $3, $4, $5, 'present', 1000, 300, 2, $6, $7, $8, $8)"#,
            id,
            self.org,
            format!("Site {}", &id.simple().to_string()[24..]),
            url,
            KEYWORD,
            i32::try_from(now.timestamp().rem_euclid(300)).unwrap(),
            due,
            now,
        )
        .execute(&self.app.pool)
        .await
        .unwrap();
        id
    }

    /// Moves the clock to each planned check up to `target`, in order, waiting at each for the
    /// worker to probe and record every monitor due; leaves the clock at `target`.
    pub async fn advance_to(&self, target: DateTime<Utc>) {
        loop {
            // A monitor claimed but not yet recorded has `next_check_at` at its lease's end, not
            // its next plan: moving the clock there would probe it late. Wait for its result.
            self.settle().await;
            let next = sqlx::query_scalar!("SELECT min(next_check_at) FROM monitors WHERE NOT paused")
                .fetch_one(&self.app.pool)
                .await
                .unwrap();
            match next {
                Some(next) if next <= target => {
                    if next > self.app.clock.now() {
                        self.app.clock.set(next);
                    }
                    self.settle().await;
                }
                _ => {
                    self.app.clock.set(target);
                    return;
                }
            }
        }
    }

    pub async fn advance(&self, by: TimeDelta) {
        self.advance_to(self.app.clock.now() + by).await;
    }

    /// Waits until no monitor is due or claimed at the clock's instant.
    pub async fn settle(&self) {
        let now = self.app.clock.now();
        for _ in 0..600 {
            let busy = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM monitors m LEFT JOIN monitor_probe_states p ON p.monitor_id = m.id
                                  WHERE NOT m.paused AND (m.next_check_at <= $1 OR p.claimed_slot IS NOT NULL)) AS "busy!""#,
                now
            )
            .fetch_one(&self.app.pool)
            .await
            .unwrap();
            if !busy {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the worker did not probe the monitors due at {now}");
    }

    /// The alert kinds announced for the monitor's incidents, in order.
    pub async fn alert_kinds(&self, monitor: Uuid) -> Vec<String> {
        sqlx::query_scalar!(
            r#"SELECT a.kind FROM incident_alerts a JOIN incidents i ON i.id = a.incident_id
               WHERE i.monitor_id = $1 ORDER BY a.sent_at, a.id"#,
            monitor
        )
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }

    /// Outbox e-mails of `template` about the monitor.
    pub async fn emails(&self, template: &str, monitor: Uuid) -> Vec<serde_json::Value> {
        sqlx::query_scalar!(
            "SELECT payload FROM email_outbox WHERE template = $1 AND payload->>'monitor_id' = $2 ORDER BY created_at, id",
            template,
            monitor.to_string()
        )
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }

    pub async fn count_template(&self, template: &str) -> i64 {
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM email_outbox WHERE template = $1"#, template)
            .fetch_one(&self.app.pool)
            .await
            .unwrap()
    }

    pub async fn incidents(&self, monitor: Uuid) -> Vec<IncidentRow> {
        sqlx::query_as!(
            IncidentRow,
            r#"SELECT started_at, resolved_at, in_maintenance, in_storm, maintenance_ended_at, ticket_id
               FROM incidents WHERE monitor_id = $1 ORDER BY started_at"#,
            monitor
        )
        .fetch_all(&self.app.pool)
        .await
        .unwrap()
    }

    pub async fn monitoring_tickets(&self) -> i64 {
        sqlx::query_scalar!(
            r#"SELECT count(*) AS "n!" FROM tickets WHERE organization_id = $1 AND source = 'monitoring'"#,
            self.org
        )
        .fetch_one(&self.app.pool)
        .await
        .unwrap()
    }

    /// A maintenance window for the organisation, written straight into the table.
    pub async fn one_off_window(&self, from: DateTime<Utc>, to: DateTime<Utc>) {
        sqlx::query!(
            r#"INSERT INTO maintenance_windows (id, title, scope, organization_id, kind, starts_at, ends_at, time_zone, created_at)
               VALUES ($1, 'Manutenção', 'organization', $2, 'one_off', $3, $4, 'America/Sao_Paulo', $5)"#,
            Uuid::now_v7(),
            self.org,
            from,
            to,
            from - TimeDelta::days(1),
        )
        .execute(&self.app.pool)
        .await
        .unwrap();
    }

    /// A weekly window for the organisation from `weekday` (ISO, 1 = Monday) at `start` local
    /// time, for `minutes`.
    pub async fn weekly_window(&self, weekday: i16, start: NaiveTime, minutes: i32) {
        sqlx::query!(
            r#"INSERT INTO maintenance_windows (id, title, scope, organization_id, kind, weekly_weekday, weekly_start_time,
                                                weekly_duration_minutes, time_zone, created_at)
               VALUES ($1, 'Manutenção semanal', 'organization', $2, 'weekly', $3, $4, $5, 'America/Sao_Paulo', $6)"#,
            Uuid::now_v7(),
            self.org,
            weekday,
            start,
            minutes,
            self.app.clock.now() - TimeDelta::days(14),
        )
        .execute(&self.app.pool)
        .await
        .unwrap();
    }
}
