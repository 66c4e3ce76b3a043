//! The `roomgate` command line. Everything it does lives in the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use roomgate::config::Config;

/// mimalloc: the proxy allocates small, short-lived buffers per request; measured with
/// benches/load (benches/load/RESULTS.md). Built without transparent huge pages
/// (`no_thp`): with them, each idle connection's few touched pages held a share of a
/// 2 MiB page, a third more resident memory per connection.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "roomgate",
    version,
    about = "Identity-aware edge proxy with webhook-to-queue ingestion"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Path to the routes YAML file.
    #[arg(long, env = "ROOMGATE_CONFIG")]
    config: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy.
    Serve(ConfigArg),
    /// Validate a config: print every error with its YAML path; exit 1 on error.
    Check(ConfigArg),
    /// Participant tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Room secrets (webhook signing secrets), in the configured backend.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Queues (Redis Streams).
    #[command(subcommand)]
    Queue(QueueCommand),
    /// IAP sessions (in Redis).
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Management keys for the embed session API (`Authorization: Bearer mk_...`).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the config file's JSON Schema (docs/roomgate.schema.json) on stdout.
    Schema,
    /// GET a URL once for a health check: exit 0 on a 2xx answer, 1 otherwise.
    Probe {
        /// The URL, plain HTTP (e.g. the admin listener's http://127.0.0.1:9090/healthz).
        #[arg(long)]
        url: String,
        /// Deadline for the connect and the response head, e.g. 2s.
        #[arg(long, default_value = "2s")]
        timeout: String,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// End every session of a user on every instance sharing the Redis (within a second).
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        /// The user's email.
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create a key granted to rooms; prints the key once (only its SHA-256 is stored).
    Create {
        #[command(flatten)]
        config: ConfigArg,
        /// A name for the key (who holds it).
        #[arg(long)]
        name: String,
        /// A room the key may mint embed sessions for (repeat for more).
        #[arg(long = "room", required = true)]
        rooms: Vec<String>,
    },
    /// List keys: id, name, rooms, created, last used. Never a key.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Revoke a key by its id.
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        id: String,
    },
}

