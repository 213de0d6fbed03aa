use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn served_openapi_matches_the_committed_copy() {
    let app = spawn_app().await;
    let served = ok_json(app.get("/openapi.json", None).await, StatusCode::OK).await;
    let committed: Value = serde_json::from_str(include_str!("../../../../openapi/openapi.json")).unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    assert!(served == committed, "openapi/openapi.json is stale: regenerate it with `scripts/openapi`");
    let paths = served["paths"].as_object().unwrap();
    for path in [
        "/v1/auth/register",
        "/v1/auth/login",
        "/v1/auth/refresh",
        "/v1/me",
        "/v1/organizations/{id}/contracts",
        "/health/ready",
    ] {
        assert!(paths.contains_key(path), "{path} missing from the document");
    }
}

#[tokio::test]
async fn interactive_docs_are_served_without_external_assets() {
    let app = spawn_app().await;
    let bare = app.get("/docs", None).await;
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()["location"], "/docs/");
    let page = app.get("/docs/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("unpkg.com") && !html.contains("cdn."), "the page must not load assets from the internet");
}
