//! Logs and metrics.
//!
//! Owns the tracing subscriber set-up (`ROOMGATE_LOG`, `ROOMGATE_LOG_FORMAT`) and the
//! Prometheus registry served by the admin listener. Labels are bounded by the config
//! (route domains, rooms, providers), never taken from request data. Nothing here may log
//! query strings, cookies, tokens, signatures, secrets or bodies.

use std::sync::{Arc, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::webhook::Provider;

/// How log lines are written (`ROOMGATE_LOG_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event (the default); coloured only on a terminal.
    Pretty,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

/// A log setting in the environment that roomgate cannot use: a usage error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogSettingError {
    #[error("ROOMGATE_LOG_FORMAT={0:?} is not a log format (json or pretty)")]
    Format(String),
    #[error(
        "ROOMGATE_LOG={value:?} is not a log filter ({reason}); e.g. info or roomgate=debug,info"
    )]
    Filter { value: String, reason: String },
}

/// `ROOMGATE_LOG_FORMAT`: `json` or `pretty`; unset or empty: `pretty`.
pub fn log_format(value: Option<&str>) -> Result<LogFormat, LogSettingError> {
    match value.map(str::trim) {
        None | Some("") => Ok(LogFormat::Pretty),
        Some(v) if v.eq_ignore_ascii_case("pretty") => Ok(LogFormat::Pretty),
        Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
        Some(_) => Err(LogSettingError::Format(
            value.unwrap_or_default().to_owned(),
        )),
    }
}

/// `ROOMGATE_LOG`: an `EnvFilter` directive list; unset or empty: `info`.
pub fn log_filter(value: Option<&str>) -> Result<tracing_subscriber::EnvFilter, LogSettingError> {
    let directives = value.map(str::trim).filter(|v| !v.is_empty());
    tracing_subscriber::EnvFilter::builder()
        .parse(directives.unwrap_or("info"))
        .map_err(|e| LogSettingError::Filter {
            value: value.unwrap_or_default().to_owned(),
            reason: e.to_string(),
        })
}

/// Install the process's log subscriber: every event goes to stderr in `format`, with
/// ANSI colour only when `ansi` (stderr is a terminal).
pub fn init_logging(filter: tracing_subscriber::EnvFilter, format: LogFormat, ansi: bool) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// A duration in milliseconds for a log field, rounded to the microsecond (`0.024`).
pub fn millis(d: std::time::Duration) -> f64 {
    // Whole microseconds are exact in an f64 for some 285 years.
    d.as_nanos().saturating_add(500).div_euclid(1000) as f64 / 1000.0
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: Arc<String>,
    pub status_class: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: Arc<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamErrorLabels {
    pub route: Arc<String>,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LivenessLabels {
    pub upstream: String,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub provider: &'static str,
    pub result: &'static str,
}

/// What became of a webhook request: the `result` label of `roomgate_webhooks_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookResult {
    SourceRefused,
    Handshake,
    MissingSignature,
    InvalidSignature,
    StaleTimestamp,
    Forwarded,
    Duplicate,
    Enqueued,
    QueueUnavailable,
}

impl WebhookResult {
    /// How many results there are (the last one's index, plus one).
    const COUNT: usize = WebhookResult::QueueUnavailable as usize + 1;

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookResult::SourceRefused => "source_refused",
            WebhookResult::Handshake => "handshake",
            WebhookResult::MissingSignature => "missing_signature",
            WebhookResult::InvalidSignature => "invalid_signature",
            WebhookResult::StaleTimestamp => "stale_timestamp",
            WebhookResult::Forwarded => "forwarded",
            WebhookResult::Duplicate => "duplicate",
            WebhookResult::Enqueued => "enqueued",
            WebhookResult::QueueUnavailable => "queue_unavailable",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConfigLabel {
    pub hash: String,
}

/// One route's request series, fetched from their families on first use and then held,
/// so a request does not hash its labels into the families. Lives in the route table:
/// a reload starts empty and finds the same series again.
#[derive(Debug, Default)]
pub struct RouteMetrics {
    /// `outcome="forwarded"` by status class (1xx to 5xx).
    forwarded: [OnceLock<Counter>; 5],
    latency: OnceLock<Histogram>,
}

/// Every metric roomgate exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabel, Histogram>,
    pub upstream_errors: Family<UpstreamErrorLabels, Counter>,
    pub liveness_waits: Family<LivenessLabels, Counter>,
    pub reloads: Family<ResultLabel, Counter>,
    pub config_info: Family<ConfigLabel, Gauge>,
    pub config_loaded_at: Gauge,
    pub webhooks: Family<WebhookLabels, Counter>,
    /// The `webhooks` series by provider and result, fetched from the family on first use
    /// and then held, so a request does not hash its labels ([`Metrics::count_webhook`]).
    webhook_series: Box<[[OnceLock<Counter>; WebhookResult::COUNT]]>,
    pub connections: Gauge,
    /// The route label of requests that matched no route.
    pub no_route: Arc<String>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("roomgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by route, status class and outcome",
            requests.clone(),
        );
        let latency = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ])
        });
        registry.register(
            "request_duration_seconds",
            "Time to response head",
            latency.clone(),
        );
        let upstream_errors = Family::<UpstreamErrorLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Upstream failures by kind",
            upstream_errors.clone(),
        );
        let liveness_waits = Family::<LivenessLabels, Counter>::default();
        registry.register(
            "liveness_waits",
            "Cold-start waits by upstream and result",
            liveness_waits.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register(
            "config_reloads",
            "Config reloads by result",
            reloads.clone(),
        );
        let config_info = Family::<ConfigLabel, Gauge>::default();
        registry.register(
            "config_info",
            "The loaded config's SHA-256",
            config_info.clone(),
        );
        let config_loaded_at = Gauge::default();
        registry.register(
            "config_loaded_timestamp_seconds",
            "When the config was loaded",
            config_loaded_at.clone(),
        );
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhooks",
            "Webhook verifications by provider and result",
            webhooks.clone(),
        );
        let connections = Gauge::default();
        registry.register(
            "open_connections",
            "Open client connections",
            connections.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            upstream_errors,
            liveness_waits,
            reloads,
            config_info,
            config_loaded_at,
            webhooks,
            webhook_series: Provider::ALL
                .iter()
                .map(|_| std::array::from_fn(|_| OnceLock::new()))
                .collect(),
            connections,
            no_route: Arc::new("none".to_owned()),
        }
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Record a config (re)load.
    pub fn config_loaded(&self, hash: &str, at_unix: i64) {
        self.config_info.clear();
        self.config_info
            .get_or_create(&ConfigLabel {
                hash: hash.to_owned(),
            })
            .set(1);
        self.config_loaded_at.set(at_unix);
    }
}

