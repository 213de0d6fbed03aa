//! Building and running the HTTP server. `Application::build` does all the fallible set-up
//! (database, migrations, Redis, bootstrap admin, binding) so `main` and the tests share it.

use crate::auth;
use crate::auth_cache::AuthCache;
use crate::error::render_bare_errors;
use crate::extract::path_error;
use crate::methods::{self, KnownPaths};
use crate::metrics::{self, Metrics};
use crate::rate_limits;
use crate::state::AppState;
use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::{Compress, Condition, DefaultHeaders, ErrorHandlers, from_fn};
use actix_web::{App, HttpResponse, HttpServer, get, web};
use helpdesk_core::contact::FormTokens;
use helpdesk_core::rate_limit::RateLimiter;
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::tokens::TokenKeys;
use helpdesk_core::{Clock, Config, accounts, db, redis_conn};
use std::net::TcpListener;
use std::sync::Arc;
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] db::DbError),
    #[error(transparent)]
    Redis(#[from] redis_conn::RedisUnreachable),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: String, source: std::io::Error },
    #[error("cannot seed the calendar and SLA policy: {0}")]
    Seed(helpdesk_core::CoreError),
    #[error("cannot create the bootstrap administrator: {0}")]
    BootstrapAdmin(helpdesk_core::CoreError),
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    pub async fn build(config: Config, clock: Clock) -> Result<Self, StartupError> {
        let pool = db::connect_and_migrate(&config.database_url, config.db_pool_size).await?;
        let redis = redis_conn::connect(&config.redis_url).await?;
        SlaStore::ensure_seeded(&pool).await.map_err(StartupError::Seed)?;
        if let (Some(email), Some(password)) = (&config.admin_email, &config.admin_password)
            && let Some(admin) = accounts::ensure_bootstrap_admin(&pool, email, password.expose(), clock.now())
                .await
                .map_err(StartupError::BootstrapAdmin)?
        {
            tracing::info!(email = %admin.email, "created the bootstrap administrator");
        }
        let listener = TcpListener::bind(config.listen)
            .map_err(|source| StartupError::Bind { address: config.listen.to_string(), source })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { address: config.listen.to_string(), source })?
            .port();
        let auth_cache = AuthCache::new(config.auth_cache_ttl);
        let state = web::Data::new(AppState {
            auth_cache,
            keys: TokenKeys::from_config(&config),
            limiter: RateLimiter::new(redis.clone(), &config.redis_prefix),
            contact_forms: FormTokens::new(redis.clone(), &config.redis_prefix),
            pool,
            redis,
            clock,
            config,
            metrics: Arc::new(Metrics::default()),
            sla: SlaStore::default(),
        });
        let server = run(listener, state.clone())?;
        Ok(Self { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server: `handle().stop(true)` finishes in-flight requests first.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until stopped through [`Application::handle`].
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

fn run(listener: TcpListener, state: web::Data<AppState>) -> Result<Server, StartupError> {
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let body_limit = state.config.max_body_bytes;
    let openapi = crate::openapi::document();
    let known_paths = web::Data::new(KnownPaths::from_document(&openapi));
    let server = HttpServer::new(move || {
        let (app, _) = App::new().into_utoipa_app().configure(crate::routes::configure).split_for_parts();
        app.app_data(state.clone())
            .app_data(web::Data::from(state.metrics.clone()))
            .app_data(known_paths.clone())
            .app_data(web::PayloadConfig::new(body_limit))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .service(metrics_endpoint)
            .route("/docs", web::get().to(redirect_to_docs))
            .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
            .default_service(web::to(methods::unrouted))
            // Innermost first: the token is resolved before any extractor runs (see `auth`).
            .wrap(from_fn(rate_limits::per_caller))
            .wrap(from_fn(auth::authenticate))
            .wrap(ErrorHandlers::new().default_handler(render_bare_errors))
            .wrap(from_fn(metrics::record))
            .wrap(from_fn(methods::head_as_get))
            .wrap(Compress::default())
            .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")).add(("Cache-Control", "no-store")))
            .wrap(Condition::new(!state.config.cors_origins.is_empty(), cors(&state.config.cors_origins)))
            .wrap(TracingLogger::default())
    })
    .listen(listener)
    .map_err(|source| StartupError::Bind { address, source })?
    .shutdown_timeout(30)
    // The binary owns signal handling (see `main.rs`), so a SIGTERM during start-up is honoured too.
    .disable_signals()
    .run();
    Ok(server)
}

/// Cross-origin access for browser front ends served elsewhere: only the configured origins.
/// Preflights are answered here; the headers clients need from responses are exposed. A request
/// from another origin is not refused, it just gets no CORS headers, so the browser keeps the
/// answer from the page (the same-origin Swagger UI keeps working).
fn cors(origins: &[String]) -> Cors {
    let cors = origins.iter().fold(Cors::default(), |cors, origin| cors.allowed_origin(origin));
    cors.allowed_methods(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
        ])
        .block_on_origin_mismatch(false)
        .max_age(3600)
}

/// Swagger UI lives under `/docs/`; the bare path people type redirects there.
async fn redirect_to_docs() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header(("Location", "/docs/")).finish()
}

/// Prometheus metrics in the text exposition format.
#[get("/metrics")]
async fn metrics_endpoint(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}
