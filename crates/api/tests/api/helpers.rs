use helpdesk_api::startup::Application;
use helpdesk_core::{Clock, Config};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use std::collections::HashMap;
use uuid::Uuid;

pub const JWT_SECRET: &str = "test-secret-0123456789-0123456789-abcdef";
pub const ADMIN_EMAIL: &str = "root@helpdesk.test";
pub const ADMIN_PASSWORD: &str = "bootstrap-password-for-tests";
pub const PASSWORD: &str = "a long enough test password";

pub use helpdesk_test_support::{base_database_url, redis_url};

pub struct TestApp {
    pub clock: Clock,
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub config: Config,
    pub admin_token: String,
    /// The running app's state; its metrics say what the app answered (see `spec_coverage`).
    pub state: actix_web::web::Data<helpdesk_api::state::AppState>,
}

impl Drop for TestApp {
    /// Fails the test if the app answered anything the committed OpenAPI document leaves out.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let missing = crate::spec_coverage::undocumented(&self.state.metrics.observed());
        assert!(missing.is_empty(), "openapi/openapi.json does not document these answers the test got: {missing:#?}");
    }
}

/// The configuration a test app runs with: a database and Redis prefix of its own, a known JWT
/// secret, generous rate limits (tests that exercise limits lower them).
pub fn test_vars(overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let id = helpdesk_test_support::test_id();
    let mut vars: HashMap<String, String> = [
        ("DATABASE_URL", format!("{}/helpdesk_test_{id}", base_database_url())),
        ("REDIS_URL", redis_url()),
        ("HELPDESK_REDIS_PREFIX", format!("test:{id}")),
        ("HELPDESK_LISTEN", "127.0.0.1:0".into()),
        ("HELPDESK_JWT_SECRET", JWT_SECRET.into()),
        ("HELPDESK_ADMIN_EMAIL", ADMIN_EMAIL.into()),
        ("HELPDESK_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
        ("HELPDESK_AUTH_RATE_LIMIT", "1000".into()),
        ("HELPDESK_AUTH_IP_RATE_LIMIT", "1000".into()),
        ("HELPDESK_API_RATE_LIMIT", "100000".into()),
        ("HELPDESK_PUBLIC_URL", "https://helpdesk.test".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in overrides {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    vars
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_with_clock(overrides, Clock::system()).await
}

/// An app whose clock stands at `at` until the test moves it (`app.clock.advance(..)`).
/// Access tokens live 90 days there, so moving the clock by days keeps the test's sessions.
pub async fn spawn_app_at(at: &str) -> TestApp {
    spawn_app_with_clock(
        &[("HELPDESK_ACCESS_TOKEN_TTL_SECONDS", "7776000")],
        Clock::manual(at.parse().expect("an RFC 3339 instant")),
    )
    .await
}

pub async fn spawn_app_with_clock(overrides: &[(&str, &str)], clock: Clock) -> TestApp {
    let config = Config::from_map(&test_vars(overrides)).expect("test config");
    let app = Application::build(config.clone(), clock.clone()).await.expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    let pool = state.pool.clone();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut test_app = TestApp { clock, address, client, pool, config, admin_token: String::new(), state };
    test_app.admin_token =
        test_app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    test_app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client.patch(self.url(path)).bearer_auth(token).json(body).send().await.unwrap()
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client.put(self.url(path)).bearer_auth(token).json(body).send().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Logs in and returns the token response; panics unless it is 200.
    pub async fn login(&self, email: &str, password: &str) -> Value {
        let response = self.post("/v1/auth/login", None, &json!({ "email": email, "password": password })).await;
        assert_eq!(response.status(), StatusCode::OK, "login of {email}");
        response.json().await.unwrap()
    }

    /// A new agent account: its id and an access token.
    pub async fn agent(&self) -> (String, String) {
        let (id, token, _) = self.agent_named("Agente").await;
        (id, token)
    }

    /// A new agent account called `name`: its id, an access token and its e-mail.
    pub async fn agent_named(&self, name: &str) -> (String, String, String) {
        let email = format!("agent-{}@kadix.test", Uuid::now_v7().simple());
        let user = ok_json(
            self.post(
                "/v1/users",
                Some(&self.admin_token),
                &json!({ "email": email, "name": name, "role": "agent", "password": PASSWORD }),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let token = self.login(&email, PASSWORD).await["access_token"].as_str().unwrap().to_owned();
        (user["id"].as_str().unwrap().to_owned(), token, email)
    }

    /// Creates an organisation with a contract on `plan` starting today; returns (org id, signup code).
    pub async fn organization_on(&self, plan: &str) -> (Uuid, String) {
        let name = format!("Org {plan} {}", Uuid::now_v7().simple());
        let org = ok_json(
            self.post("/v1/organizations", Some(&self.admin_token), &json!({ "name": name })).await,
            StatusCode::CREATED,
        )
        .await;
        let org_id: Uuid = org["id"].as_str().unwrap().parse().unwrap();
        let today = helpdesk_core::sla_store::local_today(&self.pool, self.clock.now()).await.expect("today");
        let contract = ok_json(
            self.post(
                &format!("/v1/organizations/{org_id}/contracts"),
                Some(&self.admin_token),
                &json!({ "plan": plan, "starts_on": today }),
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        (org_id, contract["signup_code"].as_str().unwrap().to_owned())
    }

    pub async fn register(&self, signup_code: &str) -> (String, Value) {
        let email = format!("customer-{}@example.com", Uuid::now_v7().simple());
        let body = json!({ "email": email, "password": PASSWORD, "name": "Cliente Teste", "signup_code": signup_code, "accepted_terms_version": self.config.current_terms_version });
        let user = ok_json(self.post("/v1/auth/register", None, &body).await, StatusCode::CREATED).await;
        (email, user)
    }

    /// A signed-in customer of a new organisation on `plan`: (access token, organisation id, login response).
    pub async fn customer_on(&self, plan: &str) -> (String, Uuid, Value) {
        let (org_id, code) = self.organization_on(plan).await;
        let (email, _) = self.register(&code).await;
        let session = self.login(&email, PASSWORD).await;
        (session["access_token"].as_str().unwrap().to_owned(), org_id, session)
    }
}

/// Asserts the status and returns the JSON body.
pub async fn ok_json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// Asserts an RFC 9457 problem response with the given status and code; returns the body.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    let actual = response.status();
    let content_type =
        response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    let body: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {body}");
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    assert_eq!(body["status"], status.as_u16(), "body: {body}");
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["type"], format!("/problems/{code}"));
    assert!(body["title"].is_string() && body["detail"].is_string(), "body: {body}");
    body
}
