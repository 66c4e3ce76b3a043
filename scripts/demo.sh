#!/usr/bin/env bash
# Quickstart: build roomgate and the echo upstream, start both (embedded mode, no Redis)
# with routes.example.yaml, and print curl commands to try.
#
# Ctrl-C (SIGINT), SIGTERM, an error or the end of either process stops everything this
# script started. It refuses to start when one of its ports is in use, naming it.
#
# Ports (override to run beside something else): DEMO_HTTP_PORT (8080), DEMO_ADMIN_PORT
# (9090), DEMO_WEB_PORT (5002, the public echo), DEMO_API_PORT (5003, the private echo).
# ROOMGATE_BIN and ECHO_BIN name binaries already built; when both are set nothing is
# built.
set -euo pipefail
cd "$(dirname "$0")/.."

HTTP_PORT=${DEMO_HTTP_PORT:-8080}
ADMIN_PORT=${DEMO_ADMIN_PORT:-9090}
WEB_PORT=${DEMO_WEB_PORT:-5002}
API_PORT=${DEMO_API_PORT:-5003}

# Something accepts connections on 127.0.0.1:PORT.
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

busy=()
for port in "$HTTP_PORT" "$ADMIN_PORT" "$WEB_PORT" "$API_PORT"; do
  if in_use "$port"; then busy+=("$port"); fi
done
if [ ${#busy[@]} -gt 0 ]; then
  echo "demo: not starting: port(s) ${busy[*]} on 127.0.0.1 already in use." >&2
  echo "demo: stop what listens there (an earlier demo?) or choose other ports with" >&2
  echo "demo: DEMO_HTTP_PORT, DEMO_ADMIN_PORT, DEMO_WEB_PORT, DEMO_API_PORT." >&2
  exit 1
fi

if [ -z "${ROOMGATE_BIN:-}" ] || [ -z "${ECHO_BIN:-}" ]; then
  cargo build --release --bin roomgate --example echo
fi
ROOMGATE_BIN=${ROOMGATE_BIN:-./target/release/roomgate}
ECHO_BIN=${ECHO_BIN:-./target/release/examples/echo}

# Every process started here, stopped (and waited for) on the way out, however it comes.
started=()
WORK=$(mktemp -d)
stop_all() {
  trap - EXIT INT TERM HUP
  if [ ${#started[@]} -gt 0 ]; then
    kill -TERM "${started[@]}" 2>/dev/null || true
    wait "${started[@]}" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap 'status=$?; stop_all; exit $status' EXIT
trap 'stop_all; echo "demo: stopped" >&2; exit 130' INT
trap 'stop_all; echo "demo: stopped" >&2; exit 143' TERM HUP

# The example config on the chosen ports.
CONFIG="$WORK/routes.yaml"
sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$HTTP_PORT/" \
    -e "s/127\.0\.0\.1:9090/127.0.0.1:$ADMIN_PORT/" \
    -e "s/\b5002\b/$WEB_PORT/g" \
    -e "s/\b5003\b/$API_PORT/g" routes.example.yaml >"$CONFIG"

# Wait until PID accepts connections on PORT; fail if it exits first.
await_port() { # await_port PID PORT WHAT
  for _ in $(seq 1 200); do
    if ! kill -0 "$1" 2>/dev/null; then
      echo "demo: $3 exited before listening on port $2" >&2
      return 1
    fi
    if in_use "$2"; then return 0; fi
    sleep 0.05
  done
  echo "demo: $3 is not listening on port $2 after 10 s" >&2
  return 1
}

"$ECHO_BIN" "127.0.0.1:$WEB_PORT" "127.0.0.1:$API_PORT" &
started+=($!)
await_port "${started[0]}" "$WEB_PORT" "the echo upstream"
await_port "${started[0]}" "$API_PORT" "the echo upstream"

TOKEN=$("$ROOMGATE_BIN" token mint --config "$CONFIG" --room acme --name alice --api '{"queues":{}}' --ttl 1h)

"$ROOMGATE_BIN" serve --config "$CONFIG" &
started+=($!)
await_port "${started[1]}" "$HTTP_PORT" "roomgate"
await_port "${started[1]}" "$ADMIN_PORT" "roomgate"

cat <<MSG

roomgate is up on 127.0.0.1:$HTTP_PORT (admin 127.0.0.1:$ADMIN_PORT), echo upstreams on $WEB_PORT and $API_PORT.

Try, in another terminal:

  # public route: forwarded as is
  curl -s -H 'Host: public.acme.localhost' http://127.0.0.1:$HTTP_PORT/hello

  # private route without a token: 401 missing_auth
  curl -s -H 'Host: private.acme.localhost' http://127.0.0.1:$HTTP_PORT/

  # private route with a participant token: the upstream sees X-MESHAGENT-USER: alice
  # (and not the token: roomgate removes the Authorization it verified)
  curl -s -H 'Host: private.acme.localhost' -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:$HTTP_PORT/

  # spoofing attempts: the header is stripped, the underscore form is refused (400)
  curl -s -H 'Host: public.acme.localhost' -H 'X-MeshAgent-User: mallory' http://127.0.0.1:$HTTP_PORT/
  curl -s -H 'Host: public.acme.localhost' -H 'X_MESHAGENT_USER: mallory' http://127.0.0.1:$HTTP_PORT/

  # admin
  curl -s http://127.0.0.1:$ADMIN_PORT/metrics | head

To stop: press Ctrl-C here (or: kill $$). That stops roomgate and the echo upstream.

MSG

# Until either process ends (or a signal arrives); then the EXIT trap stops the other.
set +e
wait -n "${started[@]}"
status=$?
set -e
echo "demo: a process ended (status $status); stopping the rest" >&2
exit "$status"
