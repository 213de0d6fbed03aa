//! Building and running the HTTP server. `Application::build` does all the fallible set-up
//! (database, migrations, Redis, bootstrap admin, binding) so `main` and the tests share it.

use crate::auth::AuthCache;
use crate::error::render_bare_errors;
use crate::extract::path_error;
use crate::metrics::{self, Metrics};
use crate::state::AppState;
use actix_web::dev::Server;
use actix_web::middleware::{Compress, DefaultHeaders, ErrorHandlers, from_fn};
use actix_web::{App, HttpResponse, HttpServer, get, web};
use helpdesk_core::contact::FormTokens;
use helpdesk_core::rate_limit::RateLimiter;
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::tokens::TokenKeys;
use helpdesk_core::{Clock, Config, accounts, db, redis_conn};
use std::net::TcpListener;
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
            metrics: Metrics::default(),
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
    let server = HttpServer::new(move || {
        let (app, _) = App::new().into_utoipa_app().configure(crate::routes::configure).split_for_parts();
        app.app_data(state.clone())
            .app_data(web::PayloadConfig::new(body_limit))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .service(metrics_endpoint)
            .route("/docs", web::get().to(redirect_to_docs))
            .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
            .default_service(web::to(HttpResponse::NotFound))
            .wrap(ErrorHandlers::new().default_handler(render_bare_errors))
            .wrap(from_fn(metrics::record))
            .wrap(Compress::default())
            .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")).add(("Cache-Control", "no-store")))
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

/// Swagger UI lives under `/docs/`; the bare path people type redirects there.
async fn redirect_to_docs() -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header(("Location", "/docs/")).finish()
}

/// Prometheus metrics in the text exposition format.
#[get("/metrics")]
async fn metrics_endpoint(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}
