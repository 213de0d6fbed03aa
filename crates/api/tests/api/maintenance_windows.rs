//! Maintenance windows (R12) over real HTTP: admins schedule one-off and weekly windows on the
//! business calendar's wall clock (São Paulo, UTC-3), customers list the upcoming ones that
//! concern them, cancellation.
//!
//! The clock stands at Thursday 2026-12-03 12:00Z (09:00 in São Paulo).

use crate::helpers::{TestApp, assert_problem, ok_json};
use crate::monitors::{app_allowing_loopback, create_monitor};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

async fn schedule(app: &TestApp, body: Value) -> Value {
    ok_json(app.post("/v1/maintenance-windows", Some(&app.admin_token), &body).await, StatusCode::CREATED).await
}

async fn refused(app: &TestApp, body: Value) -> Vec<String> {
    let problem = assert_problem(
        app.post("/v1/maintenance-windows", Some(&app.admin_token), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}

fn occurrence(window: &Value, i: usize) -> (String, String) {
    let o = &window["next_occurrences"][i];
    (o["starts_at"].as_str().unwrap().to_owned(), o["ends_at"].as_str().unwrap().to_owned())
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_owned(), b.to_owned())
}

#[tokio::test]
async fn weekly_windows_cross_midnight_and_span_the_weekend_on_the_local_clock() {
    let app = app_allowing_loopback().await;
    // Tuesday 23:00 for 3 h, local: Wednesday 02:00–05:00Z.
    let night = schedule(
        &app,
        json!({ "title": "Backup", "scope": "all", "kind": "weekly", "weekday": "tuesday", "start_time": "23:00", "duration_minutes": 180 }),
    )
    .await;
    assert_eq!(night["time_zone"], "America/Sao_Paulo");
    assert_eq!(night["weekly"]["end_weekday"], "wednesday");
    assert_eq!(night["weekly"]["end_time"], "02:00");
    assert_eq!(occurrence(&night, 0), pair("2026-12-09T02:00:00Z", "2026-12-09T05:00:00Z"));
    assert_eq!(occurrence(&night, 1), pair("2026-12-16T02:00:00Z", "2026-12-16T05:00:00Z"));
    assert_eq!(night["next_occurrences"].as_array().unwrap().len(), 5);

    // Friday 22:00 to Monday 06:00, given by its end.
    let weekend = schedule(
        &app,
        json!({ "title": "Migração", "scope": "all", "kind": "weekly", "weekday": "friday", "start_time": "22:00",
                "end_weekday": "monday", "end_time": "06:00" }),
    )
    .await;
    assert_eq!(weekend["weekly"]["duration_minutes"], 56 * 60);
    assert_eq!(occurrence(&weekend, 0), pair("2026-12-05T01:00:00Z", "2026-12-07T09:00:00Z"));

    // A one-off window, half-open.
    let once = schedule(
        &app,
        json!({ "title": "Troca de disco", "scope": "all", "kind": "one_off",
                "starts_at": "2026-12-05T02:00:00Z", "ends_at": "2026-12-05T06:00:00Z" }),
    )
    .await;
    assert_eq!(once["weekly"], Value::Null);
    assert_eq!(occurrence(&once, 0), pair("2026-12-05T02:00:00Z", "2026-12-05T06:00:00Z"));
    let got = ok_json(
        app.get(&format!("/v1/maintenance-windows/{}", once["id"].as_str().unwrap()), Some(&app.admin_token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(got["title"], "Troca de disco");
}

#[tokio::test]
async fn bad_windows_name_the_field() {
    let app = app_allowing_loopback().await;
    let one_off = |starts: &str, ends: &str| json!({ "title": "x", "scope": "all", "kind": "one_off", "starts_at": starts, "ends_at": ends });
    assert_eq!(refused(&app, one_off("2026-12-05T06:00:00Z", "2026-12-05T02:00:00Z")).await, ["ends_at"]);
    assert_eq!(
        refused(&app, one_off("2026-12-01T02:00:00Z", "2026-12-01T06:00:00Z")).await,
        ["ends_at"],
        "in the past"
    );
    assert_eq!(refused(&app, one_off("2026-12-05T02:00:00Z", "2027-03-05T06:00:00Z")).await, ["ends_at"], "too long");
    assert_eq!(
        refused(&app, json!({ "title": "x", "scope": "all", "kind": "one_off" })).await,
        ["starts_at", "ends_at"]
    );
    let weekly = |extra: Value| {
        let mut body = json!({ "title": "x", "scope": "all", "kind": "weekly" });
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    assert_eq!(refused(&app, weekly(json!({ "start_time": "23:00", "duration_minutes": 60 }))).await, ["weekday"]);
    assert_eq!(
        refused(&app, weekly(json!({ "weekday": "monday", "start_time": "25:00", "duration_minutes": 60 }))).await,
        ["start_time"]
    );
    assert_eq!(
        refused(&app, weekly(json!({ "weekday": "monday", "start_time": "23:00", "duration_minutes": 0 }))).await,
        ["duration_minutes"]
    );
    assert_eq!(
        refused(&app, weekly(json!({ "weekday": "monday", "start_time": "23:00", "duration_minutes": 10081 }))).await,
        ["duration_minutes"]
    );
    assert_eq!(
        refused(&app, weekly(json!({ "weekday": "monday", "start_time": "23:00" }))).await,
        ["duration_minutes"]
    );
    assert_eq!(
        refused(&app, weekly(json!({ "weekday": "monday", "start_time": "23:00", "duration_minutes": 60, "end_weekday": "tuesday", "end_time": "01:00" }))).await,
        ["duration_minutes"]
    );
    assert_eq!(
        refused(
            &app,
            weekly(json!({ "weekday": "monday", "start_time": "23:00", "end_weekday": "monday", "end_time": "23:00" }))
        )
        .await,
        ["end_time"]
    );
    assert_eq!(
        refused(&app, weekly(json!({ "weekday": "monday", "start_time": "23:00", "duration_minutes": 60, "starts_at": "2026-12-05T02:00:00Z" }))).await,
        ["starts_at"]
    );
    let scoped = |scope: &str, extra: Value| {
        let mut body = one_off("2026-12-05T02:00:00Z", "2026-12-05T06:00:00Z");
        body["scope"] = json!(scope);
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    assert_eq!(refused(&app, scoped("organization", json!({}))).await, ["organization_id"]);
    assert_eq!(
        refused(&app, scoped("organization", json!({ "organization_id": Uuid::now_v7() }))).await,
        ["organization_id"]
    );
    assert_eq!(refused(&app, scoped("monitors", json!({ "monitor_ids": [] }))).await, ["monitor_ids"]);
    assert_eq!(refused(&app, scoped("monitors", json!({ "monitor_ids": [Uuid::now_v7()] }))).await, ["monitor_ids"]);
    assert_eq!(refused(&app, scoped("all", json!({ "monitor_ids": [Uuid::now_v7()] }))).await, ["monitor_ids"]);
    assert_eq!(refused(&app, json!({ "title": " ", "scope": "all", "kind": "weekly", "weekday": "monday", "start_time": "23:00", "duration_minutes": 5 })).await, ["title"]);
}

#[tokio::test]
async fn only_admins_schedule_and_cancel() {
    let app = app_allowing_loopback().await;
    let (_, agent) = app.agent().await;
    let (customer, _, _) = app.customer_on("pro").await;
    let body = json!({ "title": "x", "scope": "all", "kind": "one_off", "starts_at": "2026-12-05T02:00:00Z", "ends_at": "2026-12-05T06:00:00Z" });
    for token in [&agent, &customer] {
        assert_problem(
            app.post("/v1/maintenance-windows", Some(token), &body).await,
            StatusCode::FORBIDDEN,
            "admin_only",
        )
        .await;
    }
    let window = schedule(&app, body).await;
    let cancel = format!("/v1/maintenance-windows/{}/cancel", window["id"].as_str().unwrap());
    assert_problem(app.post(&cancel, Some(&agent), &json!({})).await, StatusCode::FORBIDDEN, "admin_only").await;
    let cancelled = ok_json(app.post(&cancel, Some(&app.admin_token), &json!({})).await, StatusCode::OK).await;
    assert!(cancelled["cancelled_at"].is_string());
    assert!(cancelled["next_occurrences"].as_array().unwrap().is_empty());
    assert_problem(
        app.post(&cancel, Some(&app.admin_token), &json!({})).await,
        StatusCode::CONFLICT,
        "window_cancelled",
    )
    .await;
    assert_problem(
        app.post(&format!("/v1/maintenance-windows/{}/cancel", Uuid::now_v7()), Some(&app.admin_token), &json!({}))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // Staff list: cancelled ones only on request.
    let listed = ok_json(app.get("/v1/maintenance-windows", Some(&agent)).await, StatusCode::OK).await;
    assert!(listed["items"].as_array().unwrap().is_empty());
    let all =
        ok_json(app.get("/v1/maintenance-windows?include_cancelled=true", Some(&agent)).await, StatusCode::OK).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn customers_list_the_upcoming_windows_that_concern_them() {
    let app = app_allowing_loopback().await;
    let (_, agent) = app.agent().await;
    let (customer, org, _) = app.customer_on("pro").await;
    let (other_org, _) = app.organization_on("pro").await;
    let mine: Uuid = create_monitor(&app, &agent, org, json!({})).await["id"].as_str().unwrap().parse().unwrap();
    let theirs: Uuid =
        create_monitor(&app, &agent, other_org, json!({})).await["id"].as_str().unwrap().parse().unwrap();
    let one_off = |title: &str, scope: Value| {
        let mut body = json!({ "title": title, "kind": "one_off", "starts_at": "2026-12-05T02:00:00Z", "ends_at": "2026-12-05T06:00:00Z" });
        body.as_object_mut().unwrap().extend(scope.as_object().unwrap().clone());
        body
    };
    schedule(&app, one_off("everyone", json!({ "scope": "all" }))).await;
    schedule(&app, one_off("my org", json!({ "scope": "organization", "organization_id": org }))).await;
    let other =
        schedule(&app, one_off("other org", json!({ "scope": "organization", "organization_id": other_org }))).await;
    let shared =
        schedule(&app, one_off("my monitor", json!({ "scope": "monitors", "monitor_ids": [mine, theirs] }))).await;
    schedule(&app, one_off("their monitor", json!({ "scope": "monitors", "monitor_ids": [theirs] }))).await;
    schedule(&app, json!({ "title": "weekly", "scope": "all", "kind": "weekly", "weekday": "sunday", "start_time": "00:00", "duration_minutes": 240 })).await;
    let cancelled = schedule(&app, one_off("cancelled", json!({ "scope": "all" }))).await;
    ok_json(
        app.post(
            &format!("/v1/maintenance-windows/{}/cancel", cancelled["id"].as_str().unwrap()),
            Some(&app.admin_token),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    // A window that is over by now.
    sqlx::query!(
        r#"INSERT INTO maintenance_windows (id, title, scope, kind, starts_at, ends_at, time_zone, created_at)
           VALUES ($1, 'past', 'all', 'one_off', '2026-12-01T02:00:00Z', '2026-12-01T06:00:00Z', 'America/Sao_Paulo', '2026-11-30T00:00:00Z')"#,
        Uuid::now_v7()
    )
    .execute(&app.pool)
    .await
    .unwrap();

    let listed = ok_json(app.get("/v1/maintenance-windows", Some(&customer)).await, StatusCode::OK).await;
    let mut titles: Vec<&str> =
        listed["items"].as_array().unwrap().iter().map(|w| w["title"].as_str().unwrap()).collect();
    titles.sort_unstable();
    assert_eq!(titles, ["everyone", "my monitor", "my org", "weekly"]);
    let seen = listed["items"].as_array().unwrap().iter().find(|w| w["title"] == "my monitor").unwrap();
    assert_eq!(seen["monitor_ids"], json!([mine]), "another organisation's monitors stay hidden");
    // Even asking for everything, a customer gets the upcoming ones only.
    let asked = ok_json(
        app.get("/v1/maintenance-windows?upcoming=false&include_cancelled=true", Some(&customer)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(asked["items"].as_array().unwrap().len(), 4);
    assert_problem(
        app.get(&format!("/v1/maintenance-windows/{}", other["id"].as_str().unwrap()), Some(&customer)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    ok_json(
        app.get(&format!("/v1/maintenance-windows/{}", shared["id"].as_str().unwrap()), Some(&customer)).await,
        StatusCode::OK,
    )
    .await;
    // Staff see all of them, the past one included; `upcoming` narrows.
    let staff = ok_json(app.get("/v1/maintenance-windows?limit=100", Some(&agent)).await, StatusCode::OK).await;
    assert_eq!(staff["items"].as_array().unwrap().len(), 7);
    let upcoming = ok_json(app.get("/v1/maintenance-windows?upcoming=true", Some(&agent)).await, StatusCode::OK).await;
    assert_eq!(upcoming["items"].as_array().unwrap().len(), 6);
    let paged = ok_json(app.get("/v1/maintenance-windows?limit=2", Some(&agent)).await, StatusCode::OK).await;
    assert!(paged["next_cursor"].is_string());
}

/// Integrations hear of a scheduled window (issue 13): a window over every site reaches every
/// subscription, one over chosen monitors reaches only their organisation's subscriptions.
#[tokio::test]
async fn scheduling_a_window_announces_it_to_the_subscriptions_it_concerns() {
    let app = app_allowing_loopback().await;
    let (org_a, _) = app.organization_on("pro").await;
    let (org_b, _) = app.organization_on("pro").await;
    let subscribe = |org: Option<Uuid>| {
        let app = &app;
        async move {
            let body = json!({ "url": "http://127.0.0.1:9999/hooks", "event_types": ["maintenance.scheduled"], "organization_id": org });
            let created =
                ok_json(app.post("/v1/webhooks", Some(&app.admin_token), &body).await, StatusCode::CREATED).await;
            created["id"].as_str().unwrap().to_owned()
        }
    };
    let (everything, only_a, only_b) =
        (subscribe(None).await, subscribe(Some(org_a)).await, subscribe(Some(org_b)).await);
    let monitor_a = create_monitor(&app, &app.admin_token, org_a, json!({})).await;

    let all = schedule(
        &app,
        json!({ "title": "Rede", "scope": "all", "kind": "one_off", "starts_at": "2026-12-05T03:00:00Z", "ends_at": "2026-12-05T05:00:00Z" }),
    )
    .await;
    let weekly_a = schedule(
        &app,
        json!({ "title": "Backup", "scope": "monitors", "monitor_ids": [monitor_a["id"]], "kind": "weekly",
                "weekday": "saturday", "start_time": "23:00", "duration_minutes": 120 }),
    )
    .await;

    let delivered = |id: String| {
        let app = &app;
        async move {
            let page = ok_json(
                app.get(&format!("/v1/webhooks/{id}/deliveries"), Some(&app.admin_token)).await,
                StatusCode::OK,
            )
            .await;
            page["items"].as_array().unwrap().iter().filter(|d| d["event_type"] == "maintenance.scheduled").count()
        }
    };
    assert_eq!(delivered(everything).await, 2, "an unscoped subscription hears of both windows");
    assert_eq!(delivered(only_a).await, 2, "org A hears of the window over every site and of its monitor's");
    assert_eq!(delivered(only_b).await, 1, "org B hears only of the window over every site");

    let payloads: Vec<Value> =
        sqlx::query_scalar("SELECT payload FROM webhook_events WHERE type = 'maintenance.scheduled'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let of = |window: &Value| payloads.iter().find(|p| p["window_id"] == window["id"]).cloned().unwrap();
    let (all, weekly_a) = (of(&all), of(&weekly_a));
    assert_eq!(all["starts_at"], "2026-12-05T03:00:00Z");
    assert_eq!(all["organization_id"], Value::Null);
    assert_eq!(weekly_a["monitor_id"], monitor_a["id"]);
    assert_eq!(weekly_a["organization_id"], json!(org_a));
    assert_eq!(weekly_a["recurrence"], "FREQ=WEEKLY;BYDAY=SA");
    // Saturday 23:00 in São Paulo is Sunday 02:00Z.
    assert_eq!(weekly_a["starts_at"], "2026-12-06T02:00:00Z");
}
