use crate::helpers::*;
use reqwest::StatusCode;

#[tokio::test]
async fn unknown_routes_and_methods_answer_problem_json() {
    let app = spawn_app().await;
    assert_problem(app.get("/v1/nothing-here", None).await, StatusCode::NOT_FOUND, "not_found").await;
    let wrong_method = app.client.delete(app.url("/v1/plans")).send().await.unwrap();
    assert_eq!(wrong_method.headers()["allow"], "GET, HEAD, OPTIONS");
    assert_problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[tokio::test]
async fn malformed_json_is_400_and_wrong_shapes_name_the_field() {
    let app = spawn_app().await;
    let malformed = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, StatusCode::BAD_REQUEST, "malformed_json").await;

    let missing = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"email":"a@b.co"}"#)
        .send()
        .await
        .unwrap();
    let body = assert_problem(missing, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "password");

    let wrong_type = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body(r#"{"email":"a@b.co","password":12}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        assert_problem(wrong_type, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await["errors"][0]["field"],
        "password"
    );

    let not_json = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_problem(not_json, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;

    let bad_date = app
        .post(
            &format!("/v1/organizations/{}/contracts", uuid::Uuid::now_v7()),
            Some(&app.admin_token),
            &serde_json::json!({ "plan": "pro", "starts_on": "31/12/2026" }),
        )
        .await;
    assert_eq!(
        assert_problem(bad_date, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await["errors"][0]["field"],
        "starts_on"
    );
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app_with(&[("HELPDESK_MAX_BODY_BYTES", "1024")]).await;
    let big = format!(r#"{{"email":"a@b.co","password":"{}"}}"#, "x".repeat(4096));
    let response = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn bad_ids_and_query_parameters_are_named() {
    let app = spawn_app().await;
    assert_problem(
        app.get("/v1/organizations/not-a-uuid", Some(&app.admin_token)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let too_many = assert_problem(
        app.get("/v1/users?limit=500", Some(&app.admin_token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(too_many["errors"][0]["field"], "limit");
    let not_a_number = assert_problem(
        app.get("/v1/users?limit=ten", Some(&app.admin_token)).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(not_a_number["detail"].as_str().unwrap().contains("limit"), "{not_a_number}");
    let bad_cursor = assert_problem(
        app.get("/v1/users?cursor=abc", Some(&app.admin_token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(bad_cursor["errors"][0]["field"], "cursor");
    let bad_role = assert_problem(
        app.get("/v1/users?role=king", Some(&app.admin_token)).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(bad_role["detail"].as_str().unwrap().contains("king"), "{bad_role}");
}