#[derive(clap::Args)]
struct SecretKey {
    #[command(flatten)]
    config: ConfigArg,
    #[arg(long)]
    room: String,
    /// The processor identity (an endpoint's meshagent.request.processor, default the service name).
    #[arg(long)]
    identity: String,
    /// The secret id (an endpoint's meshagent.request.validation.secret).
    #[arg(long)]
    id: String,
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Store a secret; the value is read from standard input, never from the command line.
    Set {
        #[command(flatten)]
        key: SecretKey,
        /// Keep the previous value accepted for this long (rotation), e.g. 1h.
        #[arg(long)]
        keep_previous: Option<String>,
    },
    /// List secret ids (never values).
    List {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        room: String,
        #[arg(long)]
        identity: Option<String>,
    },
    /// Remove a secret.
    Rm {
        #[command(flatten)]
        key: SecretKey,
    },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Length, pending entries (over all consumer groups) and the oldest entry of a queue.
    Stats {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long)]
        room: String,
        #[arg(long)]
        queue: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Mint a participant token for a room (signed with the first `tokens.keys` entry).
    Mint {
        #[command(flatten)]
        config: ConfigArg,
        /// Room the token grants.
        #[arg(long)]
        room: String,
        /// Participant name (sent upstream as X-MESHAGENT-USER).
        #[arg(long)]
        name: String,
        /// The api grant's scope, as JSON (sent as X-MESHAGENT-API-SCOPE).
        #[arg(long)]
        api: Option<String>,
        /// Lifetime, e.g. 1h; omitted: no expiry.
        #[arg(long)]
        ttl: Option<String>,
        /// Key id to sign with (default: the first key).
        #[arg(long)]
        kid: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(2),
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    roomgate::run::load(path).map_err(|errors| {
        eprintln!("{}: {} error(s)", path.display(), errors.0.len());
        for e in &errors.0 {
            eprintln!("  {e}");
        }
        ExitCode::from(1)
    })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check(c) => Ok(match load(&c.config) {
            Ok(config) => {
                println!(
                    "{}: ok ({} rooms, {} routes)",
                    c.config.display(),
                    config.file.rooms.len(),
                    config.file.routes.len()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        }),
        Command::Serve(c) => Ok(serve(&c.config)),
        Command::Secrets(cmd) => secrets(cmd),
        Command::Keys(cmd) => keys(cmd),
        Command::Probe { url, timeout } => probe(&url, &timeout),
        Command::Schema => {
            print!("{}", roomgate::config::schema::render());
            Ok(ExitCode::SUCCESS)
        }
        Command::Sessions(SessionsCommand::Revoke { config, user }) => {
            let config = match load(&config.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let Some(kv) = shared_redis(&config)? else {
                anyhow::bail!("sessions revoke needs a redis block (embedded sessions live inside the serving process)");
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let n = rt.block_on(async {
                roomgate::auth::session::SessionStore::new(Some(&kv))
                    .revoke_user(&user)
                    .await
            })?;
            eprintln!(
                "revoked {n} session(s) of {}",
                user.trim().to_ascii_lowercase()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Queue(QueueCommand::Stats {
            config,
            room,
            queue,
        }) => {
            let config = match load(&config.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let Some(kv) = shared_redis(&config)? else {
                anyhow::bail!("queue stats needs a redis block (the embedded queue lives inside the serving process)");
            };
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let stats = rt.block_on(async {
                roomgate::queue::Queue::new(Some(&kv))
                    .stats(&room, &queue)
                    .await
            })?;
            let now = time::OffsetDateTime::now_utc();
            let out = serde_json::json!({
                "room": room,
                "queue": queue,
                "stream": roomgate::queue::stream_key(&room, &queue),
                "length": stats.length,
                "pending": stats.pending,
                "oldest_id": stats.oldest_id,
                "oldest_age_seconds": stats.oldest_age(now).map(|d| d.as_secs_f64()),
            });
            println!("{out:#}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Mint {
            config,
            room,
            name,
            api,
            ttl,
            kid,
        }) => {
            let config = match load(&config.config) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            if config.room(&room).is_none() {
                anyhow::bail!("unknown room {room:?}");
            }
            let (kid, key) = match &kid {
                Some(k) => config.token_keys.iter().find(|(id, _)| id == k),
                None => config.token_keys.first(),
            }
            .context("no matching key in tokens.keys")?;
            let api = api
                .map(|a| serde_json::from_str::<serde_json::Value>(&a))
                .transpose()
                .context("--api must be JSON")?;
            let ttl: Option<Duration> = ttl
                .map(|t| roomgate::config::parse_duration(&t))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let now = roomgate::state::system_clock();
            let token = roomgate::auth::token::mint(kid, key, &room, &name, api, ttl, now)?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `roomgate serve`: once the log settings are known, every line (config errors and the
/// reason for stopping included) is written through the log format they choose.
fn serve(path: &std::path::Path) -> ExitCode {
    use roomgate::telemetry;
    let format = match telemetry::log_format(env("ROOMGATE_LOG_FORMAT").as_deref()) {
        Ok(f) => f,
        Err(e) => {
            // No format was chosen: plain text.
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let ansi = std::io::stderr().is_terminal();
    match telemetry::log_filter(env("ROOMGATE_LOG").as_deref()) {
        Ok(filter) => telemetry::init_logging(filter, format, ansi),
        Err(e) => {
            let info = tracing_subscriber::EnvFilter::new("info");
            telemetry::init_logging(info, format, ansi);
            tracing::error!(error = %e, "usage error");
            return ExitCode::from(2);
        }
    }
    let config = match roomgate::run::load(path) {
        Ok(config) => config,
        Err(errors) => {
            for e in &errors.0 {
                tracing::error!(config = %path.display(), error = %e, "invalid config");
            }
            tracing::error!(
                config = %path.display(),
                errors = errors.0.len(),
                "not starting: the config has errors"
            );
            return ExitCode::from(1);
        }
    };
    match run_serve(config, path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "stopped on an error");
            ExitCode::from(1)
        }
    }
}

/// A variable of the environment; unset or not UTF-8: `None`.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn run_serve(config: Config, path: &std::path::Path) -> anyhow::Result<()> {
    // One worker: a current-thread runtime, with no work-stealing to pay for.
    let threads = worker_threads();
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .context("starting the runtime")?;
    rt.block_on(roomgate::run::serve(config, path.to_path_buf()))
}

/// `roomgate probe`: the status (or why there is none) on stderr; never a body.
fn probe(url: &str, timeout: &str) -> anyhow::Result<ExitCode> {
    let limit = roomgate::config::parse_duration(timeout).map_err(anyhow::Error::msg)?;
    let target = roomgate::probe::target(url)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(match rt.block_on(roomgate::probe::probe(&target, limit)) {
        Ok(status) => {
            eprintln!("{}: {status}", target.authority);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("probe failed: {e}");
            ExitCode::from(1)
        }
    })
}

/// `ROOMGATE_WORKER_THREADS`, default: the number of CPUs.
fn worker_threads() -> usize {
    std::env::var("ROOMGATE_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
}

fn keys(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    use roomgate::embed::keys;
    let path = match &cmd {
        KeysCommand::Create { config, .. }
        | KeysCommand::List { config }
        | KeysCommand::Revoke { config, .. } => &config.config,
    };
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _runtime = rt.enter();
    let store = keys::store(&config)?;
    match cmd {
        KeysCommand::Create { name, rooms, .. } => {
            let now = roomgate::state::system_clock();
            let (record, raw) =
                match rt.block_on(keys::create(&*store, &config, &name, &rooms, now)) {
                    Ok(x) => x,
                    Err(keys::KeyError::Invalid(m)) => {
                        eprintln!("error: {m}");
                        return Ok(ExitCode::from(1));
                    }
                    Err(e) => return Err(e.into()),
                };
            eprintln!(
                "created key {} for {}; it is shown once, store it now:",
                record.id,
                record.rooms.join(",")
            );
            println!("{raw}");
        }
        KeysCommand::List { .. } => {
            for key in rt.block_on(store.list_keys())? {
                println!("{}", keys::describe(&key));
            }
        }
        KeysCommand::Revoke { id, .. } => {
            if rt.block_on(store.remove_key(&id))? {
                eprintln!("revoked key {id}");
            } else {
                eprintln!("error: no key with id {id:?}");
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The config's shared Redis (any topology), if it has one; connected on first use.
fn shared_redis(config: &roomgate::config::Config) -> anyhow::Result<Option<roomgate::kv::Kv>> {
    Ok(config
        .redis
        .as_ref()
        .map(|r| roomgate::kv::Kv::connect(r, roomgate::kv::DEFAULT_TIMEOUT))
        .transpose()?)
}

fn secrets(cmd: SecretsCommand) -> anyhow::Result<ExitCode> {
    use std::io::Read;
    let path = match &cmd {
        SecretsCommand::Set { key, .. } | SecretsCommand::Rm { key } => &key.config.config,
        SecretsCommand::List { config, .. } => &config.config,
    };
    let config = match load(path) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let kv = shared_redis(&config)?;
    let store = roomgate::secret::SecretStore::from_config(&config, kv.as_ref())?;
    match cmd {
        SecretsCommand::Set { key, keep_previous } => {
            let mut value = Vec::new();
            std::io::stdin()
                .read_to_end(&mut value)
                .context("reading the value from stdin")?;
            while value.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                value.pop();
            }
            if value.is_empty() {
                anyhow::bail!("no value on standard input");
            }
            let keep = keep_previous
                .map(|d| roomgate::config::parse_duration(&d))
                .transpose()
                .map_err(anyhow::Error::msg)?;
            rt.block_on(store.set(
                &key.room,
                &key.identity,
                &key.id,
                roomgate::sensitive::Secret::new(value),
                keep,
            ))?;
            eprintln!("stored {}/{}/{}", key.room, key.identity, key.id);
        }
        SecretsCommand::List { room, identity, .. } => {
            let ids = rt.block_on(store.list(&room, identity.as_deref()))?;
            if ids.is_empty() {
                // On stderr: stdout stays a list (empty) for scripts.
                let whose = identity.map(|i| format!(" of {i}")).unwrap_or_default();
                eprintln!(
                    "no secrets for room {room}{whose} in {}",
                    store.whereabouts()
                );
            }
            for (identity, id) in ids {
                println!("{identity}\t{id}");
            }
        }
        SecretsCommand::Rm { key } => {
            rt.block_on(store.rm(&key.room, &key.identity, &key.id))?;
            eprintln!("removed {}/{}/{}", key.room, key.identity, key.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}
