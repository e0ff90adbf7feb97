#!/usr/bin/env bash
# The HTTP API under load: wrk from a second process on loopback against a release build of
# `evon-hub serve` on SQLite, loaded with `evon-hub fixture --size S --seed 1`.
#
#   scripts/bench-http.sh [SIZE ...]     (default: 1k 10k; needs wrk: apt-get install wrk)
#
# Per size it prints requests/s, p50 and p99 for: GET /api/ping (authenticated), GET /api/server
# as admin and as the first active ordinary user, GET /api/policy, GET /api/rule?page=2, a
# create-then-delete rule pair (POST /api/rule, then DELETE of the id it answered; both requests
# count), and the baseline: GET /api/nothing unauthenticated (the JSON 404, no work). Then the
# ratio ping / baseline, and the server's peak RSS (VmHWM) idle after start and after the load.
#
# Environment: CONNECTIONS (16), DURATION (10s), THREADS (2), PORT (18081), HUB (a prebuilt
# binary instead of `cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
# The machine is shared: the load average says how quiet it was.
echo "load average at start: $(cut -d" " -f1-3 /proc/loadavg); $(nproc) CPUs, $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed "s/^ //")"
trap_end() { echo "load average at end: $(cut -d" " -f1-3 /proc/loadavg)"; }
sizes=("$@"); [ "${#sizes[@]}" -gt 0 ] || sizes=(1k 10k)
connections=${CONNECTIONS:-16}; duration=${DURATION:-10s}; threads=${THREADS:-2}; port=${PORT:-18081}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
if [ -n "${HUB:-}" ]; then hub=$HUB; else cargo build --release -q -p evon-hub; hub=$PWD/target/release/evon-hub; fi
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
export EVON_HUB_LOG=warn
# A benchmark has no business changing this machine's firewall.
export EVON_HUB_FIREWALL=off
base=http://127.0.0.1:$port

# Create-then-delete: each wrk thread POSTs a rule with a unique name, keeps the ids the answers
# carry, and DELETEs one whenever it holds one, so the two kinds alternate.
cat >"$work/rule-pair.lua" <<'LUA'
local counter = 0
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("tid", threads)
end
function init(args)
    ids = {}
    nonce = tostring(os.time()) .. "-" .. tostring(tid)
    -- Headers given to wrk.format replace wrk's own (the -H ones), so copy those in.
    post_headers = {["Content-Type"] = "application/json"}
    for name, value in pairs(wrk.headers) do post_headers[name] = value end
end
function request()
    local id = table.remove(ids)
    if id then
        return wrk.format("DELETE", "/api/rule/" .. id)
    end
    counter = counter + 1
    local body = '{"name":"bench ' .. nonce .. ' ' .. counter ..
        '","destination_protocol":"TCP","destination_ports":"8080"}'
    return wrk.format("POST", "/api/rule", post_headers, body)
end
function response(status, headers, body)
    if status == 201 then
        local id = body:match('"id":(%d+)')
        if id then table.insert(ids, id) end
    end
end
LUA

token_of() { python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'; }
hwm() { awk '/^VmHWM/ { printf "%.1f MB", $2 / 1024 }' "/proc/$1/status"; }

# run LABEL TOKEN PATH [wrk args ...]: one bounded wrk run, one line of results; the figures are
# also kept in $work/last for the ratio.
run() {
    local label=$1 key=$2 path=$3; shift 3
    local auth=(); [ -n "$key" ] && auth=(-H "Authorization: Token $key")
    wrk --latency -t"$threads" -c"$connections" -d"$duration" --timeout 5s "${auth[@]}" "$@" "$base$path" |
        tee "$work/wrk.out" | awk -v label="$label" '
        /Requests\/sec/ { rps = $2 }
        /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        /Non-2xx/ { bad = $NF }
        /Socket errors/ { errors = $0 }
        END { printf "%-34s %9s req/s  p50 %8s  p99 %8s%s%s\n", label, rps, p50, p99,
              (bad ? "  non-2xx: " bad : ""), (errors ? "  " errors : "") }'
    awk '/Requests\/sec/ { print $2 }' "$work/wrk.out" >"$work/last"
}

for size in "${sizes[@]}"; do
    data=$work/$size
    "$hub" init --data-dir "$data" --json >/dev/null
    "$hub" fixture --size "$size" --seed 1 --output "$work/$size.json" 2>/dev/null
    "$hub" import --data-dir "$data" "$work/$size.json" 2>/dev/null
    admin=$("$hub" token rotate admin --data-dir "$data" --json | token_of)
    "$hub" serve --data-dir "$data" --bind "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do curl -fs -o /dev/null -H "Authorization: Token $admin" "$base/api/ping" && break; sleep 0.1; done
    idle=$(hwm "$server")
    # The first active ordinary user of the fixture, and a token for it.
    user=$(curl -fs -H "Authorization: Token $admin" "$base/api/user" | python3 -c '
import json, sys
print(next(u["username"] for u in json.load(sys.stdin)["results"] if u["id"] > 2 and u["is_active"] and not u["is_superuser"]))')
    token=$("$hub" token rotate "$user" --data-dir "$data" --json | token_of)
    echo "== $size: wrk -t$threads -c$connections -d$duration; non-superuser $user"
    run "GET /api/nothing (no auth, 404)" "" /api/nothing
    baseline=$(cat "$work/last")
    run "GET /api/ping" "$admin" /api/ping
    ping=$(cat "$work/last")
    run "GET /api/server as admin" "$admin" /api/server
    run "GET /api/server as $user" "$token" /api/server
    run "GET /api/policy" "$admin" /api/policy
    run "GET /api/rule?page=2" "$admin" "/api/rule?page=2"
    run "POST+DELETE /api/rule" "$admin" /api/rule -s "$work/rule-pair.lua"
    python3 -c "import sys; p, b = map(float, sys.argv[1:]); print(f'ping / baseline = {p:.0f} / {b:.0f} = {p / b:.2f} (target >= 0.5)')" "$ping" "$baseline"
    echo "serve peak RSS (VmHWM): idle after start $idle; after the load $(hwm "$server")"
    kill "$server"; wait "$server" 2>/dev/null || true
    server=
done
trap_end
