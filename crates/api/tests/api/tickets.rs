//! Tickets under the policy, over HTTP, with the app's clock under the test's control.
//! São Paulo is UTC−3: 09:00 local is 12:00Z, 18:00 local is 21:00Z.
use crate::helpers::*;
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_domain::calendar::BusinessCalendar;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn instant(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap_or_else(|| panic!("not an instant: {v}")).parse().unwrap()
}

fn ticket_body(category: &str, severity: &str, emergency: bool) -> Value {
    json!({ "subject": "Site fora do ar", "description": "A loja não abre desde as 10h.", "category": category, "severity": severity, "emergency": emergency })
}

async fn open_ticket(app: &TestApp, token: &str, category: &str, severity: &str) -> Value {
    ok_json(app.post("/v1/tickets", Some(token), &ticket_body(category, severity, false)).await, StatusCode::CREATED)
        .await
}

/// An agent account and its token.
async fn agent(app: &TestApp) -> (String, String) {
    app.agent().await
}

#[tokio::test]
async fn intake_is_checked_against_the_contract() {
    // Saturday 2026-03-14 23:00 in São Paulo: out of hours, which only emergencies ignore.
    let app = spawn_app_at("2026-03-15T02:00:00Z").await;
    let (essencial, _, _) = app.customer_on("essencial").await;
    let (pro, _, _) = app.customer_on("pro").await;
    let (premium, _, _) = app.customer_on("premium").await;

    let refused = assert_problem(
        app.post("/v1/tickets", Some(&essencial), &ticket_body("technical", "high", false)).await,
        StatusCode::FORBIDDEN,
        "plan_not_entitled",
    )
    .await;
    assert_eq!(refused["missing_entitlement"], "technical_support");
    open_ticket(&app, &essencial, "service", "low").await;

    let refused = assert_problem(
        app.post("/v1/tickets", Some(&pro), &ticket_body("technical", "critical", true)).await,
        StatusCode::FORBIDDEN,
        "plan_not_entitled",
    )
    .await;
    assert_eq!(refused["missing_entitlement"], "emergency_priority");
    open_ticket(&app, &pro, "technical", "critical").await;

    let emergency = ok_json(
        app.post("/v1/tickets", Some(&premium), &ticket_body("technical", "critical", true)).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(emergency["emergency"], true);
    assert_eq!(
        instant(&emergency["sla"]["first_response"]["due_at"]),
        at("2026-03-15T03:00:00Z"),
        "1 h of calendar time, at night on a weekend"
    );
    assert_eq!(instant(&emergency["sla"]["resolution"]["due_at"]), at("2026-03-15T06:00:00Z"), "4 h of calendar time");

    let staff = app.post("/v1/tickets", Some(&app.admin_token), &ticket_body("service", "low", false)).await;
    assert_problem(staff, StatusCode::FORBIDDEN, "customers_only").await;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 3, "refused requests leave nothing behind");
}

#[tokio::test]
async fn an_organisation_without_a_contract_in_force_opens_nothing() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, org_id, _) = app.customer_on("pro").await;
    // The contract ends: the next day, the same customer is refused.
    sqlx::query("UPDATE contracts SET ends_on = starts_on + 1 WHERE organization_id = $1")
        .bind(org_id)
        .execute(&app.pool)
        .await
        .unwrap();
    app.clock.advance(TimeDelta::days(1));
    let refused = assert_problem(
        app.post("/v1/tickets", Some(&token), &ticket_body("service", "low", false)).await,
        StatusCode::FORBIDDEN,
        "plan_not_entitled",
    )
    .await;
    assert_eq!(refused["missing_entitlement"], "no_active_contract");
}

