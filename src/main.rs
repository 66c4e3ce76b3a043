//! The `roomgate` command line. Everything it does lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use roomgate::config::Config;

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
    Config::load(path).map_err(|errors| {
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
        Command::Serve(c) => {
            roomgate::telemetry::init_logging(
                std::env::var("ROOMGATE_LOG").ok().as_deref(),
                std::env::var("ROOMGATE_LOG_FORMAT").ok().as_deref(),
            );
            let config = match load(&c.config) {
                Ok(config) => config,
                Err(code) => return Ok(code),
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(worker_threads())
                .enable_all()
                .build()
                .context("starting the runtime")?;
            rt.block_on(roomgate::run::serve(config, c.config))?;
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
