#!/usr/bin/env bash
# Load comparison: roomgate vs nginx, each a reverse proxy with ONE worker in front of the
# same upstream (an nginx answering `200 ok`), driven by wrk on 127.0.0.1 only.
#
#   bash benches/load/run.sh [scenario...]        # default: public private
#   scenarios: public private tls (= tls + tls_close) h2 webhook iap idle embed ratelimit floor
#
# For every scenario it starts one roomgate (ROOMGATE_WORKER_THREADS=1, ROOMGATE_LOG=warn)
# and one nginx (worker_processes 1, access_log off, keepalive pool to the upstream), then
# runs wrk against them ALTERNATELY (roomgate, nginx, roomgate, nginx, ...) and records per
# run: requests/s, p50/p99 latency, and the proxy's CPU time per completed request, read as
# utime+stime from /proc/<pid>/stat before and after the run (nginx: master + worker).
# Nothing is pinned (2 cores: wrk, the proxy and the upstream share them alike).
#
# Knobs (environment): ROUNDS (3), DURATION (10s), WARMUP (2s), CONNECTIONS (64),
# THREADS (1), CARGO_TARGET_DIR (the usual cargo default), ROOMGATE_BIN (skip the build),
# PROFILE_DIR (after the measured rounds, one extra roomgate run under `perf record`
# (cpu-clock sampling, DWARF call graphs); the data and a flat report go there; these
# runs are not in the table), SYSCALLS=1 (after the measured rounds, 4 s of each proxy
# under `strace -c -f`: system calls per request; not in the table, strace slows them).
#
# Scenarios beyond plain HTTP/1.1 (details at each scenario_* function):
#   tls        wrk over HTTPS, keep-alive; both proxies serve the same ECDSA P-256 cert
#   tls_close  the same with `Connection: close`: a TLS handshake per request (wrk resumes
#              the session from the last connection's ticket: TLS 1.3 PSK with X25519)
#   h2         HTTP/2 over TLS with h2load (-c$CONNECTIONS -m$H2_STREAMS; wrk has no h2)
#   webhook    GitHub-signed 1 KiB POSTs -> roomgate queue endpoint -> a redis-server
#              started here; nginx forwards the same POST to the upstream
#   fleet      (= the four below) the same POSTs rotating over 12 queues (streams spread
#              over a cluster's slots), on each Redis topology started here:
#     webhook_single           one primary,                       durability.replicas: 0
#     webhook_single_durable   one primary + one replica,         replicas: 1 (WAIT)
#     webhook_cluster          Redis Cluster of 3 primaries,      replicas: 0
#     webhook_cluster_durable  3 primaries + one replica each,    replicas: 1 (WAIT)
#   iap        roomgate only: cookie-authenticated GET (IAP session from a real sign-in)
#              alternating with the same GET on a public port of the same roomgate
#   idle       RSS with IDLE_CONNS (10000) idle keep-alive connections (idle_client.py)
#   embed      roomgate only: GET with an embed session's X-Roomgate-Embed-Token alternating
#              with the same GET on a public port of the same roomgate
#   assertion  the embed scenario with identity_assertion on (an ES256 JWT signed per request)
#   ratelimit  roomgate only, on a redis-server started here: GET on a rate-limited public
#              port (one GCRA script per request) alternating with an unlimited one
#   floor      the public load through examples/hyper_floor.rs (hyper's server and client
#              connections, nothing else) instead of roomgate, against nginx
# More knobs: H2_STREAMS (10), IDLE_CONNS (10000), IDLE_HOLD (5 s held per round),
# IDLE_SILENT=1 (idle connections that never send a byte instead of one GET each).
#
# Adding a scenario: write `scenario_<name>` below. It sets SC_CONFIG (a roomgate config
# template in this directory; @LISTEN@ and @UPSTREAM_PORT@ are filled in), SC_HOST (the
# Host header routed by that config), SC_PATH, and may append wrk headers to SC_HEADERS
# (it may use $ROOMGATE_BIN and the generated config "$1"). A scenario that cannot run yet
# calls `not_available "why"` and returns 2; the report lists it as "not yet available".
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}
H2_STREAMS=${H2_STREAMS:-10}
IDLE_CONNS=${IDLE_CONNS:-10000}
IDLE_HOLD=${IDLE_HOLD:-5}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(public private)
# `tls` runs both TLS variants.
EXPANDED=()
for s in "${SCENARIOS[@]}"; do
  case $s in
    tls) EXPANDED+=(tls tls_close) ;;
    fleet) EXPANDED+=(webhook_single webhook_single_durable webhook_cluster webhook_cluster_durable) ;;
    *) EXPANDED+=("$s") ;;
  esac
done
SCENARIOS=("${EXPANDED[@]}")
# 10,000 idle connections need as many descriptors in the client and in each proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d /tmp/roomgate-load.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    # bounded wait: TERM, then KILL after ~5s
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shellcheck source=common.sh
source "$HERE/common.sh"

# --- prerequisites -------------------------------------------------------------------------
[ -x /usr/sbin/nginx ] && PATH="$PATH:/usr/sbin"
need_pkg nginx nginx-light nginx
need_pkg wrk wrk
need_pkg curl curl
need_pkg python3 python3
for s in "${SCENARIOS[@]}"; do
  case $s in
    tls|tls_close|h2|assertion) need_pkg openssl openssl ;;
    webhook*|ratelimit) need_pkg redis-server redis-server; need_pkg redis-cli redis-tools ;;
  esac
  # h2load is Debian's nghttp2-client; without it the h2 scenario is reported unavailable.
  if [ "$s" = h2 ]; then (need_pkg h2load nghttp2-client) || true; fi
done
NGINX=$(command -v nginx)
CLK_TCK=$(getconf CLK_TCK)

if [ -z "${ROOMGATE_BIN:-}" ]; then
  log "cargo build --release --bin roomgate"
  (cd "$ROOT" && timeout 1800 cargo build --release --locked --bin roomgate >&2)
  ROOMGATE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/roomgate"
fi
[ -x "$ROOMGATE_BIN" ] || die "no roomgate binary at $ROOMGATE_BIN"

# --- helpers -------------------------------------------------------------------------------

# cpu_ticks PID...: "utime stime" in clock ticks, summed over the processes (all threads).
cpu_ticks() {
  local user=0 sys=0 pid stat rest
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat") || die "process $pid is gone"
    rest=${stat##*) }          # fields from 3 (state) on; comm may hold spaces
    # shellcheck disable=SC2086
    set -- $rest
    user=$((user + ${12}))     # field 14: utime
    sys=$((sys + ${13}))       # field 15: stime
  done
  echo "$user $sys"
}

# nginx_pids MASTER: the master and its workers.
nginx_pids() {
  echo "$1" $(pgrep -P "$1" || true)
}

start_nginx() { # start_nginx NAME CONF; sets NGINX_PID (the master, in the foreground)
  local dir="$WORK/$1"
  mkdir -p "$dir/tmp"
  "$NGINX" -t -q -p "$dir" -c "$2" -e "$dir/error.log" >&2 || die "nginx config $2 rejected"
  "$NGINX" -p "$dir" -c "$2" -e "$dir/error.log" >"$dir/stdout.log" 2>&1 &
  NGINX_PID=$!
  PIDS+=("$NGINX_PID")
}

# The shared upstream: nginx answering 200 "ok" on a free port, one worker.
start_upstream() {
  local dir="$WORK/upstream"
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $dir/tmp;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$UPSTREAM_PORT;
    location / { default_type text/plain; return 200 "ok"; }
  }
}
EOF
  start_nginx upstream "$dir/nginx.conf"
  wait_port "$UPSTREAM_PORT" || die "upstream did not start"
}

