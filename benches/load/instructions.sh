#!/usr/bin/env bash
# Instructions per request under callgrind: a repeatable companion to run.sh's CPU times.
#
#   bash benches/load/instructions.sh [public|webhook|tls|handshake|floor]...     # default: public webhook
#
# CPU time on a shared 2-core machine moves by ±10% from run to run; valgrind's
# instruction count for the same binary and load does not (about ±2%, from how requests
# batch per wake-up). It counts user space only (the proxy's code, libc, the vDSO), never
# the kernel, and it is not time: use it to see what a change to the request path saves.
#
#   public   GETs through a public port, h2load --h1 -c16: roomgate, then nginx as the
#            same reverse proxy (run.sh's configuration), each in front of one nginx
#            upstream answering `200 ok`.
#   webhook  GitHub-signed 1 KiB POSTs (webhook.lua) to a queue endpoint, into a
#            redis-server started here: roomgate only.
#   tls      the `public` load over HTTPS keep-alive (h2load --h1 -c16, TLS 1.3): the
#            handshakes are the same in both runs, so the difference is per request.
#   handshake  HTTPS GETs with `Connection: close` (wrk -c16): a new TCP connection and a
#            TLS 1.3 handshake per request, ECDSA P-256 certificate made here with openssl;
#            roomgate, then nginx, each with the same certificate and upstream. wrk resumes
#            with the last connection's ticket, so all but 16 handshakes are resumptions
#            (PSK with a fresh X25519 exchange, no signature), on both proxies.
#   floor    the `public` load through examples/hyper_floor.rs: hyper's server and client
#            connections with nothing of roomgate's between them, the least a proxy built
#            on hyper costs per request.
#
# Each target runs twice, with a short and a long load; the difference of the two totals
# over the difference of the request counts is the cost per request, free of start-up and
# shutdown. Under valgrind the CPU reports no SHA extensions, so HMAC-SHA256 runs sha2's
# portable code: the webhook figure overstates what signing costs on real hardware.
#
# Knobs: ROOMGATE_BIN (skip the build), N1/N2 (public: requests per run, 2000/12000),
# D1/D2 (webhook and handshake: seconds per run, 3/12), KEEP (a directory: the callgrind outputs are
# copied there, for callgrind_annotate).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
N1=${N1:-2000}
N2=${N2:-12000}
D1=${D1:-3}
D2=${D2:-12}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(public webhook)

# shellcheck source=common.sh
source "$HERE/common.sh"

[ -x /usr/sbin/nginx ] && PATH="$PATH:/usr/sbin"
need_pkg valgrind valgrind
need_pkg nginx nginx-light
need_pkg h2load nghttp2-client
need_pkg wrk wrk
need_pkg redis-server redis-server
need_pkg openssl openssl

if [ -z "${ROOMGATE_BIN:-}" ]; then
  log "cargo build --release --bin roomgate"
  (cd "$ROOT" && timeout 1800 cargo build --release --locked --bin roomgate >&2)
  ROOMGATE_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/roomgate"
fi

WORK=$(mktemp -d /tmp/roomgate-instr.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$WORK"/*.cg "$KEEP"/ 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT


# total_ir OUT: the instruction total of a callgrind output file.
total_ir() { awk '/^(summary|totals):/ {print $2; exit}' "$1"; }

read -r UPSTREAM_PORT PROXY_PORT REDIS_PORT <<<"$(free_ports 3)"
mkdir -p "$WORK/upstream/tmp"
cat >"$WORK/upstream/nginx.conf" <<EOF
worker_processes 1; daemon off; pid $WORK/upstream/nginx.pid; error_log $WORK/upstream/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $WORK/upstream/tmp; keepalive_requests 1000000;
  server { listen 127.0.0.1:$UPSTREAM_PORT; location / { default_type text/plain; return 200 "ok"; } } }
EOF
nginx -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf" -e "$WORK/upstream/error.log" &
PIDS+=($!)
wait_port "$UPSTREAM_PORT" 300 || die "upstream did not start"

