//! Liveness and readiness for orchestrators and load balancers.

use crate::error::{PROBLEM_JSON, Problem};
use crate::state::AppState;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ok")]
    pub status: &'static str,
    #[schema(example = "up")]
    pub postgres: &'static str,
    #[schema(example = "up")]
    pub redis: &'static str,
}

/// The process is running.
#[utoipa::path(tag = "health", responses((status = 200, description = "OK", body = Health)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// PostgreSQL and Redis both answer; 503 naming the one that does not.
#[utoipa::path(tag = "health", responses((status = 200, description = "OK", body = Readiness), (status = 503, description = "A dependency is unavailable", body = Problem, content_type = "application/problem+json")))]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let timeout = Duration::from_secs(2);
    let postgres = tokio::time::timeout(timeout, sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool)).await;
    let postgres_up = matches!(postgres, Ok(Ok(1)));
    let mut redis = state.redis.clone();
    let pong = tokio::time::timeout(timeout, redis::cmd("PING").query_async::<String>(&mut redis)).await;
    let redis_up = matches!(pong, Ok(Ok(ref p)) if p == "PONG");
    let word = |up: bool| if up { "up" } else { "down" };
    if postgres_up && redis_up {
        return HttpResponse::Ok().json(Readiness { status: "ok", postgres: "up", redis: "up" });
    }
    let down: Vec<&str> = [("postgres", postgres_up), ("redis", redis_up)]
        .into_iter()
        .filter(|(_, up)| !up)
        .map(|(name, _)| name)
        .collect();
    let problem = Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "dependency_unavailable",
        format!("unreachable: {}", down.join(", ")),
    );
    let mut body = serde_json::to_value(&problem).unwrap_or_default();
    body["postgres"] = word(postgres_up).into();
    body["redis"] = word(redis_up).into();
    HttpResponse::ServiceUnavailable().content_type(PROBLEM_JSON).json(body)
}
