//! Issue 14's ticket model over HTTP: three ways to open a ticket, operations composed in one
//! transaction, one definition of breached and at risk, a policy that must cover every row, and an
//! SLA explanation that names the closed days still ahead.
use crate::helpers::*;
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::tickets::{self, NewMessage, NewTicket};
use helpdesk_domain::plans::Category;
use helpdesk_domain::sla::Severity;
use helpdesk_domain::tickets::Source;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn body(category: &str, severity: &str) -> Value {
    json!({ "subject": "Ligou: boleto em dobro", "description": "Cliente ligou às 10h.", "category": category, "severity": severity })
}

async fn my_id(app: &TestApp, token: &str) -> String {
    ok_json(app.get("/v1/me", Some(token)).await, StatusCode::OK).await["id"].as_str().unwrap().to_owned()
}

fn new_ticket() -> NewTicket {
    NewTicket {
        subject: "Site fora do ar há 2 horas".into(),
        description: "O monitor confirmou a queda.".into(),
        category: Category::Technical,
        severity: Severity::Critical,
        emergency: false,
        references_ticket_id: None,
        on_behalf_of: None,
    }
}

#[tokio::test]
async fn an_agent_opens_a_ticket_on_behalf_of_an_essencial_customer() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (customer_token, _, _) = app.customer_on("essencial").await;
    let customer_id = my_id(&app, &customer_token).await;
    let customer_id = customer_id.as_str();
    let (agent_id, agent_token) = app.agent().await;

    // The customer's contract decides: Essencial has no technical support (R2).
    let mut technical = body("technical", "high");
    technical["on_behalf_of"] = json!(customer_id);
    let refused = assert_problem(
        app.post("/v1/tickets", Some(&agent_token), &technical).await,
        StatusCode::FORBIDDEN,
        "plan_not_entitled",
    )
    .await;
    assert_eq!(refused["missing_entitlement"], "technical_support");

    let mut service = body("service", "low");
    service["on_behalf_of"] = json!(customer_id);
    let ticket = ok_json(app.post("/v1/tickets", Some(&agent_token), &service).await, StatusCode::CREATED).await;
    assert_eq!(ticket["source"], "agent");
    assert_eq!(ticket["requester_id"], customer_id);
    assert_eq!(ticket["opened_by"], agent_id.as_str());
    assert_eq!(ticket["plan"], "essencial");

    // The customer sees it as their own.
    let id = ticket["id"].as_str().unwrap();
    let listed = ok_json(app.get("/v1/tickets", Some(&customer_token)).await, StatusCode::OK).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(listed["items"][0]["id"], id);
    let timeline =
        ok_json(app.get(&format!("/v1/tickets/{id}/events"), Some(&customer_token)).await, StatusCode::OK).await;
    let created = &timeline[0];
    assert_eq!((created["kind"].as_str(), created["actor_id"].as_str()), (Some("created"), Some(agent_id.as_str())));
    assert_eq!(created["data"]["source"], "agent");
    assert_eq!(created["data"]["on_behalf_of"], customer_id);

    // A customer cannot open one for somebody else, and an agent must name a customer account.
    let mut smuggled = body("service", "low");
    smuggled["on_behalf_of"] = json!(customer_id);
    assert_problem(
        app.post("/v1/tickets", Some(&customer_token), &smuggled).await,
        StatusCode::FORBIDDEN,
        "staff_only",
    )
    .await;
    let mut not_a_customer = body("service", "low");
    not_a_customer["on_behalf_of"] = json!(agent_id);
    let invalid = assert_problem(
        app.post("/v1/tickets", Some(&agent_token), &not_a_customer).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(invalid["errors"][0]["field"], "on_behalf_of");
}