# nginx as the reverse proxy under test: one worker, keepalive pool to the upstream, the
# same forwarding headers roomgate sets. keepalive_requests matches roomgate's default
# limits.max_requests_per_connection (10000).
# MODE: plain (default), tls (HTTPS, the scenario's cert.pem/key.pem), h2 (HTTPS + http2,
# 100 concurrent streams like roomgate's limits.max_concurrent_streams), idle (room for
# IDLE_CONNS connections, keep-alive held long).
nginx_proxy_conf() { # nginx_proxy_conf DIR PORT [MODE]
  local mode=${3:-plain} listen="listen 127.0.0.1:$2;" tls="" conns=4096 ka=60s
  case $mode in
    tls|h2)
      listen="listen 127.0.0.1:$2 ssl;"
      [ "$mode" = h2 ] && listen="listen 127.0.0.1:$2 ssl http2;"
      tls="ssl_certificate $1/../cert.pem;
    ssl_certificate_key $1/../key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    http2_max_concurrent_streams 100;"
      ;;
    idle) conns=$((IDLE_CONNS + 1000)); ka=600s ;;
  esac
  cat <<EOC
worker_processes 1;
worker_rlimit_nofile $((conns * 2));
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections $conns; }
http {
  access_log off;
  client_body_temp_path $1/tmp;
  proxy_temp_path $1/tmp;
  keepalive_requests 10000;
  keepalive_timeout $ka;
  upstream shared_upstream {
    server 127.0.0.1:$UPSTREAM_PORT;
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    $listen
    $tls
    location / {
      proxy_pass http://shared_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
EOC
}

# to_ms VALUE_WITH_UNIT (wrk prints us, ms or s)
to_ms() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else printf "nan" }'
}

RESULTS="$WORK/results.tsv"      # one row per measured run
EXTRA="$WORK/extra.tsv"          # CPU of helper processes (redis) during the runs
NOTES="$WORK/notes.txt"          # per-scenario notes: load average, checks, TLS versions
IDLE="$WORK/idle.tsv"            # idle scenario rows
: >"$RESULTS"; : >"$EXTRA"; : >"$NOTES"; : >"$IDLE"
UNAVAILABLE=()
note() { echo "$*" >>"$NOTES"; log "$*"; }

# drive PORT HOST DURATION OUT LABEL HEADER_ARGS...: one load run (wrk, or h2load for h2)
# against 127.0.0.1:PORT with the scenario's scheme, path and Lua script; output in OUT.
drive() {
  local port=$1 host=$2 dur=$3 out=$4 label=$5
  shift 5
  local url="$SC_SCHEME://127.0.0.1:$port$SC_PATH"
  if [ "$SC_TOOL" = h2load ]; then
    local secs=${dur%s}
    rm -f "$out.log"
    timeout $((secs + 60)) h2load -t"$THREADS" -c"$CONNECTIONS" -m"$H2_STREAMS" -D "$secs" \
      --log-file="$out.log" -H ":authority: $host" "$@" "$url" >"$out" 2>&1
  elif [ -n "$SC_LUA" ]; then
    timeout 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$dur" --latency -H "Host: $host" "$@" \
      -s "$SC_LUA" "$url" -- "$label" "${SC_LUA_ARGS[@]}" >"$out" 2>&1
  else
    timeout 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$dur" --latency -H "Host: $host" "$@" \
      "$url" >"$out" 2>&1
  fi
}

