#!/usr/bin/env bash
# The firewall path, inside a scratch network namespace (created here, deleted on exit; the
# host's own ruleset is never touched). Needs root, nft and ip (apt-get install nftables iproute2).
#
#   scripts/bench-firewall.sh [SIZE]     (default: 10k)
#
# 1. `evon-hub firewall render` and `evon-hub firewall apply` of the fixture's ruleset, RUNS
#    times each (one process each: start, store, access index, render; apply adds `nft -f -`),
#    and `nft -f` of the rendered file alone, to split apply into the hub's part and the kernel's.
# 2. From an API write to the kernel: `serve --firewall on` inside the namespace; WRITES times,
#    POST a rule (a fresh port, an active user as source) and a policy naming it and a server,
#    then wait for the keeper's `firewall applied` log line (written once `nft -f` has returned)
#    of a generation at least the one the policy committed (read from the database), polling the
#    log every 5 ms. `evon-hub firewall status` confirms the kernel at the end; it is too slow
#    on a large table to poll with (it lists the whole table; its time is printed).
#
# Environment: RUNS (3), WRITES (5), PORT (18082), HUB (a prebuilt binary instead of
# `cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."
# The machine is shared: the load average says how quiet it was.
echo "load average at start: $(cut -d" " -f1-3 /proc/loadavg); $(nproc) CPUs, $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed "s/^ //")"
trap_end() { echo "load average at end: $(cut -d" " -f1-3 /proc/loadavg)"; }
size=${1:-10k}; runs=${RUNS:-3}; writes=${WRITES:-5}; port=${PORT:-18082}
[ "$(id -u)" = 0 ] || { echo "needs root (ip netns, nft)" >&2; exit 1; }
command -v nft >/dev/null || { echo "nft is missing: apt-get install nftables" >&2; exit 1; }
if [ -n "${HUB:-}" ]; then hub=$HUB; else cargo build --release -q -p evon-hub; hub=$PWD/target/release/evon-hub; fi
work=$(mktemp -d)
ns=evon-bench-$$
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
in_ns() { ip netns exec "$ns" "$@"; }
export EVON_HUB_LOG=warn LC_ALL=C
export EVON_HUB_DATA_DIR=$work/data
"$hub" init --json >/dev/null
"$hub" fixture --size "$size" --seed 1 --output "$work/fixture.json" 2>/dev/null
"$hub" import "$work/fixture.json" 2>/dev/null
now() { echo "${EPOCHREALTIME/./}"; }
ms() { python3 -c "import sys, statistics; xs = sorted(int(x) / 1000 for x in sys.argv[1:]); print(f'mean {statistics.mean(xs):7.1f} ms  min {xs[0]:7.1f} ms  max {xs[-1]:7.1f} ms  (n={len(xs)})')" "$@"; }

"$hub" firewall render >"$work/ruleset.nft"
echo "== $size in netns $ns: ruleset of $(wc -l <"$work/ruleset.nft") lines, $(wc -c <"$work/ruleset.nft") bytes, $(grep -c '^	set ' "$work/ruleset.nft") sets"
renders=(); applies=(); loads=()
for _ in $(seq "$runs"); do
    t0=$(now); in_ns "$hub" firewall render >/dev/null; t1=$(now); renders+=($((t1 - t0)))
    t0=$(now); in_ns "$hub" firewall apply 2>/dev/null; t1=$(now); applies+=($((t1 - t0)))
    t0=$(now); in_ns nft -f "$work/ruleset.nft"; t1=$(now); loads+=($((t1 - t0)))
done
echo "evon-hub firewall render            $(ms "${renders[@]}")"
echo "evon-hub firewall apply             $(ms "${applies[@]}")"
echo "nft -f (the rendered file alone)    $(ms "${loads[@]}")"

# From an API write to the kernel.
in_ns nft delete table inet evon
EVON_HUB_LOG=info ip netns exec "$ns" "$hub" serve --firewall on --bind "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
server=$!
admin=0000000000000000000000000000000000000001
api() { in_ns curl -fsS -H "Authorization: Token $admin" -H 'Content-Type: application/json' "$@"; }
for _ in $(seq 100); do api -o /dev/null "http://127.0.0.1:$port/api/ping" 2>/dev/null && break; sleep 0.1; done
# wait_applied T0 GENERATION: milliseconds from T0 (µs) until the keeper logged an apply of at
# least GENERATION.
wait_applied() {
    python3 - "$work/serve.log" "$1" "$2" <<'PY'
import re, sys, time
log, t0, target = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
deadline = time.time() + 120
while time.time() < deadline:
    text = re.sub(r"\x1b\[[0-9;]*m", "", open(log).read())
    gens = [int(g) for pair in re.findall(r"generation=(\d+).*firewall applied|firewall applied.*generation=(\d+)", text) for g in pair if g]
    if gens and max(gens) >= target:
        print(round(time.time() * 1000 - t0 / 1000)); sys.exit(0)
    time.sleep(0.005)
print("timeout"); sys.exit(1)
PY
}
generation() { python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select generation from hub").fetchone()[0])' "$work/data/evon-hub.sqlite3"; }
echo "serve --firewall on: first ruleset in the kernel $(wait_applied "$(now)" "$(generation)") ms after the API answered"
user=$(api "http://127.0.0.1:$port/api/user" | python3 -c '
import json, sys
print(next(u["id"] for u in json.load(sys.stdin)["results"] if u["id"] > 2 and u["is_active"]))')
visible=()
visible_policy=()
for i in $(seq "$writes"); do
    t0=$(now)
    rule=$(api -d "{\"name\":\"bench fw $$ $i\",\"destination_protocol\":\"TCP\",\"destination_ports\":\"$((40000 + i))\",\"source_users\":[$user]}" \
        "http://127.0.0.1:$port/api/rule" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    # The policy is the write that changes the firewall (a rule in no policy allows nothing).
    tp=$(now)
    api -o /dev/null -d "{\"name\":\"bench fw $$ $i\",\"rules\":[$rule],\"servers\":[1]}" "http://127.0.0.1:$port/api/policy"
    t1=$(now)
    target=$(generation)
    took=$(wait_applied "$t0" "$target")
    visible+=($((took * 1000)))
    from_policy=$((took - (tp - t0) / 1000))
    visible_policy+=($((from_policy * 1000)))
    echo "write $i: rule + policy answered in $(( (t1 - t0) / 1000 )) ms; generation $target in the kernel $took ms after the first request, $from_policy ms after the policy's"
    sleep 1
done
echo "API write -> kernel ruleset         $(ms "${visible[@]}")  (from the rule's request: two writes)"
echo "policy write -> kernel ruleset      $(ms "${visible_policy[@]}")  (from the policy's request)"
t0=$(now); in_ns "$hub" firewall status; t1=$(now)
echo "evon-hub firewall status took $(( (t1 - t0) / 1000 )) ms"
grep -c 'firewall applied' "$work/serve.log" | sed 's/^/keeper applies during the run: /'
awk '/^VmHWM/ { printf "serve --firewall on peak RSS (VmHWM): %.1f MB\n", $2 / 1024 }' "/proc/$server/status"
trap_end
