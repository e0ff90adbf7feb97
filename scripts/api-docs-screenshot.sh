#!/usr/bin/env bash
# Renders the API documentation page (GET /api/) of a fresh local hub in headless Chromium and
# saves a screenshot, by default to docs/api-docs.png. Not run in CI: it checks by eye that the
# page renders offline (Chromium's background networking is off, and the page's CSP allows only
# the hub itself).
#
#   scripts/api-docs-screenshot.sh [OUTPUT.png]   (needs chromium: apt-get install -y chromium)
#
# Environment: PORT (a free loopback port by default).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/api-docs.png}
case $out in /*) ;; *) out=$PWD/$out ;; esac
command -v chromium >/dev/null || { echo "chromium is missing: apt-get install -y chromium" >&2; exit 1; }
cargo build --release -q -p evon-hub
hub=$PWD/target/release/evon-hub
work=$(mktemp -d)
server=
trap '[ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
export EVON_HUB_LOG=warn
"$hub" init --data-dir "$work/data" --json >/dev/null
port=${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
"$hub" serve --firewall off --data-dir "$work/data" --bind "127.0.0.1:$port" >"$work/hub.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/api/" && break; sleep 0.1; done
curl -fs -o /dev/null "http://127.0.0.1:$port/api/" || { cat "$work/hub.log" >&2; exit 1; }

sandbox=()
[ "$(id -u)" -ne 0 ] || sandbox=(--no-sandbox)
chromium --headless "${sandbox[@]}" --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$work/chromium" --screenshot="$out" --window-size=1280,900 \
    --virtual-time-budget=10000 "http://127.0.0.1:$port/api/" 2>"$work/chromium.log" ||
    { cat "$work/chromium.log" >&2; exit 1; }
echo "wrote $out ($(stat -c %s "$out") bytes)"
