#!/usr/bin/env bash
# Where the time goes, as instruction counts (valgrind --tool=callgrind; `perf` has no hardware
# counters on the CI machine kind): REQUESTS (2000) GET /api/server as admin on one keep-alive
# connection against `serve --workers 1` on the fixture, then one `evon-hub firewall render`.
# Prints callgrind_annotate's top functions (self cost) and the totals.
#
#   scripts/bench-profile.sh [SIZE]     (default: 10k; needs valgrind: apt-get install valgrind)
#
# Environment: REQUESTS (2000), PORT (18083), TOP (25), HUB (a prebuilt binary).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-10k}; requests=${REQUESTS:-2000}; port=${PORT:-18083}; top=${TOP:-25}
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
if [ -n "${HUB:-}" ]; then hub=$HUB; else cargo build --release -q -p evon-hub; hub=$PWD/target/release/evon-hub; fi
work=$(mktemp -d)
server=
trap 'if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
export EVON_HUB_LOG=warn EVON_HUB_FIREWALL=off
export EVON_HUB_DATA_DIR=$work/data
"$hub" init --json >/dev/null
"$hub" fixture --size "$size" --seed 1 --output "$work/fixture.json" 2>/dev/null
"$hub" import "$work/fixture.json" 2>/dev/null
admin=0000000000000000000000000000000000000001

valgrind --tool=callgrind --callgrind-out-file="$work/serve.out" "$hub" serve --workers 1 \
    --bind "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
python3 - "$port" "$admin" "$requests" <<'PY'
import http.client, sys, time
port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for _ in range(600):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60); c.request("GET", "/api/ping", headers={"Authorization": "Token " + token}); c.getresponse().read(); break
    except OSError:
        time.sleep(0.1)
t = time.time()
for _ in range(n):
    c.request("GET", "/api/server", headers={"Authorization": "Token " + token})
    r = c.getresponse(); r.read(); assert r.status == 200, r.status
print(f"{n} GET /api/server under callgrind in {time.time() - t:.1f} s")
PY
kill -TERM "$server"; wait "$server" || true; server=
echo "== callgrind: serve --workers 1, start + $requests GET /api/server as admin ($size)"
callgrind_annotate "$work/serve.out" 2>/dev/null | sed -n '/^Ir/,$p' | head -n $((top + 8)) || true

echo "== callgrind: evon-hub firewall render ($size)"
valgrind --tool=callgrind --callgrind-out-file="$work/render.out" "$hub" firewall render >/dev/null 2>"$work/render.log"
callgrind_annotate "$work/render.out" 2>/dev/null | sed -n '/^Ir/,$p' | head -n $((top + 8)) || true