#[tokio::test]
async fn due_times_at_creation_are_the_domain_calendars() {
    // Friday 2026-02-13 17:00 local, just before Carnival (Mon 16 and Tue 17 are closed).
    let opened = at("2026-02-13T20:00:00Z");
    let app = spawn_app_at("2026-02-13T20:00:00Z").await;
    let (token, _, _) = app.customer_on("pro").await;
    let ticket = open_ticket(&app, &token, "technical", "high").await;
    let calendar = BusinessCalendar::brazil_default();
    let first_response = instant(&ticket["sla"]["first_response"]["due_at"]);
    let resolution = instant(&ticket["sla"]["resolution"]["due_at"]);
    assert_eq!(first_response, calendar.add_business_time(opened, TimeDelta::hours(4)));
    assert_eq!(resolution, calendar.add_business_time(opened, TimeDelta::hours(16)));
    // 1 h on Friday, then Ash Wednesday 09:00–12:00.
    assert_eq!(first_response, at("2026-02-18T15:00:00Z"));
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["plan"], "pro");

    let explanation = ok_json(
        app.get(&format!("/v1/tickets/{}/sla", ticket["id"].as_str().unwrap()), Some(&token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(explanation["first_response"]["target_seconds"], 4 * 3600);
    assert_eq!(explanation["first_response"]["mode"], "business");
    assert_eq!(explanation["first_response"]["phase"], "running");
    assert_eq!(explanation["first_response"]["calendar_versions"], json!([1]));
}

#[tokio::test]
async fn waiting_for_the_customer_pauses_resolution_by_exactly_the_paused_business_time() {
    // Tuesday 2026-03-10 10:00 local.
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, _, _) = app.customer_on("pro").await;
    let (_, agent_token) = agent(&app).await;
    let ticket = open_ticket(&app, &token, "technical", "normal").await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    let due_before = instant(&ticket["sla"]["resolution"]["due_at"]);

    // 11:00: the agent asks the customer something and waits.
    app.clock.set(at("2026-03-10T14:00:00Z"));
    let waiting = ok_json(
        app.post(
            &format!("/v1/tickets/{id}/messages"),
            Some(&agent_token),
            &json!({ "body": "Qual é a URL?", "status": "waiting_customer" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(waiting["ticket"]["status"], "waiting_customer");
    assert!(waiting["ticket"]["sla"]["resolution"]["due_at"].is_null(), "no due time while paused");
    assert_eq!(instant(&waiting["ticket"]["waiting_since"]), at("2026-03-10T14:00:00Z"));

    // Wednesday 15:00: the customer answers; paused business time = Tue 11–18 (7 h) + Wed 9–15 (6 h).
    app.clock.set(at("2026-03-11T18:00:00Z"));
    let resumed = ok_json(
        app.post(&format!("/v1/tickets/{id}/messages"), Some(&token), &json!({ "body": "https://loja.example.com" }))
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(resumed["ticket"]["status"], "open");
    let calendar = BusinessCalendar::brazil_default();
    let paused = calendar.business_time_between(at("2026-03-10T14:00:00Z"), at("2026-03-11T18:00:00Z"));
    assert_eq!(paused, TimeDelta::hours(13));
    let due_after = instant(&resumed["ticket"]["sla"]["resolution"]["due_at"]);
    assert_eq!(due_after, calendar.add_business_time(due_before, paused));
    assert_eq!(calendar.business_time_between(due_before, due_after), paused);

    let explanation = ok_json(app.get(&format!("/v1/tickets/{id}/sla"), Some(&token)).await, StatusCode::OK).await;
    let pauses = explanation["resolution"]["paused"].as_array().unwrap();
    assert_eq!(pauses.len(), 1);
    assert_eq!(
        (instant(&pauses[0]["from"]), instant(&pauses[0]["to"])),
        (at("2026-03-10T14:00:00Z"), at("2026-03-11T18:00:00Z"))
    );
    assert_eq!(explanation["first_response"]["phase"], "met", "the agent's public reply was the first response");
}

#[tokio::test]
async fn the_first_public_agent_reply_meets_first_response() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, _, _) = app.customer_on("premium").await;
    let (_, agent_token) = agent(&app).await;
    let ticket = open_ticket(&app, &token, "technical", "high").await;
    let id = ticket["id"].as_str().unwrap().to_owned();

    app.clock.advance(TimeDelta::minutes(10));
    let note = ok_json(
        app.post(
            &format!("/v1/tickets/{id}/messages"),
            Some(&agent_token),
            &json!({ "body": "Checking the logs", "internal": true }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert!(note["ticket"]["sla"]["first_response"]["met_at"].is_null(), "an internal note is not a response");
    let customer = ok_json(
        app.post(&format!("/v1/tickets/{id}/messages"), Some(&token), &json!({ "body": "Any news?" })).await,
        StatusCode::CREATED,
    )
    .await;
    assert!(customer["ticket"]["sla"]["first_response"]["met_at"].is_null());

    app.clock.advance(TimeDelta::minutes(20));
    let reply = ok_json(
        app.post(&format!("/v1/tickets/{id}/messages"), Some(&agent_token), &json!({ "body": "Found it." })).await,
        StatusCode::CREATED,
    )
    .await;
    let met = instant(&reply["ticket"]["sla"]["first_response"]["met_at"]);
    assert_eq!(met, at("2026-03-10T13:30:00Z"));
    assert!(reply["ticket"]["sla"]["first_response"]["due_at"].is_null());
    assert_eq!(reply["ticket"]["sla"]["first_response"]["breached"], false);

    app.clock.advance(TimeDelta::hours(1));
    let later = ok_json(
        app.post(&format!("/v1/tickets/{id}/messages"), Some(&agent_token), &json!({ "body": "More." })).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(instant(&later["ticket"]["sla"]["first_response"]["met_at"]), met, "only the first reply counts");
}

#[tokio::test]
async fn close_and_reopen_within_and_after_seven_days() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, _, _) = app.customer_on("pro").await;
    let (_, agent_token) = agent(&app).await;
    let ticket = open_ticket(&app, &token, "technical", "low").await;
    let id = ticket["id"].as_str().unwrap().to_owned();

    app.clock.advance(TimeDelta::hours(2));
    let closed = ok_json(
        app.post(&format!("/v1/tickets/{id}/close"), Some(&token), &json!({ "reason": "not_needed" })).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!((closed["status"].as_str(), closed["close_reason"].as_str()), (Some("closed"), Some("not_needed")));
    assert_eq!(instant(&closed["sla"]["resolution"]["met_at"]), at("2026-03-10T15:00:00Z"));
    assert_eq!(instant(&closed["reopenable_until"]), at("2026-03-17T15:00:00Z"));
    assert_problem(
        app.post(&format!("/v1/tickets/{id}/messages"), Some(&token), &json!({ "body": "hello?" })).await,
        StatusCode::CONFLICT,
        "ticket_closed",
    )
    .await;
    assert_problem(
        app.post(&format!("/v1/tickets/{id}/close"), Some(&token), &json!({})).await,
        StatusCode::CONFLICT,
        "status_unchanged",
    )
    .await;
    let reserved =
        app.post(&format!("/v1/tickets/{id}/close"), Some(&agent_token), &json!({ "reason": "auto_closed" })).await;
    // `auto_closed` is the system's: not in the request enum, so it is refused as input.
    let refused = assert_problem(reserved, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(refused["errors"][0]["field"], "reason");

    // Six days later the customer reopens: the resolution clock resumes, consumed time kept.
    app.clock.advance(TimeDelta::days(6));
    let reopened =
        ok_json(app.post(&format!("/v1/tickets/{id}/reopen"), Some(&token), &json!({})).await, StatusCode::OK).await;
    assert_eq!(reopened["status"], "open");
    assert!(reopened["closed_at"].is_null());
    let explanation = ok_json(app.get(&format!("/v1/tickets/{id}/sla"), Some(&token)).await, StatusCode::OK).await;
    assert_eq!(
        explanation["resolution"]["consumed_seconds"],
        2 * 3600,
        "the 2 business hours before closing stay consumed"
    );
    assert_eq!(explanation["resolution"]["phase"], "running");

    // Closed again by the agent; eight days on, the customer may no longer reopen.
    ok_json(app.post(&format!("/v1/tickets/{id}/close"), Some(&agent_token), &json!({})).await, StatusCode::OK).await;
    app.clock.advance(TimeDelta::days(8));
    let late = assert_problem(
        app.post(&format!("/v1/tickets/{id}/reopen"), Some(&token), &json!({})).await,
        StatusCode::CONFLICT,
        "reopen_window_expired",
    )
    .await;
    assert!(late["detail"].as_str().unwrap().contains("new ticket"));
    let mut follow_up = ticket_body("technical", "low", false);
    follow_up["references_ticket_id"] = json!(id);
    let new_ticket = ok_json(app.post("/v1/tickets", Some(&token), &follow_up).await, StatusCode::CREATED).await;
    assert_eq!(new_ticket["references_ticket_id"], id.as_str());
    // Agents may still reopen (e.g. closed by mistake).
    ok_json(app.post(&format!("/v1/tickets/{id}/reopen"), Some(&agent_token), &json!({})).await, StatusCode::OK).await;
    assert_problem(
        app.post(&format!("/v1/tickets/{id}/reopen"), Some(&agent_token), &json!({})).await,
        StatusCode::CONFLICT,
        "ticket_not_closed",
    )
    .await;
}

#[tokio::test]
async fn internal_notes_never_reach_the_customer() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, _, _) = app.customer_on("pro").await;
    let (_, agent_token) = agent(&app).await;
    let ticket = open_ticket(&app, &token, "technical", "normal").await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    ok_json(
        app.post(
            &format!("/v1/tickets/{id}/messages"),
            Some(&agent_token),
            &json!({ "body": "Customer's server is a mess", "internal": true }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    ok_json(
        app.post(&format!("/v1/tickets/{id}/messages"), Some(&agent_token), &json!({ "body": "We are on it." })).await,
        StatusCode::CREATED,
    )
    .await;

    let seen_by_customer =
        ok_json(app.get(&format!("/v1/tickets/{id}/messages"), Some(&token)).await, StatusCode::OK).await;
    let bodies: Vec<&str> = seen_by_customer.as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, vec!["We are on it."]);
    let events = ok_json(app.get(&format!("/v1/tickets/{id}/events"), Some(&token)).await, StatusCode::OK).await;
    assert!(events.as_array().unwrap().iter().all(|e| e["internal"] == false && e["kind"] != "note_added"), "{events}");
    let all = ok_json(app.get(&format!("/v1/tickets/{id}/messages"), Some(&agent_token)).await, StatusCode::OK).await;
    assert_eq!(all.as_array().unwrap().len(), 2);

    let sneaky = app
        .post(&format!("/v1/tickets/{id}/messages"), Some(&token), &json!({ "body": "note to self", "internal": true }))
        .await;
    assert_problem(sneaky, StatusCode::FORBIDDEN, "staff_only").await;
    let notified: Vec<String> =
        sqlx::query_scalar("SELECT template FROM email_outbox WHERE payload->>'ticket_id' = $1 ORDER BY created_at")
            .bind(&id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(notified, vec!["ticket_created", "ticket_replied"], "an internal note e-mails nobody");
}

#[tokio::test]
async fn customers_cannot_set_privileged_fields() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, _, _) = app.customer_on("pro").await;
    let ticket = open_ticket(&app, &token, "technical", "normal").await;
    for field in ["assignee_id", "organization_id", "status", "plan", "sla"] {
        let mut body = ticket_body("technical", "normal", false);
        body[field] = json!("x");
        let refused = assert_problem(
            app.post("/v1/tickets", Some(&token), &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(refused["errors"][0]["field"], field, "{refused}");
        assert!(refused["errors"][0]["message"].as_str().unwrap().starts_with("unknown field"), "{refused}");
    }
    let patch = app
        .patch(&format!("/v1/tickets/{}", ticket["id"].as_str().unwrap()), &token, &json!({ "severity": "critical" }))
        .await;
    assert_problem(patch, StatusCode::FORBIDDEN, "staff_only").await;
    let missing_field = assert_problem(
        app.post("/v1/tickets", Some(&token), &json!({ "subject": "x", "description": "y", "category": "service" }))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(missing_field["errors"][0]["field"], "severity");
    let bad_value = assert_problem(
        app.post("/v1/tickets", Some(&token), &ticket_body("technical", "apocalyptic", false)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(bad_value["errors"][0]["field"], "severity");
}

#[tokio::test]
async fn no_ticket_route_leaks_another_organisations_ticket() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (owner, _, _) = app.customer_on("premium").await;
    let (stranger, _, _) = app.customer_on("premium").await;
    let ticket = open_ticket(&app, &owner, "technical", "high").await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    let missing = uuid::Uuid::now_v7().to_string();

    for target in [id.as_str(), missing.as_str()] {
        let responses = [
            app.get(&format!("/v1/tickets/{target}"), Some(&stranger)).await,
            app.get(&format!("/v1/tickets/{target}/messages"), Some(&stranger)).await,
            app.post(&format!("/v1/tickets/{target}/messages"), Some(&stranger), &json!({ "body": "hi" })).await,
            app.get(&format!("/v1/tickets/{target}/events"), Some(&stranger)).await,
            app.get(&format!("/v1/tickets/{target}/sla"), Some(&stranger)).await,
            app.post(&format!("/v1/tickets/{target}/close"), Some(&stranger), &json!({})).await,
            app.post(&format!("/v1/tickets/{target}/reopen"), Some(&stranger), &json!({})).await,
        ];
        for response in responses {
            let body = assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
            assert_eq!(body["detail"], "ticket not found");
        }
    }
    let listed = ok_json(
        app.get(
            &format!("/v1/tickets?organization_id={}", ticket["organization_id"].as_str().unwrap()),
            Some(&stranger),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0, "a customer's filter cannot widen their view");
    let own = ok_json(app.get("/v1/tickets", Some(&owner)).await, StatusCode::OK).await;
    assert_eq!(own["items"].as_array().unwrap().len(), 1);
    // Nothing the stranger tried changed the ticket.
    let unchanged = ok_json(app.get(&format!("/v1/tickets/{id}"), Some(&owner)).await, StatusCode::OK).await;
    assert_eq!((unchanged["status"].as_str(), unchanged["version"].as_i64()), (Some("open"), Some(1)));
}

#[tokio::test]
async fn severity_change_retargets_with_consumed_time_kept() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, _, _) = app.customer_on("pro").await;
    let (agent_id, agent_token) = agent(&app).await;
    let ticket = open_ticket(&app, &token, "technical", "low").await;
    let id = ticket["id"].as_str().unwrap().to_owned();

    app.clock.advance(TimeDelta::hours(1));
    let changed = ok_json(
        app.patch(
            &format!("/v1/tickets/{id}"),
            &agent_token,
            &json!({ "severity": "critical", "assignee_id": agent_id }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["assignee_id"], agent_id.as_str());
    // Pro critical: first response 2 h, 1 h already consumed → due at 12:00 local (15:00Z).
    assert_eq!(instant(&changed["sla"]["first_response"]["due_at"]), at("2026-03-10T15:00:00Z"));
    assert_eq!(
        instant(&changed["sla"]["resolution"]["due_at"]),
        at("2026-03-10T21:00:00Z"),
        "8 h resolution, 1 h consumed → 18:00 local"
    );

    let events = ok_json(app.get(&format!("/v1/tickets/{id}/events"), Some(&agent_token)).await, StatusCode::OK).await;
    let kinds: Vec<&str> = events.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"severity_changed") && kinds.contains(&"assigned"), "{kinds:?}");
    let mine = ok_json(app.get("/v1/tickets?assignee=me", Some(&agent_token)).await, StatusCode::OK).await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let nobody =
        app.patch(&format!("/v1/tickets/{id}"), &agent_token, &json!({ "assignee_id": uuid::Uuid::now_v7() })).await;
    assert_eq!(
        assert_problem(nobody, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await["errors"][0]["field"],
        "assignee_id"
    );
}

#[tokio::test]
async fn agents_queue_is_sorted_by_due_time_and_filters_breaches() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (pro, _, _) = app.customer_on("pro").await;
    let (premium, _, _) = app.customer_on("premium").await;
    let (_, agent_token) = agent(&app).await;
    let low = open_ticket(&app, &pro, "technical", "low").await; // first response 16 h
    let critical = open_ticket(&app, &premium, "technical", "critical").await; // 1 h
    let normal = open_ticket(&app, &pro, "technical", "normal").await; // 8 h

    let queue = ok_json(app.get("/v1/tickets?sort=due&limit=2", Some(&agent_token)).await, StatusCode::OK).await;
    let ids: Vec<&str> = queue["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![critical["id"].as_str().unwrap(), normal["id"].as_str().unwrap()]);
    let cursor = queue["next_cursor"].as_str().unwrap();
    let rest = ok_json(
        app.get(&format!("/v1/tickets?sort=due&limit=2&cursor={cursor}"), Some(&agent_token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rest["items"][0]["id"], low["id"]);
    assert!(rest["next_cursor"].is_null());

    // 50 minutes in, the critical ticket is at risk (80 % of 1 h); 70 minutes in, breached.
    app.clock.advance(TimeDelta::minutes(50));
    let at_risk = ok_json(app.get("/v1/tickets?at_risk=true", Some(&agent_token)).await, StatusCode::OK).await;
    assert_eq!(at_risk["items"].as_array().unwrap().len(), 1);
    assert_eq!(at_risk["items"][0]["id"], critical["id"]);
    assert_eq!(at_risk["items"][0]["sla"]["at_risk"], true);
    app.clock.advance(TimeDelta::minutes(20));
    let breached = ok_json(app.get("/v1/tickets?breached=true", Some(&agent_token)).await, StatusCode::OK).await;
    assert_eq!(breached["items"].as_array().unwrap().len(), 1);
    assert_eq!(breached["items"][0]["sla"]["breached"], true);
    let premium_only = ok_json(app.get("/v1/tickets?plan=premium", Some(&agent_token)).await, StatusCode::OK).await;
    assert_eq!(premium_only["items"].as_array().unwrap().len(), 1);
    assert_problem(
        app.get("/v1/tickets?sort=weird", Some(&agent_token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

#[tokio::test]
async fn every_change_writes_its_event_and_email_in_the_same_transaction() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, _, _) = app.customer_on("pro").await;
    let (agent_id, agent_token) = agent(&app).await;
    let ticket = open_ticket(&app, &token, "technical", "normal").await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    app.clock.advance(TimeDelta::minutes(1));
    ok_json(
        app.patch(&format!("/v1/tickets/{id}"), &agent_token, &json!({ "assignee_id": agent_id })).await,
        StatusCode::OK,
    )
    .await;
    app.clock.advance(TimeDelta::minutes(1));
    ok_json(
        app.post(
            &format!("/v1/tickets/{id}/messages"),
            Some(&agent_token),
            &json!({ "body": "Pode confirmar?", "status": "waiting_customer" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    app.clock.advance(TimeDelta::minutes(1));
    ok_json(
        app.post(&format!("/v1/tickets/{id}/messages"), Some(&token), &json!({ "body": "Confirmado" })).await,
        StatusCode::CREATED,
    )
    .await;
    app.clock.advance(TimeDelta::minutes(1));
    ok_json(
        app.post(&format!("/v1/tickets/{id}/close"), Some(&agent_token), &json!({ "reason": "resolved" })).await,
        StatusCode::OK,
    )
    .await;

    let emails: Vec<(String, String)> = sqlx::query_as(
        "SELECT template, to_address FROM email_outbox WHERE payload->>'ticket_id' = $1 ORDER BY created_at, template",
    )
    .bind(&id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let templates: Vec<&str> = emails.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        templates,
        vec!["ticket_created", "ticket_assigned", "ticket_replied", "ticket_customer_replied", "ticket_closed"]
    );
    let events = ok_json(app.get(&format!("/v1/tickets/{id}/events"), Some(&agent_token)).await, StatusCode::OK).await;
    let sla: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "sla")
        .map(|e| {
            format!(
                "{}:{}",
                e["data"]["kind"]["type"].as_str().unwrap(),
                e["data"]["kind"]["metric"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        sla,
        vec!["started:-", "met:first_response", "paused:resolution", "resumed:resolution", "met:resolution"]
    );
}
