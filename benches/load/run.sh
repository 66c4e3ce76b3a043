#!/usr/bin/env bash
# Load comparison: roomgate vs nginx, each a reverse proxy with ONE worker in front of the
# same upstream (an nginx answering `200 ok`), driven by wrk on 127.0.0.1 only.
#
#   bash benches/load/run.sh [scenario...]        # default: public private
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
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(public private)

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

log() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# --- prerequisites -------------------------------------------------------------------------
apt_updated=0
need_pkg() { # need_pkg COMMAND PACKAGE...
  command -v "$1" >/dev/null 2>&1 && return 0
  shift
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    timeout 300 apt-get update -qq
    apt_updated=1
  fi
  local p
  for p in "$@"; do
    log "installing $p"
    if DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq "$p" >/dev/null; then
      return 0
    fi
  done
  die "could not install any of: $*"
}
[ -x /usr/sbin/nginx ] && PATH="$PATH:/usr/sbin"
need_pkg nginx nginx-light nginx
need_pkg wrk wrk
need_pkg curl curl
need_pkg python3 python3
NGINX=$(command -v nginx)
CLK_TCK=$(getconf CLK_TCK)

if [ -z "${ROOMGATE_BIN:-}" ]; then
  log "cargo build --release --bin roomgate"
  (cd "$ROOT" && timeout 1800 cargo build --release --locked --bin roomgate >&2)
  ROOMGATE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/roomgate"
fi
[ -x "$ROOMGATE_BIN" ] || die "no roomgate binary at $ROOMGATE_BIN"

