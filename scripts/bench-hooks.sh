#!/usr/bin/env bash
# The OpenVPN hook path: sequential `evon-hub openvpn server-auth` + `server-connect FILE` pairs,
# one process each with the environment OpenVPN sets (username, password, common_name), against
# a release build on SQLite loaded with `evon-hub fixture --size S --seed 1`.
#
#   scripts/bench-hooks.sh [SIZE]     (default: 10k)
#
# The server range holds 2,047 addresses. The first pairs register new UUIDs while addresses are
# free (47 on `10k`, whose 2,000 servers nearly fill it); the rest re-register the fixture's own
# servers (UUIDs and hostnames read from `evon-hub export`), cycling through them. Each process
# is timed from the shell ($EPOCHREALTIME, no extra fork), so process start, opening the store,
# the transaction and exit are all included. Then hyperfine (when installed) times a
# re-registration and `evon-hub --version` (the bare process start) on their own.
#
# Environment: PAIRS (1000), NEW (as many as the range holds), HUB (a prebuilt binary instead of
# `cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
# The machine is shared: the load average says how quiet it was.
echo "load average at start: $(cut -d" " -f1-3 /proc/loadavg); $(nproc) CPUs, $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed "s/^ //")"
trap_end() { echo "load average at end: $(cut -d" " -f1-3 /proc/loadavg)"; }
size=${1:-10k}; pairs=${PAIRS:-1000}
if [ -n "${HUB:-}" ]; then hub=$HUB; else cargo build --release -q -p evon-hub; hub=$PWD/target/release/evon-hub; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export EVON_HUB_LOG=warn EVON_HUB_FIREWALL=off LC_ALL=C
export EVON_HUB_DATA_DIR=$work/data
"$hub" init --json >/dev/null
"$hub" fixture --size "$size" --seed 1 --output "$work/fixture.json" 2>/dev/null
"$hub" import "$work/fixture.json" 2>/dev/null
"$hub" export --output "$work/export.json"

# One line per pair to run: KIND UUID HOSTNAME.
python3 - "$work/export.json" "$pairs" "${NEW:-}" >"$work/plan" <<'PY'
import json, sys, uuid, random
doc = json.load(open(sys.argv[1]))
pairs = int(sys.argv[2])
suffix = "." + doc["hub"]["domain"]
known = [(s["uuid"], s["fqdn"][: -len(suffix)]) for s in doc["servers"]]
free = 2047 - len(known)
new = min(free, pairs) if sys.argv[3] == "" else min(int(sys.argv[3]), free, pairs)
rng = random.Random(1)
for i in range(new):
    print("new", uuid.UUID(int=rng.getrandbits(128), version=4), f"bench-new-{i:04d}")
for i in range(pairs - new):
    u, h = known[i % len(known)]
    print("known", u, h)
PY
new=$(grep -c '^new' "$work/plan" || true)
echo "== $size: $pairs server-auth + server-connect pairs ($new new UUIDs, $((pairs - new)) re-registrations), one process each"

failures=0
while read -r kind id host; do
    t0=${EPOCHREALTIME/./}
    username=$id password=$host "$hub" openvpn server-auth 2>>"$work/hooks.log" || failures=$((failures + 1))
    t1=${EPOCHREALTIME/./}
    common_name=$id "$hub" openvpn server-connect "$work/ccd" 2>>"$work/hooks.log" || failures=$((failures + 1))
    t2=${EPOCHREALTIME/./}
    echo "auth-$kind $((t1 - t0))" >>"$work/times"
    echo "connect-$kind $((t2 - t1))" >>"$work/times"
done <"$work/plan"
echo "hook failures: $failures (of $((2 * pairs)))"
grep -c 'allowed .*: new server' "$work/hooks.log" | sed 's/^/new servers registered: /'
python3 - "$work/times" <<'PY'
import sys, statistics
by = {}
for line in open(sys.argv[1]):
    kind, us = line.split()
    by.setdefault(kind, []).append(int(us) / 1000)
def row(name, xs):
    xs = sorted(xs)
    p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
    print(f"{name:28} n={len(xs):5}  mean {statistics.mean(xs):6.2f} ms  p50 {p(0.5):6.2f} ms  p99 {p(0.99):6.2f} ms")
for kind in ("auth-new", "auth-known", "connect-new", "connect-known"):
    if kind in by:
        row(kind.replace("auth", "server-auth").replace("connect", "server-connect"), by[kind])
row("every hook", [x for xs in by.values() for x in xs])
if "auth-new" in by and "auth-known" in by:
    d = statistics.mean(by["auth-new"]) - statistics.mean(by["auth-known"])
    print(f"address allocation (new - known server-auth, means): {d:+.2f} ms")
PY

if command -v hyperfine >/dev/null; then
    read -r _ id host < <(grep '^known' "$work/plan" | head -1)
    export username=$id password=$host common_name=$id
    hyperfine -N --warmup 20 --runs 300 --style basic \
        "$hub --version" \
        "$hub openvpn server-auth" \
        "$hub openvpn server-connect $work/ccd" 2>&1 | grep -E 'Benchmark|Time|Range'
fi
trap_end
