//! The public contact form ("Fale Conosco", R1) and the commercial team's handling of it, over
//! HTTP with the app's clock under the test's control.
use crate::helpers::*;
use chrono::TimeDelta;
use helpdesk_core::Clock;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn app_with(overrides: &[(&str, &str)]) -> TestApp {
    let mut vars = vec![("HELPDESK_COMMERCIAL_EMAIL", "vendas@kadix.test"), ("HELPDESK_CONTACT_MIN_FILL_SECONDS", "3")];
    vars.extend_from_slice(overrides);
    spawn_app_with_clock(&vars, Clock::manual("2026-11-03T14:00:00Z".parse().unwrap())).await
}

async fn form_token(app: &TestApp) -> String {
    let form = ok_json(app.get("/v1/contact/form", None).await, StatusCode::OK).await;
    assert_eq!(form["min_fill_seconds"], 3);
    form["form_token"].as_str().unwrap().to_owned()
}

fn submission(token: &str) -> Value {
    json!({
        "name": "Marina Prospect",
        "email": "marina@prospect.example",
        "company": "Prospect Ltda",
        "message": "Gostaria de conhecer o plano Premium.",
        "consent": true,
        "form_token": token,
    })
}

async fn stored(app: &TestApp) -> i64 {
    sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM contact_requests"#).fetch_one(&app.pool).await.unwrap()
}

async fn outbox_to(app: &TestApp, address: &str) -> Vec<(String, Value)> {
    sqlx::query!("SELECT template, payload FROM email_outbox WHERE to_address = $1 ORDER BY created_at", address)
        .fetch_all(&app.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.template, r.payload))
        .collect()
}

