//! Consultancy meetings (R13) over real HTTP: slots, booking rules, the database's refusal of
//! overlaps under concurrency, quota per local month, idempotency, reschedule, cancel, invites.
//!
//! The clock stands at Tuesday 2026-12-01 09:00 in São Paulo (12:00Z) unless a test moves it.

use crate::helpers::{PASSWORD, TestApp, assert_problem, ok_json, spawn_app_at};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

const TUESDAY_9AM: &str = "2026-12-01T12:00:00Z";

/// A new agent flagged as a consultant: (id, token).
async fn consultant(app: &TestApp) -> (Uuid, String) {
    let email = format!("consultor-{}@kadix.test", Uuid::now_v7().simple());
    let user = ok_json(
        app.post(
            "/v1/users",
            Some(&app.admin_token),
            &json!({ "email": email, "name": "Consultor", "role": "agent", "password": PASSWORD }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id: Uuid = user["id"].as_str().unwrap().parse().unwrap();
    ok_json(app.put(&format!("/v1/consultants/{id}"), &app.admin_token, &json!({})).await, StatusCode::OK).await;
    let token = app.login(&email, PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    (id, token)
}

async fn book(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.post("/v1/meetings", Some(token), &body).await
}

fn at(start: &str, minutes: i64, consultant: Option<Uuid>) -> Value {
    json!({ "starts_at": start, "duration_minutes": minutes, "consultant_id": consultant, "topic": "Revisão do CDN" })
}

async fn slots(app: &TestApp, token: &str, query: &str) -> Value {
    ok_json(app.get(&format!("/v1/meetings/slots?{query}"), Some(token)).await, StatusCode::OK).await
}

fn local_starts(list: &Value) -> Vec<String> {
    list["slots"].as_array().unwrap().iter().map(|s| s["local_start"].as_str().unwrap().to_owned()).collect()
}

/// Asserts a 422 whose field error names `rule`.
async fn assert_rule(response: reqwest::Response, field: &str, rule: &str) {
    let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with(&format!("{rule}:")), "expected rule {rule}: {problem}");
}

#[tokio::test]
async fn weekends_holidays_and_closed_days_give_no_slots_and_a_partial_day_only_its_open_part() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    consultant(&app).await;
    let (customer, _, _) = app.customer_on("premium").await;
    let admin = &app.admin_token;
    ok_json(
        app.post("/v1/holidays", Some(admin), &json!({ "date": "2026-12-10", "name": "Inventário" })).await,
        StatusCode::CREATED,
    )
    .await;
    let partial =
        json!({ "date": "2026-12-11", "name": "Abre às 14h", "opening_hours": [{ "start": "14:00", "end": "18:00" }] });
    ok_json(app.post("/v1/holidays", Some(admin), &partial).await, StatusCode::CREATED).await;

    let list = slots(&app, &customer, "from=2026-12-04&to=2026-12-11&duration=45").await;
    assert_eq!(list["time_zone"], "America/Sao_Paulo");
    let starts = local_starts(&list);
    let on = |day: &str| starts.iter().filter(|s| s.starts_with(day)).cloned().collect::<Vec<_>>();
    for closed in ["2026-12-05", "2026-12-06", "2026-12-10"] {
        assert!(on(closed).is_empty(), "{closed} is closed: {:?}", on(closed));
    }
    // A normal day: 09:00 to 17:15, the last start whose 45 minutes end by 18:00.
    let friday = on("2026-12-04");
    assert_eq!(friday.first().map(String::as_str), Some("2026-12-04T09:00"));
    assert_eq!(friday.last().map(String::as_str), Some("2026-12-04T17:15"));
    assert_eq!(friday.len(), 34);
    // The partial day: only its afternoon.
    let partial_day = on("2026-12-11");
    assert_eq!(partial_day.first().map(String::as_str), Some("2026-12-11T14:00"));
    assert_eq!(partial_day.last().map(String::as_str), Some("2026-12-11T17:15"));
    // Instants are UTC; the local time is the calendar's.
    let first = &list["slots"][0];
    assert_eq!(first["starts_at"], "2026-12-04T12:00:00Z");
    assert_eq!(first["ends_at"], "2026-12-04T12:45:00Z");
    // Christmas is a national holiday.
    let christmas = slots(&app, &customer, "from=2026-12-25&to=2026-12-25").await;
    assert!(local_starts(&christmas).is_empty());
    // The closed days refuse a crafted POST too, each naming its rule.
    assert_rule(book(&app, &customer, at("2026-12-05T13:00:00Z", 45, None)).await, "starts_at", "weekend").await;
    assert_rule(book(&app, &customer, at("2026-12-10T13:00:00Z", 45, None)).await, "starts_at", "closed_day").await;
    assert_rule(
        book(&app, &customer, at("2026-12-11T13:00:00Z", 45, None)).await,
        "starts_at",
        "outside_business_hours",
    )
    .await;
    assert_rule(
        book(&app, &customer, at("2026-12-04T20:30:00Z", 45, None)).await,
        "starts_at",
        "outside_business_hours",
    )
    .await;
    assert_rule(book(&app, &customer, at("2026-12-04T13:05:00Z", 45, None)).await, "starts_at", "off_grid").await;
    assert_rule(
        book(&app, &customer, at("2026-12-04T13:00:00Z", 50, None)).await,
        "duration_minutes",
        "duration_too_long",
    )
    .await;
    ok_json(book(&app, &customer, at("2026-12-04T20:15:00Z", 45, None)).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn notice_and_horizon_hold_on_listing_and_on_a_crafted_post() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    consultant(&app).await;
    let (customer, _, _) = app.customer_on("premium").await;
    let list = slots(&app, &customer, "duration=30").await;
    let starts = local_starts(&list);
    // Two business hours after 09:00, and no later than 30 days from now (Dec 31, 09:00).
    assert_eq!(starts.first().map(String::as_str), Some("2026-12-01T11:00"));
    assert_eq!(starts.last().map(String::as_str), Some("2026-12-31T09:00"));
    assert_rule(book(&app, &customer, at("2026-12-01T13:45:00Z", 30, None)).await, "starts_at", "too_soon").await;
    assert_rule(book(&app, &customer, at("2026-12-31T12:15:00Z", 30, None)).await, "starts_at", "too_far").await;
    ok_json(book(&app, &customer, at("2026-12-01T14:00:00Z", 30, None)).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn fifty_parallel_bookings_of_one_consultant_and_slot_give_one_201_and_49_409() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    let (consultant_id, _) = consultant(&app).await;
    let mut customers = Vec::new();
    for chunk in 0..5 {
        let made = join_all((0..10).map(|_| app.customer_on("premium"))).await;
        customers.extend(made.into_iter().map(|(token, _, _)| token));
        assert_eq!(customers.len(), (chunk + 1) * 10);
    }
    let body = at("2026-12-03T13:00:00Z", 45, Some(consultant_id));
    let answers = join_all(customers.iter().map(|token| book(&app, token, body.clone()))).await;
    let mut created = 0;
    for answer in answers {
        match answer.status() {
            StatusCode::CREATED => created += 1,
            _ => {
                assert_problem(answer, StatusCode::CONFLICT, "slot_taken").await;
            }
        }
    }
    assert_eq!(created, 1, "exactly one booking wins");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM meetings WHERE consultant_id = $1")
        .bind(consultant_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    // The losers were refused by the exclusion constraint (the booking never checks overlaps
    // itself); the constraint refuses a direct overlapping insert the same way.
    let booked_by: Uuid = sqlx::query_scalar("SELECT booked_by FROM meetings WHERE consultant_id = $1")
        .bind(consultant_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let (_, other_org, _) = app.customer_on("premium").await;
    let direct = sqlx::query(
        "INSERT INTO meetings (id, organization_id, consultant_id, booked_by, topic, starts_at, ends_at, meeting_url, reminders_from, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'x', '2026-12-03T13:30:00Z', '2026-12-03T13:45:00Z', 'https://x', now(), now(), now())",
    )
    .bind(Uuid::now_v7())
    .bind(other_org)
    .bind(consultant_id)
    .bind(booked_by)
    .execute(&app.pool)
    .await;
    let error = direct.expect_err("a partial overlap is refused by the database");
    assert_eq!(error.as_database_error().and_then(|e| e.constraint()), Some("meetings_consultant_no_overlap"));
}

#[tokio::test]
async fn a_partial_overlap_is_refused_and_back_to_back_meetings_are_accepted() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    let (c, _) = consultant(&app).await;
    let (one, _, _) = app.customer_on("premium").await;
    let (two, _, _) = app.customer_on("premium").await;
    let (three, _, _) = app.customer_on("premium").await;
    ok_json(book(&app, &one, at("2026-12-03T13:00:00Z", 45, Some(c))).await, StatusCode::CREATED).await;
    assert_problem(book(&app, &two, at("2026-12-03T13:30:00Z", 30, Some(c))).await, StatusCode::CONFLICT, "slot_taken")
        .await;
    assert_problem(book(&app, &two, at("2026-12-03T12:45:00Z", 30, Some(c))).await, StatusCode::CONFLICT, "slot_taken")
        .await;
    ok_json(book(&app, &two, at("2026-12-03T13:45:00Z", 30, Some(c))).await, StatusCode::CREATED).await;
    ok_json(book(&app, &three, at("2026-12-03T12:30:00Z", 30, Some(c))).await, StatusCode::CREATED).await;
    // The organisation itself is never in two meetings at once, even with another consultant.
    let (other, _) = consultant(&app).await;
    assert_problem(
        book(&app, &one, at("2026-12-03T13:15:00Z", 15, Some(other))).await,
        StatusCode::CONFLICT,
        "organization_busy",
    )
    .await;
    // Taken slots disappear from the listing for that consultant.
    let list = slots(&app, &one, &format!("from=2026-12-03&to=2026-12-03&duration=15&consultant={c}")).await;
    let starts = local_starts(&list);
    for busy in ["2026-12-03T09:30", "2026-12-03T10:00", "2026-12-03T10:30", "2026-12-03T11:00"] {
        assert!(!starts.contains(&busy.to_owned()), "{busy} is taken: {starts:?}");
    }
    assert!(starts.contains(&"2026-12-03T11:15".to_owned()));
}

#[tokio::test]
async fn any_consultant_takes_the_next_free_one_and_409_only_when_none_is_left() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    let (a, _) = consultant(&app).await;
    let (b, _) = consultant(&app).await;
    let mut chosen = Vec::new();
    for _ in 0..2 {
        let (token, _, _) = app.customer_on("premium").await;
        let meeting =
            ok_json(book(&app, &token, at("2026-12-03T13:00:00Z", 45, None)).await, StatusCode::CREATED).await;
        chosen.push(meeting["consultant"]["id"].as_str().unwrap().parse::<Uuid>().unwrap());
    }
    chosen.sort();
    let mut both = vec![a, b];
    both.sort();
    assert_eq!(chosen, both, "each consultant took one");
    let (late, _, _) = app.customer_on("premium").await;
    assert_problem(book(&app, &late, at("2026-12-03T13:00:00Z", 45, None)).await, StatusCode::CONFLICT, "slot_taken")
        .await;
    let list = slots(&app, &late, "from=2026-12-03&to=2026-12-03&duration=45").await;
    assert!(!local_starts(&list).contains(&"2026-12-03T10:00".to_owned()));
}

#[tokio::test]
async fn a_quota_at_n_minus_1_with_two_parallel_requests_gives_exactly_one_success() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    consultant(&app).await;
    consultant(&app).await;
    let (customer, _, _) = app.customer_on("premium").await; // 2 meetings a month
    ok_json(book(&app, &customer, at("2026-12-03T13:00:00Z", 45, None)).await, StatusCode::CREATED).await;
    let answers = join_all([
        book(&app, &customer, at("2026-12-04T13:00:00Z", 45, None)),
        book(&app, &customer, at("2026-12-07T13:00:00Z", 45, None)),
    ])
    .await;
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    statuses.sort();
    assert_eq!(statuses, vec![201, 409]);
    for answer in answers {
        if answer.status() == StatusCode::CONFLICT {
            assert_problem(answer, StatusCode::CONFLICT, "meeting_quota_exhausted").await;
        }
    }
}

#[tokio::test]
async fn a_pro_quota_counts_per_local_month_and_an_early_cancellation_gives_it_back() {
    // 23:30 on November 30th in São Paulo is already December 1st in UTC.
    let app = spawn_app_at("2026-12-01T02:30:00Z").await;
    consultant(&app).await;
    let (customer, _, _) = app.customer_on("pro").await; // 1 meeting a month
    ok_json(book(&app, &customer, at("2026-12-01T14:00:00Z", 45, None)).await, StatusCode::CREATED).await;
    assert_problem(
        book(&app, &customer, at("2026-12-02T14:00:00Z", 45, None)).await,
        StatusCode::CONFLICT,
        "meeting_quota_exhausted",
    )
    .await;
    // Half an hour later it is December locally too: a new month, a new meeting.
    app.clock.set("2026-12-01T03:00:00Z".parse().unwrap());
    let december =
        ok_json(book(&app, &customer, at("2026-12-02T14:00:00Z", 45, None)).await, StatusCode::CREATED).await;
    assert_problem(
        book(&app, &customer, at("2026-12-03T14:00:00Z", 45, None)).await,
        StatusCode::CONFLICT,
        "meeting_quota_exhausted",
    )
    .await;
    // Cancelled well before the cut-off, it no longer counts.
    let id = december["id"].as_str().unwrap();
    let cancelled =
        ok_json(app.post(&format!("/v1/meetings/{id}/cancel"), Some(&customer), &json!({})).await, StatusCode::OK)
            .await;
    assert_eq!(cancelled["counts_toward_quota"], false);
    ok_json(book(&app, &customer, at("2026-12-03T14:00:00Z", 45, None)).await, StatusCode::CREATED).await;
}

#[tokio::test]
async fn an_essencial_organisation_gets_plan_not_entitled() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    consultant(&app).await;
    let (customer, _, _) = app.customer_on("essencial").await;
    let problem = assert_problem(
        book(&app, &customer, at("2026-12-03T13:00:00Z", 45, None)).await,
        StatusCode::FORBIDDEN,
        "plan_not_entitled",
    )
    .await;
    assert_eq!(problem["missing_entitlement"], "consultancy_meetings");
    assert_problem(app.get("/v1/meetings/slots", Some(&customer)).await, StatusCode::FORBIDDEN, "plan_not_entitled")
        .await;
}

#[tokio::test]
async fn rescheduling_into_a_taken_slot_leaves_the_original_intact() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    let (c, _) = consultant(&app).await;
    let (one, _, _) = app.customer_on("premium").await;
    let (two, _, _) = app.customer_on("premium").await;
    ok_json(book(&app, &one, at("2026-12-03T13:00:00Z", 45, Some(c))).await, StatusCode::CREATED).await;
    let mine = ok_json(book(&app, &two, at("2026-12-03T17:00:00Z", 45, Some(c))).await, StatusCode::CREATED).await;
    let id = mine["id"].as_str().unwrap();
    let path = format!("/v1/meetings/{id}/reschedule");
    assert_problem(
        app.post(&path, Some(&two), &json!({ "starts_at": "2026-12-03T13:15:00Z" })).await,
        StatusCode::CONFLICT,
        "slot_taken",
    )
    .await;
    let unchanged = ok_json(app.get(&format!("/v1/meetings/{id}"), Some(&two)).await, StatusCode::OK).await;
    assert_eq!(unchanged["starts_at"], "2026-12-03T17:00:00Z");
    assert_eq!(unchanged["sequence"], 0);
    assert_eq!(unchanged["status"], "confirmed");
    // Rules apply to the new slot as well.
    assert_rule(
        app.post(&path, Some(&two), &json!({ "starts_at": "2026-12-05T13:00:00Z" })).await,
        "starts_at",
        "weekend",
    )
    .await;

    let moved =
        ok_json(app.post(&path, Some(&two), &json!({ "starts_at": "2026-12-03T18:00:00Z" })).await, StatusCode::OK)
            .await;
    assert_eq!(moved["starts_at"], "2026-12-03T18:00:00Z");
    assert_eq!(moved["sequence"], 1);
    assert_eq!(moved["meeting_url"], mine["meeting_url"], "the link is stable");
    // The old range was released in the same step.
    let (three, _, _) = app.customer_on("premium").await;
    ok_json(book(&app, &three, at("2026-12-03T17:00:00Z", 45, Some(c))).await, StatusCode::CREATED).await;
    // Another organisation's meeting is not found.
    assert_problem(
        app.post(&path, Some(&three), &json!({ "starts_at": "2026-12-04T13:00:00Z" })).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn an_idempotency_key_returns_the_same_meeting() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    consultant(&app).await;
    let (customer, org, _) = app.customer_on("premium").await;
    let post = |body: Value, key: &'static str| {
        app.client
            .post(app.url("/v1/meetings"))
            .bearer_auth(&customer)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let first =
        ok_json(post(at("2026-12-03T13:00:00Z", 45, None), "retry-1").await.unwrap(), StatusCode::CREATED).await;
    let again = ok_json(post(at("2026-12-03T13:00:00Z", 45, None), "retry-1").await.unwrap(), StatusCode::OK).await;
    assert_eq!(first["id"], again["id"]);
    assert_problem(
        post(at("2026-12-04T13:00:00Z", 45, None), "retry-1").await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM meetings WHERE organization_id = $1")
        .bind(org)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    let emails: i64 = sqlx::query_scalar("SELECT count(*) FROM email_outbox WHERE template = 'meeting_confirmed'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(emails, 2, "one confirmation each to the customer and the consultant, not one per retry");
}

/// The parsed `.ics` of the customer's e-mail of `template`.
async fn invite(app: &TestApp, template: &str) -> ical::parser::ical::component::IcalCalendar {
    let payload: Value = sqlx::query_scalar(
        "SELECT payload FROM email_outbox WHERE template = $1 AND to_address LIKE 'customer-%' ORDER BY created_at DESC LIMIT 1",
    )
    .bind(template)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(payload["when"].as_str().unwrap().ends_with("(America/Sao_Paulo)"), "{payload}");
    let text = payload["ics"].as_str().unwrap().to_owned();
    let mut calendars = ical::IcalParser::new(std::io::BufReader::new(text.as_bytes()));
    calendars.next().expect("one calendar").expect("a valid iCalendar")
}

fn property(properties: &[ical::property::Property], name: &str) -> String {
    properties.iter().find(|p| p.name == name).and_then(|p| p.value.clone()).unwrap_or_default()
}

#[tokio::test]
async fn the_ics_for_request_update_and_cancel_parse_with_the_same_uid_and_an_increasing_sequence() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    let (_, consultant_token) = consultant(&app).await;
    let (customer, _, _) = app.customer_on("premium").await;
    let meeting = ok_json(book(&app, &customer, at("2026-12-03T13:00:00Z", 45, None)).await, StatusCode::CREATED).await;
    let id = meeting["id"].as_str().unwrap();
    ok_json(
        app.post(
            &format!("/v1/meetings/{id}/reschedule"),
            Some(&customer),
            &json!({ "starts_at": "2026-12-03T14:00:00Z", "duration_minutes": 30 }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    // An agent cancelling for the customer must say why.
    let problem = assert_problem(
        app.post(&format!("/v1/meetings/{id}/cancel"), Some(&consultant_token), &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "reason");
    let cancelled = ok_json(
        app.post(
            &format!("/v1/meetings/{id}/cancel"),
            Some(&consultant_token),
            &json!({ "reason": "Consultor doente" }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(cancelled["counts_toward_quota"], false, "an agent's cancellation does not use the quota");

    let mut uids = Vec::new();
    for (template, method, sequence, status, start) in [
        ("meeting_confirmed", "REQUEST", "0", "CONFIRMED", "20261203T130000Z"),
        ("meeting_updated", "REQUEST", "1", "CONFIRMED", "20261203T140000Z"),
        ("meeting_cancelled", "CANCEL", "2", "CANCELLED", "20261203T140000Z"),
    ] {
        let calendar = invite(&app, template).await;
        assert_eq!(property(&calendar.properties, "METHOD"), method, "{template}");
        assert_eq!(calendar.events.len(), 1);
        let event = &calendar.events[0].properties;
        assert_eq!(property(event, "SEQUENCE"), sequence, "{template}");
        assert_eq!(property(event, "STATUS"), status, "{template}");
        assert_eq!(property(event, "DTSTART"), start, "{template}");
        assert_eq!(property(event, "LOCATION"), meeting["meeting_url"].as_str().unwrap());
        assert!(event.iter().filter(|p| p.name == "ATTENDEE").count() == 2, "{template}: both parties invited");
        uids.push(property(event, "UID"));
    }
    assert!(uids.iter().all(|u| u == &format!("meeting-{id}@kadix-helpdesk")), "{uids:?}");
}

#[tokio::test]
async fn agents_see_their_agenda_and_customers_only_their_organisations_meetings() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    let (c, consultant_token) = consultant(&app).await;
    let (other, _) = consultant(&app).await;
    let (one, org_one, _) = app.customer_on("premium").await;
    let (two, _, _) = app.customer_on("premium").await;
    let mine = ok_json(book(&app, &one, at("2026-12-03T13:00:00Z", 45, Some(c))).await, StatusCode::CREATED).await;
    ok_json(book(&app, &two, at("2026-12-03T13:00:00Z", 45, Some(other))).await, StatusCode::CREATED).await;
    ok_json(book(&app, &two, at("2026-12-04T13:00:00Z", 45, Some(c))).await, StatusCode::CREATED).await;

    let agenda = ok_json(
        app.get(
            "/v1/meetings?consultant=me&from=2026-12-01T00:00:00Z&to=2026-12-04T00:00:00Z",
            Some(&consultant_token),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let ids: Vec<&str> = agenda["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![mine["id"].as_str().unwrap()]);
    assert_eq!(agenda["items"][0]["local_start"], "2026-12-03T10:00");

    let theirs = ok_json(app.get("/v1/meetings", Some(&one)).await, StatusCode::OK).await;
    let items = theirs["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items.iter().all(|m| m["organization_id"] == org_one.to_string()));
    let foreign = ok_json(app.get("/v1/meetings", Some(&two)).await, StatusCode::OK).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_problem(app.get(&format!("/v1/meetings/{foreign}"), Some(&one)).await, StatusCode::NOT_FOUND, "not_found")
        .await;
}

/// The slots listing at the size the issue names: 30 days × 10 consultants, each with two
/// meetings a day. Prints the time per request (`--nocapture`); asserts only that it answers.
/// `cargo nextest run -p helpdesk-api --test api --release --run-ignored only --no-capture bench_slots`
#[tokio::test]
#[ignore = "benchmark"]
async fn bench_slots_for_30_days_and_10_consultants() {
    let app = spawn_app_at(TUESDAY_9AM).await;
    let (customer, _, _) = app.customer_on("premium").await;
    let booker: Uuid =
        sqlx::query_scalar("SELECT id FROM users WHERE role = 'admin' LIMIT 1").fetch_one(&app.pool).await.unwrap();
    for _ in 0..10 {
        let (c, _) = consultant(&app).await;
        let (_, org, _) = app.customer_on("premium").await;
        sqlx::query(
            "INSERT INTO meetings (id, organization_id, consultant_id, booked_by, topic, starts_at, ends_at, meeting_url, reminders_from, created_at, updated_at)
             SELECT gen_random_uuid(), $1, $2, $3, 'x', d + h, d + h + interval '45 minutes', 'https://x', now(), now(), now()
             FROM generate_series('2026-12-02T00:00:00Z'::timestamptz, '2026-12-31T00:00:00Z', interval '1 day') d,
                  (VALUES (interval '13 hours'), (interval '17 hours 30 minutes')) AS t(h)",
        )
        .bind(org)
        .bind(c)
        .bind(booker)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let mut times = Vec::new();
    let mut count = 0;
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let list = slots(&app, &customer, "duration=45").await;
        times.push(started.elapsed());
        count = list["slots"].as_array().unwrap().len();
    }
    times.sort();
    println!(
        "slots for 30 days x 10 consultants: {count} slots; median {:?}, max {:?} per request",
        times[10], times[19]
    );
    assert!(count > 500);
}
