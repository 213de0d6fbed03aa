//! LGPD duties over HTTP: the export, the anonymisation (searched for in every text column of the
//! database afterwards), the admin-contact handover, terms re-acceptance and the audit log.
use crate::helpers::*;
use helpdesk_api::startup::Application;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// Monday 2026-03-16, 10:00 in São Paulo: business hours.
const MONDAY_MORNING: &str = "2026-03-16T13:00:00Z";

async fn delete(app: &TestApp, path: &str, token: &str) -> Response {
    app.client.delete(app.url(path)).bearer_auth(token).send().await.unwrap()
}

/// A person with distinctive data, so any copy of it can be searched for.
struct Person {
    id: String,
    email: String,
    name: String,
    phone: String,
    token: String,
}

async fn sign_up(app: &TestApp, code: &str, name: &str, phone: &str) -> Person {
    let email = format!("{}-{}@example.com", name.split(' ').next().unwrap().to_lowercase(), Uuid::now_v7().simple());
    let body = json!({ "email": email, "password": PASSWORD, "name": name, "signup_code": code, "accepted_terms_version": app.config.current_terms_version });
    let user = ok_json(app.post("/v1/auth/register", None, &body).await, StatusCode::CREATED).await;
    let token = app.login(&email, PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    ok_json(app.patch("/v1/me", &token, &json!({ "phone": phone })).await, StatusCode::OK).await;
    Person { id: user["id"].as_str().unwrap().to_owned(), email, name: name.to_owned(), phone: phone.to_owned(), token }
}

async fn agent(app: &TestApp, name: &str) -> Person {
    let (id, token, email) = app.agent_named(name).await;
    Person { id, email, name: name.to_owned(), phone: String::new(), token }
}

async fn open_ticket(app: &TestApp, token: &str, subject: &str, description: &str) -> String {
    let body = json!({ "subject": subject, "description": description, "category": "technical", "severity": "high" });
    let ticket = ok_json(app.post("/v1/tickets", Some(token), &body).await, StatusCode::CREATED).await;
    ticket["id"].as_str().unwrap().to_owned()
}

async fn post_message(app: &TestApp, token: &str, ticket: &str, body: &str) {
    ok_json(
        app.post(&format!("/v1/tickets/{ticket}/messages"), Some(token), &json!({ "body": body })).await,
        StatusCode::CREATED,
    )
    .await;
}

/// An organisation with two people, an agent working on the first one's ticket, and a ticket of
/// the second one.
struct Story {
    maria: Person,
    bruno: Person,
    agent: Person,
    maria_ticket: String,
    bruno_ticket: String,
    maria_texts: Vec<&'static str>,
    bruno_texts: Vec<&'static str>,
}

async fn story(app: &TestApp) -> Story {
    let (_, code) = app.organization_on("pro").await;
    let maria = sign_up(app, &code, "Maria Exportada Souza", "+55 11 98765-4321").await;
    let bruno = sign_up(app, &code, "Bruno Vizinho Lima", "+55 21 91234-5678").await;
    let agent = agent(app, "Agente Carlos Prestativo").await;
    let maria_texts = vec![
        "Impressora fiscal da Maria travou",
        "A impressora fiscal modelo XPTO-99 trava ao emitir cupom desde ontem",
        "Reiniciei a impressora XPTO-99 e nada mudou",
    ];
    let bruno_texts =
        vec!["Pedido de nota do Bruno", "Preciso da segunda via da nota 4471 do Bruno", "Segue o CNPJ do Bruno"];
    let maria_ticket = open_ticket(app, &maria.token, maria_texts[0], maria_texts[1]).await;
    ok_json(
        app.patch(&format!("/v1/tickets/{maria_ticket}"), &agent.token, &json!({ "assignee_id": agent.id })).await,
        StatusCode::OK,
    )
    .await;
    // The agent's reply greets her by name and quotes her e-mail.
    post_message(
        app,
        &agent.token,
        &maria_ticket,
        &format!("Olá {}, vamos verificar. Confirmamos o contato {}.", maria.name, maria.email),
    )
    .await;
    post_message(app, &maria.token, &maria_ticket, maria_texts[2]).await;
    let bruno_ticket = open_ticket(app, &bruno.token, bruno_texts[0], bruno_texts[1]).await;
    post_message(app, &bruno.token, &bruno_ticket, bruno_texts[2]).await;
    Story { maria, bruno, agent, maria_ticket, bruno_ticket, maria_texts, bruno_texts }
}

#[tokio::test]
async fn the_export_holds_everything_about_the_person_and_nothing_about_anyone_else() {
    let app = spawn_app_at(MONDAY_MORNING).await;
    let s = story(&app).await;

    // Staff read her profile: that read is about her, and shows in her export.
    ok_json(app.get(&format!("/v1/users/{}", s.maria.id), Some(&s.agent.token)).await, StatusCode::OK).await;

    let response = app.get("/v1/me/export", Some(&s.maria.token)).await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let export = ok_json(response, StatusCode::OK).await;
    let text = export.to_string();
    for mine in [&s.maria.email, &s.maria.name, &s.maria.phone, &s.maria.id] {
        assert!(text.contains(mine.as_str()), "the export lacks {mine}: {export:#}");
    }
    for mine in &s.maria_texts {
        assert!(text.contains(mine), "the export lacks {mine}");
    }
    assert_eq!(export["profile"]["email"], s.maria.email.as_str());
    assert_eq!(export["tickets"].as_array().unwrap().len(), 1);
    assert_eq!(export["tickets"][0]["id"], s.maria_ticket.as_str());
    assert_eq!(export["messages"].as_array().unwrap().len(), 1);
    assert!(!export["sessions"].as_array().unwrap().is_empty());
    assert!(export["sessions"][0].get("token_hash").is_none(), "never the token");
    let templates: Vec<&str> =
        export["emails"].as_array().unwrap().iter().map(|e| e["template"].as_str().unwrap()).collect();
    assert!(templates.contains(&"welcome") && templates.contains(&"ticket_replied"), "{templates:?}");
    let actions: Vec<&str> =
        export["audit_events"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in ["user.registered", "session.login", "user.profile_updated", "user.profile_read"] {
        assert!(actions.contains(&action), "{action} missing from {actions:?}");
    }
    let staff_read =
        export["audit_events"].as_array().unwrap().iter().find(|e| e["action"] == "user.profile_read").unwrap();
    assert_eq!(staff_read["actor"], "agent");
    assert!(staff_read["ip"].is_null(), "the agent's address is the agent's: {staff_read}");

    // Nothing of her colleague, nor of the agent beyond the reply he sent her.
    for theirs in
        [&s.bruno.email, &s.bruno.name, &s.bruno.phone, &s.bruno.id, &s.bruno_ticket, &s.agent.email, &s.agent.name]
    {
        assert!(!text.contains(theirs.as_str()), "the export leaks {theirs}");
    }
    for theirs in &s.bruno_texts {
        assert!(!text.contains(theirs), "the export leaks {theirs}");
    }

    // Another customer may not export her; an administrator may, and that is recorded.
    assert_problem(
        app.get(&format!("/v1/users/{}/export", s.maria.id), Some(&s.bruno.token)).await,
        StatusCode::FORBIDDEN,
        "admin_only",
    )
    .await;
    assert_problem(
        app.get(&format!("/v1/users/{}/export", s.maria.id), Some(&s.agent.token)).await,
        StatusCode::FORBIDDEN,
        "admin_only",
    )
    .await;
    let by_admin =
        ok_json(app.get(&format!("/v1/users/{}/export", s.maria.id), Some(&app.admin_token)).await, StatusCode::OK)
            .await;
    assert_eq!(by_admin["profile"], export["profile"]);
    let audit = ok_json(
        app.get(&format!("/v1/audit-events?action=user.exported&subject_id={}", s.maria.id), Some(&app.admin_token))
            .await,
        StatusCode::OK,
    )
    .await;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "her own export and the administrator's: {audit:#}");
    assert_eq!(items[1]["actor_id"], s.maria.id.as_str());
    assert!(items[0]["actor_id"].is_string() && items[0]["actor_id"] != s.maria.id.as_str());
}

/// Every text, varchar and jsonb column of every table, and the rows in which `needle` appears.
async fn occurrences(app: &TestApp, needle: &str) -> Vec<String> {
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'character')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(columns.len() > 20, "the search must cover the schema: {columns:?}");
    let mut found = Vec::new();
    for (table, column) in columns {
        // The names come from the catalogue, quoted; the needle is bound.
        let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            r#"SELECT count(*) FROM "{table}" WHERE strpos(lower("{column}"::text), lower($1)) > 0"#
        )))
        .bind(needle)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if count > 0 {
            found.push(format!("{table}.{column} ({count} rows)"));
        }
    }
    found
}

