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
use crate::kv::{Kv, KvError};
use crate::queue::Queue;
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
    #[error(transparent)]
    Redis(#[from] KvError),
    #[error("secrets: {0}")]
    Secrets(#[from] SecretError),
}

/// What outlives a reload. The shared Redis, the queue and the secret store are built
/// from the config at start (the in-memory queue must survive reloads); changing `redis`
/// or `secrets` takes a restart.
pub struct Shared {
    pub state: ArcSwap<State>,
    pub upstreams: Upstreams,
    pub metrics: Metrics,
    /// The Redis every instance shares, when the config has one (for readiness).
    pub kv: Option<Kv>,
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
        let kv = config
            .redis
            .as_ref()
            .map(|r| Kv::connect(r, crate::kv::DEFAULT_TIMEOUT))
            .transpose()?;
        let queue = Queue::new(kv.as_ref());
        let secrets = SecretStore::from_config(&config, kv.as_ref())?;
        let iap = crate::auth::iap::IapRuntime::new(kv.as_ref());
        let embed = crate::embed::EmbedRuntime::from_config(&config, kv.as_ref());
        Ok(Arc::new(Shared {
            embed,
            state: ArcSwap::from_pointee(State::build(config)),
            upstreams,
            metrics,
            kv,
            queue,
            secrets,
            iap,
            clock: system_clock,
        }))
    }

    /// Swap in a new config; in-flight requests keep the state they loaded.
    pub fn replace(&self, config: Config) {
        self.install(State::build(config));
    }

    /// Swap in a state built elsewhere (a reload builds it on a blocking thread); returns
    /// the state it replaced.
    pub fn install(&self, state: State) -> Arc<State> {
        self.metrics
            .config_loaded(&state.config.hash, system_clock());
        self.state.swap(Arc::new(state))
    }
}
