//! Uptime monitors and incidents (R11) over real HTTP: CRUD, roles and organisation isolation,
//! the egress guard at creation, pause/resume on the monitor's phase, uptime from seeded
//! incidents, maintenance and gaps.
//!
//! The clock stands at Thursday 2026-12-03 12:00Z (09:00 in São Paulo).

use crate::helpers::{TestApp, assert_problem, ok_json, spawn_app_with_clock};
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_core::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

pub const NOW: &str = "2026-12-03T12:00:00Z";

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

/// An app at [`NOW`] whose egress allow-list admits loopback (the tests' own targets).
pub async fn app_allowing_loopback() -> TestApp {
    spawn_app_with_clock(
        &[("HELPDESK_EGRESS_ALLOW_CIDRS", "127.0.0.0/8,::1/128"), ("HELPDESK_ACCESS_TOKEN_TTL_SECONDS", "7776000")],
        Clock::manual(now()),
    )
    .await
}

pub async fn create_monitor(app: &TestApp, token: &str, org: Uuid, extra: Value) -> Value {
    let mut body = json!({ "organization_id": org, "name": "Loja", "url": "http://127.0.0.1:9999/health" });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    ok_json(app.post("/v1/monitors", Some(token), &body).await, StatusCode::CREATED).await
}

fn field_errors(problem: &Value) -> Vec<String> {
    problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}