# parse OUT: "requests req/s p50_ms p99_ms errors" from a drive() output.
parse() {
  local out=$1 reqs rps p50 p99 errors sockerr
  if [ "$SC_TOOL" = h2load ]; then
    reqs=$(awk '/^requests:/ {print $8}' "$out")
    rps=$(awk '/^finished in/ {print $4}' "$out")
    errors=$(awk '/^requests:/ {e = $10 + $12 + $14} /^status codes:/ {n = $5 + $7 + $9}
      END {print n + 0 (e ? " fail:" e : "")}' "$out")
    read -r p50 p99 < <(cut -f3 "$out.log" | sort -n | awk '{ a[NR] = $1 }
      END { if (!NR) { print "nan nan"; exit }
            i = int(NR * 0.5); if (i < 1) i = 1; j = int(NR * 0.99); if (j < 1) j = 1
            printf "%.3f %.3f\n", a[i] / 1000, a[j] / 1000 }')
  else
    reqs=$(awk '/requests in/ {print $1}' "$out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    errors=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    sockerr=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); gsub(/ /, ""); print}' "$out")
    errors="${errors:-0}${sockerr:+ sock:$sockerr}"
  fi
  echo "${reqs:-0} ${rps:-0} $p50 $p99 ${errors// /_}"
}

# bench LABEL ROUND PORT HOST HEADERS_VAR PID...: one measured run; appends a row to $RESULTS.
# CPU of $SC_EXTRA_PID (if set) is recorded too, for the runs labelled roomgate.
bench() {
  local label=$1 round=$2 port=$3 host=$4
  local -n hdrs=$5
  shift 5
  local out="$WORK/run-$SC_NAME-$label-$round.txt"
  local before after u0 s0 u1 s1 xb="" xa=""
  [ -n "$SC_BEFORE_RUN" ] && "$SC_BEFORE_RUN" "$label"
  before=$(cpu_ticks "$@")
  [ -n "$SC_EXTRA_PID" ] && xb=$(cpu_ticks "$SC_EXTRA_PID")
  drive "$port" "$host" "$DURATION" "$out" "r$round-$label" "${hdrs[@]}" \
    || die "load run failed against $label: $(cat "$out")"
  after=$(cpu_ticks "$@")
  [ -n "$SC_EXTRA_PID" ] && xa=$(cpu_ticks "$SC_EXTRA_PID")
  local reqs rps p50 p99 errors
  read -r reqs rps p50 p99 errors <<<"$(parse "$out")"
  [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || die "no request completed against $label: $(cat "$out")"
  read -r u0 s0 <<<"$before"
  read -r u1 s1 <<<"$after"
  local cpu_ms us_per_req user_us sys_us
  cpu_ms=$(( (u1 - u0 + s1 - s0) * 1000 / CLK_TCK ))
  per_req() { awk -v t="$1" -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }'; }
  us_per_req=$(per_req $((u1 - u0 + s1 - s0)))
  user_us=$(per_req $((u1 - u0)))
  sys_us=$(per_req $((s1 - s0)))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$SC_NAME" "$label" "$round" "$reqs" \
    "$rps" "$p50" "$p99" "$cpu_ms" "$us_per_req" "$user_us" "$sys_us" "$errors" >>"$RESULTS"
  printf '    %-9s round %s: %10s req/s  p50 %8s ms  p99 %8s ms  %7s us CPU/req (user %s, sys %s)  non-2xx %s\n' \
    "$label" "$round" "$rps" "$p50" "$p99" "$us_per_req" "$user_us" "$sys_us" "$errors" >&2
  if [ -n "$xa" ]; then
    local xu0 xs0 xu1 xs1
    read -r xu0 xs0 <<<"$xb"
    read -r xu1 xs1 <<<"$xa"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$SC_NAME" "$SC_EXTRA_NAME (during $label)" "$round" "$reqs" \
      $(( (xu1 - xu0 + xs1 - xs0) * 1000 / CLK_TCK )) "$(per_req $((xu1 - xu0 + xs1 - xs0)))" >>"$EXTRA"
    log "    $SC_EXTRA_NAME during $label: $(per_req $((xu1 - xu0 + xs1 - xs0))) us CPU per request"
  fi
  [ -n "$SC_AFTER_RUN" ] && "$SC_AFTER_RUN" "$label" "$round" "$out"
  return 0
}

# profile_roomgate PORT PID: sample roomgate under the same load (bounded: 8 s).
profile_roomgate() {
  need_pkg perf linux-perf
  mkdir -p "$PROFILE_DIR"
  local data="$PROFILE_DIR/$SC_NAME.perf.data"
  log "profiling roomgate in $SC_NAME -> $data"
  timeout 60 perf record -q -e cpu-clock -F 499 --call-graph dwarf,8192 -p "$2" -o "$data" \
    -- sleep 8 2>"$PROFILE_DIR/$SC_NAME.perf.log" &
  local perf_pid=$!
  drive "$1" "$SC_HOST" 8s "$PROFILE_DIR/$SC_NAME.load.txt" profile "${SC_HEADERS[@]}" || true
  wait "$perf_pid" || true
  perf report -i "$data" --no-children --sort symbol --stdio -g none --percent-limit 0.5 \
    >"$PROFILE_DIR/$SC_NAME.flat.txt" 2>/dev/null || true
  timeout 120 perf script -i "$data" -F comm,tid,ip,sym 2>/dev/null \
    | python3 "$HERE/profile-summary.py" >"$PROFILE_DIR/$SC_NAME.summary.txt" || true
  log "profile: $PROFILE_DIR/$SC_NAME.summary.txt (buckets), $SC_NAME.flat.txt (self time)"
}

# count_syscalls LABEL PORT HOST HEADERS_VAR PID...: system calls per request under load (4 s).
count_syscalls() {
  need_pkg strace strace
  local label=$1 port=$2 host=$3 out="$WORK/strace-$SC_NAME-$1" args=() pid
  local -n h=$4
  shift 4
  for pid in "$@"; do args+=(-p "$pid"); done
  timeout 30 strace -c -f -o "$out.txt" "${args[@]}" 2>/dev/null &
  local strace_pid=$!
  sleep 0.5
  drive "$port" "$host" 4s "$out.load" "strace-$label" "${h[@]}" || true
  sleep 0.3
  kill -INT "$strace_pid" 2>/dev/null || true
  wait "$strace_pid" 2>/dev/null || true
  local n
  n=$(parse "$out.load" | cut -d' ' -f1)
  echo "syscalls per request, $SC_NAME, $label ($n requests under strace):" >&2
  awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $4 + 0 > 0 {
      printf "    %-14s %6.2f\n", $NF, $4 / n }' "$out.txt" | sort -k2 -nr | head -8 >&2
}

not_available() {
  log "scenario $SC_NAME: not available ($1)"
  UNAVAILABLE+=("$SC_NAME: $1")
}

# rss_kb PID...: VmRSS summed over the processes, in KiB.
rss_kb() {
  local pid total=0 v
  for pid in "$@"; do
    v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status") || die "process $pid is gone"
    total=$((total + v))
  done
  echo "$total"
}

# --- scenarios -----------------------------------------------------------------------------
# Each sets SC_CONFIG, SC_HOST, SC_PATH and SC_HEADERS; hooks get the scenario dir or config.
# Optional: SC_SETUP (before the config is generated; "$1" = scenario dir), SC_PREPARE
# (after; "$1" = generated config), SC_AFTER_START (both targets are up; "$1" = roomgate
# port), SC_BEFORE_RUN/SC_AFTER_RUN (around every measured run; "$1" = label),
# SC_SCHEME (http|https), SC_TOOL (wrk|h2load), SC_LUA + SC_LUA_ARGS (wrk script; its first
# argument is a per-run label), SC_NGINX_MODE (plain|tls|h2|idle), SC_CURL (extra curl
# arguments for the sanity request), SC_EXPECT_A (status roomgate must answer, default 200),
# SC_EXTRA_PID/SC_EXTRA_NAME (a helper whose CPU is reported per request), and SC_B=roomgate
# with SC_B_HOST/SC_B_HEADERS/SC_LABELS to compare two routes of one roomgate instead of
# roomgate with nginx; SC_A_CMD=floor runs examples/hyper_floor.rs in roomgate's place.

scenario_public() {
  SC_CONFIG="$HERE/public.yaml"
  SC_HOST=public.bench.localhost
  SC_PATH=/
  SC_HEADERS=()
}

# The public load through examples/hyper_floor.rs instead of roomgate: hyper's server and
# client connections with nothing of roomgate's between them. What roomgate's own work
# costs is the public scenario's figure less this one.
scenario_floor() {
  scenario_public
  SC_LABELS=(hyper-floor nginx)
  SC_A_CMD=floor
  log "cargo build --release --example hyper_floor"
  (cd "$ROOT" && timeout 1800 cargo build --release --locked --example hyper_floor >&2)
}

scenario_private() {
  SC_CONFIG="$HERE/private.yaml"
  SC_HOST=private.bench.localhost
  SC_PATH=/
  SC_HEADERS=()
  # The token needs the generated config; prepare_private runs once it exists.
  SC_PREPARE=prepare_private
  SC_UNAUTHENTICATED_STATUS=401   # checked before the runs: the port really is private
}
prepare_private() { # prepare_private CONFIG
  local token
  token=$("$ROOMGATE_BIN" token mint --config "$1" --room bench --name loadtest \
    --api '{"queues":{}}' --ttl 1h) || die "token mint failed"
  SC_HEADERS=(-H "Authorization: Bearer $token")
}

# tls: HTTPS keep-alive. One ECDSA P-256 self-signed certificate for tls.bench.localhost,
# made here with openssl, is served by both proxies (roomgate: default_certificate 0, so
# wrk's SNI "127.0.0.1" gets it; the Host header is covered by it).
scenario_tls() {
  SC_CONFIG="$HERE/tls.yaml"
  SC_HOST=tls.bench.localhost
  SC_PATH=/
  SC_HEADERS=()
  SC_SCHEME=https
  SC_NGINX_MODE=tls
  SC_CURL=(-k)
  SC_SETUP=make_cert
}
# tls_close: a new TCP connection and a TLS handshake for every request, with `Connection:
# close`. wrk resumes each new connection with a ticket from the one before, so after each
# connection's first, the handshakes are TLS 1.3 resumptions (PSK with a fresh X25519
# exchange, no certificate signature), on both proxies.
scenario_tls_close() {
  scenario_tls
  SC_HEADERS=(-H "Connection: close")
}
make_cert() { # make_cert DIR
  timeout 30 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$1/key.pem" -out "$1/cert.pem" -subj "/CN=tls.bench.localhost" \
    -addext "subjectAltName=DNS:tls.bench.localhost" 2>"$1/openssl.log" \
    || die "openssl req failed: $(cat "$1/openssl.log")"
}
# Which protocol and cipher each side negotiates with an OpenSSL client (into the notes).
tls_versions() { # tls_versions ROOMGATE_PORT NGINX_PORT
  local name port line
  for name in roomgate nginx; do
    port=$1; [ "$name" = nginx ] && port=$2
    line=$(curl -sk -m 5 -o /dev/null -v ${SC_CURL_HTTP2:---http1.1} -H "Host: $SC_HOST" \
      "https://127.0.0.1:$port/" 2>&1 | grep -E 'SSL connection using|ALPN: server accepted' | tr -d '*\r' | xargs)
    note "$SC_NAME: $name: $line"
  done
}

# h2: HTTP/2 over TLS, same certificate, h2load -c$CONNECTIONS -m$H2_STREAMS; p50/p99 come
# from h2load's per-request log. Both proxies speak HTTP/1.1 to the upstream.
scenario_h2() {
  command -v h2load >/dev/null 2>&1 || { not_available "h2load (Debian nghttp2-client) could not be installed"; return 2; }
  scenario_tls
  SC_TOOL=h2load
  SC_NGINX_MODE=h2
  SC_CURL=(-k --http2)
  SC_CURL_HTTP2=--http2
}

# webhook: GitHub-signed 1 KiB JSON bodies POSTed to roomgate's queue endpoint (verified,
# XADDed to a redis-server started here on a free port, no persistence, answered 202) and
# to nginx, which forwards the same POST to the shared upstream. The Lua script sends a new
# X-GitHub-Delivery per request and counts statuses; after every roomgate run the growth of
# the stream is compared with the number of 202s, then Redis is flushed (outside the timing).
scenario_webhook() {
  SC_CONFIG="$HERE/webhook.yaml"
  SC_HOST=hooks.bench.localhost
  SC_PATH=/webhooks/github
  SC_HEADERS=()
  SC_SETUP=setup_webhook
  SC_LUA="$HERE/webhook.lua"
  SC_EXPECT_A=202
  SC_BEFORE_RUN=webhook_before
  SC_AFTER_RUN=webhook_after
  SC_EXTRA_NAME=redis-server
}
WEBHOOK_SECRET=bench-only-github-webhook-secret   # as in webhook-secrets.yaml
WEBHOOK_STREAM='roomgate:queue:{bench:github-events}'
setup_webhook() { # setup_webhook DIR
  webhook_body "$1"
  local sig
  sig=$(cat "$1/signature")
  read -r REDIS_PORT <<<"$(free_ports 1)"
  mkdir -p "$1/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$1/redis" --logfile "$1/redis/redis.log" --daemonize no >/dev/null 2>&1 &
  SC_EXTRA_PID=$!
  PIDS+=("$SC_EXTRA_PID")
  wait_port "$REDIS_PORT" || die "redis-server did not start"
  SC_LUA_ARGS=("$1/body.json" "$sig")
  SC_CURL=(-X POST --data-binary "@$1/body.json" -H "X-Hub-Signature-256: $sig"
    -H "X-GitHub-Event: push" -H "Content-Type: application/json" -H "X-GitHub-Delivery: sanity-$$")
  log "redis-server on 127.0.0.1:$REDIS_PORT (pid $SC_EXTRA_PID); body 1024 bytes, $sig"
}
webhook_body() { # webhook_body DIR: the secrets file, body.json and its signature there
  cp "$HERE/webhook-secrets.yaml" "$1/webhook-secrets.yaml"
  python3 - "$1/body.json" "$WEBHOOK_SECRET" >"$1/signature" <<'PY'
import hashlib, hmac, json, sys
payload = {"ref": "refs/heads/main", "repository": {"full_name": "bench/roomgate"},
           "pusher": {"name": "loadtest"}, "commits": [], "pad": ""}
payload["pad"] = "x" * (1024 - len(json.dumps(payload, separators=(",", ":"))))
body = json.dumps(payload, separators=(",", ":")).encode()
assert len(body) == 1024, len(body)
open(sys.argv[1], "wb").write(body)
print("sha256=" + hmac.new(sys.argv[2].encode(), body, hashlib.sha256).hexdigest(), end="")
PY
}
xlen() { timeout 10 redis-cli -p "$REDIS_PORT" XLEN "$WEBHOOK_STREAM"; }
# redis_stat FIELD: a counter from INFO stats (reads, writes and commands since start).
redis_stat() {
  timeout 10 redis-cli -p "$REDIS_PORT" INFO stats | tr -d '\r' | sed -n "s/^$1://p"
}
webhook_before() {
  if [ "$1" = roomgate ]; then
    XLEN_BEFORE=$(xlen)
    READS_BEFORE=$(redis_stat total_reads_processed)
    CMDS_BEFORE=$(redis_stat total_commands_processed)
  fi
  return 0
}
webhook_after() { # webhook_after LABEL ROUND OUT
  local statuses
  statuses=$(grep '^statuses:' "$3" | sed 's/^statuses: //')
  if [ "$1" = roomgate ]; then
    local grown accepted
    grown=$(( $(xlen) - XLEN_BEFORE ))
    accepted=$(sed -n 's/.*202=\([0-9]*\).*/\1/p' <<<"$statuses")
    note "webhook round $2 roomgate: stream grew by $grown entries; wrk saw $statuses (entries - 202s = $((grown - accepted)): requests in flight when wrk stopped, at most -c$CONNECTIONS)"
    local reads cmds
    reads=$(( $(redis_stat total_reads_processed) - READS_BEFORE ))
    cmds=$(( $(redis_stat total_commands_processed) - CMDS_BEFORE ))
    note "webhook round $2 redis-server: $cmds commands in $reads reads ($(awk -v c="$cmds" -v r="$reads" 'BEGIN { printf "%.1f", (r > 0 ? c / r : 0) }') per read)"
    timeout 30 redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
  else
    note "webhook round $2 $1: wrk saw $statuses"
  fi
}

# fleet scenarios: the webhook POSTs rotating over 12 queues, on a Redis topology started
# here (no persistence): one primary or a 3-primary cluster, each with or without one
# replica per primary and durability.replicas to match. Redis CPU is not in the table
# (a cluster is several processes); the stream growth is checked against the 202s.
FLEET_QUEUES=12
scenario_webhook_single() { fleet_scenario single 0; }
scenario_webhook_single_durable() { fleet_scenario single 1; }
scenario_webhook_cluster() { fleet_scenario cluster 0; }
scenario_webhook_cluster_durable() { fleet_scenario cluster 1; }
fleet_scenario() { # fleet_scenario single|cluster REPLICAS
  SC_CONFIG="$HERE/webhook-fleet.yaml"
  SC_HOST=hooks.bench.localhost
  SC_PATH=/webhooks/q0
  SC_HEADERS=()
  SC_SETUP=setup_fleet
  SC_LUA="$HERE/webhook.lua"
  SC_EXPECT_A=202
  SC_BEFORE_RUN=fleet_before
  SC_AFTER_RUN=fleet_after
  FLEET_TOPOLOGY=$1
  FLEET_REPLICAS=$2
}
setup_fleet() { # setup_fleet DIR: start the topology; sets SC_REDIS and FLEET_PORTS
  webhook_body "$1"
  local sig primaries=1 i port
  sig=$(cat "$1/signature")
  [ "$FLEET_TOPOLOGY" = cluster ] && primaries=3
  if [ "$FLEET_TOPOLOGY" = cluster ]; then
    read -r -a FLEET_PORTS <<<"$(cluster_ports $((primaries * (1 + FLEET_REPLICAS))))"
  else
    read -r -a FLEET_PORTS <<<"$(free_ports $((primaries * (1 + FLEET_REPLICAS))))"
  fi
  for i in "${!FLEET_PORTS[@]}"; do
    port=${FLEET_PORTS[$i]}
    mkdir -p "$1/redis-$port"
    local args=(--port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$1/redis-$port"
      --logfile "$1/redis-$port/redis.log" --daemonize no)
    if [ "$FLEET_TOPOLOGY" = cluster ]; then
      args+=(--cluster-enabled yes --cluster-config-file nodes.conf)
    elif [ "$i" -gt 0 ]; then
      args+=(--replicaof 127.0.0.1 "${FLEET_PORTS[0]}")
    fi
    redis-server "${args[@]}" >/dev/null 2>&1 &
    PIDS+=("$!")
    wait_port "$port" || die "redis-server did not start on $port"
  done
  local durability="durability: {replicas: $FLEET_REPLICAS, timeout: 500ms}"
  if [ "$FLEET_TOPOLOGY" = cluster ]; then
    local nodes=() seeds=()
    for port in "${FLEET_PORTS[@]}"; do nodes+=("127.0.0.1:$port"); done
    timeout 60 redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$FLEET_REPLICAS" \
      --cluster-yes >"$1/cluster-create.log" 2>&1 || die "cluster create: $(cat "$1/cluster-create.log")"
    for port in "${FLEET_PORTS[@]}"; do
      for _ in $(seq 200); do
        redis-cli -p "$port" CLUSTER INFO | grep -q '^cluster_state:ok' && break
        sleep 0.05
      done
      seeds+=("\"redis://127.0.0.1:$port\"")
    done
    SC_REDIS="{cluster: {nodes: [$(IFS=,; echo "${seeds[*]}")]}, $durability}"
  else
    SC_REDIS="{url: {value: \"redis://127.0.0.1:${FLEET_PORTS[0]}/\"}, $durability}"
  fi
  if [ "$FLEET_REPLICAS" -gt 0 ]; then
    for port in "${FLEET_PORTS[@]}"; do
      for _ in $(seq 200); do
        redis-cli -p "$port" INFO replication | tr -d '\r' \
          | grep -qE '^(connected_slaves:[1-9]|master_link_status:up)' && break
        sleep 0.05
      done
    done
  fi
  SC_LUA_ARGS=("$1/body.json" "$sig" "$FLEET_QUEUES")
  SC_CURL=(-X POST --data-binary "@$1/body.json" -H "X-Hub-Signature-256: $sig"
    -H "X-GitHub-Event: push" -H "Content-Type: application/json" -H "X-GitHub-Delivery: sanity-$$")
  log "redis $FLEET_TOPOLOGY on ${FLEET_PORTS[*]} (replicas per primary: $FLEET_REPLICAS); body 1024 bytes"
}
cluster_ports() { # cluster_ports N: free ports whose cluster bus port (+10000) is free too
  python3 - "$1" <<'PY'
import random, socket, sys
ports, socks = [], []
while len(ports) < int(sys.argv[1]):
    p = random.randint(20000, 45000)
    try:
        for q in (p, p + 10000):
            s = socket.socket()
            s.bind(("127.0.0.1", q))
            socks.append(s)
        ports.append(p)
    except OSError:
        pass
print(" ".join(map(str, ports)))
PY
}
fleet_entries() { # entries in the fleet queues' streams, summed (through any node)
  local q total=0 n
  for ((q = 0; q < FLEET_QUEUES; q++)); do
    n=$(timeout 10 redis-cli -c -p "${FLEET_PORTS[0]}" XLEN "roomgate:queue:{bench:q$q}")
    total=$((total + ${n:-0}))
  done
  echo "$total"
}
fleet_before() {
  [ "$1" = roomgate ] && FLEET_BEFORE=$(fleet_entries)
  return 0
}
fleet_after() { # fleet_after LABEL ROUND OUT
  local statuses port
  statuses=$(grep '^statuses:' "$3" | sed 's/^statuses: //')
  if [ "$1" = roomgate ]; then
    note "$SC_NAME round $2 roomgate: streams grew by $(( $(fleet_entries) - FLEET_BEFORE )) entries; wrk saw $statuses"
    for port in "${FLEET_PORTS[@]}"; do
      timeout 30 redis-cli -p "$port" FLUSHALL >/dev/null 2>&1 || true
    done
  else
    note "$SC_NAME round $2 $1: wrk saw $statuses"
  fi
}

# iap: roomgate only. The same GET, alternately, on a cookie (IAP) port with the session
# cookie of a real sign-in (static provider: /.roomgate/start -> login form -> handoff POST
# to /.roomgate/callback, driven by curl once before the runs) and on a public port of the
# same roomgate process, same upstream.
scenario_iap() {
  SC_CONFIG="$HERE/iap.yaml"
  SC_HOST=app.bench.localhost
  SC_PATH=/
  SC_HEADERS=()
  SC_B=roomgate
  SC_B_HOST=public.bench.localhost
  SC_B_HEADERS=()
  SC_LABELS=(rg-cookie rg-public)
  SC_AFTER_START=iap_sign_in
  SC_UNAUTHENTICATED_STATUS=302   # curl's "Accept: */*" GET without the cookie: sign-in redirect
}
IAP_EMAIL=loadtest@bench.test
IAP_PASSWORD=bench-only-password   # iap.yaml holds its argon2id hash
iap_sign_in() { # iap_sign_in ROOMGATE_PORT: sets SC_HEADERS to the session cookie
  local port=$1 dir="$WORK/$SC_NAME/signin"
  mkdir -p "$dir"
  local ct=(--connect-to "::127.0.0.1:$port" -sS -m 10 -c "$dir/jar" -b "$dir/jar")
  local app="http://app.bench.localhost:$port" auth="http://auth.bench.localhost:$port"
  local loc flow code cookie
  loc=$(curl "${ct[@]}" -o /dev/null -w '%{redirect_url}' -H 'Accept: text/html' "$app/")
  [[ "$loc" == "$auth/.roomgate/start?"* ]] || die "iap: no redirect to the sign-in host ($loc)"
  curl "${ct[@]}" -o "$dir/form.html" -H 'Accept: text/html' "$loc"
  flow=$(sed -n 's/.*name="flow" value="\([^"]*\)".*/\1/p' "$dir/form.html")
  [ -n "$flow" ] || die "iap: no sign-in form: $(head -c 300 "$dir/form.html")"
  curl "${ct[@]}" -o "$dir/handoff.html" -H "Origin: $auth" --data-urlencode "flow=$flow" \
    --data-urlencode "email=$IAP_EMAIL" --data-urlencode "password=$IAP_PASSWORD" "$auth/.roomgate/login"
  code=$(sed -n 's/.*name="code" value="\([^"]*\)".*/\1/p' "$dir/handoff.html")
  [ -n "$code" ] || die "iap: login failed: $(head -c 300 "$dir/handoff.html")"
  curl "${ct[@]}" -o /dev/null -D "$dir/callback.headers" -H "Origin: $auth" \
    --data-urlencode "code=$code" "$app/.roomgate/callback"
  cookie=$(sed -n 's/^[Ss]et-[Cc]ookie: __meshagent_iap=\([^;]*\).*/\1/p' "$dir/callback.headers" | tr -d '\r')
  [ -n "$cookie" ] || die "iap: no session cookie from the callback: $(cat "$dir/callback.headers")"
  SC_HEADERS=(-H "Cookie: __meshagent_iap=$cookie")
  note "iap: signed in as $IAP_EMAIL through the static provider; session cookie of ${#cookie} characters"
}

# embed: roomgate only. The same GET, alternately, on a port serving embed sessions with an
# access token (a key made by `roomgate keys create`, a session minted with curl through
# the management API before the runs) and on a public port of the same roomgate process.
scenario_embed() {
  SC_CONFIG="$HERE/embed.yaml"
  SC_HOST=app.bench.localhost
  SC_PATH=/
  SC_HEADERS=()
  SC_B=roomgate
  SC_B_HOST=public.bench.localhost
  SC_B_HEADERS=()
  SC_LABELS=(rg-embed rg-public)
  SC_PREPARE=embed_key
  SC_AFTER_START=embed_session
  SC_UNAUTHENTICATED_STATUS=401
}
embed_key() { # embed_key CONFIG: a management key for room bench
  EMBED_KEY=$("$ROOMGATE_BIN" keys create --config "$1" --name bench --room bench 2>/dev/null)
  [[ "$EMBED_KEY" == mk_* ]] || die "embed: keys create failed"
}
embed_session() { # embed_session ROOMGATE_PORT: sets SC_HEADERS to the access token
  local out token
  out=$(curl -sS -m 10 -H 'Host: app.bench.localhost' -H "Authorization: Bearer $EMBED_KEY" \
    -H 'Content-Type: application/json' \
    -d '{"room":"bench","domain":"app.bench.localhost","user":"loadtest","allowed_origins":["https://host.bench.localhost"],"ttl":"1h"}' \
    "http://127.0.0.1:$1/.roomgate/api/v1/embed/sessions")
  token=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' <<<"$out") \
    || die "embed: mint failed: $out"
  SC_HEADERS=(-H "X-Roomgate-Embed-Token: $token")
  note "embed: session minted through the management API; token of ${#token} characters"
}

# assertion: the embed scenario with identity_assertion on, so every embed request is also
# signed (ES256, X-MESHAGENT-ASSERTION); compare with `embed` for the signature's cost.
scenario_assertion() {
  scenario_embed
  SC_CONFIG="$HERE/assertion.yaml"
  SC_SETUP=assertion_key
  SC_LABELS=(rg-asserted rg-public)
}
assertion_key() { # assertion_key DIR: a P-256 key for identity_assertion
  openssl ecparam -name prime256v1 -genkey -noout -out "$1/assertion-es256.pem" 2>/dev/null \
    || die "assertion: openssl could not make a P-256 key"
}

# ratelimit: roomgate only, with Redis. The same GET, alternately, on a public port with
# roomgate.rate_limit (set high enough never to refuse, so every request is charged with
# one script in Redis) and on an unlimited public port. After each limited run the Redis
# commands per request are noted.
scenario_ratelimit() {
  SC_CONFIG="$HERE/ratelimit.yaml"
  SC_HOST=limited.bench.localhost
  SC_PATH=/
  SC_HEADERS=()
  SC_B=roomgate
  SC_B_HOST=public.bench.localhost
  SC_B_HEADERS=()
  SC_LABELS=(rg-limited rg-public)
  SC_SETUP=setup_redis
  SC_EXTRA_NAME=redis-server
  SC_BEFORE_RUN=ratelimit_before
  SC_AFTER_RUN=ratelimit_after
}
setup_redis() { # setup_redis DIR: a redis-server on a free port (REDIS_PORT, SC_EXTRA_PID)
  read -r REDIS_PORT <<<"$(free_ports 1)"
  mkdir -p "$1/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$1/redis" --logfile "$1/redis/redis.log" --daemonize no >/dev/null 2>&1 &
  SC_EXTRA_PID=$!
  PIDS+=("$SC_EXTRA_PID")
  wait_port "$REDIS_PORT" || die "redis-server did not start"
  log "redis-server on 127.0.0.1:$REDIS_PORT (pid $SC_EXTRA_PID)"
}
# evalsha_calls: EVALSHA commands served since start (one per charged request).
evalsha_calls() {
  timeout 10 redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' \
    | sed -n 's/^cmdstat_evalsha:calls=\([0-9]*\),.*/\1/p' | grep . || echo 0
}
ratelimit_before() {
  CMDS_BEFORE=$(redis_stat total_commands_processed)
  READS_BEFORE=$(redis_stat total_reads_processed)
  EVALSHA_BEFORE=$(evalsha_calls)
}
ratelimit_after() { # ratelimit_after LABEL ROUND OUT
  local cmds reads evalsha reqs per
  cmds=$(( $(redis_stat total_commands_processed) - CMDS_BEFORE ))
  reads=$(( $(redis_stat total_reads_processed) - READS_BEFORE ))
  evalsha=$(( $(evalsha_calls) - EVALSHA_BEFORE ))
  reqs=$(awk '/requests in/ {print $1}' "$3")
  per() { awk -v c="$1" -v n="$reqs" 'BEGIN { printf "%.2f", (n > 0 ? c / n : 0) }'; }
  note "ratelimit round $2 $1: per request $(per "$evalsha") EVALSHA (the one round trip), $(per "$cmds") Redis commands counting those the script runs, $(per "$reads") socket reads by redis-server"
}

# idle: memory with IDLE_CONNS idle keep-alive connections (one request each, then held)
# to roomgate, then to nginx (master + worker), alternating for ROUNDS rounds.
scenario_idle() {
  SC_CONFIG="$HERE/idle.yaml"
  SC_HOST=public.bench.localhost
  SC_PATH=/
  SC_HEADERS=()
  SC_NGINX_MODE=idle
  SC_KIND=idle
}
idle_round() { # idle_round LABEL ROUND PORT PID...
  local label=$1 round=$2 port=$3 out="$WORK/idle-$1-$2.txt"
  shift 3
  local before with after ready alive secs t
  before=$(rss_kb "$@")
  timeout $((IDLE_HOLD + 120)) python3 "$HERE/idle_client.py" "$port" "$IDLE_CONNS" "$SC_HOST" "$IDLE_HOLD" \
    ${IDLE_SILENT:+silent} >"$out" 2>&1 &
  local cpid=$!
  for _ in $(seq 1200); do grep -q '^ready' "$out" && break; kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
  grep -q '^ready' "$out" || die "idle client failed against $label: $(tail -5 "$out")"
  sleep 1
  with=$(rss_kb "$@")
  wait "$cpid" || die "idle client failed against $label: $(tail -5 "$out")"
  sleep 2
  after=$(rss_kb "$@")
  read -r _ ready secs <<<"$(grep '^ready' "$out")"
  alive=$(awk '/^alive/ {print $2}' "$out")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$round" "$before" "$with" "$after" "$alive" "$secs" >>"$IDLE"
  log "    $label round $round: RSS $before KiB before, $with KiB with $ready connections ($alive still open after ${IDLE_HOLD}s; opened in ${secs}s), $after KiB after closing"
}

# --- driver --------------------------------------------------------------------------------
run_scenario() {
  SC_NAME=$1
  SC_PREPARE="" SC_SETUP="" SC_AFTER_START="" SC_BEFORE_RUN="" SC_AFTER_RUN=""
  SC_UNAUTHENTICATED_STATUS="" SC_SCHEME=http SC_TOOL=wrk SC_LUA="" SC_NGINX_MODE=plain
  SC_EXPECT_A=200 SC_EXTRA_PID="" SC_EXTRA_NAME="" SC_B=nginx SC_B_HOST="" SC_KIND=load
  SC_CURL_HTTP2=""
  SC_HEADERS=() SC_B_HEADERS=() SC_LUA_ARGS=() SC_CURL=() SC_LABELS=(roomgate nginx) SC_A_CMD=""
  if ! declare -F "scenario_$SC_NAME" >/dev/null; then
    die "unknown scenario $SC_NAME (known: $(declare -F | awk '/scenario_/ {sub(/scenario_/, "", $3); printf "%s ", $3}'))"
  fi
  local rc=0
  "scenario_$SC_NAME" || rc=$?
  [ "$rc" = 2 ] && return 0
  [ "$rc" = 0 ] || die "scenario $SC_NAME failed to set up"

  local load_before
  load_before=$(cut -d" " -f1-3 /proc/loadavg)
  log "scenario $SC_NAME (load average $load_before)"
  local ports rg_port ng_port
  ports=$(free_ports 2)
  read -r rg_port ng_port <<<"$ports"

  local dir="$WORK/$SC_NAME"
  mkdir -p "$dir/nginx/tmp"
  [ -n "$SC_SETUP" ] && "$SC_SETUP" "$dir"
  sed -e "s/@LISTEN@/$rg_port/g" -e "s/@UPSTREAM_PORT@/$UPSTREAM_PORT/g" -e "s|@DIR@|$dir|g" \
    -e "s/@REDIS_PORT@/${REDIS_PORT:-0}/g" -e "s#@REDIS@#${SC_REDIS:-}#g" "$SC_CONFIG" >"$dir/roomgate.yaml"
  "$ROOMGATE_BIN" check --config "$dir/roomgate.yaml" >/dev/null || die "roomgate check failed for $SC_NAME"
  [ -n "$SC_PREPARE" ] && "$SC_PREPARE" "$dir/roomgate.yaml"

  if [ "$SC_A_CMD" = floor ]; then
    "${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/hyper_floor" "127.0.0.1:$rg_port" \
      "127.0.0.1:$UPSTREAM_PORT" >"$dir/roomgate.log" 2>&1 &
  else
    ROOMGATE_WORKER_THREADS=1 ROOMGATE_LOG=warn \
      "$ROOMGATE_BIN" serve --config "$dir/roomgate.yaml" >"$dir/roomgate.log" 2>&1 &
  fi
  local rg_pid=$!
  PIDS+=("$rg_pid")
  wait_port "$rg_port" || die "roomgate did not start: $(cat "$dir/roomgate.log")"
  local ng_pid="" b_port=$rg_port b_pids=("$rg_pid") b_host=$SC_HOST
  if [ "$SC_B" = nginx ]; then
    nginx_proxy_conf "$dir/nginx" "$ng_port" "$SC_NGINX_MODE" >"$dir/nginx/nginx.conf"
    start_nginx "$SC_NAME/nginx" "$dir/nginx/nginx.conf"
    ng_pid=$NGINX_PID
    wait_port "$ng_port" || die "nginx did not start: $(cat "$dir/nginx/error.log")"
    b_port=$ng_port
    read -r -a b_pids <<<"$(nginx_pids "$ng_pid")"
    SC_B_HEADERS=("${SC_HEADERS[@]}")
  else
    b_host=$SC_B_HOST
  fi
  [ -n "$SC_AFTER_START" ] && "$SC_AFTER_START" "$rg_port"
  [ "$SC_B" = nginx ] && SC_B_HEADERS=("${SC_HEADERS[@]}")
  [ "$SC_SCHEME" = https ] && tls_versions "$rg_port" "$ng_port"

  # Sanity: both answer with the scenario's headers (200 "ok" from the upstream, or the
  # scenario's status from roomgate itself).
  local a_label=${SC_LABELS[0]} b_label=${SC_LABELS[1]}
  local i name port body want curl_h host
  for name in "$a_label" "$b_label"; do
    if [ "$name" = "$a_label" ]; then port=$rg_port host=$SC_HOST want=$SC_EXPECT_A curl_h=("${SC_HEADERS[@]}")
    else port=$b_port host=$b_host want=200 curl_h=("${SC_B_HEADERS[@]}"); fi
    body=$(curl -sS -m 5 -o - -w ' %{http_code}' -H "Host: $host" "${SC_CURL[@]}" "${curl_h[@]}" \
      "$SC_SCHEME://127.0.0.1:$port$SC_PATH") || die "$name unreachable"
    if [ "$want" = 200 ]; then
      [ "$body" = "ok 200" ] || die "$name answered '$body' instead of 'ok 200' in $SC_NAME"
    else
      [ "${body##* }" = "$want" ] || die "$name answered '$body' instead of $want in $SC_NAME"
    fi
  done
  if [ -n "$SC_UNAUTHENTICATED_STATUS" ]; then
    body=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Host: $SC_HOST" "$SC_SCHEME://127.0.0.1:$rg_port$SC_PATH")
    [ "$body" = "$SC_UNAUTHENTICATED_STATUS" ] \
      || die "roomgate answered $body without credentials in $SC_NAME (expected $SC_UNAUTHENTICATED_STATUS)"
  fi

  local r
  if [ "$SC_KIND" = idle ]; then
    for ((r = 1; r <= ROUNDS; r++)); do
      idle_round "$a_label" "$r" "$rg_port" "$rg_pid"
      idle_round "$b_label" "$r" "$b_port" "${b_pids[@]}"
    done
  else
    # Warm-up (not recorded): fills both keepalive pools and the caches.
    drive "$rg_port" "$SC_HOST" "$WARMUP" "$dir/warmup-a.txt" "warmup-a" "${SC_HEADERS[@]}" || true
    drive "$b_port" "$b_host" "$WARMUP" "$dir/warmup-b.txt" "warmup-b" "${SC_B_HEADERS[@]}" || true
    [ -n "$SC_EXTRA_PID" ] && [ "$SC_NAME" = webhook ] && timeout 30 redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null

    for ((r = 1; r <= ROUNDS; r++)); do
      bench "$a_label" "$r" "$rg_port" "$SC_HOST" SC_HEADERS "$rg_pid"
      # shellcheck disable=SC2046
      bench "$b_label" "$r" "$b_port" "$b_host" SC_B_HEADERS $([ "$SC_B" = nginx ] && nginx_pids "$ng_pid" || echo "$rg_pid")
    done

    [ -n "${PROFILE_DIR:-}" ] && profile_roomgate "$rg_port" "$rg_pid"
    if [ "${SYSCALLS:-0}" = 1 ]; then
      count_syscalls "$a_label" "$rg_port" "$SC_HOST" SC_HEADERS "$rg_pid"
      # shellcheck disable=SC2046
      count_syscalls "$b_label" "$b_port" "$b_host" SC_B_HEADERS $([ "$SC_B" = nginx ] && nginx_pids "$ng_pid" || echo "$rg_pid")
    fi
  fi

  note "$SC_NAME: load average $load_before -> $(cut -d" " -f1-3 /proc/loadavg)"
  kill "$rg_pid" $ng_pid $SC_EXTRA_PID 2>/dev/null || true
  wait "$rg_pid" 2>/dev/null || true
  [ -n "$ng_pid" ] && { wait "$ng_pid" 2>/dev/null || true; }
  [ -n "$SC_EXTRA_PID" ] && { wait "$SC_EXTRA_PID" 2>/dev/null || true; }
  return 0
}

report() {
  echo
  echo "1 worker each; wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (h2: h2load -t$THREADS -c$CONNECTIONS -m$H2_STREAMS -D ${DURATION%s}); $ROUNDS rounds, alternating"
  echo "load average before/after: $LOAD_BEFORE / $(cut -d" " -f1-3 /proc/loadavg)"
  echo "$(nproc) cores, $(uname -r), $("$NGINX" -v 2>&1 | sed 's/.*version: //'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), $(h2load --version 2>/dev/null | head -1 || true), $("$ROOMGATE_BIN" --version)"
  if [ -s "$RESULTS" ]; then
    echo
    printf '| %-9s | %-9s | %5s | %9s | %10s | %8s | %8s | %7s | %10s | %8s | %8s | %-7s |\n' \
      scenario target round requests "req/s" "p50 ms" "p99 ms" "CPU ms" "CPU us/req" "user us" "sys us" "non-2xx"
    printf '|%s|\n' "-----------|-----------|-------|-----------|------------|----------|----------|---------|------------|----------|----------|---------"
    while IFS=$'\t' read -r s p r n rps p50 p99 cpu us uu su err; do
      printf '| %-9s | %-9s | %5s | %9s | %10s | %8s | %8s | %7s | %10s | %8s | %8s | %-7s |\n' \
        "$s" "$p" "$r" "$n" "$rps" "$p50" "$p99" "$cpu" "$us" "$uu" "$su" "$err"
    done <"$RESULTS"
    echo
    echo "Means over the rounds; ratio = A / B (A = roomgate, or rg-cookie/rg-embed/rg-asserted/rg-limited;"
    echo "B = nginx, or rg-public in iap, embed, assertion and ratelimit). Throughput: higher is better for A; CPU per"
    echo "request: at most 1.00 is the target (iap and embed: at most 1.15; ratelimit: p99 grows by"
    echo "at most one Redis round trip)."
    echo
    awk -F'\t' '
      { k = $1 SUBSEP $2; n[k]++; rps[k] += $5; us[k] += $9; uu[k] += $10; su[k] += $11
        p50[k] += $6; p99[k] += $7
        if (!($1 in seen)) { seen[$1] = 1; order[++ns] = $1; la[$1] = $2 }
        else if ($2 != la[$1] && !($1 in lb)) lb[$1] = $2 }
      END {
        printf "| %-9s | %-21s | %8s | %8s | %5s | %17s | %17s | %9s | %13s | %13s |\n", "scenario", "A / B", "A r/s", "B r/s", "ratio", "A us/req (u+s)", "B us/req (u+s)", "CPU ratio", "p50 A/B ms", "p99 A/B ms"
        printf "|-----------|-----------------------|----------|----------|-------|-------------------|-------------------|-----------|---------------|---------------|\n"
        for (i = 1; i <= ns; i++) {
          s = order[i]; a = s SUBSEP la[s]; b = s SUBSEP lb[s]
          if (!n[a] || !n[b]) continue
          ra = rps[a] / n[a]; rb = rps[b] / n[b]; ua = us[a] / n[a]; ub = us[b] / n[b]
          printf "| %-9s | %-21s | %8.0f | %8.0f | %5.2f | %5.1f (%4.1f+%4.1f) | %5.1f (%4.1f+%4.1f) | %9.2f | %6.2f/%-6.2f | %6.2f/%-6.2f |\n", s, la[s] " / " lb[s], ra, rb, ra / rb, ua, uu[a] / n[a], su[a] / n[a], ub, uu[b] / n[b], su[b] / n[b], ua / ub, p50[a] / n[a], p50[b] / n[b], p99[a] / n[a], p99[b] / n[b]
        }
      }' "$RESULTS"
  fi
  if [ -s "$EXTRA" ]; then
    echo
    echo "Helper processes (not part of the proxy's CPU above), per request of the run:"
    echo
    echo "| scenario | process | round | requests | CPU ms | CPU us/req |"
    echo "|----------|---------|-------|----------|--------|------------|"
    while IFS=$'\t' read -r s p r n cpu us; do echo "| $s | $p | $r | $n | $cpu | $us |"; done <"$EXTRA"
  fi
  if [ -s "$IDLE" ]; then
    echo
    if [ -n "${IDLE_SILENT:-}" ]; then
      echo "idle: $IDLE_CONNS silent connections (nothing sent), held ${IDLE_HOLD}s (VmRSS; nginx = master + worker)"
    else
      echo "idle: $IDLE_CONNS keep-alive connections, one GET each, then held ${IDLE_HOLD}s (VmRSS; nginx = master + worker)"
    fi
    echo
    echo "| target | round | RSS before KiB | RSS with conns KiB | per conn KiB | RSS after close KiB | still open | open time s |"
    echo "|--------|-------|----------------|--------------------|--------------|---------------------|------------|-------------|"
    while IFS=$'\t' read -r p r b w a alive secs; do
      printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$p" "$r" "$b" "$w" \
        "$(awk -v b="$b" -v w="$w" -v n="$IDLE_CONNS" 'BEGIN { printf "%.2f", (w - b) / n }')" "$a" "$alive" "$secs"
    done <"$IDLE"
  fi
  if [ -s "$NOTES" ]; then
    echo
    sed 's/^/- /' "$NOTES"
  fi
  if [ ${#UNAVAILABLE[@]} -gt 0 ]; then
    echo
    for u in "${UNAVAILABLE[@]}"; do echo "not available: $u"; done
  fi
}

LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
read -r UPSTREAM_PORT <<<"$(free_ports 1)"
start_upstream
log "upstream nginx on 127.0.0.1:$UPSTREAM_PORT"
for s in "${SCENARIOS[@]}"; do
  run_scenario "$s"
done
report