# --- helpers -------------------------------------------------------------------------------
# free_ports N: N distinct free loopback TCP ports (held open together while chosen).
free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# wait_port PORT: until something accepts on 127.0.0.1:PORT (10 s at most).
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

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
nginx_proxy_conf() { # nginx_proxy_conf DIR PORT
  cat <<EOF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/tmp;
  proxy_temp_path $1/tmp;
  keepalive_requests 10000;
  keepalive_timeout 60s;
  upstream shared_upstream {
    server 127.0.0.1:$UPSTREAM_PORT;
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$2;
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
EOF
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

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
UNAVAILABLE=()

# bench SCENARIO PROXY ROUND PORT PID...: one wrk run; appends a row to $RESULTS.
bench() {
  local scenario=$1 proxy=$2 round=$3 port=$4
  shift 4
  local out="$WORK/wrk-$scenario-$proxy-$round.txt"
  local before after u0 s0 u1 s1
  before=$(cpu_ticks "$@")
  timeout 120 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
    -H "Host: $SC_HOST" "${SC_HEADERS[@]}" "http://127.0.0.1:$port$SC_PATH" >"$out" 2>&1 \
    || die "wrk failed against $proxy: $(cat "$out")"
  after=$(cpu_ticks "$@")
  local reqs rps p50 p99 errors sockerr
  reqs=$(awk '/requests in/ {print $1}' "$out")
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
  errors=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  sockerr=$(awk '/Socket errors:/ {sub(/.*Socket errors: /, ""); gsub(/ /, ""); print}' "$out")
  [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || die "wrk completed no request against $proxy: $(cat "$out")"
  read -r u0 s0 <<<"$before"
  read -r u1 s1 <<<"$after"
  local cpu_ms us_per_req user_us sys_us
  cpu_ms=$(( (u1 - u0 + s1 - s0) * 1000 / CLK_TCK ))
  per_req() { awk -v t="$1" -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }'; }
  us_per_req=$(per_req $((u1 - u0 + s1 - s0)))
  user_us=$(per_req $((u1 - u0)))
  sys_us=$(per_req $((s1 - s0)))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scenario" "$proxy" "$round" "$reqs" \
    "$rps" "$p50" "$p99" "$cpu_ms" "$us_per_req" "$user_us" "$sys_us" "${errors:-0}${sockerr:+ sock:$sockerr}" >>"$RESULTS"
  printf '    %-8s round %s: %10s req/s  p50 %8s ms  p99 %8s ms  %7s us CPU/req (user %s, sys %s)  non-2xx %s\n' \
    "$proxy" "$round" "$rps" "$p50" "$p99" "$us_per_req" "$user_us" "$sys_us" "${errors:-0}${sockerr:+ sock:$sockerr}" >&2
}

# profile_roomgate PORT PID: sample roomgate under the same wrk load (bounded: 8 s).
profile_roomgate() {
  need_pkg perf linux-perf
  mkdir -p "$PROFILE_DIR"
  local data="$PROFILE_DIR/$SC_NAME.perf.data"
  log "profiling roomgate in $SC_NAME -> $data"
  timeout 60 perf record -q -e cpu-clock -F 499 --call-graph dwarf,8192 -p "$2" -o "$data" \
    -- sleep 8 2>"$PROFILE_DIR/$SC_NAME.perf.log" &
  local perf_pid=$!
  timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d8s -H "Host: $SC_HOST" "${SC_HEADERS[@]}" \
    "http://127.0.0.1:$1$SC_PATH" >"$PROFILE_DIR/$SC_NAME.wrk.txt" 2>&1 || true
  wait "$perf_pid" || true
  perf report -i "$data" --no-children --sort symbol --stdio -g none --percent-limit 0.5 \
    >"$PROFILE_DIR/$SC_NAME.flat.txt" 2>/dev/null || true
  timeout 120 perf script -i "$data" -F comm,tid,ip,sym 2>/dev/null \
    | python3 "$HERE/profile-summary.py" >"$PROFILE_DIR/$SC_NAME.summary.txt" || true
  log "profile: $PROFILE_DIR/$SC_NAME.summary.txt (buckets), $SC_NAME.flat.txt (self time)"
}

# count_syscalls PROXY PORT PID...: system calls per completed request under wrk (4 s).
count_syscalls() {
  need_pkg strace strace
  local proxy=$1 port=$2 out="$WORK/strace-$SC_NAME-$1" args=() pid
  shift 2
  for pid in "$@"; do args+=(-p "$pid"); done
  timeout 30 strace -c -f -o "$out.txt" "${args[@]}" 2>/dev/null &
  local strace_pid=$!
  sleep 0.5
  timeout 30 wrk -t"$THREADS" -c"$CONNECTIONS" -d4s -H "Host: $SC_HOST" "${SC_HEADERS[@]}" \
    "http://127.0.0.1:$port$SC_PATH" >"$out.wrk" 2>&1 || true
  sleep 0.3
  kill -INT "$strace_pid" 2>/dev/null || true
  wait "$strace_pid" 2>/dev/null || true
  local n
  n=$(awk '/requests in/ {print $1}' "$out.wrk")
  echo "syscalls per request, $SC_NAME, $proxy ($n requests under strace):" >&2
  awk -v n="$n" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $4 + 0 > 0 {
      printf "    %-14s %6.2f\n", $NF, $4 / n }' "$out.txt" | sort -k2 -nr | head -8 >&2
}

not_available() {
  log "scenario $SC_NAME: not yet available ($1)"
  UNAVAILABLE+=("$SC_NAME: $1")
}

# --- scenarios -----------------------------------------------------------------------------
# Each sets SC_CONFIG, SC_HOST, SC_PATH and SC_HEADERS; "$1" is the generated roomgate config.

scenario_public() {
  SC_CONFIG="$HERE/public.yaml"
  SC_HOST=public.bench.localhost
  SC_PATH=/
  SC_HEADERS=()
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

# Scenarios that other issues will add. They are reported, never faked.
scenario_tls() { not_available "HTTPS listener scenario: to be added with the TLS load issue"; return 2; }
scenario_webhook() { not_available "signed webhook -> queue (202) scenario: to be added with the webhook load issue"; return 2; }
scenario_iap() { not_available "cookie IAP session scenario: to be added with the IAP load issue"; return 2; }

# --- driver --------------------------------------------------------------------------------
run_scenario() {
  SC_NAME=$1
  SC_PREPARE=""
  SC_UNAUTHENTICATED_STATUS=""
  SC_HEADERS=()
  if ! declare -F "scenario_$SC_NAME" >/dev/null; then
    die "unknown scenario $SC_NAME (known: $(declare -F | awk '/scenario_/ {sub(/scenario_/, "", $3); printf "%s ", $3}'))"
  fi
  local rc=0
  "scenario_$SC_NAME" || rc=$?
  [ "$rc" = 2 ] && return 0
  [ "$rc" = 0 ] || die "scenario $SC_NAME failed to set up"

  log "scenario $SC_NAME"
  local ports rg_port ng_port
  ports=$(free_ports 2)
  read -r rg_port ng_port <<<"$ports"

  local dir="$WORK/$SC_NAME"
  mkdir -p "$dir/nginx/tmp"
  sed -e "s/@LISTEN@/$rg_port/g" -e "s/@UPSTREAM_PORT@/$UPSTREAM_PORT/g" "$SC_CONFIG" >"$dir/roomgate.yaml"
  "$ROOMGATE_BIN" check --config "$dir/roomgate.yaml" >/dev/null || die "roomgate check failed for $SC_NAME"
  [ -n "$SC_PREPARE" ] && "$SC_PREPARE" "$dir/roomgate.yaml"

  ROOMGATE_WORKER_THREADS=1 ROOMGATE_LOG=warn \
    "$ROOMGATE_BIN" serve --config "$dir/roomgate.yaml" >"$dir/roomgate.log" 2>&1 &
  local rg_pid=$!
  PIDS+=("$rg_pid")
  nginx_proxy_conf "$dir/nginx" "$ng_port" >"$dir/nginx/nginx.conf"
  start_nginx "$SC_NAME/nginx" "$dir/nginx/nginx.conf"
  local ng_pid=$NGINX_PID
  wait_port "$rg_port" || die "roomgate did not start: $(cat "$dir/roomgate.log")"
  wait_port "$ng_port" || die "nginx did not start: $(cat "$dir/nginx/error.log")"

  # Sanity: both answer 200 "ok" from the upstream with the scenario's headers.
  local curl_h=(-H "Host: $SC_HOST") i
  for ((i = 0; i < ${#SC_HEADERS[@]}; i += 2)); do curl_h+=(-H "${SC_HEADERS[i+1]}"); done
  local name port body
  for name in roomgate nginx; do
    port=$rg_port; [ "$name" = nginx ] && port=$ng_port
    body=$(curl -sS -m 5 -o - -w ' %{http_code}' "${curl_h[@]}" "http://127.0.0.1:$port$SC_PATH") \
      || die "$name unreachable"
    [ "$body" = "ok 200" ] || die "$name answered '$body' instead of 'ok 200' in $SC_NAME"
  done
  if [ -n "$SC_UNAUTHENTICATED_STATUS" ]; then
    body=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "Host: $SC_HOST" "http://127.0.0.1:$rg_port$SC_PATH")
    [ "$body" = "$SC_UNAUTHENTICATED_STATUS" ] \
      || die "roomgate answered $body without credentials in $SC_NAME (expected $SC_UNAUTHENTICATED_STATUS)"
  fi

  # Warm-up (not recorded): fills both keepalive pools and the caches.
  timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "Host: $SC_HOST" "${SC_HEADERS[@]}" \
    "http://127.0.0.1:$rg_port$SC_PATH" >/dev/null 2>&1 || true
  timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -H "Host: $SC_HOST" "${SC_HEADERS[@]}" \
    "http://127.0.0.1:$ng_port$SC_PATH" >/dev/null 2>&1 || true

  local r
  for ((r = 1; r <= ROUNDS; r++)); do
    # shellcheck disable=SC2046
    bench "$SC_NAME" roomgate "$r" "$rg_port" "$rg_pid"
    # shellcheck disable=SC2046
    bench "$SC_NAME" nginx "$r" "$ng_port" $(nginx_pids "$ng_pid")
  done

  [ -n "${PROFILE_DIR:-}" ] && profile_roomgate "$rg_port" "$rg_pid"
  if [ "${SYSCALLS:-0}" = 1 ]; then
    count_syscalls roomgate "$rg_port" "$rg_pid"
    # shellcheck disable=SC2046
    count_syscalls nginx "$ng_port" $(nginx_pids "$ng_pid")
  fi

  kill "$rg_pid" "$ng_pid" 2>/dev/null || true
  wait "$rg_pid" 2>/dev/null || true
  wait "$ng_pid" 2>/dev/null || true
}

report() {
  echo
  echo "roomgate vs nginx, 1 worker each; wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency; $ROUNDS rounds, alternating"
  echo "load average before/after: $LOAD_BEFORE / $(cut -d" " -f1-3 /proc/loadavg)"
  echo "$(nproc) cores, $(uname -r), $("$NGINX" -v 2>&1 | sed 's/.*version: //'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), $("$ROOMGATE_BIN" --version)"
  echo
  printf '| %-8s | %-8s | %5s | %9s | %10s | %8s | %8s | %7s | %10s | %8s | %8s | %-7s |\n' \
    scenario proxy round requests "req/s" "p50 ms" "p99 ms" "CPU ms" "CPU us/req" "user us" "sys us" "non-2xx"
  printf '|%s|\n' "----------|----------|-------|-----------|------------|----------|----------|---------|------------|----------|----------|---------"
  while IFS=$'\t' read -r s p r n rps p50 p99 cpu us uu su err; do
    printf '| %-8s | %-8s | %5s | %9s | %10s | %8s | %8s | %7s | %10s | %8s | %8s | %-7s |\n' \
      "$s" "$p" "$r" "$n" "$rps" "$p50" "$p99" "$cpu" "$us" "$uu" "$su" "$err"
  done <"$RESULTS"
  echo
  echo "Means over the rounds; ratio = roomgate / nginx (throughput: higher is better for roomgate;"
  echo "CPU per request: at most 1.00 is the target)."
  echo
  awk -F'\t' '
    { k = $1 SUBSEP $2; n[k]++; rps[k] += $5; us[k] += $9; uu[k] += $10; su[k] += $11
      p50[k] += $6; p99[k] += $7
      if (!($1 in seen)) { seen[$1] = 1; order[++ns] = $1 } }
    END {
      printf "| %-8s | %8s | %8s | %5s | %17s | %17s | %9s | %13s | %13s |\n", "scenario", "rg r/s", "ng r/s", "ratio", "rg us/req (u+s)", "ng us/req (u+s)", "CPU ratio", "p50 rg/ng ms", "p99 rg/ng ms"
      printf "|----------|----------|----------|-------|-------------------|-------------------|-----------|---------------|---------------|\n"
      for (i = 1; i <= ns; i++) {
        s = order[i]; a = s SUBSEP "roomgate"; b = s SUBSEP "nginx"
        if (!n[a] || !n[b]) continue
        ra = rps[a] / n[a]; rb = rps[b] / n[b]; ua = us[a] / n[a]; ub = us[b] / n[b]
        printf "| %-8s | %8.0f | %8.0f | %5.2f | %5.1f (%4.1f+%4.1f) | %5.1f (%4.1f+%4.1f) | %9.2f | %6.2f/%-6.2f | %6.2f/%-6.2f |\n", s, ra, rb, ra / rb, ua, uu[a] / n[a], su[a] / n[a], ub, uu[b] / n[b], su[b] / n[b], ua / ub, p50[a] / n[a], p50[b] / n[b], p99[a] / n[a], p99[b] / n[b]
      }
    }' "$RESULTS"
  if [ ${#UNAVAILABLE[@]} -gt 0 ]; then
    echo
    for u in "${UNAVAILABLE[@]}"; do echo "not yet available: $u"; done
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
