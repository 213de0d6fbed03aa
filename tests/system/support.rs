//! What every walk starts from: an organisation on a plan, a customer signed up with its code.

use chrono::{TimeDelta, Utc};
use helpdesk_system_tests::{PASSWORD, System, TERMS};
use reqwest::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

/// A customer of a new organisation on `plan`, signed up with the contract's code as a customer
/// does, in English (plain-ASCII subjects): (e-mail, organisation id).
pub async fn customer_on(system: &System, admin: &str, plan: &str) -> (String, String) {
    let unique = Uuid::now_v7().simple().to_string();
    let org = system
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v1/organizations",
            Some(admin),
            Some(json!({ "name": format!("Cliente {unique}") })),
        )
        .await;
    let org_id = org["id"].as_str().unwrap().to_owned();
    // Started yesterday, so "today" is covered in every time zone.
    let starts_on = (Utc::now() - TimeDelta::days(1)).date_naive();
    let contract = system
        .expect(
            StatusCode::CREATED,
            Method::POST,
            &format!("/v1/organizations/{org_id}/contracts"),
            Some(admin),
            Some(json!({ "plan": plan, "starts_on": starts_on })),
        )
        .await;
    let email = format!("cliente-{unique}@system.test");
    let signup = json!({
        "email": email, "password": PASSWORD, "name": "Ana Cliente", "locale": "en",
        "signup_code": contract["signup_code"], "accepted_terms_version": TERMS,
    });
    system.expect(StatusCode::CREATED, Method::POST, "/v1/auth/register", None, Some(signup)).await;
    system.mail(&email, "Welcome to Kadix Support").await;
    (email, org_id)
}

/// A new agent created by the admin: (id, e-mail).
pub async fn agent(system: &System, admin: &str) -> (String, String) {
    let email = format!("agente-{}@system.test", Uuid::now_v7().simple());
    let user = system
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v1/users",
            Some(admin),
            Some(json!({ "email": email, "name": "Bruno Agente", "role": "agent", "password": PASSWORD, "locale": "en" })),
        )
        .await;
    (user["id"].as_str().unwrap().to_owned(), email)
}
