use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn admins_see_failed_emails_with_the_servers_answer_and_retry_them() {
    let app = spawn_app().await;
    let (customer, _, session) = app.customer_on("pro").await;
    let email = session["user"]["email"].as_str().unwrap().to_owned();
    // The sign-up's welcome e-mail is in the outbox; make it fail as a 5xx answer would.
    sqlx::query("UPDATE email_outbox SET status = 'failed', attempts = 1, last_error = '550 5.1.1 mailbox unavailable' WHERE to_address = $1")
        .bind(&email)
        .execute(&app.pool)
        .await
        .unwrap();

    let failed = ok_json(app.get("/v1/admin/outbox?status=failed", Some(&app.admin_token)).await, StatusCode::OK).await;
    let items = failed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0]["template"].as_str(), items[0]["last_error"].as_str()),
        (Some("welcome"), Some("550 5.1.1 mailbox unavailable"))
    );
    assert!(items[0].get("payload").is_none(), "payloads can hold secrets and are never listed");
    let id = items[0]["id"].as_str().unwrap().to_owned();

    assert_problem(app.get("/v1/admin/outbox", Some(&customer)).await, StatusCode::FORBIDDEN, "admin_only").await;
    assert_problem(
        app.post(&format!("/v1/admin/outbox/{id}/retry"), Some(&customer), &json!({})).await,
        StatusCode::FORBIDDEN,
        "admin_only",
    )
    .await;
    let bad = app.get("/v1/admin/outbox?status=lost", Some(&app.admin_token)).await;
    assert_eq!(
        assert_problem(bad, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await["errors"][0]["field"],
        "status"
    );

    let retried = ok_json(
        app.post(&format!("/v1/admin/outbox/{id}/retry"), Some(&app.admin_token), &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!((retried["status"].as_str(), retried["attempts"].as_i64()), (Some("pending"), Some(0)));
    let again = app.post(&format!("/v1/admin/outbox/{id}/retry"), Some(&app.admin_token), &json!({})).await;
    assert_problem(again, StatusCode::CONFLICT, "not_failed").await;
    assert_problem(
        app.post(&format!("/v1/admin/outbox/{}/retry", uuid::Uuid::now_v7()), Some(&app.admin_token), &json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let pending =
        ok_json(app.get("/v1/admin/outbox?status=pending", Some(&app.admin_token)).await, StatusCode::OK).await;
    assert!(pending["items"].as_array().unwrap().iter().any(|e| e["id"] == id.as_str()));
}
