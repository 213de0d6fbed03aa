//! `helpdesk-worker`: reads configuration, sets up logging, runs the worker until SIGTERM or
//! Ctrl-C. Exit code 1, after one clear log line, when it cannot start.

use helpdesk_core::Config;
use helpdesk_core::telemetry::LogFormat;
use helpdesk_worker::{Worker, settings::WorkerSettings};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("helpdesk-worker: {error}");
            return ExitCode::FAILURE;
        }
    };
    init_tracing(config.log_json);
    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error, "helpdesk-worker cannot run");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let settings = WorkerSettings::from_env()?;
    // Listen for signals before connecting, so one that arrives during start-up (a migration
    // may be running) stops the process cleanly.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let mut during_startup = stopped.clone();
    let worker = tokio::select! {
        worker = Worker::build(&config, settings, config.clock()) => worker?,
        _ = during_startup.wait_for(|stop| *stop) => {
            tracing::info!("stopped during start-up");
            return Ok(());
        }
    };
    let mut stopped = stopped;
    worker
        .run_until(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
        .await?;
    Ok(())
}

/// The shared set-up, which escapes control characters in every format: SMTP replies and
/// addresses in this binary's logs come from outside too.
fn init_tracing(json: bool) {
    helpdesk_core::telemetry::init(LogFormat {
        json,
        default_filter: "info,apalis=warn,apalis_core=warn,apalis_redis=warn,sqlx=warn",
        with_target: true,
    });
}

/// Ctrl-C or SIGTERM (what orchestrators send), whichever comes first.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("Ctrl-C received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
