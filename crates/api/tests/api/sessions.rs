use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("{key} missing in {v}")).to_owned()
}

#[tokio::test]
async fn sign_up_login_refresh_logout_path() {
    let app = spawn_app().await;
    let (_, code) = app.organization_on("pro").await;
    let (email, user) = app.register(&code).await;
    assert_eq!(user["role"], "customer");
    assert_eq!(user["terms_version"], app.config.current_terms_version.as_str());
    assert!(user["terms_accepted_at"].is_string());

    let session = app.login(&email, PASSWORD).await;
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["expires_in"], 900);
    let me = ok_json(app.get("/v1/me", Some(&str_of(&session, "access_token"))).await, StatusCode::OK).await;
    assert_eq!(me["email"], email.as_str());

    let refreshed = ok_json(
        app.post("/v1/auth/refresh", None, &json!({ "refresh_token": str_of(&session, "refresh_token") })).await,
        StatusCode::OK,
    )
    .await;
    assert_ne!(refreshed["refresh_token"], session["refresh_token"], "refresh rotates the token");
    ok_json(app.get("/v1/me", Some(&str_of(&refreshed, "access_token"))).await, StatusCode::OK).await;

    let logout =
        app.post("/v1/auth/logout", None, &json!({ "refresh_token": str_of(&refreshed, "refresh_token") })).await;
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let after =
        app.post("/v1/auth/refresh", None, &json!({ "refresh_token": str_of(&refreshed, "refresh_token") })).await;
    assert_problem(after, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let session = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let first = str_of(&session, "refresh_token");
    let second =
        ok_json(app.post("/v1/auth/refresh", None, &json!({ "refresh_token": first })).await, StatusCode::OK).await;
    let second = str_of(&second, "refresh_token");

    // A thief replays the spent token: refused, and the legitimate successor dies with it.
    assert_problem(
        app.post("/v1/auth/refresh", None, &json!({ "refresh_token": first })).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.post("/v1/auth/refresh", None, &json!({ "refresh_token": second })).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Other sessions of the same user are untouched.
    let other = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    ok_json(
        app.post("/v1/auth/refresh", None, &json!({ "refresh_token": str_of(&other, "refresh_token") })).await,
        StatusCode::OK,
    )
    .await;
}

fn claims(app: &TestApp, user_id: &str, exp_offset: i64, audience: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({ "sub": user_id, "role": "admin", "iat": now, "exp": now + exp_offset, "iss": app.config.jwt_issuer, "aud": audience })
}

#[tokio::test]
async fn forged_expired_wrong_audience_and_unsigned_tokens_are_refused() {
    let app = spawn_app().await;
    let (customer_token, _, session) = app.customer_on("pro").await;
    let customer_id = session["user"]["id"].as_str().unwrap().to_owned();
    let key = EncodingKey::from_secret(JWT_SECRET.as_bytes());

    // A well-formed token we sign ourselves is accepted: the refusals below are about the flaw.
    let good = encode(&Header::new(Algorithm::HS256), &claims(&app, &customer_id, 600, &app.config.jwt_audience), &key)
        .unwrap();
    ok_json(app.get("/v1/me", Some(&good)).await, StatusCode::OK).await;

    let expired =
        encode(&Header::new(Algorithm::HS256), &claims(&app, &customer_id, -120, &app.config.jwt_audience), &key)
            .unwrap();
    let wrong_audience =
        encode(&Header::new(Algorithm::HS256), &claims(&app, &customer_id, 600, "another-api"), &key).unwrap();
    let other_key = encode(
        &Header::new(Algorithm::HS256),
        &claims(&app, &customer_id, 600, &app.config.jwt_audience),
        &EncodingKey::from_secret(b"not-our-secret-not-our-secret-123456"),
    )
    .unwrap();
    let other_algorithm =
        encode(&Header::new(Algorithm::HS512), &claims(&app, &customer_id, 600, &app.config.jwt_audience), &key)
            .unwrap();

    // Unsigned: header {"alg":"none"} and an empty signature.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&app, &customer_id, 600, &app.config.jwt_audience).to_string());
    let unsigned = format!("{none_header}.{payload}.");

    // Tampered: the customer's real token with the role in its payload raised to admin.
    let parts: Vec<&str> = customer_token.split('.').collect();
    let mut body: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    body["role"] = json!("admin");
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(body.to_string()), parts[2]);

    for (what, token) in [
        ("expired", expired),
        ("wrong audience", wrong_audience),
        ("other key", other_key),
        ("HS512", other_algorithm),
        ("alg none", unsigned),
        ("tampered", tampered),
        ("garbage", "not.a.jwt".to_owned()),
    ] {
        let response = app.get("/v1/users", Some(&token)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what} token must be refused");
        assert_eq!(response.headers()["www-authenticate"], r#"Bearer error="invalid_token""#, "{what}");
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    assert_problem(app.get("/v1/me", None).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[tokio::test]
async fn password_change_ends_every_session() {
    let app = spawn_app().await;
    let (token, _, session) = app.customer_on("essencial").await;
    let email = session["user"]["email"].as_str().unwrap().to_owned();

    let wrong = app
        .put(
            "/v1/me/password",
            &token,
            &json!({ "current_password": "not my password at all", "new_password": "another good passphrase" }),
        )
        .await;
    let body = assert_problem(wrong, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "current_password");

    // Tokens carry whole seconds; step past the second they were issued in.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let changed = app
        .put(
            "/v1/me/password",
            &token,
            &json!({ "current_password": PASSWORD, "new_password": "another good passphrase" }),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);

    assert_problem(app.get("/v1/me", Some(&token)).await, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_problem(
        app.post("/v1/auth/refresh", None, &json!({ "refresh_token": session["refresh_token"] })).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_problem(
        app.post("/v1/auth/login", None, &json!({ "email": email, "password": PASSWORD })).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    app.login(&email, "another good passphrase").await;
}

/// Found by Schemathesis: an address shorter than the schema's 3 characters was accepted.
#[tokio::test]
async fn a_password_reset_for_an_address_outside_the_schemas_lengths_is_a_422() {
    let app = spawn_app().await;
    for email in ["00".to_owned(), format!("{}@example.com", "a".repeat(250))] {
        let answer = app.post("/v1/auth/password-reset/request", None, &json!({ "email": email })).await;
        let problem = assert_problem(answer, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "email");
    }
}

#[tokio::test]
async fn password_reset_writes_one_outbox_email_and_the_token_works_once() {
    let app = spawn_app().await;
    let (_, _, session) = app.customer_on("pro").await;
    let email = session["user"]["email"].as_str().unwrap().to_owned();

    let unknown = app.post("/v1/auth/password-reset/request", None, &json!({ "email": "nobody@example.com" })).await;
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    let unknown_body: Value = unknown.json().await.unwrap();
    let known = app.post("/v1/auth/password-reset/request", None, &json!({ "email": email.to_uppercase() })).await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(
        known.json::<Value>().await.unwrap(),
        unknown_body,
        "the answer must not reveal whether the e-mail exists"
    );

    let rows = sqlx::query_as::<_, (String, String, Value)>(
        "SELECT to_address, idempotency_key, payload FROM email_outbox WHERE template = 'password_reset'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "one reset e-mail, none for the unknown address");
    assert_eq!(rows[0].0, email);
    assert!(rows[0].1.starts_with("password-reset:"));
    let token = rows[0].2["token"].as_str().unwrap().to_owned();
    assert!(rows[0].2["reset_url"].as_str().unwrap().starts_with("https://helpdesk.test/reset-password?token="));

    let weak = app
        .post("/v1/auth/password-reset/confirm", None, &json!({ "token": token, "new_password": "password123" }))
        .await;
    assert_eq!(
        assert_problem(weak, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await["errors"][0]["field"],
        "new_password"
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let confirmed = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            &json!({ "token": token, "new_password": "a brand new passphrase" }),
        )
        .await;
    assert_eq!(confirmed.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get("/v1/me", Some(session["access_token"].as_str().unwrap())).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    app.login(&email, "a brand new passphrase").await;

    let again = app
        .post(
            "/v1/auth/password-reset/confirm",
            None,
            &json!({ "token": token, "new_password": "yet another passphrase" }),
        )
        .await;
    assert_eq!(
        assert_problem(again, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await["errors"][0]["field"],
        "token"
    );
}

#[tokio::test]
async fn login_is_rate_limited_per_address_with_retry_after() {
    let app = spawn_app_with(&[("HELPDESK_AUTH_IP_RATE_LIMIT", "3")]).await;
    // spawn_app logged in once already; two more attempts are allowed.
    for _ in 0..2 {
        let attempt = app
            .post("/v1/auth/login", None, &json!({ "email": "someone@example.com", "password": "wrong password here" }))
            .await;
        assert_problem(attempt, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let limited = app.post("/v1/auth/login", None, &json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD })).await;
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_problem(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn login_is_rate_limited_per_account_across_addresses() {
    let app = spawn_app_with(&[("HELPDESK_AUTH_RATE_LIMIT", "3"), ("HELPDESK_TRUST_PROXY", "true")]).await;
    assert_eq!(app.config.auth_ip_rate_limit.max, 1000, "only the account's limit can stop these");
    let target = "victim@example.com";
    for i in 0..3 {
        let response = app
            .client
            .post(app.url("/v1/auth/login"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .json(&json!({ "email": target, "password": "guess number one" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let fourth = app
        .client
        .post(app.url("/v1/auth/login"))
        .header("x-forwarded-for", "203.0.113.99")
        .json(&json!({ "email": target, "password": "guess" }))
        .send()
        .await
        .unwrap();
    assert_problem(fourth, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[tokio::test]
async fn unknown_email_and_wrong_password_get_the_same_answer() {
    let app = spawn_app().await;
    let unknown =
        app.post("/v1/auth/login", None, &json!({ "email": "ghost@example.com", "password": ADMIN_PASSWORD })).await;
    let wrong =
        app.post("/v1/auth/login", None, &json!({ "email": ADMIN_EMAIL, "password": "not the password" })).await;
    let unknown = assert_problem(unknown, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let wrong = assert_problem(wrong, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(unknown, wrong);
}

#[tokio::test]
async fn an_office_behind_one_address_is_not_locked_out_by_the_account_limit() {
    // Defaults: 10 attempts per account, 100 per address.
    let app = spawn_app_with(&[("HELPDESK_AUTH_RATE_LIMIT", "10"), ("HELPDESK_AUTH_IP_RATE_LIMIT", "100")]).await;
    for colleague in 0..15 {
        let email = format!("colleague{colleague}@office.example");
        let attempt =
            app.post("/v1/auth/login", None, &json!({ "email": email, "password": "a wrong password" })).await;
        assert_problem(attempt, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
}
