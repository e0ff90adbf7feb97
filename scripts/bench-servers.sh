#!/usr/bin/env bash
# GET /api/server at the fixture generator's sizes, as admin and as a non-superuser, measured
# with wrk from a second process on loopback against a release build on SQLite.
#
#   scripts/bench-servers.sh [SIZE ...]     (default: 1k 10k; needs wrk: apt-get install wrk)
#
# Environment: CONNECTIONS (16), DURATION (10s), THREADS (2), PORT (18080).
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@"); [ "${#sizes[@]}" -gt 0 ] || sizes=(1k 10k)
connections=${CONNECTIONS:-16}; duration=${DURATION:-10s}; threads=${THREADS:-2}; port=${PORT:-18080}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p evon-hub
hub=$PWD/target/release/evon-hub
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
export EVON_HUB_LOG=warn
# A benchmark has no business changing this machine's firewall.
export EVON_HUB_FIREWALL=off

for size in "${sizes[@]}"; do
    data=$work/$size
    "$hub" init --data-dir "$data" --json >/dev/null
    "$hub" fixture --size "$size" --seed 1 --output "$work/$size.json" 2>/dev/null
    "$hub" import --data-dir "$data" "$work/$size.json" 2>/dev/null
    admin=$("$hub" token rotate admin --data-dir "$data" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    "$hub" serve --data-dir "$data" --bind "127.0.0.1:$port" >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 100); do curl -fs -o /dev/null -H "Authorization: Token $admin" "http://127.0.0.1:$port/api/ping" && break; sleep 0.1; done
    # The first active ordinary user of the fixture, and a token for it.
    user=$(curl -fs -H "Authorization: Token $admin" "http://127.0.0.1:$port/api/user" | python3 -c '
import json, sys
print(next(u["username"] for u in json.load(sys.stdin)["results"] if u["id"] > 2 and u["is_active"] and not u["is_superuser"]))')
    token=$("$hub" token rotate "$user" --data-dir "$data" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    reachable=$(curl -fs -H "Authorization: Token $token" "http://127.0.0.1:$port/api/server" | python3 -c 'import json,sys; print(json.load(sys.stdin)["count"])')
    echo "== $size: $user reaches $reachable servers; wrk -t$threads -c$connections -d$duration"
    for who in admin user; do
        key=$admin; [ "$who" = user ] && key=$token
        wrk --latency -t"$threads" -c"$connections" -d"$duration" -H "Authorization: Token $key" \
            "http://127.0.0.1:$port/api/server" | awk -v who="$who" '
            /Requests\/sec/ { rps = $2 }
            /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
            /Non-2xx/ { bad = $NF }
            END { printf "GET /api/server as %-5s  %8s req/s  p50 %8s  p99 %8s%s\n", who, rps, p50, p99, (bad ? "  NON-2xx: " bad : "") }'
    done
    kill "$server"; wait "$server" 2>/dev/null || true
done
