#!/usr/bin/env bash
# Run every roomgate test on a fresh machine: install what the tests need when it is
# missing (Debian packages, a pinned Python venv and pinned npm packages under
# .ci/.cache), then formatting, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CACHE="$ROOT/.ci/.cache"
mkdir -p "$CACHE"

apt_updated=0
need_pkg() { # need_pkg COMMAND PACKAGE
  if ! command -v "$1" >/dev/null 2>&1; then
    if [ "$apt_updated" = 0 ]; then
      echo "==> apt-get update"; apt-get update -qq; apt_updated=1
    fi
    echo "==> installing $2"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
}

need_pkg redis-server redis-server
need_pkg redis-cli redis-tools
# Several instances behind a real load balancer (tests/fleet_instances.rs).
need_pkg haproxy haproxy
# Deployment-file checks (tests/deploy.rs): compose validation, unit verification, and
# running a command as the service user.
need_pkg docker-compose docker-compose
need_pkg systemd-analyze systemd
need_pkg setpriv util-linux

# Python packages for the webhook SDK cross-checks, pinned, in a local venv.
if [ -f tests/py/requirements.txt ]; then
  VENV="$CACHE/venv"
  stamp="$VENV/.requirements"
  if [ ! -x "$VENV/bin/python" ] || ! cmp -s tests/py/requirements.txt "$stamp"; then
    echo "==> python venv"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -r tests/py/requirements.txt
    cp tests/py/requirements.txt "$stamp"
  fi
  export ROOMGATE_TEST_PYTHON="$VENV/bin/python"
fi

# npm packages (webhook cross-checks, OpenID provider, browser driver), pinned.
if [ -f tests/js/package.json ]; then
  need_pkg node nodejs
  need_pkg npm npm
  if ! cmp -s tests/js/package-lock.json tests/js/node_modules/.roomgate-lock 2>/dev/null; then
    echo "==> npm ci"
    (cd tests/js && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.roomgate-lock)
  fi
  export ROOMGATE_TEST_NODE_MODULES="$ROOT/tests/js/node_modules"
fi

# GitHub's official signer for the webhook cross-check, pinned.
if [ -f tests/npm-webhooks/package.json ]; then
  need_pkg node nodejs
  need_pkg npm npm
  if ! cmp -s tests/npm-webhooks/package-lock.json tests/npm-webhooks/node_modules/.roomgate-lock 2>/dev/null; then
    echo "==> npm ci (webhook signers)"
    (cd tests/npm-webhooks && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.roomgate-lock)
  fi
fi

# The providers' npm SDKs for tests/webhook_providers.rs (signers, or verifiers used as
# the oracle where an SDK only verifies), pinned.
if [ -f tests/npm-providers/package.json ]; then
  need_pkg node nodejs
  need_pkg npm npm
  if ! cmp -s tests/npm-providers/package-lock.json tests/npm-providers/node_modules/.roomgate-lock 2>/dev/null; then
    echo "==> npm ci (provider SDKs)"
    (cd tests/npm-providers && npm ci --no-audit --no-fund --loglevel=error && cp package-lock.json node_modules/.roomgate-lock)
  fi
fi

if [ -f tests/js/needs-chromium ]; then
  need_pkg chromium chromium
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --all-targets --locked
