//! The `serve` lifecycle: start, reload on SIGHUP or a change of the config file, stop
//! gracefully on SIGTERM/SIGINT.
//!
//! A reload builds and validates the whole new config before swapping it in; a bad one is
//! logged with every error and the old state keeps serving.

use std::path::PathBuf;

use tokio::signal::unix::{signal, SignalKind};

use crate::config::Config;
use crate::server;

/// Run until SIGTERM or SIGINT, then drain and return.
pub async fn serve(config: Config, path: PathBuf) -> anyhow::Result<()> {
    if config.redis_url.is_none() {
        tracing::warn!("no redis block: embedded single-instance mode; queues and sessions are in memory and NOT durable");
    }
    let running = server::start(config).await?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => reload(&running, &path),
        }
    }
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Load, validate and swap in the config at `path`; keep the old state on error.
pub fn reload(running: &server::Running, path: &std::path::Path) {
    let metrics = &running.shared.metrics;
    match Config::load(path) {
        Ok(config) => {
            let hash = config.hash.clone();
            running.shared.replace(config);
            metrics
                .reloads
                .get_or_create(&crate::telemetry::ResultLabel { result: "ok" })
                .inc();
            tracing::info!(config.hash = %hash, "config reloaded");
        }
        Err(errors) => {
            metrics
                .reloads
                .get_or_create(&crate::telemetry::ResultLabel { result: "error" })
                .inc();
            for e in &errors.0 {
                tracing::error!(error = %e, "config reload rejected; keeping the previous config");
            }
        }
    }
}