# measure LABEL STOP_SIGNAL LOAD_FN -- COMMAND...: Ir per request over two loads.
# LOAD_FN SIZE OUT runs one load and prints the number of completed requests.
measure() {
  local label=$1 signal=$2 load=$3
  shift 4
  local size n ir rows=()
  for size in "$SIZE1" "$SIZE2"; do
    valgrind --tool=callgrind --callgrind-out-file="$WORK/$label.$size.cg" "$@" \
      >"$WORK/$label.$size.log" 2>&1 &
    local pid=$!
    wait_port "$PROXY_PORT" 300 || die "$label did not start ($WORK/$label.$size.log)"
    n=$("$load" "$size" "$WORK/$label.$size.load")
    kill "-$signal" "$pid"
    wait "$pid" || true
    ir=$(total_ir "$WORK/$label.$size.cg")
    rows+=("$n $ir")
  done
  read -r n1 ir1 <<<"${rows[0]}"
  read -r n2 ir2 <<<"${rows[1]}"
  [ "$n2" -gt "$n1" ] || die "$label: the long run completed no more requests than the short one"
  printf '%-10s %-9s %9d instructions/request   (%s requests: %s, %s requests: %s)\n' \
    "$SCENARIO" "$label" $(((ir2 - ir1) / (n2 - n1))) "$n1" "$ir1" "$n2" "$ir2"
}

h2load_run() { # h2load_run REQUESTS OUT
  h2load --h1 -n "$1" -c 16 -H ":authority: $HOST" "$SCHEME://127.0.0.1:$PROXY_PORT/" >"$2" 2>&1
  local ok
  ok=$(awk '/^status codes:/ {print $3}' "$2")
  [ "$ok" = "$1" ] || die "expected $1 2xx, got: $(grep '^status codes' "$2")"
  echo "$1"
}

wrk_webhook() { # wrk_webhook SECONDS OUT
  wrk -t1 -c16 -d"$1s" -H "Host: $HOST" -s "$HERE/webhook.lua" \
    "http://127.0.0.1:$PROXY_PORT/webhooks/github" -- "run$1" "$WORK/body.json" "$SIG" >"$2" 2>&1
  grep -q "other=0" "$2" || die "non-202 answers: $(grep statuses "$2")"
  awk '/requests in/ {print $1}' "$2"
}

wrk_handshake() { # wrk_handshake SECONDS OUT
  wrk -t1 -c16 -d"$1s" -H "Host: $HOST" -H "Connection: close" \
    "https://127.0.0.1:$PROXY_PORT/" >"$2" 2>&1
  ! grep -q "Non-2xx" "$2" || die "non-2xx answers: $(grep Non-2xx "$2")"
  awk '/requests in/ {print $1}' "$2"
}

# nginx_proxy WORKDIR [TLS_DIRECTIVES]: nginx as the same reverse proxy as roomgate
# (run.sh's configuration), master process off so callgrind follows the one worker.
nginx_proxy() {
  mkdir -p "$1/tmp"
  cat >"$1/nginx.conf" <<EOF
master_process off; daemon off; pid $1/nginx.pid; error_log $1/error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $1/tmp; proxy_temp_path $1/tmp;
  keepalive_requests 10000;
  upstream shared_upstream { server 127.0.0.1:$UPSTREAM_PORT; keepalive 128; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$PROXY_PORT${2:+ ssl}; ${2:-}
    location / { proxy_pass http://shared_upstream; proxy_http_version 1.1;
      proxy_set_header Connection ""; proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme; proxy_set_header X-Forwarded-Host \$host; } } }
EOF
  measure nginx QUIT "$LOAD" -- nginx -p "$1" -c "$1/nginx.conf" -e "$1/error.log"
}

