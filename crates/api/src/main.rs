//! `helpdesk-api` — serve the API (default), `seed-demo` to load demo data, `openapi` to print
//! the OpenAPI document.

use anyhow::Context;
use helpdesk_api::startup::Application;
use helpdesk_api::{openapi, seed, telemetry};
use helpdesk_core::{Clock, Config, db};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    if command.as_deref() == Some("openapi") {
        print!("{}", openapi::document_json());
        return ExitCode::SUCCESS;
    }
    let json_logs = std::env::var("HELPDESK_LOG_FORMAT").is_ok_and(|f| f == "json");
    telemetry::init(json_logs);
    let result = match command.as_deref() {
        None | Some("serve") => serve().await,
        Some("seed-demo") => seed_demo().await,
        Some(other) => Err(anyhow::anyhow!("unknown command '{other}'; expected serve, seed-demo or openapi")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One clear line, no backtrace: the cause chain says what to fix.
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    if config.dev_mode {
        tracing::warn!("HELPDESK_DEV_MODE is on: using a built-in JWT secret; never do this in production");
    }
    // Listen for signals before anything else, so one that arrives during start-up still stops
    // the process cleanly instead of killing it half-way through a migration.
    let mut shutdown = Box::pin(shutdown_signal()?);
    let clock = config.clock();
    let app = tokio::select! {
        app = Application::build(config, clock) => app?,
        () = &mut shutdown => {
            tracing::info!("stopped during start-up");
            return Ok(());
        }
    };
    tracing::info!(port = app.port(), "helpdesk-api listening");
    let handle = app.handle();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        handle.stop(true).await;
    });
    app.run_until_stopped().await.context("server failed")?;
    tracing::info!("helpdesk-api stopped");
    Ok(())
}

/// Resolves on SIGTERM (orchestrators) or Ctrl-C (people).
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

async fn seed_demo() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let pool = db::connect_and_migrate(&config.database_url, 2).await?;
    let lines = seed::seed_demo(&pool, &Clock::system(), &config.current_terms_version).await?;
    println!("Demo data (password for every account below: {}):", seed::DEMO_PASSWORD);
    for line in lines {
        println!("  {line}");
    }
    Ok(())
}
