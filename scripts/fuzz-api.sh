#!/usr/bin/env bash
# Property-based fuzzing of the API against its own OpenAPI document with Schemathesis: a fresh
# hub (release build, SQLite in a temp dir, firewall off) on a free loopback port, driven as the
# admin. Fails on any 5xx and on any response that does not conform to the document.
#
#   scripts/fuzz-api.sh            (or: just fuzz-api)
#
# Environment: FUZZ_SECONDS (120): the time budget of the Schemathesis run (--max-time; the
# whole script is also killed after FUZZ_SECONDS + 120 s of fuzzing). FUZZ_SEED: a fixed seed to
# replay a run. FUZZ_PROFILE (release): `debug` fuzzes the debug binary instead, which CI has
# already built for the tests. Schemathesis is pinned below and installed into target/fuzz-venv
# on first use (needs PyPI, and python3-venv on Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
schemathesis_version=4.32.5
seconds=${FUZZ_SECONDS:-120}

profile=${FUZZ_PROFILE:-release}
case $profile in
    release) cargo build --release -q --locked -p evon-hub ;;
    debug) cargo build -q --locked -p evon-hub ;;
    *) echo "FUZZ_PROFILE must be release or debug" >&2; exit 2 ;;
esac
hub=$PWD/target/$profile/evon-hub

venv=$PWD/target/fuzz-venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$schemathesis_version"; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "schemathesis==$schemathesis_version"
fi

work=$(mktemp -d)
server=
trap '[ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
export EVON_HUB_LOG=warn
export EVON_HUB_FIREWALL=off
admin=$("$hub" init --data-dir "$work/data" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["admin_token"])')
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$hub" serve --firewall off --data-dir "$work/data" --bind "127.0.0.1:$port" >"$work/hub.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/api/schema" && break; sleep 0.1; done
curl -fs -o /dev/null "http://127.0.0.1:$port/api/schema" || { cat "$work/hub.log" >&2; exit 1; }

# One worker: with several, Hypothesis 6 on CPython 3.11 sometimes fails inside ast.parse
# ("AST constructor recursion depth mismatch"), an error of the tool, not of the hub.
seed=()
[ -z "${FUZZ_SEED:-}" ] || seed=(--seed "$FUZZ_SEED")
status=0
timeout --kill-after=10 "$((seconds + 120))" \
    "$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/schema?format=json" \
    -H "Authorization: Token $admin" \
    --checks not_a_server_error,response_schema_conformance \
    --max-time "$seconds" --workers 1 --no-color --generation-database none "${seed[@]}" \
    --report-dir "$work/report" || status=$?
if [ "$status" -ne 0 ]; then
    echo "fuzz-api: schemathesis failed ($status); hub log:" >&2
    grep -iE 'error|panic' "$work/hub.log" | tail -n 40 >&2 || true
fi
exit "$status"
