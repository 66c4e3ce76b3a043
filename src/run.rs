//! The `serve` lifecycle: start, reload on SIGHUP or a change of the config file, stop
//! gracefully on SIGTERM/SIGINT.
//!
//! A reload builds and validates the whole new config, and the certificates it names,
//! before swapping them in, on a blocking thread while the workers keep serving; a bad one
//! is logged with every error and the old state keeps serving. In-flight requests and open tunnels keep the state they started with. The file
//! watch (the config's directory and the certificates' directories) is debounced and
//! compares a content hash of the config and its certificate files, so a write that
//! changes nothing reloads nothing. SIGHUP always reloads.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::config::{source, Config, ConfigError, ConfigErrors};
use crate::secret::{SecretError, SecretStore};
use crate::server;
use crate::telemetry::ResultLabel;

/// Quiet time after the last file event before the config is read again: editors and
/// `kubectl` write in several steps.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// Run until SIGTERM or SIGINT, then drain and return.
pub async fn serve(config: Config, path: PathBuf) -> anyhow::Result<()> {
    if config.redis.is_none() {
        tracing::warn!("no redis block: embedded single-instance mode; queues and sessions are in memory and NOT durable");
    }
    // Handlers first: a signal sent once the listeners are up must not find the default
    // action (SIGHUP and SIGTERM would end the process).
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    // The watch begins before anything else is read: every later write raises an event.
    let (changed_tx, mut changed) = mpsc::unbounded_channel();
    let mut watch = ConfigWatch::start(&path, changed_tx);
    if let Some(w) = &mut watch {
        w.follow(&config);
    }
    // Taken before the certificates are loaded, so a change after this is reloaded.
    let mut seen = fingerprint(&path, &config).ok();
    // A write between the first load and the watch raised no event: compare.
    let stale = !holds(&path, &config.hash);
    let running = server::start(config).await?;
    if stale {
        tracing::info!(
            reason = "file changed before the watch began",
            "reloading config"
        );
        reload(&running, &path).await;
        seen = fingerprint(&path, &running.shared.state.load().config).ok();
    }
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!(reason = "SIGHUP", "reloading config");
                reload(&running, &path).await;
                seen = fingerprint(&path, &running.shared.state.load().config).ok();
            }
            Some(()) = changed.recv() => {
                // Debounce: wait until the writes stop.
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changed.recv()).await {}
                let now = fingerprint(&path, &running.shared.state.load().config).ok();
                if now.is_some() && now == seen {
                    tracing::info!("config files written without a change; nothing to reload");
                    continue;
                }
                tracing::info!(reason = "file changed", "reloading config");
                reload(&running, &path).await;
                seen = fingerprint(&path, &running.shared.state.load().config).ok().or(now);
            }
        }
        if let Some(w) = &mut watch {
            w.follow(&running.shared.state.load().config);
        }
    }
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// Everything `serve` reads from files at start, validated: the config with its
/// `{file: …}` secrets and its certificates and keys ([`Config::load`]), and the secrets
/// file. `check`, `serve` and every reload call this one function, so they accept and
/// refuse the same configs with the same messages.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let config = Config::load(path)?;
    SecretStore::check_files(&config).map_err(|e| {
        let message = match e {
            SecretError::Unavailable(m) | SecretError::Invalid(m) => m,
            other => other.to_string(),
        };
        ConfigErrors(vec![ConfigError::at("secrets.file", message)])
    })?;
    Ok(config)
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
enum Rejected {
    #[error(transparent)]
    Config(ConfigErrors),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("the reload task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Load, validate and swap in the config at `path` and its certificates; keep the old
/// state on error. Returns whether the new config is in service.
///
/// Reading, validating and building the new state (route table, certificates) run on a
/// blocking thread, and the replaced state is freed on one: the runtime's workers keep
/// serving requests on the old state meanwhile. With a single worker and 100 000 routes,
/// doing this work inline held up every request for the length of the reload.
pub async fn reload(running: &server::Running, path: &Path) -> bool {
    let https = running.bound.https.is_some();
    let owned = path.to_owned();
    let built = tokio::task::spawn_blocking(move || {
        let config = load(&owned).map_err(Rejected::Config)?;
        let hash = config.hash.clone();
        Ok::<_, Rejected>((server::Prepared::build(config, https)?, hash))
    })
    .await
    .map_err(Rejected::from)
    .and_then(|r| r);
    let metrics = &running.shared.metrics;
    let result = match built {
        Ok((prepared, hash)) => {
            let previous = running.install(prepared);
            drop(tokio::task::spawn_blocking(move || drop(previous)));
            tracing::info!(config.hash = %hash, "config reloaded");
            true
        }
        Err(Rejected::Config(errors)) => {
            for e in &errors.0 {
                tracing::error!(error = %e, "config reload rejected; keeping the previous config");
            }
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "config reload rejected; keeping the previous config");
            false
        }
    };
    metrics
        .reloads
        .get_or_create(&ResultLabel {
            result: if result { "ok" } else { "error" },
        })
        .inc();
    result
}

/// True when the file at `path` is still the text whose hash is `hash` (or cannot be read,
/// which a reload would only report).
fn holds(path: &Path, hash: &str) -> bool {
    source::read_regular(path, source::MAX_CONFIG_BYTES)
        .map_or(true, |bytes| hex::encode(Sha256::digest(&bytes)) == hash)
}

/// SHA-256 over the config file and the certificate and key files the (current) config
/// names. Equal fingerprints: nothing to reload.
fn fingerprint(path: &Path, current: &Config) -> std::io::Result<[u8; 32]> {
    let mut h = Sha256::new();
    let config = source::read_regular(path, source::MAX_CONFIG_BYTES)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    h.update(config);
    for file in tls_files(current) {
        // A missing certificate is a change too (the reload will report it).
        match source::read_regular(&file, source::MAX_PEM_BYTES) {
            Ok(bytes) => h.update(bytes),
            Err(_) => h.update(b"\0missing\0"),
        }
    }
    Ok(h.finalize().into())
}

fn tls_files(config: &Config) -> Vec<PathBuf> {
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            config.base_dir.join(p)
        }
    };
    config
        .file
        .tls
        .iter()
        .flat_map(|t| &t.certificates)
        .flat_map(|pair| [resolve(&pair.cert), resolve(&pair.key)])
        .collect()
}