async fn ticket_as_agent(app: &TestApp, token: &str, id: &str) -> Value {
    ok_json(app.get(&format!("/v1/tickets/{id}"), Some(token)).await, StatusCode::OK).await
}

#[tokio::test]
async fn deletion_leaves_no_trace_and_keeps_the_tickets_and_their_sla() {
    let app = spawn_app_at(MONDAY_MORNING).await;
    // An integration hears of every ticket event, so the webhook log holds copies too (no worker
    // runs here: they stay pending).
    sqlx::query!(
        "INSERT INTO webhook_subscriptions (id, url, secret, created_at, updated_at)
         VALUES ($1, 'https://crm.example/hooks', 'whsec_test', now(), now())",
        Uuid::now_v7()
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let s = story(&app).await;
    // An e-mail to her still waiting in the outbox when she leaves.
    let refresh_token = app.login(&s.maria.email, PASSWORD).await["refresh_token"].as_str().unwrap().to_owned();
    app.clock.advance(chrono::TimeDelta::hours(3));
    let before_maria = ticket_as_agent(&app, &s.agent.token, &s.maria_ticket).await;
    let before_bruno = ticket_as_agent(&app, &s.agent.token, &s.bruno_ticket).await;
    assert!(before_maria["sla"]["first_response"]["met_at"].is_string(), "the agent's reply met first response");

    // Before: her data is there, and copied — the outbox carries her message to the agent, her
    // name sits in the agent's reply — so the search below can see what it looks for.
    let mut needles: Vec<&str> = vec![&s.maria.email, &s.maria.name, &s.maria.phone];
    needles.extend(&s.maria_texts);
    for needle in &needles {
        assert!(!occurrences(&app, needle).await.is_empty(), "{needle} should be stored before deletion");
    }
    assert!(occurrences(&app, s.maria_texts[2]).await.iter().any(|c| c.starts_with("email_outbox.payload")));
    assert!(occurrences(&app, &s.maria.name).await.iter().any(|c| c.starts_with("ticket_messages.body")));
    assert!(occurrences(&app, s.maria_texts[2]).await.iter().any(|c| c.starts_with("webhook_events.payload")));

    // The organisation's first person is its admin contact; she hands over before she leaves.
    let me = ok_json(app.get("/v1/me", Some(&s.maria.token)).await, StatusCode::OK).await;
    assert_eq!(me["admin_contact"], true);
    assert_problem(delete(&app, "/v1/me", &s.maria.token).await, StatusCode::CONFLICT, "last_admin_contact").await;
    let org = me["organization_id"].as_str().unwrap();
    let path = format!("/v1/organizations/{org}/admin-contacts/{}", s.bruno.id);
    assert_problem(
        app.client.put(app.url(&path)).bearer_auth(&s.bruno.token).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "admin_contact_only",
    )
    .await;
    let named = app.client.put(app.url(&path)).bearer_auth(&s.maria.token).send().await.unwrap();
    assert_eq!(named.status(), StatusCode::NO_CONTENT);

    let deleted = delete(&app, "/v1/me", &s.maria.token).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);

    // She is gone: no sign-in, no token, no refresh.
    let login = app.post("/v1/auth/login", None, &json!({ "email": s.maria.email, "password": PASSWORD })).await;
    assert_problem(login, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_problem(app.get("/v1/me", Some(&s.maria.token)).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let refreshed = app.post("/v1/auth/refresh", None, &json!({ "refresh_token": refresh_token })).await;
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);

    // Her ticket keeps everything but her words; her colleague's is untouched.
    let after_maria = ticket_as_agent(&app, &s.agent.token, &s.maria_ticket).await;
    for field in [
        "id",
        "number",
        "organization_id",
        "requester_id",
        "assignee_id",
        "status",
        "sla",
        "version",
        "created_at",
        "updated_at",
        "category",
        "severity",
    ] {
        assert_eq!(after_maria[field], before_maria[field], "{field} changed");
    }
    assert_ne!(after_maria["subject"], before_maria["subject"]);
    assert_eq!(ticket_as_agent(&app, &s.agent.token, &s.bruno_ticket).await, before_bruno);

    // The API shows none of her.
    let mut seen = String::new();
    for path in [
        format!("/v1/tickets/{}", s.maria_ticket),
        format!("/v1/tickets/{}/messages", s.maria_ticket),
        format!("/v1/tickets/{}/events", s.maria_ticket),
        format!("/v1/users/{}", s.maria.id),
        "/v1/users?limit=100".to_owned(),
        "/v1/audit-events?limit=100".to_owned(),
        "/v1/admin/outbox?limit=100".to_owned(),
    ] {
        let response = app.get(&path, Some(&app.admin_token)).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        seen.push_str(&response.text().await.unwrap());
    }
    let messages = ok_json(
        app.get(&format!("/v1/tickets/{}/messages", s.maria_ticket), Some(&s.agent.token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(messages.as_array().unwrap().len(), 2, "her message stays, as a placeholder: {messages:#}");

    // Nor does any text column of the database: users, tickets, messages, the outbox, timelines,
    // the audit log, and whatever table is added later.
    for needle in needles {
        assert!(!seen.contains(needle), "the API still shows {needle}");
        assert_eq!(occurrences(&app, needle).await, Vec::<String>::new(), "{needle} is still stored");
    }
    // Her colleague's data is all still there.
    for needle in [&s.bruno.email, &s.bruno.name, &s.bruno.phone] {
        assert!(!occurrences(&app, needle).await.is_empty(), "{needle} was lost");
    }
    for needle in &s.bruno_texts {
        assert!(!occurrences(&app, needle).await.is_empty(), "{needle} was lost");
    }

    // Nothing more goes to her address; the audit log says who anonymised whom, without her IP.
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM email_outbox WHERE to_address LIKE 'anonymised-%' AND status = 'pending'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(pending, 0);
    let audit = ok_json(
        app.get(&format!("/v1/audit-events?subject_id={}", s.maria.id), Some(&app.admin_token)).await,
        StatusCode::OK,
    )
    .await;
    let items = audit["items"].as_array().unwrap();
    let anonymised = items.iter().find(|e| e["action"] == "user.anonymised").expect("the anonymisation is audited");
    assert_eq!(anonymised["actor_id"], s.maria.id.as_str());
    let hers = items.iter().filter(|e| e["actor_id"] == s.maria.id.as_str());
    assert!(hers.clone().count() >= 3 && hers.clone().all(|e| e["ip"].is_null()), "{audit:#}");

    // An administrator removes the last person of the organisation (nobody left to hand over to).
    let removed = delete(&app, &format!("/v1/users/{}", s.bruno.id), &app.admin_token).await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
    assert_problem(
        delete(&app, &format!("/v1/users/{}", s.bruno.id), &app.admin_token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        delete(&app, &format!("/v1/users/{}", s.agent.id), &s.agent.token).await,
        StatusCode::FORBIDDEN,
        "admin_only",
    )
    .await;
}

#[tokio::test]
async fn a_new_terms_version_stops_customers_until_they_accept_it() {
    let app = spawn_app().await;
    let (token, _, _) = app.customer_on("pro").await;
    ok_json(app.get("/v1/tickets", Some(&token)).await, StatusCode::OK).await;

    // The same database served by a release whose terms changed.
    let mut config = app.config.clone();
    config.current_terms_version = "2026-07".into();
    let release = Application::build(config, app.clock.clone()).await.unwrap();
    let address = format!("http://127.0.0.1:{}", release.port());
    tokio::spawn(release.run_until_stopped());
    let get = |path: &str, token: &str| app.client.get(format!("{address}{path}")).bearer_auth(token.to_owned()).send();

    assert_problem(get("/v1/tickets", &token).await.unwrap(), StatusCode::FORBIDDEN, "terms_not_accepted").await;
    let me = ok_json(get("/v1/me", &token).await.unwrap(), StatusCode::OK).await;
    assert_eq!(me["terms_version"], app.config.current_terms_version.as_str());
    assert_eq!(me["terms_current_version"], "2026-07");
    assert_eq!(me["terms_acceptance_required"], true);
    // Staff are not customers of the terms.
    ok_json(get("/v1/users", &app.admin_token).await.unwrap(), StatusCode::OK).await;

    let accept = |version: &str| {
        app.client
            .post(format!("{address}/v1/me/terms"))
            .bearer_auth(token.clone())
            .json(&json!({ "version": version }))
            .send()
    };
    let stale = assert_problem(
        accept(&app.config.current_terms_version).await.unwrap(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(stale["errors"][0]["field"], "version");
    let accepted = ok_json(accept("2026-07").await.unwrap(), StatusCode::OK).await;
    assert_eq!(accepted["terms_version"], "2026-07");
    assert_eq!(accepted["terms_acceptance_required"], false);
    ok_json(get("/v1/tickets", &token).await.unwrap(), StatusCode::OK).await;

    let audit =
        ok_json(app.get("/v1/audit-events?action=user.terms_accepted", Some(&app.admin_token)).await, StatusCode::OK)
            .await;
    assert_eq!(audit["items"][0]["details"]["version"], "2026-07");
    assert_eq!(audit["items"][0]["details"]["previous_version"], app.config.current_terms_version.as_str());
}

#[tokio::test]
async fn the_audit_log_is_for_administrators_filtered_and_paged() {
    let app = spawn_app().await;
    let (token, _, session) = app.customer_on("pro").await;
    let customer = session["user"]["id"].as_str().unwrap();
    assert_problem(app.get("/v1/audit-events", Some(&token)).await, StatusCode::FORBIDDEN, "admin_only").await;
    for _ in 0..3 {
        ok_json(app.get(&format!("/v1/users/{customer}"), Some(&app.admin_token)).await, StatusCode::OK).await;
    }
    assert_problem(app.get(&format!("/v1/users/{customer}"), Some(&token)).await, StatusCode::FORBIDDEN, "staff_only")
        .await;

    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    let mut instants = Vec::new();
    loop {
        let mut path = format!("/v1/audit-events?action=user.profile_read&subject_id={customer}&limit=2");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = ok_json(app.get(&path, Some(&app.admin_token)).await, StatusCode::OK).await;
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["action"], "user.profile_read");
            assert_eq!(item["subject_id"], customer);
            seen.push(item["id"].as_str().unwrap().to_owned());
            instants.push(item["occurred_at"].as_str().unwrap().parse::<chrono::DateTime<chrono::Utc>>().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "every read, once");
    seen.dedup();
    assert_eq!(seen.len(), 3, "no entry twice across pages");
    assert!(instants.windows(2).all(|w| w[0] >= w[1]), "newest first: {instants:?}");

    // Reading the list of people is recorded too, naming whom.
    ok_json(app.get("/v1/users?role=customer", Some(&app.admin_token)).await, StatusCode::OK).await;
    let lists =
        ok_json(app.get("/v1/audit-events?action=user.list_read", Some(&app.admin_token)).await, StatusCode::OK).await;
    assert_eq!(lists["items"][0]["details"]["user_ids"], json!([customer]));

    // A family of actions, and the actor filter.
    let sessions =
        ok_json(app.get("/v1/audit-events?action=session.", Some(&app.admin_token)).await, StatusCode::OK).await;
    assert!(
        sessions["items"].as_array().unwrap().iter().all(|e| e["action"].as_str().unwrap().starts_with("session."))
    );
    assert!(!sessions["items"].as_array().unwrap().is_empty());
    let by_customer = ok_json(
        app.get(&format!("/v1/audit-events?actor_id={customer}"), Some(&app.admin_token)).await,
        StatusCode::OK,
    )
    .await;
    assert!(by_customer["items"].as_array().unwrap().iter().all(|e| e["actor_id"] == customer));

    let bad = assert_problem(
        app.get("/v1/audit-events?limit=500", Some(&app.admin_token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(bad["errors"][0]["field"], "limit");
    assert_problem(
        app.get("/v1/audit-events?from=yesterday", Some(&app.admin_token)).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
}