/// `2xx`, `4xx`... for a status code.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

impl Metrics {
    /// Count one request and its latency. `series` is the matched route's cache (`None`
    /// for requests that matched no route).
    pub fn record_request(
        &self,
        route: &Arc<String>,
        series: Option<&RouteMetrics>,
        status: u16,
        outcome: &'static str,
        seconds: f64,
    ) {
        let class = status_class(status);
        let labels = || RequestLabels {
            route: Arc::clone(route),
            status_class: class,
            outcome,
        };
        let slot = usize::from(status / 100)
            .checked_sub(1)
            .filter(|i| *i < 5 && outcome == "forwarded");
        match (series, slot) {
            (Some(s), Some(i)) => s.forwarded[i]
                .get_or_init(|| self.requests.get_or_create(&labels()).clone())
                .inc(),
            _ => self.requests.get_or_create(&labels()).inc(),
        };
        let route_label = || RouteLabel {
            route: Arc::clone(route),
        };
        match series {
            Some(s) => s
                .latency
                .get_or_init(|| self.latency.get_or_create(&route_label()).clone())
                .observe(seconds),
            None => self.latency.get_or_create(&route_label()).observe(seconds),
        }
    }
}

impl Metrics {
    /// Count one webhook request by its provider and what became of it.
    pub fn count_webhook(&self, provider: Provider, result: WebhookResult) {
        let labels = || WebhookLabels {
            provider: provider.as_str(),
            result: result.as_str(),
        };
        // A provider or result outside the table is counted through the family: never
        // in another's series.
        let series = self
            .webhook_series
            .get(provider as usize)
            .and_then(|results| results.get(result as usize));
        match series {
            Some(series) => series
                .get_or_init(|| self.webhooks.get_or_create(&labels()).clone())
                .inc(),
            None => self.webhooks.get_or_create(&labels()).inc(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_counts_are_kept_apart_by_provider_and_result() {
        let metrics = Metrics::new();
        metrics.count_webhook(Provider::Github, WebhookResult::Enqueued);
        metrics.count_webhook(Provider::Github, WebhookResult::Enqueued);
        metrics.count_webhook(Provider::Github, WebhookResult::InvalidSignature);
        let last = *Provider::ALL.last().unwrap();
        metrics.count_webhook(last, WebhookResult::QueueUnavailable);
        let text = metrics.render();
        let series = |provider: Provider, result: &str, n: u64| {
            format!(
                "roomgate_webhooks_total{{provider=\"{}\",result=\"{result}\"}} {n}\n",
                provider.as_str()
            )
        };
        assert!(
            text.contains(&series(Provider::Github, "enqueued", 2)),
            "{text}"
        );
        assert!(
            text.contains(&series(Provider::Github, "invalid_signature", 1)),
            "{text}"
        );
        assert!(
            text.contains(&series(last, "queue_unavailable", 1)),
            "{text}"
        );
        assert_eq!(
            text.matches("roomgate_webhooks_total{").count(),
            3,
            "{text}"
        );
    }

    #[test]
    fn durations_are_milliseconds_rounded_to_the_microsecond() {
        use std::time::Duration;
        assert_eq!(millis(Duration::from_nanos(23_985)).to_string(), "0.024");
        assert_eq!(millis(Duration::from_nanos(23_499)).to_string(), "0.023");
        assert_eq!(millis(Duration::from_nanos(24_000)).to_string(), "0.024");
        assert_eq!(
            millis(Duration::from_micros(1_500_001)).to_string(),
            "1500.001"
        );
        assert_eq!(
            serde_json::json!(millis(Duration::from_micros(24))).to_string(),
            "0.024"
        );
    }

    #[test]
    fn log_settings_accept_the_documented_values_and_name_any_other() {
        assert_eq!(log_format(None), Ok(LogFormat::Pretty));
        assert_eq!(log_format(Some("")), Ok(LogFormat::Pretty));
        assert_eq!(log_format(Some("JSON")), Ok(LogFormat::Json));
        assert_eq!(log_format(Some("pretty")), Ok(LogFormat::Pretty));
        let e = log_format(Some("xml")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ROOMGATE_LOG_FORMAT=\"xml\" is not a log format (json or pretty)"
        );
        assert!(log_filter(None).is_ok());
        assert!(log_filter(Some("roomgate=debug,info")).is_ok());
        let e = log_filter(Some("bogus===")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("ROOMGATE_LOG=\"bogus===\" is not a log filter"),
            "{e}"
        );
    }
}
