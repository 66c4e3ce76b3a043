#!/usr/bin/env bash
# Quickstart: build roomgate and the echo upstream, start both (embedded mode, no Redis),
# and print curl commands to try. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin roomgate --example echo
./target/release/examples/echo 127.0.0.1:5002 127.0.0.1:5003 &
ECHO_PID=$!
trap 'kill $ECHO_PID 2>/dev/null || true' EXIT
TOKEN=$(./target/release/roomgate token mint --config routes.example.yaml --room acme --name alice --api '{"queues":{}}' --ttl 1h)
cat <<MSG

Try, in another terminal:

  # public route: forwarded as is
  curl -s -H 'Host: public.acme.localhost' http://127.0.0.1:8080/hello

  # private route without a token: 401 missing_auth
  curl -s -H 'Host: private.acme.localhost' http://127.0.0.1:8080/

  # private route with a participant token: the upstream sees X-MESHAGENT-USER: alice
  curl -s -H 'Host: private.acme.localhost' -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:8080/

  # spoofing attempts: the header is stripped, the underscore form is refused (400)
  curl -s -H 'Host: public.acme.localhost' -H 'X-MeshAgent-User: mallory' http://127.0.0.1:8080/
  curl -s -H 'Host: public.acme.localhost' -H 'X_MESHAGENT_USER: mallory' http://127.0.0.1:8080/

  # admin
  curl -s http://127.0.0.1:9090/metrics | head

MSG
exec ./target/release/roomgate serve --config routes.example.yaml
