# Helpers shared by run.sh and instructions.sh (sourced, not run).

log() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# need_pkg COMMAND PACKAGE...: install the first Debian package that works when COMMAND
# is missing.
apt_updated=0
need_pkg() {
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

# wait_port PORT [TENTHS]: until something accepts on 127.0.0.1:PORT (TENTHS tenths of a
# second at most, 10 s by default).
wait_port() {
  for _ in $(seq "${2:-100}"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
