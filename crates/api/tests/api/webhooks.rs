//! Webhook subscriptions over HTTP (issue 13): admin only, the secret shown once, the SSRF
//! guard naming `url`, rotation with an overlap, and the delivery log a ping leaves.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn admins_manage_subscriptions_and_see_each_delivery() {
    let app = spawn_app_with(&[("HELPDESK_EGRESS_ALLOW_CIDRS", "127.0.0.1/32")]).await;
    let (customer, _, _) = app.customer_on("premium").await;
    let forbidden = app.post("/v1/webhooks", Some(&customer), &json!({ "url": "https://example.com/" })).await;
    assert_problem(forbidden, StatusCode::FORBIDDEN, "admin_only").await;

    // Internal addresses and plain http to the internet are refused, naming the field.
    let admin = app.admin_token.clone();
    for url in ["http://10.0.0.1/hook", "https://169.254.169.254/", "ftp://example.com/", "http://127.0.0.2:8080/"] {
        let refused = app.post("/v1/webhooks", Some(&admin), &json!({ "url": url })).await;
        let problem = assert_problem(refused, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
    }
    let unknown = app
        .post(
            "/v1/webhooks",
            Some(&admin),
            &json!({ "url": "http://127.0.0.1:8080/", "event_types": ["ticket.deleted"] }),
        )
        .await;
    let problem = assert_problem(unknown, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "event_types");

    let created = ok_json(
        app.post(
            "/v1/webhooks",
            Some(&admin),
            &json!({ "url": "http://127.0.0.1:8080/hooks", "event_types": ["ticket.created", "sla.breached"] }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    let shown = ok_json(app.get(&format!("/v1/webhooks/{id}"), Some(&admin)).await, StatusCode::OK).await;
    assert!(shown.get("secret").is_none(), "the secret is shown once: {shown}");
    assert_eq!(shown["event_types"], json!(["ticket.created", "sla.breached"]));

    let rotated = ok_json(
        app.post(&format!("/v1/webhooks/{id}/rotate-secret"), Some(&admin), &json!({ "overlap_hours": 2 })).await,
        StatusCode::OK,
    )
    .await;
    assert_ne!(rotated["secret"], secret);
    assert!(rotated["previous_secret_expires_at"].is_string(), "{rotated}");

    let disabled =
        ok_json(app.post(&format!("/v1/webhooks/{id}/disable"), Some(&admin), &json!({})).await, StatusCode::OK).await;
    assert_eq!(disabled["enabled"], false);
    let enabled =
        ok_json(app.post(&format!("/v1/webhooks/{id}/enable"), Some(&admin), &json!({})).await, StatusCode::OK).await;
    assert_eq!(enabled["enabled"], true);

    // A ping is queued as a delivery (no worker runs here, so it stays pending).
    let ping =
        ok_json(app.post(&format!("/v1/webhooks/{id}/test"), Some(&admin), &json!({})).await, StatusCode::ACCEPTED)
            .await;
    let page = ok_json(app.get(&format!("/v1/webhooks/{id}/deliveries"), Some(&admin)).await, StatusCode::OK).await;
    assert_eq!(page["items"][0]["event_id"], ping["event_id"]);
    assert_eq!(page["items"][0]["event_type"], "ping");
    assert_eq!(page["items"][0]["state"], "pending");
    let delivery = page["items"][0]["id"].as_str().unwrap().to_owned();
    let replayed = ok_json(
        app.post(&format!("/v1/webhooks/{id}/deliveries/{delivery}/replay"), Some(&admin), &json!({})).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert!(replayed["delivery_id"].is_string());
    let replay = ok_json(
        app.post(&format!("/v1/webhooks/{id}/replay"), Some(&admin), &json!({ "since": "2020-01-01T00:00:00Z" })).await,
        StatusCode::ACCEPTED,
    )
    .await;
    assert_eq!(replay["queued"], 1, "the ping, addressed to this subscription");
    let future =
        app.post(&format!("/v1/webhooks/{id}/replay"), Some(&admin), &json!({ "since": "2999-01-01T00:00:00Z" })).await;
    assert_problem(future, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    let bad_cursor = app.get(&format!("/v1/webhooks/{id}/deliveries?cursor=zzz"), Some(&admin)).await;
    assert_problem(bad_cursor, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let list = ok_json(app.get("/v1/webhooks", Some(&admin)).await, StatusCode::OK).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let deleted = app.client.delete(app.url(&format!("/v1/webhooks/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = app.get(&format!("/v1/webhooks/{id}"), Some(&admin)).await;
    assert_problem(gone, StatusCode::NOT_FOUND, "not_found").await;
}