/// Watches the directories of the config file and of its certificates (watching the
/// directory sees editors' rename-over-write and Kubernetes' `..data` swaps).
struct ConfigWatch {
    watcher: notify::RecommendedWatcher,
    dirs: HashSet<PathBuf>,
    names: std::sync::Arc<std::sync::RwLock<HashSet<OsString>>>,
}

impl ConfigWatch {
    fn start(path: &Path, changed: mpsc::UnboundedSender<()>) -> Option<ConfigWatch> {
        let names: std::sync::Arc<std::sync::RwLock<HashSet<OsString>>> = Default::default();
        let relevant = std::sync::Arc::clone(&names);
        let handler = move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if !matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
            ) || matches!(
                event.kind,
                EventKind::Modify(notify::event::ModifyKind::Metadata(_))
            ) {
                return;
            }
            let names = relevant.read().unwrap_or_else(|e| e.into_inner());
            let ours = event.paths.iter().any(|p| {
                p.file_name()
                    .is_some_and(|n| names.contains(n) || n == "..data")
            });
            if ours {
                let _ = changed.send(());
            }
        };
        let watcher = match notify::recommended_watcher(handler) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the config file; reload with SIGHUP");
                return None;
            }
        };
        let mut w = ConfigWatch {
            watcher,
            dirs: HashSet::new(),
            names,
        };
        w.add(path);
        Some(w)
    }

    /// Also watch the certificate files `config` names.
    fn follow(&mut self, config: &Config) {
        for file in tls_files(config) {
            self.add(&file);
        }
    }

    fn add(&mut self, file: &Path) {
        let Some(name) = file.file_name() else { return };
        self.names
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned());
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if self.dirs.contains(&dir) {
            return;
        }
        match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => {
                self.dirs.insert(dir);
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; reload with SIGHUP")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_rewritten_since_its_load_no_longer_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("routes.yaml");
        std::fs::write(&path, "version: v1\n").expect("write");
        let loaded = hex::encode(Sha256::digest(b"version: v1\n"));
        assert!(holds(&path, &loaded));
        std::fs::write(&path, "version: v1\n# edited\n").expect("write");
        assert!(!holds(&path, &loaded));
        // Unreadable: the reload would only report it; nothing to do here.
        std::fs::remove_file(&path).expect("remove");
        assert!(holds(&path, &loaded));
    }
}
