//! A queue worker: consumes one roomgate queue with a Redis consumer group.
//!
//! ```text
//! cargo run --example worker -- --redis redis://127.0.0.1:6379/ \
//!     --room acme --queue stripe-events --group webhook-worker --consumer worker-1
//! ```
//!
//! The pattern (see `docs/queues.md`): create the group once (`XGROUP CREATE ... MKSTREAM`),
//! first finish this consumer's own pending entries (a crash left them unacknowledged),
//! then read new entries with `XREADGROUP ... >`, handle each and `XACK` it. Periodically
//! `XAUTOCLAIM` entries another consumer took but did not acknowledge for `--min-idle`.
//! Handling must be idempotent per `delivery_id`: an entry is delivered at least once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Parser;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};

#[derive(Parser, Debug)]
#[command(about = "Consume a roomgate queue (Redis Streams consumer group)")]
struct Args {
    /// Redis URL, e.g. redis://127.0.0.1:6379/
    #[arg(long)]
    redis: String,
    /// Room name.
    #[arg(long)]
    room: String,
    /// Queue name (`meshagent.request.queue`).
    #[arg(long)]
    queue: String,
    /// Consumer group (usually the processor identity).
    #[arg(long)]
    group: String,
    /// This consumer's name, unique within the group.
    #[arg(long)]
    consumer: String,
    /// Entries pending longer than this (ms) in another consumer are claimed.
    #[arg(long, default_value_t = 60_000)]
    min_idle: u64,
    /// How often to look for stale pending entries (ms).
    #[arg(long, default_value_t = 30_000)]
    claim_every: u64,
    /// Longest block of one XREADGROUP (ms).
    #[arg(long, default_value_t = 5_000)]
    block: u64,
}

/// An entry: its stream id and fields.
type Entry = (String, HashMap<String, Vec<u8>>);

/// An entry as Redis returns it: its id and a flat field/value array (nil if deleted).
type RawEntry = (String, Value);

/// An XREADGROUP reply: per stream, its key and entries.
type ReadReply = Option<Vec<(String, Vec<RawEntry>)>>;

fn stream_key(room: &str, queue: &str) -> String {
    format!("roomgate:queue:{{{room}:{queue}}}")
}

#[tokio::main]
async fn main() -> redis::RedisResult<()> {
    let args = Args::parse();
    let key = stream_key(&args.room, &args.queue);
    let block = Duration::from_millis(args.block);
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(block + Duration::from_secs(5)));
    let mut conn = redis::Client::open(args.redis.as_str())?
        .get_multiplexed_async_connection_with_config(&config)
        .await?;

    // Create the group (and the stream) once; BUSYGROUP means it exists already.
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&key)
        .arg(&args.group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await;
    match created {
        Ok(()) => eprintln!("created group {} on {key}", args.group),
        Err(e) if e.code() == Some("BUSYGROUP") => {}
        Err(e) => return Err(e),
    }

    // Our own pending entries first: a previous run may have died before XACK.
    loop {
        let entries = read_group(&mut conn, &key, &args, "0", None).await?;
        if entries.is_empty() {
            break;
        }
        for entry in entries {
            handle(&mut conn, &key, &args.group, entry).await?;
        }
    }

    let mut last_claim = Instant::now();
    loop {
        if last_claim.elapsed() >= Duration::from_millis(args.claim_every) {
            claim_stale(&mut conn, &key, &args).await?;
            last_claim = Instant::now();
        }
        let read = read_group(&mut conn, &key, &args, ">", Some(block));
        let entries = tokio::select! {
            entries = read => entries?,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopping");
                return Ok(());
            }
        };
        for entry in entries {
            handle(&mut conn, &key, &args.group, entry).await?;
        }
    }
}

/// `XREADGROUP GROUP g c COUNT 10 [BLOCK ms] STREAMS key id`.
async fn read_group(
    conn: &mut MultiplexedConnection,
    key: &str,
    args: &Args,
    id: &str,
    block: Option<Duration>,
) -> redis::RedisResult<Vec<Entry>> {
    let mut cmd = redis::cmd("XREADGROUP");
    cmd.arg("GROUP")
        .arg(&args.group)
        .arg(&args.consumer)
        .arg("COUNT")
        .arg(10);
    if let Some(block) = block {
        cmd.arg("BLOCK").arg(block.as_millis() as u64);
    }
    cmd.arg("STREAMS").arg(key).arg(id);
    // Reply: nil, or [[key, [[id, [field, value, ...]], ...]]].
    let reply: ReadReply = cmd.query_async(conn).await?;
    Ok(reply
        .into_iter()
        .flatten()
        .flat_map(|(_, entries)| entries)
        .filter_map(|(id, fields)| Some((id, fields_of(fields)?)))
        .collect())
}

/// Field/value pairs of one entry; `None` for an entry deleted while pending.
fn fields_of(fields: Value) -> Option<HashMap<String, Vec<u8>>> {
    let fields: Vec<Vec<u8>> = redis::from_redis_value(fields).ok()?;
    Some(
        fields
            .chunks_exact(2)
            .map(|kv| (String::from_utf8_lossy(&kv[0]).into_owned(), kv[1].clone()))
            .collect(),
    )
}

/// `XAUTOCLAIM key group consumer min-idle 0-0 COUNT 100`, until the cursor wraps.
async fn claim_stale(
    conn: &mut MultiplexedConnection,
    key: &str,
    args: &Args,
) -> redis::RedisResult<()> {
    let mut cursor = String::from("0-0");
    loop {
        // Reply: [next cursor, [[id, [field, value, ...]], ...], [deleted ids]].
        let reply: Vec<Value> = redis::cmd("XAUTOCLAIM")
            .arg(key)
            .arg(&args.group)
            .arg(&args.consumer)
            .arg(args.min_idle)
            .arg(&cursor)
            .arg("COUNT")
            .arg(100)
            .query_async(conn)
            .await?;
        let mut parts = reply.into_iter();
        let next: String = match parts.next() {
            Some(v) => redis::from_redis_value(v)?,
            None => return Ok(()),
        };
        let claimed: Vec<RawEntry> = match parts.next() {
            Some(v) => redis::from_redis_value(v)?,
            None => Vec::new(),
        };
        for (id, fields) in claimed {
            match fields_of(fields) {
                Some(fields) => {
                    eprintln!("claimed stale entry {id}");
                    handle(conn, key, &args.group, (id, fields)).await?;
                }
                None => {
                    let _: i64 = redis::cmd("XACK")
                        .arg(key)
                        .arg(&args.group)
                        .arg(&id)
                        .query_async(conn)
                        .await?;
                }
            }
        }
        if next == "0-0" {
            return Ok(());
        }
        cursor = next;
    }
}

/// Handle one entry, then acknowledge it. A real worker dedups on `delivery_id` here.
async fn handle(
    conn: &mut MultiplexedConnection,
    key: &str,
    group: &str,
    (id, fields): Entry,
) -> redis::RedisResult<()> {
    let text = |name: &str| {
        fields
            .get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    let body_len = fields.get("body").map_or(0, Vec::len);
    println!(
        "{id} delivery_id={} provider={} bytes={body_len}",
        text("delivery_id"),
        text("provider"),
    );
    let _: i64 = redis::cmd("XACK")
        .arg(key)
        .arg(group)
        .arg(&id)
        .query_async(conn)
        .await?;
    Ok(())
}
