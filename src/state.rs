//! The state a request runs against, and the parts that outlive a config reload.
//!
//! A [`State`] is built whole from a validated config and swapped in atomically on
//! reload; a request loads it once at entry. [`Shared`] holds what survives reloads
//! (upstream pools, metrics). Nothing here performs a request.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::config::Config;
use crate::forward::{ForwardLimits, Upstreams};
use crate::queue::{Queue, QueueError};
use crate::route::RouteTable;
use crate::secret::{SecretError, SecretStore};
use crate::telemetry::Metrics;

/// Everything derived from one config.
pub struct State {
    pub config: Arc<Config>,
    /// The config's token keys and the tokens they verified.
    pub tokens: crate::auth::token::TokenVerifier,
    pub routes: RouteTable,
    pub forward_limits: ForwardLimits,
    /// The IAP sign-in host, parsed from `iap.auth_url` once.
    pub auth_host: Option<crate::auth::iap::AuthHost>,
}

impl State {
    pub fn build(config: Config) -> State {
        let routes = RouteTable::build(&config);
        let l = config.limits();
        let forward_limits = ForwardLimits {
            upstream_timeout: l.upstream_timeout.0,
            liveness_interval: l.liveness_interval.0,
            liveness_wait: l.liveness_wait.0,
            max_body_bytes: l.max_body_bytes,
        };
        let auth_host = config
            .file
            .iap
            .as_ref()
            .and_then(crate::auth::iap::AuthHost::from);
        State {
            auth_host,
            tokens: crate::auth::token::TokenVerifier::new(config.token_keys.clone()),
            config: Arc::new(config),
            routes,
            forward_limits,
        }
    }
}

/// The wall clock as unix seconds; injected so tests can move time.
pub type Clock = fn() -> i64;

pub fn system_clock() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Why the shared parts could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
    #[error("secrets: {0}")]
    Secrets(#[from] SecretError),
    #[error("sessions: {0}")]
    Sessions(#[from] crate::auth::session::StoreError),
    #[error("embed sessions: {0}")]
    Embed(#[from] crate::embed::store::StoreError),
}

/// What outlives a reload. The queue and the secret store are built from the config at
/// start (the in-memory queue must survive reloads); changing `redis` or `secrets`
/// takes a restart.
pub struct Shared {
    pub state: ArcSwap<State>,
    pub upstreams: Upstreams,
    pub metrics: Metrics,
    pub queue: Queue,
    pub secrets: SecretStore,
    /// IAP sessions (Redis or memory) and the OIDC client; they survive reloads.
    pub iap: crate::auth::iap::IapRuntime,
    /// Embed sessions, management keys and rate-limit counters (Redis or memory).
    pub embed: crate::embed::EmbedRuntime,
    pub clock: Clock,
}

impl Shared {
    pub fn new(config: Config) -> Result<Arc<Shared>, StartError> {
        let upstreams = Upstreams::new(config.limits().upstream_connect_timeout.0);
        let metrics = Metrics::new();
        metrics.config_loaded(&config.hash, system_clock());
        let queue = Queue::from_config(&config)?;
        let secrets = SecretStore::from_config(&config)?;
        let iap = crate::auth::iap::IapRuntime::from_config(&config)?;
        let embed = crate::embed::EmbedRuntime::from_config(&config)?;
        Ok(Arc::new(Shared {
            embed,
            state: ArcSwap::from_pointee(State::build(config)),
            upstreams,
            metrics,
            queue,
            secrets,
            iap,
            clock: system_clock,
        }))
    }

    /// Swap in a new config; in-flight requests keep the state they loaded.
    pub fn replace(&self, config: Config) {
        self.metrics.config_loaded(&config.hash, system_clock());
        self.state.store(Arc::new(State::build(config)));
    }
}