for SCENARIO in "${SCENARIOS[@]}"; do
  SCHEME=http
  case $SCENARIO in
    public)
      HOST=public.bench.localhost SIZE1=$N1 SIZE2=$N2
      sed -e "s/@LISTEN@/$PROXY_PORT/" -e "s/@UPSTREAM_PORT@/$UPSTREAM_PORT/g" \
        "$HERE/public.yaml" >"$WORK/public.yaml"
      ROOMGATE_WORKER_THREADS=1 ROOMGATE_LOG=warn measure roomgate INT h2load_run -- \
        "$ROOMGATE_BIN" serve --config "$WORK/public.yaml"
      LOAD=h2load_run
      nginx_proxy "$WORK/proxy"
      ;;
    webhook)
      HOST=hooks.bench.localhost SIZE1=$D1 SIZE2=$D2
      cp "$HERE/webhook-secrets.yaml" "$WORK/"
      SIG=$(python3 - "$WORK/body.json" bench-only-github-webhook-secret <<'PY'
import hashlib, hmac, json, sys
payload = {"ref": "refs/heads/main", "repository": {"full_name": "bench/roomgate"},
           "pusher": {"name": "loadtest"}, "commits": [], "pad": ""}
payload["pad"] = "x" * (1024 - len(json.dumps(payload, separators=(",", ":"))))
body = json.dumps(payload, separators=(",", ":")).encode()
open(sys.argv[1], "wb").write(body)
print("sha256=" + hmac.new(sys.argv[2].encode(), body, hashlib.sha256).hexdigest(), end="")
PY
)
      mkdir -p "$WORK/redis"
      redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --dir "$WORK/redis" --logfile "$WORK/redis/log" --daemonize no >/dev/null 2>&1 &
      PIDS+=($!)
      wait_port "$REDIS_PORT" 300 || die "redis-server did not start"
      sed -e "s/@LISTEN@/$PROXY_PORT/" -e "s/@UPSTREAM_PORT@/$UPSTREAM_PORT/g" \
        -e "s/@REDIS_PORT@/$REDIS_PORT/g" "$HERE/webhook.yaml" >"$WORK/webhook.yaml"
      ROOMGATE_WORKER_THREADS=1 ROOMGATE_LOG=warn measure roomgate INT wrk_webhook -- \
        "$ROOMGATE_BIN" serve --config "$WORK/webhook.yaml"
      ;;
    tls | handshake)
      HOST=tls.bench.localhost
      timeout 30 openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj "/CN=$HOST" \
        -addext "subjectAltName=DNS:$HOST" 2>"$WORK/openssl.log" \
        || die "openssl req failed: $(cat "$WORK/openssl.log")"
      sed -e "s/@LISTEN@/$PROXY_PORT/" -e "s/@UPSTREAM_PORT@/$UPSTREAM_PORT/g" \
        -e "s|@DIR@|$WORK|g" "$HERE/tls.yaml" >"$WORK/tls.yaml"
      if [ "$SCENARIO" = tls ]; then
        LOAD=h2load_run SIZE1=$N1 SIZE2=$N2 SCHEME=https
      else
        LOAD=wrk_handshake SIZE1=$D1 SIZE2=$D2
      fi
      ROOMGATE_WORKER_THREADS=1 ROOMGATE_LOG=warn measure roomgate INT "$LOAD" -- \
        "$ROOMGATE_BIN" serve --config "$WORK/tls.yaml"
      nginx_proxy "$WORK/proxy" \
        "ssl_certificate $WORK/cert.pem; ssl_certificate_key $WORK/key.pem; ssl_protocols TLSv1.2 TLSv1.3;"
      ;;
    floor)
      HOST=public.bench.localhost SIZE1=$N1 SIZE2=$N2
      log "cargo build --release --example hyper_floor"
      (cd "$ROOT" && timeout 1800 cargo build --release --locked --example hyper_floor >&2)
      measure floor INT h2load_run -- "${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/hyper_floor" \
        "127.0.0.1:$PROXY_PORT" "127.0.0.1:$UPSTREAM_PORT"
      ;;
    *) die "unknown scenario $SCENARIO (public, webhook, tls, handshake, floor)" ;;
  esac
done