async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client.delete(app.url(path)).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn agents_manage_monitors_and_customers_read_only_their_own() {
    let app = app_allowing_loopback().await;
    let (_, agent) = app.agent().await;
    let (customer_a, org_a, _) = app.customer_on("pro").await;
    let (customer_b, org_b, _) = app.customer_on("pro").await;

    let monitor = create_monitor(
        &app,
        &agent,
        org_a,
        json!({ "expected_status_codes": [204, 200, 200], "keyword": "OK", "latency_threshold_ms": 800 }),
    )
    .await;
    assert_eq!(monitor["state"], "unknown");
    assert_eq!(monitor["interval_seconds"], 300);
    assert_eq!(monitor["timeout_seconds"], 15);
    assert_eq!(monitor["tls_warning_days"], 14);
    assert_eq!(monitor["expected_status_codes"], json!([200, 204]));
    assert_eq!(monitor["keyword_mode"], "present");
    assert_eq!(monitor["last_check"], Value::Null);
    let next: DateTime<Utc> = monitor["next_check_at"].as_str().unwrap().parse().unwrap();
    assert!(next > now() && next <= now() + TimeDelta::seconds(300));
    let id = monitor["id"].as_str().unwrap().to_owned();
    let other = create_monitor(&app, &app.admin_token, org_b, json!({ "name": "Outro" })).await;

    // A customer cannot create one, even for their own organisation.
    let body = json!({ "organization_id": org_a, "name": "x", "url": "http://127.0.0.1:9999/" });
    assert_problem(app.post("/v1/monitors", Some(&customer_a), &body).await, StatusCode::FORBIDDEN, "staff_only").await;

    // Customers see their organisation's monitors only; another's is a 404.
    let list = ok_json(app.get("/v1/monitors", Some(&customer_a)).await, StatusCode::OK).await;
    let ids: Vec<&str> = list["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [id.as_str()]);
    let filtered =
        ok_json(app.get(&format!("/v1/monitors?organization_id={org_b}"), Some(&customer_a)).await, StatusCode::OK)
            .await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1, "a customer's filter cannot widen their view");
    assert_problem(
        app.get(&format!("/v1/monitors/{}", other["id"].as_str().unwrap()), Some(&customer_a)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let seen = ok_json(app.get(&format!("/v1/monitors/{id}"), Some(&customer_a)).await, StatusCode::OK).await;
    assert_eq!(seen["name"], "Loja");
    assert!(seen["uptime"]["24h"].is_object() && seen["recent_incidents"].as_array().unwrap().is_empty());
    assert_problem(app.get(&format!("/v1/monitors/{id}"), Some(&customer_b)).await, StatusCode::NOT_FOUND, "not_found")
        .await;

    // Agents see all, filtered.
    let by_org =
        ok_json(app.get(&format!("/v1/monitors?organization_id={org_b}"), Some(&agent)).await, StatusCode::OK).await;
    assert_eq!(by_org["items"][0]["id"], other["id"]);
    let by_state = ok_json(app.get("/v1/monitors?state=down", Some(&agent)).await, StatusCode::OK).await;
    assert!(by_state["items"].as_array().unwrap().is_empty());

    // Change: a customer may not; an agent may, and a new interval re-plans on the new phase.
    assert_problem(
        app.patch(&format!("/v1/monitors/{id}"), &customer_a, &json!({ "name": "y" })).await,
        StatusCode::FORBIDDEN,
        "staff_only",
    )
    .await;
    let changed = ok_json(
        app.patch(
            &format!("/v1/monitors/{id}"),
            &agent,
            &json!({ "interval_seconds": 60, "keyword": null, "timeout_seconds": 10 }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["interval_seconds"], 60);
    assert_eq!(changed["keyword"], Value::Null);
    assert_eq!(changed["latency_threshold_ms"], 800);
    let next: DateTime<Utc> = changed["next_check_at"].as_str().unwrap().parse().unwrap();
    let phase =
        sqlx::query_scalar!("SELECT phase_offset_seconds FROM monitors WHERE id = $1", Uuid::parse_str(&id).unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(next > now() && next <= now() + TimeDelta::seconds(60));
    assert_eq!((next.timestamp() - i64::from(phase)).rem_euclid(60), 0, "slots fall on the monitor's phase");

    // Delete: gone from reads and lists, for everyone.
    assert_problem(delete(&app, &format!("/v1/monitors/{id}"), &customer_a).await, StatusCode::FORBIDDEN, "staff_only")
        .await;
    assert_eq!(delete(&app, &format!("/v1/monitors/{id}"), &agent).await.status(), StatusCode::NO_CONTENT);
    assert_problem(app.get(&format!("/v1/monitors/{id}"), Some(&agent)).await, StatusCode::NOT_FOUND, "not_found")
        .await;
    assert_problem(delete(&app, &format!("/v1/monitors/{id}"), &agent).await, StatusCode::NOT_FOUND, "not_found").await;
    let list = ok_json(app.get("/v1/monitors", Some(&customer_a)).await, StatusCode::OK).await;
    assert!(list["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn pause_stops_claims_and_resume_replans_on_the_phase() {
    let app = app_allowing_loopback().await;
    let (_, agent) = app.agent().await;
    let (customer, org, _) = app.customer_on("pro").await;
    let monitor = create_monitor(&app, &agent, org, json!({ "interval_seconds": 120, "timeout_seconds": 5 })).await;
    let id = monitor["id"].as_str().unwrap();
    let uuid: Uuid = id.parse().unwrap();

    assert_problem(
        app.post(&format!("/v1/monitors/{id}/pause"), Some(&customer), &json!({})).await,
        StatusCode::FORBIDDEN,
        "staff_only",
    )
    .await;
    let paused =
        ok_json(app.post(&format!("/v1/monitors/{id}/pause"), Some(&agent), &json!({})).await, StatusCode::OK).await;
    assert_eq!(paused["paused"], true);
    // The worker's claim (its partial index) no longer sees it, even long overdue.
    let due = sqlx::query_scalar!(
        "SELECT count(*) FROM monitors WHERE next_check_at <= $1 AND NOT paused AND id = $2",
        now() + TimeDelta::days(1),
        uuid
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(due, Some(0));
    let listed = ok_json(app.get("/v1/monitors?paused=true", Some(&customer)).await, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    app.clock.advance(TimeDelta::seconds(1_000_037));
    let resumed =
        ok_json(app.post(&format!("/v1/monitors/{id}/resume"), Some(&agent), &json!({})).await, StatusCode::OK).await;
    assert_eq!(resumed["paused"], false);
    let next: DateTime<Utc> = resumed["next_check_at"].as_str().unwrap().parse().unwrap();
    let phase = sqlx::query_scalar!("SELECT phase_offset_seconds FROM monitors WHERE id = $1", uuid)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let now = app.clock.now();
    assert!(next > now && next <= now + TimeDelta::seconds(120), "{next} after {now}");
    assert_eq!((next.timestamp() - i64::from(phase)).rem_euclid(120), 0);
    // Resuming again changes nothing.
    let again =
        ok_json(app.post(&format!("/v1/monitors/{id}/resume"), Some(&agent), &json!({})).await, StatusCode::OK).await;
    assert_eq!(again["next_check_at"], resumed["next_check_at"]);
}

#[tokio::test]
async fn blocked_urls_are_refused_at_creation_naming_the_reason() {
    // The default policy: no allow-list.
    let app = spawn_app_with_clock(&[], Clock::manual(now())).await;
    let (_, agent) = app.agent().await;
    let (org, _) = app.organization_on("pro").await;
    let cases = [
        ("http://127.0.0.1:8080/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://localhost:8080/", "loopback"),
        ("http://10.1.2.3/", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("ftp://example.com/", "only http and https"),
        ("http://example.com:22/", "port 22"),
        ("http://user:secret@example.com/", "user name or password"),
    ];
    for (url, reason) in cases {
        let body = json!({ "organization_id": org, "name": "Alvo", "url": url });
        let problem = assert_problem(
            app.post("/v1/monitors", Some(&agent), &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(field_errors(&problem), ["url"], "{url}: {problem}");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{url}: {message}");
    }
    // Changing a monitor's URL is checked the same way.
    let allowed = spawn_app_with_clock(&[("HELPDESK_EGRESS_ALLOW_CIDRS", "127.0.0.0/8")], Clock::manual(now())).await;
    let (_, agent2) = allowed.agent().await;
    let (org2, _) = allowed.organization_on("pro").await;
    let monitor = create_monitor(&allowed, &agent2, org2, json!({ "url": "http://localhost:8080/health" })).await;
    let problem = assert_problem(
        allowed
            .patch(
                &format!("/v1/monitors/{}", monitor["id"].as_str().unwrap()),
                &agent2,
                &json!({ "url": "http://[::1]:8080/" }),
            )
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(field_errors(&problem), ["url"]);
    drop(allowed);
    drop(app);
}

#[tokio::test]
async fn loopback_targets_are_accepted_when_allow_listed() {
    let app = app_allowing_loopback().await;
    let (_, agent) = app.agent().await;
    let (org, _) = app.organization_on("pro").await;
    for url in ["http://127.0.0.1:8080/", "http://localhost:8080/", "http://2130706433:8080/", "http://[::1]:8080/"] {
        create_monitor(&app, &agent, org, json!({ "url": url })).await;
    }
}

#[tokio::test]
async fn invalid_settings_name_every_field() {
    let app = app_allowing_loopback().await;
    let (_, agent) = app.agent().await;
    let (org, _) = app.organization_on("pro").await;
    let body = json!({
        "organization_id": org, "name": " ", "url": "http://127.0.0.1:9999/", "expected_status_codes": [99],
        "keyword": "", "latency_threshold_ms": 0, "interval_seconds": 10, "timeout_seconds": 0, "tls_warning_days": 400
    });
    let problem = assert_problem(
        app.post("/v1/monitors", Some(&agent), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(
        field_errors(&problem),
        [
            "name",
            "expected_status_codes",
            "keyword",
            "latency_threshold_ms",
            "interval_seconds",
            "timeout_seconds",
            "tls_warning_days"
        ]
    );
    let body = json!({ "organization_id": org, "name": "a", "url": "http://127.0.0.1:9999/", "interval_seconds": 30, "timeout_seconds": 30 });
    let problem = assert_problem(
        app.post("/v1/monitors", Some(&agent), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(field_errors(&problem), ["timeout_seconds"]);
    let body = json!({ "organization_id": Uuid::now_v7(), "name": "a", "url": "http://127.0.0.1:9999/" });
    let problem = assert_problem(
        app.post("/v1/monitors", Some(&agent), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(field_errors(&problem), ["organization_id"]);
    let problem = assert_problem(
        app.get("/v1/monitors?limit=1000", Some(&agent)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(field_errors(&problem), ["limit"]);
}

/// Seeds an incident as the worker records one; returns its id.
pub async fn seed_incident(
    app: &TestApp,
    monitor: Uuid,
    org: Uuid,
    started: DateTime<Utc>,
    confirmed: bool,
    resolved: Option<DateTime<Utc>>,
) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query!(
        r#"INSERT INTO incidents (id, monitor_id, organization_id, kind, started_at, confirmed_at, resolved_at, error_kind,
                                 created_at, updated_at)
           VALUES ($1, $2, $3, 'down', $4, $5, $6, 'timeout', $4, $4)"#,
        id,
        monitor,
        org,
        started,
        confirmed.then_some(started + TimeDelta::seconds(60)),
        resolved,
    )
    .execute(&app.pool)
    .await
    .unwrap();
    id
}

#[tokio::test]
async fn uptime_is_weighted_by_incident_time_without_maintenance_or_gaps() {
    let app = app_allowing_loopback().await;
    let (_, agent) = app.agent().await;
    let (customer, org, _) = app.customer_on("pro").await;
    let monitor = create_monitor(&app, &agent, org, json!({})).await;
    let id: Uuid = monitor["id"].as_str().unwrap().parse().unwrap();
    sqlx::query!("UPDATE monitors SET created_at = $2 WHERE id = $1", id, now() - TimeDelta::days(60))
        .execute(&app.pool)
        .await
        .unwrap();
    let h = |hours: i64| now() - TimeDelta::hours(hours);
    // Within 24 h: 3 h down (resolved), plus the last hour still down (open) = 4 h.
    seed_incident(&app, id, org, h(10), true, Some(h(7))).await;
    let open = seed_incident(&app, id, org, h(1), true, None).await;
    sqlx::query!("UPDATE monitors SET open_incident_id = $2, state = 'down' WHERE id = $1", id, open)
        .execute(&app.pool)
        .await
        .unwrap();
    // A single failure that was never confirmed counts for nothing.
    seed_incident(&app, id, org, h(5), false, Some(h(5) + TimeDelta::minutes(1))).await;
    // Three days ago: 12 h down, of which 4 h inside a maintenance window and 2 h in a gap.
    seed_incident(&app, id, org, h(72), true, Some(h(60))).await;
    sqlx::query!(
        r#"INSERT INTO maintenance_windows (id, title, scope, organization_id, kind, starts_at, ends_at, time_zone, created_at)
           VALUES ($1, 'Banco', 'organization', $2, 'one_off', $3, $4, 'America/Sao_Paulo', $5)"#,
        Uuid::now_v7(),
        org,
        h(72),
        h(68),
        h(80)
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query!(
        "INSERT INTO monitor_gaps (id, monitor_id, from_at, to_at) VALUES ($1, $2, $3, $4)",
        Uuid::now_v7(),
        id,
        h(62),
        h(60)
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let detail = ok_json(app.get(&format!("/v1/monitors/{id}"), Some(&customer)).await, StatusCode::OK).await;
    let day = &detail["uptime"]["24h"];
    assert_eq!(day["observed_seconds"], 24 * 3600);
    assert_eq!(day["down_seconds"], 4 * 3600);
    assert_eq!(day["percent"], 83.333, "20 of 24 hours, to three decimals");
    let week = &detail["uptime"]["7d"];
    // 168 h minus 4 h maintenance and 2 h gap = 162 h observed; down 4 h + 6 h = 10 h.
    assert_eq!(week["observed_seconds"], 162 * 3600);
    assert_eq!(week["down_seconds"], 10 * 3600);
    let pct = week["percent"].as_f64().unwrap();
    assert!((pct - 100.0 * 152.0 / 162.0).abs() < 0.001, "{pct}");
    assert_eq!(detail["uptime"]["30d"]["observed_seconds"], (720 - 6) * 3600);
    assert_eq!(detail["open_incident"]["id"], open.to_string());
    assert_eq!(detail["open_incident"]["duration_seconds"], 3600);
    assert_eq!(detail["recent_incidents"].as_array().unwrap().len(), 3, "confirmed ones only");
}

#[tokio::test]
async fn incidents_list_with_alerts_and_filters_per_organisation() {
    let app = app_allowing_loopback().await;
    let (_, agent) = app.agent().await;
    let (customer_a, org_a, _) = app.customer_on("pro").await;
    let (customer_b, org_b, _) = app.customer_on("pro").await;
    let ma: Uuid = create_monitor(&app, &agent, org_a, json!({})).await["id"].as_str().unwrap().parse().unwrap();
    let mb: Uuid = create_monitor(&app, &agent, org_b, json!({})).await["id"].as_str().unwrap().parse().unwrap();
    let h = |hours: i64| now() - TimeDelta::hours(hours);
    let resolved = seed_incident(&app, ma, org_a, h(30), true, Some(h(27))).await;
    let open = seed_incident(&app, ma, org_a, h(2), true, None).await;
    seed_incident(&app, ma, org_a, h(5), false, Some(h(5))).await;
    let other = seed_incident(&app, mb, org_b, h(3), true, None).await;
    for (kind, at) in
        [("down", h(30) + TimeDelta::minutes(1)), ("down_15m", h(29)), ("down_2h", h(28)), ("recovered", h(27))]
    {
        sqlx::query!(
            "INSERT INTO incident_alerts (id, incident_id, kind, sent_at, recipients) VALUES ($1, $2, $3, $4, 3)",
            Uuid::now_v7(),
            resolved,
            kind,
            at
        )
        .execute(&app.pool)
        .await
        .unwrap();
    }
    // Each kind once per incident: the database refuses a second DOWN.
    let again = sqlx::query!(
        "INSERT INTO incident_alerts (id, incident_id, kind, sent_at) VALUES ($1, $2, 'down', $3)",
        Uuid::now_v7(),
        resolved,
        now()
    )
    .execute(&app.pool)
    .await;
    assert!(again.is_err());

    let list = ok_json(app.get("/v1/incidents", Some(&customer_a)).await, StatusCode::OK).await;
    let items = list["items"].as_array().unwrap();
    let ids: Vec<&str> = items.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [open.to_string(), resolved.to_string()], "newest first, confirmed only, own organisation");
    let kinds: Vec<&str> = items[1]["alerts"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["down", "down_15m", "down_2h", "recovered"]);
    assert_eq!(items[1]["duration_seconds"], 3 * 3600);
    assert_eq!(items[1]["error_kind"], "timeout");

    let open_only = ok_json(app.get("/v1/incidents?open=true", Some(&customer_a)).await, StatusCode::OK).await;
    assert_eq!(open_only["items"].as_array().unwrap().len(), 1);
    let with_single =
        ok_json(app.get("/v1/incidents?include_unconfirmed=true", Some(&customer_a)).await, StatusCode::OK).await;
    assert_eq!(with_single["items"].as_array().unwrap().len(), 3);
    let period = ok_json(
        app.get(
            &format!(
                "/v1/incidents?from={}&to={}",
                (h(31)).to_rfc3339().replace('+', "%2B"),
                h(20).to_rfc3339().replace('+', "%2B")
            ),
            Some(&customer_a),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(period["items"][0]["id"], resolved.to_string());
    assert_eq!(period["items"].as_array().unwrap().len(), 1);
    let paged = ok_json(app.get("/v1/incidents?limit=1", Some(&customer_a)).await, StatusCode::OK).await;
    let cursor = paged["next_cursor"].as_str().unwrap();
    let page2 =
        ok_json(app.get(&format!("/v1/incidents?limit=1&cursor={cursor}"), Some(&customer_a)).await, StatusCode::OK)
            .await;
    assert_eq!(page2["items"][0]["id"], resolved.to_string());

    assert_problem(
        app.get(&format!("/v1/incidents/{other}"), Some(&customer_a)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let theirs = ok_json(app.get(&format!("/v1/incidents/{other}"), Some(&customer_b)).await, StatusCode::OK).await;
    assert_eq!(theirs["monitor_id"], mb.to_string());
    let all = ok_json(app.get(&format!("/v1/incidents?monitor_id={mb}"), Some(&agent)).await, StatusCode::OK).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let problem = assert_problem(
        app.get("/v1/incidents?from=2026-12-03T00:00:00Z&to=2026-12-01T00:00:00Z", Some(&agent)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(field_errors(&problem), ["to"]);
}
