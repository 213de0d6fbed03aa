use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn registration(app: &TestApp, code: &str) -> Value {
    json!({ "email": format!("new-{}@example.com", uuid::Uuid::now_v7().simple()), "password": PASSWORD, "name": "Nova Cliente", "signup_code": code, "accepted_terms_version": app.config.current_terms_version })
}

#[tokio::test]
async fn sign_up_needs_a_contract_in_force() {
    let app = spawn_app().await;
    let unknown = app.post("/v1/auth/register", None, &registration(&app, "NOPE-NOPE-NOPE")).await;
    assert_problem(unknown, StatusCode::FORBIDDEN, "no_active_contract").await;

    // A contract that ended yesterday and one that starts tomorrow admit nobody.
    for (starts, ends) in [("2020-01-01", Some("2021-01-01")), ("2099-01-01", None)] {
        let org = ok_json(
            app.post("/v1/organizations", Some(&app.admin_token), &json!({ "name": format!("Org {starts}") })).await,
            StatusCode::CREATED,
        )
        .await;
        let contract = ok_json(
            app.post(
                &format!("/v1/organizations/{}/contracts", org["id"].as_str().unwrap()),
                Some(&app.admin_token),
                &json!({ "plan": "pro", "starts_on": starts, "ends_on": ends }),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(contract["active"], false);
        let refused =
            app.post("/v1/auth/register", None, &registration(&app, contract["signup_code"].as_str().unwrap())).await;
        assert_problem(refused, StatusCode::FORBIDDEN, "no_active_contract").await;
    }
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'customer'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 0, "no refused sign-up may leave a user behind");
}

#[tokio::test]
async fn sign_up_refuses_privileged_fields_weak_passwords_and_old_terms() {
    let app = spawn_app().await;
    let (_, code) = app.organization_on("premium").await;

    let mut body = registration(&app, &code);
    body["role"] = json!("admin");
    let mass_assignment = assert_problem(
        app.post("/v1/auth/register", None, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(mass_assignment["errors"][0]["field"], "role");

    let mut body = registration(&app, &code);
    body["password"] = json!("password123");
    body["accepted_terms_version"] = json!("1999-01");
    body["email"] = json!("not-an-email");
    let invalid = assert_problem(
        app.post("/v1/auth/register", None, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> =
        invalid["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"email") && fields.contains(&"accepted_terms_version"), "{invalid}");

    let mut body = registration(&app, &code);
    body["password"] = json!("password123");
    let weak = assert_problem(
        app.post("/v1/auth/register", None, &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(weak["errors"][0]["field"], "password");
    assert!(weak["errors"][0]["message"].as_str().unwrap().contains("commonly used"));
}

#[tokio::test]
async fn one_account_per_email_regardless_of_case() {
    let app = spawn_app().await;
    let (_, code) = app.organization_on("pro").await;
    let (email, _) = app.register(&code).await;
    let mut body = registration(&app, &code);
    body["email"] = json!(email.to_uppercase());
    assert_problem(app.post("/v1/auth/register", None, &body).await, StatusCode::CONFLICT, "email_taken").await;
}

#[tokio::test]
async fn users_keep_their_profile_up_to_date_but_cannot_change_role_or_organisation() {
    let app = spawn_app().await;
    let (token, org_id, _) = app.customer_on("pro").await;
    let updated = ok_json(
        app.patch("/v1/me", &token, &json!({ "name": "Ana Maria", "phone": "+55 11 99999-0000", "locale": "en" }))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (updated["name"].as_str(), updated["phone"].as_str(), updated["locale"].as_str()),
        (Some("Ana Maria"), Some("+55 11 99999-0000"), Some("en"))
    );

    let cleared = ok_json(app.patch("/v1/me", &token, &json!({ "phone": null })).await, StatusCode::OK).await;
    assert!(cleared["phone"].is_null());
    assert_eq!(cleared["name"], "Ana Maria", "absent fields stay as they were");

    let escalation =
        app.patch("/v1/me", &token, &json!({ "role": "admin", "organization_id": uuid::Uuid::now_v7() })).await;
    assert_problem(escalation, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let me = ok_json(app.get("/v1/me", Some(&token)).await, StatusCode::OK).await;
    assert_eq!(
        (me["role"].as_str(), me["organization_id"].as_str()),
        (Some("customer"), Some(org_id.to_string().as_str()))
    );

    let bad_locale = app.patch("/v1/me", &token, &json!({ "locale": "fr" })).await;
    assert_eq!(
        assert_problem(bad_locale, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await["errors"][0]["field"],
        "locale"
    );
}

#[tokio::test]
async fn admin_creates_agents_and_lists_users_by_page() {
    let app = spawn_app().await;
    for i in 0..3 {
        let agent = json!({ "email": format!("agent{i}@kadix.test"), "name": format!("Agent {i}"), "role": "agent", "password": PASSWORD });
        ok_json(app.post("/v1/users", Some(&app.admin_token), &agent).await, StatusCode::CREATED).await;
    }
    let customer = json!({ "email": "sneaky@kadix.test", "name": "Sneaky", "role": "customer", "password": PASSWORD });
    let refused = assert_problem(
        app.post("/v1/users", Some(&app.admin_token), &customer).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(refused["errors"][0]["field"], "role");

    let first = ok_json(app.get("/v1/users?role=agent&limit=2", Some(&app.admin_token)).await, StatusCode::OK).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = ok_json(
        app.get(&format!("/v1/users?role=agent&limit=2&cursor={cursor}"), Some(&app.admin_token)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    assert_eq!(second["items"][0]["email"], "agent2@kadix.test");

    let agent = app.login("agent0@kadix.test", PASSWORD).await;
    let agent_token = agent["access_token"].as_str().unwrap();
    assert_problem(app.get("/v1/users", Some(agent_token)).await, StatusCode::FORBIDDEN, "admin_only").await;
}

#[tokio::test]
async fn bootstrap_admin_is_created_once() {
    let vars = test_vars(&[]);
    let config = helpdesk_core::Config::from_map(&vars).unwrap();
    for _ in 0..2 {
        let app =
            helpdesk_api::startup::Application::build(config.clone(), helpdesk_core::Clock::system()).await.unwrap();
        let admins: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE role = 'admin'")
            .fetch_one(&app.state().pool)
            .await
            .unwrap();
        assert_eq!(admins, 1);
    }
}

#[tokio::test]
async fn sign_up_is_audited_with_the_accepted_terms() {
    let app = spawn_app().await;
    let (_, code) = app.organization_on("pro").await;
    let (_, user) = app.register(&code).await;
    let details: Value = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE action = 'user.registered' AND subject_id = $1::uuid",
    )
    .bind(user["id"].as_str().unwrap())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(details["terms_version"], app.config.current_terms_version.as_str());
    let welcome: i64 = sqlx::query_scalar("SELECT count(*) FROM email_outbox WHERE template = 'welcome'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(welcome, 1);
}