#[tokio::test]
async fn a_system_opened_ticket_carries_its_source_in_the_timeline() {
    let app = spawn_app_at("2026-03-15T06:00:00Z").await; // Sunday 03:00 in São Paulo
    let (customer_token, org, _) = app.customer_on("premium").await;
    let (_, agent_token) = app.agent().await;
    let store = SlaStore::default();
    let mut tx = app.pool.begin().await.unwrap();
    let ticket =
        tickets::open_for_organization(&mut tx, &store, org, Source::Monitoring, new_ticket(), app.clock.now())
            .await
            .unwrap();
    tx.commit().await.unwrap();

    let view = ok_json(app.get(&format!("/v1/tickets/{}", ticket.id), Some(&agent_token)).await, StatusCode::OK).await;
    assert_eq!(view["source"], "monitoring");
    assert_eq!(view["requester_id"], Value::Null, "the system opened it for the organisation");
    assert_eq!(view["opened_by"], Value::Null);
    assert_eq!(view["plan"], "premium");
    let timeline =
        ok_json(app.get(&format!("/v1/tickets/{}/events", ticket.id), Some(&agent_token)).await, StatusCode::OK).await;
    assert_eq!(timeline[0]["kind"], "created");
    assert_eq!(timeline[0]["actor_id"], Value::Null, "the system acted");
    assert_eq!(timeline[0]["data"]["source"], "monitoring");
    // The organisation's customers see it, and the source filter finds it.
    let listed = ok_json(app.get("/v1/tickets?source=monitoring", Some(&customer_token)).await, StatusCode::OK).await;
    assert_eq!(listed["items"][0]["id"], ticket.id.to_string());
    let none = ok_json(app.get("/v1/tickets?source=portal", Some(&customer_token)).await, StatusCode::OK).await;
    assert!(none["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn two_operations_in_one_transaction_leave_nothing_when_the_second_fails() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, org, _) = app.customer_on("pro").await;
    let customer = helpdesk_core::accounts::Caller {
        user_id: my_id(&app, &token).await.parse().unwrap(),
        role: helpdesk_domain::accounts::Role::Customer,
        organization_id: Some(org),
    };
    let store = SlaStore::default();
    let now = app.clock.now();
    let mut tx = app.pool.begin().await.unwrap();
    // The first operation writes a ticket, its timeline and a "ticket created" e-mail...
    let ticket = tickets::open(&mut tx, &store, &customer, new_ticket(), now).await.unwrap();
    // ...and the second fails: a reply over the length limit.
    let reply = NewMessage { body: "x".repeat(20_001), internal: false, then_status: None };
    let second = tickets::post_message(&mut tx, &store, &customer, ticket.id, reply, now).await;
    assert!(matches!(second, Err(helpdesk_core::CoreError::Validation(_))), "{second:?}");
    drop(tx); // the handler returns the error without committing: everything rolls back

    for (what, sql) in [
        ("tickets", "SELECT count(*) FROM tickets"),
        ("timeline", "SELECT count(*) FROM ticket_events"),
        ("e-mails", "SELECT count(*) FROM email_outbox WHERE idempotency_key LIKE 'ticket:%'"),
    ] {
        let count: i64 = sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap();
        assert_eq!(count, 0, "{what} of the rolled-back change");
    }
}

#[tokio::test]
async fn a_policy_without_premium_targets_is_refused_naming_the_row() {
    let app = spawn_app().await;
    let policy = ok_json(app.get("/v1/sla-policy", Some(&app.admin_token)).await, StatusCode::OK).await;
    let rows: Vec<Value> =
        policy["rows"].as_array().unwrap().iter().filter(|r| r["plan"] != "premium").cloned().collect();
    let refused = assert_problem(
        app.put("/v1/sla-policy", &app.admin_token, &json!({ "rows": rows })).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let errors = refused["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 4, "one per severity: {errors:?}");
    assert!(errors.iter().all(|e| e["field"] == "rows" && e["message"].as_str().unwrap().contains("plan 'premium'")));
    assert!(errors.iter().any(|e| e["message"].as_str().unwrap().contains("severity 'critical'")));
    let unchanged = ok_json(app.get("/v1/sla-policy", Some(&app.admin_token)).await, StatusCode::OK).await;
    assert_eq!(unchanged["version"], policy["version"], "nothing was written");
}

#[tokio::test]
async fn the_explanation_names_a_closed_day_still_ahead() {
    let app = spawn_app_at("2026-03-09T13:00:00Z").await; // Monday 10:00 in São Paulo
    let closed = ok_json(
        app.post("/v1/holidays", Some(&app.admin_token), &json!({ "date": "2026-03-11", "name": "Inventário" })).await,
        StatusCode::CREATED,
    )
    .await;
    assert!(closed["calendar"]["version"].as_i64().unwrap() >= 2);
    let (token, _, _) = app.customer_on("pro").await;
    // Pro, low: resolution in 72 business hours, eight working days.
    let ticket =
        ok_json(app.post("/v1/tickets", Some(&token), &body("technical", "low")).await, StatusCode::CREATED).await;
    let id = ticket["id"].as_str().unwrap();
    let sla = ok_json(app.get(&format!("/v1/tickets/{id}/sla"), Some(&token)).await, StatusCode::OK).await;
    let ahead = sla["resolution"]["closed_days_ahead"].as_array().unwrap();
    assert_eq!(ahead.len(), 1, "{ahead:?}");
    assert_eq!((ahead[0]["date"].as_str(), ahead[0]["name"].as_str()), (Some("2026-03-11"), Some("Inventário")));
    assert!(sla["resolution"]["closed_days_skipped"].as_array().unwrap().is_empty(), "none counted yet");
    // Once the clock has run past it, the day is in the time counted instead.
    app.clock.set("2026-03-13T13:00:00Z".parse().unwrap());
    let later = ok_json(app.get(&format!("/v1/tickets/{id}/sla"), Some(&token)).await, StatusCode::OK).await;
    assert_eq!(later["resolution"]["closed_days_skipped"][0]["date"], "2026-03-11");
    assert!(later["resolution"]["closed_days_ahead"].as_array().unwrap().is_empty());
}

/// A tiny deterministic generator, so the generated tickets are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

async fn ids(app: &TestApp, token: &str, query: &str) -> BTreeSet<String> {
    let page = ok_json(app.get(&format!("/v1/tickets?limit=100&{query}"), Some(token)).await, StatusCode::OK).await;
    page["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn breached_and_at_risk_filters_agree_with_each_tickets_own_view() {
    let app = spawn_app_at("2026-03-09T12:00:00Z").await; // Monday 09:00 in São Paulo
    let (pro, _, _) = app.customer_on("pro").await;
    let (premium, _, _) = app.customer_on("premium").await;
    let (_, agent) = app.agent().await;
    let mut rng = Lcg(14);
    let severities = ["critical", "high", "normal", "low"];
    // 30 tickets, each given a random story of replies, waits, closes and reopens while the
    // clock moves on: open, paused, met, breached (running and closed), reopened.
    for n in 0..30 {
        let token = if n % 2 == 0 { &pro } else { &premium };
        let severity = severities[rng.below(4) as usize];
        let ticket =
            ok_json(app.post("/v1/tickets", Some(token), &body("technical", severity)).await, StatusCode::CREATED)
                .await;
        let id = ticket["id"].as_str().unwrap().to_owned();
        for _ in 0..rng.below(4) {
            app.clock.advance(TimeDelta::minutes(rng.below(300) as i64));
            let path = format!("/v1/tickets/{id}");
            let status = ok_json(app.get(&path, Some(&agent)).await, StatusCode::OK).await["status"].clone();
            match (rng.below(4), status.as_str().unwrap()) {
                (0, "open") => {
                    app.post(&format!("{path}/messages"), Some(&agent), &json!({ "body": "Verificando." })).await;
                }
                (1, "open") => {
                    app.post(
                        &format!("{path}/messages"),
                        Some(&agent),
                        &json!({ "body": "Pode testar?", "status": "waiting_customer" }),
                    )
                    .await;
                }
                (2, "waiting_customer") => {
                    app.post(&format!("{path}/messages"), Some(token), &json!({ "body": "Ainda não." })).await;
                }
                (_, "closed") => {
                    app.post(&format!("{path}/reopen"), Some(&agent), &json!({})).await;
                }
                _ => {
                    app.post(&format!("{path}/close"), Some(&agent), &json!({})).await;
                }
            }
        }
    }
    // At several instants, the filters find exactly the tickets whose own view says so.
    let mut seen = (0, 0, 0);
    for step in 0..6 {
        app.clock.advance(TimeDelta::hours(3 + 7 * step));
        let all = ids(&app, &agent, "").await;
        assert_eq!(all.len(), 30);
        let mut breached = BTreeSet::new();
        let mut at_risk = BTreeSet::new();
        for id in &all {
            let view = ok_json(app.get(&format!("/v1/tickets/{id}"), Some(&agent)).await, StatusCode::OK).await;
            if view["sla"]["breached"] == true {
                breached.insert(id.clone());
                if view["status"] == "closed" {
                    seen.2 += 1;
                }
            }
            if view["sla"]["at_risk"] == true {
                at_risk.insert(id.clone());
            }
        }
        seen.0 += breached.len();
        seen.1 += at_risk.len();
        assert_eq!(ids(&app, &agent, "breached=true").await, breached, "breached=true at step {step}");
        assert_eq!(ids(&app, &agent, "breached=false").await, &all - &breached, "breached=false at step {step}");
        assert_eq!(ids(&app, &agent, "at_risk=true").await, at_risk, "at_risk=true at step {step}");
        assert_eq!(ids(&app, &agent, "at_risk=false").await, &all - &at_risk, "at_risk=false at step {step}");
        let queue = ids(&app, &agent, "sort=due&breached=true").await;
        let open: BTreeSet<String> = ids(&app, &agent, "sort=due").await;
        assert_eq!(queue, &breached & &open, "the queue's breached filter at step {step}");
    }
    // The generated set covers the cases that matter.
    assert!(
        seen.0 > 0 && seen.1 > 0 && seen.2 > 0,
        "breached {}, at risk {}, closed breached {}",
        seen.0,
        seen.1,
        seen.2
    );
    let _: DateTime<Utc> = app.clock.now();
}
