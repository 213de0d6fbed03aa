//! HTTP behaviour every route shares: 405 with `Allow`, `HEAD`, CORS, RFC 6750 `invalid_token`,
//! typed enum errors, and the role checked before the input.
use crate::helpers::*;
use helpdesk_core::Clock;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn allow_of(response: &reqwest::Response) -> Vec<String> {
    let allow = response.headers().get("allow").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    allow.split(',').map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()).collect()
}

#[tokio::test]
async fn a_wrong_method_on_a_known_path_is_405_with_allow() {
    let app = spawn_app().await;
    let put = app.client.put(app.url("/v1/tickets")).bearer_auth(&app.admin_token).send().await.unwrap();
    assert_eq!(allow_of(&put), ["GET", "HEAD", "POST", "OPTIONS"]);
    let body = assert_problem(put, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    assert!(body["detail"].as_str().unwrap().starts_with("PUT is not allowed on /v1/tickets"), "{body}");

    let trace = app.client.request(Method::TRACE, app.url("/v1/me")).send().await.unwrap();
    assert_eq!(allow_of(&trace), ["GET", "HEAD", "PATCH", "DELETE", "OPTIONS"]);
    assert_problem(trace, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    // Templated paths too, whatever the id.
    let delete = app.client.delete(app.url(&format!("/v1/tickets/{}", uuid::Uuid::now_v7()))).send().await.unwrap();
    assert_eq!(allow_of(&delete), ["GET", "HEAD", "PATCH", "OPTIONS"]);
    assert_eq!(delete.status(), StatusCode::METHOD_NOT_ALLOWED);

    let options = app.client.request(Method::OPTIONS, app.url("/v1/holidays")).send().await.unwrap();
    assert_eq!(options.status(), StatusCode::NO_CONTENT);
    assert_eq!(allow_of(&options), ["GET", "HEAD", "POST", "OPTIONS"]);

    let unknown = app.client.put(app.url("/v1/nothing-here")).send().await.unwrap();
    assert!(allow_of(&unknown).is_empty());
    assert_problem(unknown, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn head_answers_every_get_route_with_its_headers_and_no_body() {
    let app = spawn_app().await;
    let get = app.get("/v1/plans", Some(&app.admin_token)).await;
    let get_length = get.bytes().await.unwrap().len();
    assert!(get_length > 0);
    let head = app.client.head(app.url("/v1/plans")).bearer_auth(&app.admin_token).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-type"], "application/json");
    assert_eq!(head.headers()["content-length"].to_str().unwrap(), get_length.to_string());
    assert!(head.bytes().await.unwrap().is_empty());

    let live = app.client.head(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    // HEAD carries the same status as GET would, authentication included.
    let anonymous = app.client.head(app.url("/v1/plans")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    // A path without GET refuses HEAD too, and says what it allows.
    let post_only = app.client.head(app.url("/v1/auth/login")).send().await.unwrap();
    assert_eq!(post_only.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(allow_of(&post_only), ["POST", "OPTIONS"]);
}

#[tokio::test]
async fn cors_answers_preflights_for_configured_origins_only() {
    let origin = "http://localhost:3000";
    let app = spawn_app_with(&[("HELPDESK_CORS_ORIGINS", origin)]).await;
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/v1/tickets"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type, idempotency-key")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], origin);
    assert!(headers["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let allowed_headers = headers["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    for header in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed_headers.contains(header), "{allowed_headers}");
    }

    let get = app.client.get(app.url("/v1/plans")).header("origin", origin).bearer_auth(&app.admin_token);
    let get = get.send().await.unwrap();
    assert_eq!(get.status(), StatusCode::OK);
    assert_eq!(get.headers()["access-control-allow-origin"], origin);
    let exposed = get.headers()["access-control-expose-headers"].to_str().unwrap().to_lowercase();
    for header in ["etag", "location", "retry-after", "ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
        assert!(exposed.contains(header), "{header} not exposed: {exposed}");
    }
    // Errors carry the CORS headers too, or the page could not read the problem document.
    let unauthorized = app.client.get(app.url("/v1/plans")).header("origin", origin).send().await.unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unauthorized.headers()["access-control-allow-origin"], origin);

    let stranger = app.client.get(app.url("/health/live")).header("origin", "https://evil.example").send().await;
    let stranger = stranger.unwrap();
    assert_eq!(stranger.status(), StatusCode::OK, "same-origin style requests still work");
    assert!(stranger.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn without_configured_origins_no_cross_origin_access_is_granted() {
    let app = spawn_app().await;
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/v1/tickets"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn an_expired_or_forged_token_is_invalid_token_and_a_missing_one_is_not() {
    let app = spawn_app_with_clock(&[], Clock::manual("2026-05-04T12:00:00Z".parse().unwrap())).await;
    let token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/v1/me", Some(&token)).await.status(), StatusCode::OK);

    app.clock.advance(chrono::TimeDelta::hours(1));
    for bad in [token.as_str(), "not-a-jwt"] {
        let response = app.get("/v1/me", Some(bad)).await;
        assert_eq!(response.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let missing = app.get("/v1/me", None).await;
    assert_eq!(missing.headers()["www-authenticate"], "Bearer");
    assert_problem(missing, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn a_wrong_json_type_on_an_enum_field_is_422_naming_the_field() {
    let app = spawn_app().await;
    let (customer, _, _) = app.customer_on("pro").await;
    let body =
        json!({ "subject": "Site fora do ar", "description": "Erro 502", "category": "technical", "severity": 5 });
    let response = app.post("/v1/tickets", Some(&customer), &body).await;
    let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "severity", "{problem}");
}

#[tokio::test]
async fn the_role_is_checked_before_the_input_on_admin_routes() {
    let app = spawn_app().await;
    let email = format!("agent-{}@kadix.test", uuid::Uuid::now_v7().simple());
    let agent = json!({ "email": email, "name": "Agente", "role": "agent", "password": PASSWORD });
    ok_json(app.post("/v1/users", Some(&app.admin_token), &agent).await, StatusCode::CREATED).await;
    let agent = app.login(&email, PASSWORD).await["access_token"].as_str().unwrap().to_owned();

    for path in ["/v1/users?limit=ten", "/v1/users?role=king", "/v1/admin/outbox?surprise=1"] {
        assert_problem(app.get(path, Some(&agent)).await, StatusCode::FORBIDDEN, "admin_only").await;
        assert_problem(app.get(path, None).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let bad_day = json!({ "date": "not a date", "name": 7 });
    assert_problem(app.post("/v1/holidays", Some(&agent), &bad_day).await, StatusCode::FORBIDDEN, "admin_only").await;
    let malformed = app
        .client
        .post(app.url("/v1/organizations"))
        .bearer_auth(&agent)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_problem(malformed, StatusCode::FORBIDDEN, "admin_only").await;
    // The administrator gets the input errors.
    let admin_sees = assert_problem(
        app.get("/v1/users?role=king", Some(&app.admin_token)).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert!(admin_sees["detail"].as_str().unwrap().contains("king"));
}

#[tokio::test]
async fn authenticated_callers_have_a_quota_told_in_ratelimit_headers() {
    let app = spawn_app_with(&[("HELPDESK_API_RATE_LIMIT", "3")]).await;
    let header = |response: &reqwest::Response, name: &str| {
        response.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
    };
    for remaining in ["2", "1", "0"] {
        let response = app.get("/v1/me", Some(&app.admin_token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "ratelimit-limit"), "3");
        assert_eq!(header(&response, "ratelimit-remaining"), remaining);
        let reset: u64 = header(&response, "ratelimit-reset").parse().unwrap();
        assert!((1..=60).contains(&reset), "{reset}");
    }
    let refused = app.get("/v1/plans", Some(&app.admin_token)).await;
    assert!(header(&refused, "retry-after").parse::<u64>().unwrap() >= 1);
    assert_eq!(header(&refused, "ratelimit-remaining"), "0");
    assert_eq!(header(&refused, "ratelimit-limit"), "3");
    assert_problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // Sign-in has limits of its own, told the same way.
    let login = app.post("/v1/auth/login", None, &json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD })).await;
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(header(&login, "ratelimit-limit"), "1000");
    assert!(!header(&login, "ratelimit-remaining").is_empty());
}