async fn agent_token(app: &TestApp) -> String {
    let email = format!("agent-{}@kadix.test", uuid::Uuid::now_v7().simple());
    let body = json!({ "email": email, "name": "Comercial", "role": "agent", "password": PASSWORD });
    ok_json(app.post("/v1/users", Some(&app.admin_token), &body).await, StatusCode::CREATED).await;
    app.login(&email, PASSWORD).await["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_contact_request_is_stored_mailed_to_the_commercial_team_answered_and_closed_without_an_account() {
    let app = app_with(&[]).await;
    let users_before: i64 =
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM users"#).fetch_one(&app.pool).await.unwrap();
    let token = form_token(&app).await;
    app.clock.advance(TimeDelta::seconds(20));
    let received = ok_json(app.post("/v1/contact", None, &submission(&token)).await, StatusCode::ACCEPTED).await;
    assert_eq!(received["status"], "received");

    let mails = outbox_to(&app, "vendas@kadix.test").await;
    assert_eq!(mails.len(), 1);
    let (template, payload) = &mails[0];
    assert_eq!(template, "contact_request");
    assert_eq!(payload["message"], "Gostaria de conhecer o plano Premium.");
    assert_eq!(payload["email"], "marina@prospect.example");
    assert_eq!(payload["received_at"], "03/11/2026 11:00 (America/Sao_Paulo)", "local time, zone named");
    let users_after: i64 =
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM users"#).fetch_one(&app.pool).await.unwrap();
    assert_eq!(users_after, users_before, "a contact request never creates an account");
    // The token was spent: the same form cannot be sent twice.
    let again = assert_problem(
        app.post("/v1/contact", None, &submission(&token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(again["errors"][0]["field"], "form_token");

    // Customers cannot read the requests; agents list, answer (once) and close them.
    let (customer, _, _) = app.customer_on("pro").await;
    assert_problem(app.get("/v1/contact-requests", Some(&customer)).await, StatusCode::FORBIDDEN, "staff_only").await;
    let agent = agent_token(&app).await;
    let page = ok_json(app.get("/v1/contact-requests?status=open", Some(&agent)).await, StatusCode::OK).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let id = items[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(items[0]["company"], "Prospect Ltda");
    assert_problem(
        app.post(&format!("/v1/contact-requests/{id}/answer"), Some(&customer), &json!({ "body": "x" })).await,
        StatusCode::FORBIDDEN,
        "staff_only",
    )
    .await;
    let answered = ok_json(
        app.post(
            &format!("/v1/contact-requests/{id}/answer"),
            Some(&agent),
            &json!({ "body": "Olá Marina, vamos agendar?" }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(answered["status"], "answered");
    let to_sender = outbox_to(&app, "marina@prospect.example").await;
    assert_eq!(to_sender.len(), 1);
    assert_eq!(to_sender[0].0, "contact_answer");
    assert_eq!(to_sender[0].1["answer"], "Olá Marina, vamos agendar?");
    assert_problem(
        app.post(&format!("/v1/contact-requests/{id}/answer"), Some(&agent), &json!({ "body": "Again" })).await,
        StatusCode::CONFLICT,
        "already_answered",
    )
    .await;
    let closed =
        ok_json(app.post(&format!("/v1/contact-requests/{id}/close"), Some(&agent), &json!({})).await, StatusCode::OK)
            .await;
    assert_eq!(closed["status"], "closed");
    let open = ok_json(app.get("/v1/contact-requests?status=open", Some(&agent)).await, StatusCode::OK).await;
    assert!(open["items"].as_array().unwrap().is_empty());
    let one = ok_json(app.get(&format!("/v1/contact-requests/{id}"), Some(&agent)).await, StatusCode::OK).await;
    assert_eq!(one["answer"], "Olá Marina, vamos agendar?");
    assert_eq!(outbox_to(&app, "marina@prospect.example").await.len(), 1, "one answer, one e-mail");
}

#[tokio::test]
async fn the_form_rejects_the_honeypot_oversize_input_and_a_too_fast_submission() {
    let app = app_with(&[("HELPDESK_CONTACT_RATE_LIMIT", "100")]).await;

    // Sent two seconds after the form was served: too fast for a person. The token survives.
    let token = form_token(&app).await;
    app.clock.advance(TimeDelta::seconds(2));
    assert_problem(
        app.post("/v1/contact", None, &submission(&token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "submitted_too_fast",
    )
    .await;

    // The hidden field filled in: rejected without naming the field, and the token is spent.
    app.clock.advance(TimeDelta::seconds(10));
    let mut robot = submission(&token);
    robot["website"] = json!("http://cheap-pills.example");
    let rejected = assert_problem(
        app.post("/v1/contact", None, &robot).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "contact_rejected",
    )
    .await;
    assert!(rejected.get("errors").is_none(), "{rejected}");
    let reused = assert_problem(
        app.post("/v1/contact", None, &submission(&token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(reused["errors"][0]["field"], "form_token");

    // Oversize and missing fields are named; nothing was stored, nothing mailed.
    let token = form_token(&app).await;
    app.clock.advance(TimeDelta::seconds(10));
    for (field, value) in [
        ("message", json!("x".repeat(5001))),
        ("name", json!("n".repeat(201))),
        ("company", json!("c".repeat(201))),
        ("email", json!("not-an-address")),
        ("consent", json!(false)),
        ("message", json!("   ")),
    ] {
        let mut body = submission(&token);
        body[field] = value;
        let problem = assert_problem(
            app.post("/v1/contact", None, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let mut unknown = submission(&token);
    unknown["role"] = json!("admin");
    let extra = assert_problem(
        app.post("/v1/contact", None, &unknown).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(extra["errors"][0]["field"], "role");
    assert_eq!(stored(&app).await, 0);
    assert!(outbox_to(&app, "vendas@kadix.test").await.is_empty());

    // At exactly 5000 characters the message is accepted.
    let mut longest = submission(&token);
    longest["message"] = json!("é".repeat(5000));
    ok_json(app.post("/v1/contact", None, &longest).await, StatusCode::ACCEPTED).await;
    assert_eq!(stored(&app).await, 1);
}

#[tokio::test]
async fn a_burst_from_one_address_is_rate_limited() {
    let app = app_with(&[("HELPDESK_CONTACT_RATE_LIMIT", "3")]).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let token = form_token(&app).await;
        app.clock.advance(TimeDelta::seconds(5));
        statuses.push(app.post("/v1/contact", None, &submission(&token)).await);
    }
    let last = statuses.pop().unwrap();
    for response in statuses {
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    assert!(last.headers().contains_key("retry-after"));
    assert_problem(last, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(stored(&app).await, 3);
}
