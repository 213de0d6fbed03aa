//! What integrations need from every write: `Idempotency-Key` on creating POSTs, `ETag` and
//! `If-Match`/`If-None-Match` on single resources.
use crate::helpers::*;
use chrono::TimeDelta;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

fn ticket() -> Value {
    json!({ "subject": "Site fora do ar", "description": "A loja não abre.", "category": "technical", "severity": "high" })
}

async fn post_with_key(app: &TestApp, path: &str, token: &str, key: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn ticket_count(app: &TestApp, org_id: Uuid) -> i64 {
    sqlx::query_scalar!("SELECT count(*) AS \"n!\" FROM tickets WHERE organization_id = $1", org_id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_first_response_and_opens_one_ticket() {
    let app = spawn_app().await;
    let (token, org_id, _) = app.customer_on("pro").await;
    let body = ticket().to_string();
    let first = post_with_key(&app, "/v1/tickets", &token, "key-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    assert_eq!(location, format!("/v1/tickets/{}", first["id"].as_str().unwrap()));

    // The same request serialised differently (key order, spacing) is the same request.
    let reordered = r#"{ "severity": "high", "category": "technical", "description": "A loja não abre.", "subject": "Site fora do ar" }"#;
    let retry = post_with_key(&app, "/v1/tickets", &token, "key-1", reordered).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["location"], location.as_str());
    assert_eq!(retry.headers()["etag"], etag.as_str());
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["content-type"], "application/json");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    assert_eq!(ticket_count(&app, org_id).await, 1);

    // Without a key, or with another, a request is new.
    ok_json(app.post("/v1/tickets", Some(&token), &ticket()).await, StatusCode::CREATED).await;
    let other = post_with_key(&app, "/v1/tickets", &token, "key-2", &body).await;
    assert_eq!(other.status(), StatusCode::CREATED);
    assert_eq!(ticket_count(&app, org_id).await, 3);
}

#[tokio::test]
async fn the_same_key_for_another_request_is_422() {
    let app = spawn_app().await;
    let (token, org_id, _) = app.customer_on("pro").await;
    let first = post_with_key(&app, "/v1/tickets", &token, "k", &ticket().to_string()).await;
    let ticket_id = first.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let mut changed = ticket();
    changed["severity"] = json!("low");
    let reused = post_with_key(&app, "/v1/tickets", &token, "k", &changed.to_string()).await;
    assert_problem(reused, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused").await;
    // Another operation under the same key is another request too.
    let message = json!({ "body": "Mais detalhes" }).to_string();
    let elsewhere = post_with_key(&app, &format!("/v1/tickets/{ticket_id}/messages"), &token, "k", &message).await;
    assert_problem(elsewhere, StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused").await;
    assert_eq!(ticket_count(&app, org_id).await, 1);
}

#[tokio::test]
async fn keys_belong_to_their_caller() {
    let app = spawn_app().await;
    let (alice, alice_org, _) = app.customer_on("pro").await;
    let (bob, bob_org, _) = app.customer_on("pro").await;
    let body = ticket().to_string();
    let a = ok_json(post_with_key(&app, "/v1/tickets", &alice, "shared", &body).await, StatusCode::CREATED).await;
    let b = ok_json(post_with_key(&app, "/v1/tickets", &bob, "shared", &body).await, StatusCode::CREATED).await;
    assert_ne!(a["id"], b["id"]);
    assert_eq!(b["organization_id"], bob_org.to_string());
    assert_eq!(ticket_count(&app, alice_org).await, 1);
    assert_eq!(ticket_count(&app, bob_org).await, 1);
}

#[tokio::test]
async fn a_key_is_forgotten_after_24_hours() {
    let app = spawn_app_at("2026-03-10T13:00:00Z").await;
    let (token, org_id, _) = app.customer_on("pro").await;
    let body = ticket().to_string();
    let first = ok_json(post_with_key(&app, "/v1/tickets", &token, "daily", &body).await, StatusCode::CREATED).await;
    app.clock.advance(TimeDelta::hours(23));
    let replay = ok_json(post_with_key(&app, "/v1/tickets", &token, "daily", &body).await, StatusCode::CREATED).await;
    assert_eq!(replay["id"], first["id"]);
    app.clock.advance(TimeDelta::hours(2));
    let fresh = ok_json(post_with_key(&app, "/v1/tickets", &token, "daily", &body).await, StatusCode::CREATED).await;
    assert_ne!(fresh["id"], first["id"]);
    assert_eq!(ticket_count(&app, org_id).await, 2);
    // The retention round deletes what is past the period.
    let mut conn = app.pool.acquire().await.unwrap();
    let cutoff = app.clock.now() - helpdesk_core::idempotency::KEEP;
    assert_eq!(helpdesk_core::idempotency::prune(&mut conn, cutoff, 100).await.unwrap(), 0);
    app.clock.advance(TimeDelta::hours(25));
    let cutoff = app.clock.now() - helpdesk_core::idempotency::KEEP;
    assert_eq!(helpdesk_core::idempotency::prune(&mut conn, cutoff, 100).await.unwrap(), 1);
}

#[tokio::test]
async fn a_retry_while_the_first_request_runs_is_409() {
    let app = spawn_app().await;
    let (token, org_id, _) = app.customer_on("pro").await;
    let me = ok_json(app.get("/v1/me", Some(&token)).await, StatusCode::OK).await;
    let user_id: Uuid = me["id"].as_str().unwrap().parse().unwrap();
    // The first request holds the key's lock for as long as its transaction runs; hold it here.
    let mut first = app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(helpdesk_core::idempotency::lock_id(user_id, "busy"))
        .execute(&mut *first)
        .await
        .unwrap();
    let body = ticket().to_string();
    let concurrent = post_with_key(&app, "/v1/tickets", &token, "busy", &body).await;
    assert_problem(concurrent, StatusCode::CONFLICT, "idempotency_key_in_use").await;
    first.rollback().await.unwrap();
    let later = post_with_key(&app, "/v1/tickets", &token, "busy", &body).await;
    assert_eq!(later.status(), StatusCode::CREATED);
    assert_eq!(ticket_count(&app, org_id).await, 1);
}

#[tokio::test]
async fn a_malformed_key_is_400_naming_the_header() {
    let app = spawn_app().await;
    let (token, org_id, _) = app.customer_on("pro").await;
    for key in ["has space".to_owned(), "x".repeat(256), "é".to_owned()] {
        let response = app
            .client
            .post(app.url("/v1/tickets"))
            .bearer_auth(&token)
            .header("Idempotency-Key", reqwest::header::HeaderValue::from_bytes(key.as_bytes()).unwrap())
            .json(&ticket())
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    }
    assert_eq!(ticket_count(&app, org_id).await, 0);
}

#[tokio::test]
async fn messages_organisations_contracts_and_users_are_created_once_per_key() {
    let app = spawn_app().await;
    let (token, _, _) = app.customer_on("pro").await;
    let ticket = ok_json(app.post("/v1/tickets", Some(&token), &ticket()).await, StatusCode::CREATED).await;
    let messages = format!("/v1/tickets/{}/messages", ticket["id"].as_str().unwrap());
    let reply = json!({ "body": "Mais detalhes" }).to_string();
    let admin = app.admin_token.clone();
    let org = json!({ "name": format!("Org {}", Uuid::now_v7()) }).to_string();
    let user =
        json!({ "email": format!("a-{}@kadix.test", Uuid::now_v7().simple()), "name": "A", "role": "agent", "password": PASSWORD })
            .to_string();
    let mut org_id = String::new();
    for _ in 0..2 {
        let m = ok_json(post_with_key(&app, &messages, &token, "m", &reply).await, StatusCode::CREATED).await;
        assert_eq!(m["message"]["body"], "Mais detalhes");
        let o = ok_json(post_with_key(&app, "/v1/organizations", &admin, "o", &org).await, StatusCode::CREATED).await;
        org_id = o["id"].as_str().unwrap().to_owned();
        ok_json(post_with_key(&app, "/v1/users", &admin, "u", &user).await, StatusCode::CREATED).await;
    }
    let conversation = ok_json(app.get(&messages, Some(&token)).await, StatusCode::OK).await;
    assert_eq!(conversation.as_array().unwrap().len(), 1);
    let contract = json!({ "plan": "pro", "starts_on": "2030-01-01" }).to_string();
    let contracts = format!("/v1/organizations/{org_id}/contracts");
    let c1 = ok_json(post_with_key(&app, &contracts, &admin, "c", &contract).await, StatusCode::CREATED).await;
    let c2 = ok_json(post_with_key(&app, &contracts, &admin, "c", &contract).await, StatusCode::CREATED).await;
    assert_eq!(c1, c2);
    let listed = ok_json(app.get(&contracts, Some(&admin)).await, StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_stale_if_match_is_412_and_a_current_one_applies() {
    let app = spawn_app().await;
    let (token, _, _) = app.customer_on("pro").await;
    let (_, agent) = app.agent().await;
    let created = app.post("/v1/tickets", Some(&token), &ticket()).await;
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let url = app.url(&format!("/v1/tickets/{id}"));

    let read = send(app.client.get(&url).bearer_auth(&agent)).await;
    assert_eq!(read.headers()["etag"], etag.as_str());
    let not_modified = send(app.client.get(&url).bearer_auth(&agent).header("If-None-Match", &etag)).await;
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(not_modified.headers()["etag"], etag.as_str());

    let changed =
        send(app.client.patch(&url).bearer_auth(&agent).header("If-Match", &etag).json(&json!({ "severity": "low" })))
            .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let new_etag = changed.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);

    let stale = send(
        app.client.patch(&url).bearer_auth(&agent).header("If-Match", &etag).json(&json!({ "severity": "critical" })),
    )
    .await;
    assert_problem(stale, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let unchanged = ok_json(app.get(&format!("/v1/tickets/{id}"), Some(&agent)).await, StatusCode::OK).await;
    assert_eq!(unchanged["severity"], "low");
    let modified = send(app.client.get(&url).bearer_auth(&agent).header("If-None-Match", &etag)).await;
    assert_eq!(modified.status(), StatusCode::OK);

    // Status changes: close and reopen honour it too; without the header a change applies.
    let close = app.url(&format!("/v1/tickets/{id}/close"));
    let stale_close =
        send(app.client.post(&close).bearer_auth(&token).header("If-Match", &etag).json(&json!({}))).await;
    assert_problem(stale_close, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let closed = send(app.client.post(&close).bearer_auth(&token).header("If-Match", &new_etag).json(&json!({}))).await;
    assert_eq!(closed.status(), StatusCode::OK);
    let closed_etag = closed.headers()["etag"].to_str().unwrap().to_owned();
    let reopen = app.url(&format!("/v1/tickets/{id}/reopen"));
    let stale_reopen = send(app.client.post(&reopen).bearer_auth(&token).header("If-Match", &new_etag)).await;
    assert_problem(stale_reopen, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let reopened = send(app.client.post(&reopen).bearer_auth(&token).header("If-Match", &closed_etag)).await;
    assert_eq!(reopened.status(), StatusCode::OK);
    ok_json(app.patch(&format!("/v1/tickets/{id}"), &agent, &json!({ "severity": "high" })).await, StatusCode::OK)
        .await;

    let any =
        send(app.client.patch(&url).bearer_auth(&agent).header("If-Match", "*").json(&json!({ "severity": "low" })))
            .await;
    assert_eq!(any.status(), StatusCode::OK);
    let malformed =
        send(app.client.patch(&url).bearer_auth(&agent).header("If-Match", "v1").json(&json!({ "severity": "low" })))
            .await;
    // A value that names no entity tag can match no version: the condition is false, as for a
    // stale tag, and nothing changes.
    assert_problem(malformed, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
}

#[tokio::test]
async fn another_organisations_ticket_is_404_whatever_the_if_match() {
    let app = spawn_app().await;
    let (alice, _, _) = app.customer_on("pro").await;
    let (bob, _, _) = app.customer_on("pro").await;
    let created = app.post("/v1/tickets", Some(&alice), &ticket()).await;
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let close = app.url(&format!("/v1/tickets/{id}/close"));
    let response =
        send(app.client.post(&close).bearer_auth(&bob).header("If-Match", "\"v999\"").json(&json!({}))).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = send(app.client.post(&close).bearer_auth(&bob).header("If-Match", &etag).json(&json!({}))).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn an_organisation_rename_honours_if_match() {
    let app = spawn_app().await;
    let (org_id, _) = app.organization_on("pro").await;
    let url = app.url(&format!("/v1/organizations/{org_id}"));
    let read = send(app.client.get(&url).bearer_auth(&app.admin_token)).await;
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    let renamed = send(
        app.client
            .patch(&url)
            .bearer_auth(&app.admin_token)
            .header("If-Match", &etag)
            .json(&json!({ "name": format!("Renamed {org_id}") })),
    )
    .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    assert_ne!(renamed.headers()["etag"], etag.as_str());
    let stale = send(
        app.client
            .patch(&url)
            .bearer_auth(&app.admin_token)
            .header("If-Match", &etag)
            .json(&json!({ "name": "Lost update" })),
    )
    .await;
    assert_problem(stale, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let now =
        ok_json(app.get(&format!("/v1/organizations/{org_id}"), Some(&app.admin_token)).await, StatusCode::OK).await;
    assert_eq!(now["name"], format!("Renamed {org_id}"));
}

/// actix-http's HTTP/1 parser answers a request whose header holds a NUL byte before any
/// application code runs, with a bare 400 and no body, and closes the connection: no
/// middleware, error handler or default service sees it (docs/architecture.md, decision 19).
/// This pins that behaviour, so a framework upgrade that makes it reachable shows up here.
#[tokio::test]
async fn a_nul_byte_in_a_header_is_refused_before_the_application() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app().await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Trace: a\0b\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{answer}");
    assert!(answer.to_lowercase().contains("content-length: 0"), "{answer}");
}

/// Every single resource answers with an `ETag` and a 304 to a client that holds it; a
/// subscription changes only under a current `If-Match`.
#[tokio::test]
async fn single_resources_are_tagged_and_a_subscription_changes_only_under_a_current_tag() {
    let app = spawn_app_with(&[("HELPDESK_EGRESS_ALLOW_CIDRS", "127.0.0.1/32")]).await;
    let admin = app.admin_token.clone();
    let (customer, _, session) = app.customer_on("pro").await;
    let customer_id = session["user"]["id"].as_str().unwrap().to_owned();
    let created = app.post("/v1/webhooks", Some(&admin), &json!({ "url": "http://127.0.0.1:8080/hooks" })).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let webhook = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let reads = [
        ("/v1/me".to_owned(), customer.clone()),
        (format!("/v1/users/{customer_id}"), admin.clone()),
        (format!("/v1/webhooks/{webhook}"), admin.clone()),
    ];
    for (path, token) in &reads {
        let first = send(app.client.get(app.url(path)).bearer_auth(token)).await;
        assert_eq!(first.status(), StatusCode::OK, "{path}");
        let etag =
            first.headers().get("etag").unwrap_or_else(|| panic!("{path} has an ETag")).to_str().unwrap().to_owned();
        let again = send(app.client.get(app.url(path)).bearer_auth(token).header("If-None-Match", &etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
        assert_eq!(again.headers()["etag"], etag.as_str(), "{path}");
    }

    let url = app.url(&format!("/v1/webhooks/{webhook}"));
    let etag = send(app.client.get(&url).bearer_auth(&admin)).await.headers()["etag"].to_str().unwrap().to_owned();
    let changed = send(
        app.client.patch(&url).bearer_auth(&admin).header("If-Match", &etag).json(&json!({ "description": "CRM" })),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let new_etag = changed.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(new_etag, etag);
    let stale = send(
        app.client.patch(&url).bearer_auth(&admin).header("If-Match", &etag).json(&json!({ "description": "ERP" })),
    )
    .await;
    assert_problem(stale, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let read = send(app.client.get(&url).bearer_auth(&admin)).await.json::<Value>().await.unwrap();
    assert_eq!(read["description"], "CRM", "the stale change was not applied");
    let modified = send(app.client.get(&url).bearer_auth(&admin).header("If-None-Match", &etag)).await;
    assert_eq!(modified.status(), StatusCode::OK, "an old tag gets the new representation");
}
