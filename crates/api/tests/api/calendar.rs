//! Calendar and SLA policy administration, and what it does to open tickets.
use crate::helpers::*;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use helpdesk_domain::calendar::{BusinessCalendar, CalendarSpec};
use helpdesk_domain::holidays::ClosedDate;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("not an instant: {v}")).parse().unwrap()
}

#[tokio::test]
async fn holidays_of_a_year_include_the_movable_ones() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let year = ok_json(app.get("/v1/holidays?year=2026", Some(&app.admin_token)).await, StatusCode::OK).await;
    let dates: Vec<&str> = year["days"].as_array().unwrap().iter().map(|d| d["date"].as_str().unwrap()).collect();
    for expected in
        ["2026-01-01", "2026-02-16", "2026-02-17", "2026-04-03", "2026-04-21", "2026-06-04", "2026-11-20", "2026-12-25"]
    {
        assert!(dates.contains(&expected), "{expected} missing from {dates:?}");
    }
    assert!(!dates.contains(&"2026-02-18"), "Ash Wednesday is an ordinary day");
    assert_problem(
        app.get("/v1/holidays?year=abc", Some(&app.admin_token)).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn a_holiday_added_by_an_admin_moves_open_tickets_due_times() {
    // Tuesday 2026-03-10 10:00 local; Pro low: resolution 72 business hours → 8 days ahead.
    let opened: DateTime<Utc> = "2026-03-10T13:00:00Z".parse().unwrap();
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, _, _) = app.customer_on("pro").await;
    let ticket = ok_json(app.post("/v1/tickets", Some(&token), &json!({ "subject": "Dúvida", "description": "Como configuro o DNS?", "category": "technical", "severity": "low" })).await, StatusCode::CREATED).await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    let before = instant(&ticket["sla"]["resolution"]["due_at"]);
    assert_eq!(before, BusinessCalendar::brazil_default().add_business_time(opened, TimeDelta::hours(72)));

    // An hour later the admin closes Monday 16 March (inside the remaining span).
    app.clock.advance(TimeDelta::hours(1));
    let customer_try =
        app.post("/v1/holidays", Some(&token), &json!({ "date": "2026-03-16", "name": "Recesso" })).await;
    assert_problem(customer_try, StatusCode::FORBIDDEN, "admin_only").await;
    let change = ok_json(
        app.post("/v1/holidays", Some(&app.admin_token), &json!({ "date": "2026-03-16", "name": "Recesso" })).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(change["calendar"]["version"], 2);
    assert_eq!(change["tickets_reprojected"], 1);

    let mut spec: CalendarSpec = BusinessCalendar::brazil_default().spec().clone();
    spec.version = 2;
    spec.closed_dates.push(ClosedDate { date: NaiveDate::from_ymd_opt(2026, 3, 16).unwrap(), name: "Recesso".into() });
    let with_recess = BusinessCalendar::new(spec).unwrap();
    let after_ticket = ok_json(app.get(&format!("/v1/tickets/{id}"), Some(&token)).await, StatusCode::OK).await;
    let after = instant(&after_ticket["sla"]["resolution"]["due_at"]);
    // One hour consumed on the old calendar; the remaining 71 h projected on the new one.
    assert_eq!(after, with_recess.add_business_time(opened + TimeDelta::hours(1), TimeDelta::hours(71)));
    assert_eq!(with_recess.business_time_between(before, after), TimeDelta::hours(9), "a whole business day later");
    assert_eq!(after_ticket["sla"]["calendar_version"], 2);

    let explanation = ok_json(app.get(&format!("/v1/tickets/{id}/sla"), Some(&token)).await, StatusCode::OK).await;
    assert_eq!(explanation["resolution"]["calendar_versions"], json!([1, 2]));
    let events = ok_json(app.get(&format!("/v1/tickets/{id}/events"), Some(&token)).await, StatusCode::OK).await;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "sla" && e["data"]["kind"]["type"] == "calendar_changed"),
        "{events}"
    );

    let listed = ok_json(app.get("/v1/holidays?year=2026", Some(&token)).await, StatusCode::OK).await;
    let recess = listed["days"].as_array().unwrap().iter().find(|d| d["date"] == "2026-03-16").unwrap();
    assert_eq!(recess["source"], "added");
    let duplicate =
        app.post("/v1/holidays", Some(&app.admin_token), &json!({ "date": "2026-03-16", "name": "Again" })).await;
    assert_problem(duplicate, StatusCode::CONFLICT, "date_taken").await;

    // Removing it moves the due time back.
    ok_json(
        app.client.delete(app.url("/v1/holidays/2026-03-16")).bearer_auth(&app.admin_token).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let restored = ok_json(app.get(&format!("/v1/tickets/{id}"), Some(&token)).await, StatusCode::OK).await;
    assert_eq!(instant(&restored["sla"]["resolution"]["due_at"]), before);
    assert_problem(
        app.client.delete(app.url("/v1/holidays/2026-03-16")).bearer_auth(&app.admin_token).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_partial_day_counts_only_its_own_hours() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let body =
        json!({ "date": "2026-03-11", "name": "Abre às 14h", "opening_hours": [{ "start": "14:00", "end": "18:00" }] });
    ok_json(app.post("/v1/holidays", Some(&app.admin_token), &body).await, StatusCode::CREATED).await;
    let (token, _, _) = app.customer_on("pro").await;
    // Pro normal: first response 8 h. Tue 10–18 = 8 h exactly: due Tue 18:00 local.
    // Pro low: 16 h → Tue 8 h + Wed 14–18 4 h + Thu 09–13 4 h → Thu 13:00 local (16:00Z).
    let ticket = ok_json(
        app.post(
            "/v1/tickets",
            Some(&token),
            &json!({ "subject": "x", "description": "y", "category": "technical", "severity": "low" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        instant(&ticket["sla"]["first_response"]["due_at"]),
        "2026-03-12T16:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    let bad = app
        .post(
            "/v1/holidays",
            Some(&app.admin_token),
            &json!({ "date": "2026-03-12", "name": "x", "opening_hours": [{ "start": "18:00", "end": "14:00" }] }),
        )
        .await;
    assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let bad_time = app
        .post(
            "/v1/holidays",
            Some(&app.admin_token),
            &json!({ "date": "2026-03-12", "name": "x", "opening_hours": [{ "start": "2pm", "end": "18:00" }] }),
        )
        .await;
    assert_eq!(
        assert_problem(bad_time, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await["errors"][0]["field"],
        "opening_hours[0].start"
    );
}

#[tokio::test]
async fn changing_the_sla_targets_retargets_open_tickets_keeping_consumed_time() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, _, _) = app.customer_on("pro").await;
    let ticket = ok_json(
        app.post(
            "/v1/tickets",
            Some(&token),
            &json!({ "subject": "x", "description": "y", "category": "technical", "severity": "high" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    let policy = ok_json(app.get("/v1/sla-policy", Some(&app.admin_token)).await, StatusCode::OK).await;
    assert_eq!(policy["version"], 1);
    let mut rows = policy["rows"].as_array().unwrap().clone();
    for row in rows.iter_mut().filter(|r| r["plan"] == "pro" && r["severity"] == "high") {
        row["first_response_minutes"] = json!(120); // 4 h → 2 h
    }
    app.clock.advance(TimeDelta::minutes(30));
    let changed =
        ok_json(app.put("/v1/sla-policy", &app.admin_token, &json!({ "rows": rows })).await, StatusCode::OK).await;
    assert_eq!((changed["policy"]["version"].as_i64(), changed["tickets_reprojected"].as_i64()), (Some(2), Some(1)));
    let after = ok_json(app.get(&format!("/v1/tickets/{id}"), Some(&token)).await, StatusCode::OK).await;
    // 2 h from 10:00 local, 30 minutes of which were consumed under the old target.
    assert_eq!(
        instant(&after["sla"]["first_response"]["due_at"]),
        "2026-03-10T15:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    let invalid = app.put("/v1/sla-policy", &app.admin_token, &json!({ "rows": [{ "plan": "pro", "mode": "business", "first_response_minutes": 0, "resolution_minutes": 60 }] })).await;
    assert_eq!(
        assert_problem(invalid, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await["errors"][0]["field"],
        "rows[0].first_response"
    );
}

/// Found by Schemathesis: a target of i64::MAX - 1 minutes made `TimeDelta::minutes` panic, and
/// the connection closed without an answer.
#[tokio::test]
async fn a_target_too_long_for_a_duration_is_a_422_not_a_dropped_connection() {
    let app = spawn_app().await;
    let row =
        json!({ "plan": "pro", "mode": "business", "first_response_minutes": 60, "resolution_minutes": i64::MAX - 1 });
    let answer = app.put("/v1/sla-policy", &app.admin_token, &json!({ "rows": [row] })).await;
    let problem = assert_problem(answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "rows[0].resolution", "{problem}");
}

#[tokio::test]
async fn opening_hours_with_a_lunch_break_count_only_open_time() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await; // Tuesday 10:00 local
    let split = json!([{ "start": "09:00", "end": "12:00" }, { "start": "13:00", "end": "18:00" }]);
    let hours = json!({ "monday": split, "tuesday": split, "wednesday": split, "thursday": split, "friday": split });
    let backwards = app
        .put(
            "/v1/calendar/opening-hours",
            &app.admin_token,
            &json!({ "monday": [{ "start": "12:00", "end": "09:00" }] }),
        )
        .await;
    assert_eq!(
        assert_problem(backwards, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await["errors"][0]["field"],
        "calendar"
    );
    let changed = ok_json(app.put("/v1/calendar/opening-hours", &app.admin_token, &hours).await, StatusCode::OK).await;
    assert_eq!(changed["calendar"]["version"], 2);
    assert_eq!(changed["calendar"]["weekly_hours"]["tuesday"], split);
    assert_eq!(changed["calendar"]["weekly_hours"]["saturday"], json!([]));

    // Pro critical, first response 2 h from 10:00: 10–12 is exactly 2 h → due 12:00 local.
    // Pro high, 4 h: 10–12 (2 h), lunch, 13–15 (2 h) → due 15:00 local (18:00Z).
    let (token, _, _) = app.customer_on("pro").await;
    let ticket = ok_json(
        app.post(
            "/v1/tickets",
            Some(&token),
            &json!({ "subject": "x", "description": "y", "category": "technical", "severity": "high" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        instant(&ticket["sla"]["first_response"]["due_at"]),
        "2026-03-10T18:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(ticket["sla"]["calendar_version"], 2);
    let current = ok_json(app.get("/v1/calendar", Some(&token)).await, StatusCode::OK).await;
    assert_eq!((current["version"].as_i64(), current["time_zone"].as_str()), (Some(2), Some("America/Sao_Paulo")));
}
