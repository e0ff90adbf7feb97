#!/usr/bin/env bash
# The cargo-fuzz targets of fuzz/ (libFuzzer, nightly): builds every target, then runs each one
# over a copy of its committed seed corpus (fuzz/corpus/<target>) for a fixed time. A target
# stops at its first crash (panic, failed assertion, leak, sanitizer report, timeout); the script
# then runs the others and exits non-zero, printing each crashing input's path (in the git-ignored
# fuzz/artifacts/<target>/, where `cargo +nightly fuzz run <target> <path>` replays it).
#
#   scripts/fuzz-targets.sh                 (or: just fuzz-targets)
#   scripts/fuzz-targets.sh fqdn port_spec  (only these targets)
#
# Environment: FUZZ_TARGET_SECONDS (20): how long each target runs (-max_total_time). The copies
# of the corpora live in a temporary directory, so the new inputs a run finds never land in the
# repository; to grow the committed corpus instead, run `cargo +nightly fuzz run <target>` and
# then `cargo +nightly fuzz cmin <target>` in fuzz/. Needs the nightly toolchain; installs
# cargo-fuzz (crates.io) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${FUZZ_TARGET_SECONDS:-20}
case $seconds in
    '' | *[!0-9]*) echo "FUZZ_TARGET_SECONDS must be a whole number of seconds" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# fuzz/Cargo.lock is committed: refuse to build against anything it does not pin.
cargo +nightly fetch --locked -q
build_start=$SECONDS
cargo +nightly fuzz build
echo "built every fuzz target in $((SECONDS - build_start)) s"

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
    if [ ! -d "corpus/$target" ]; then
        echo "$target: no committed corpus in fuzz/corpus/$target" >&2
        exit 2
    fi
    mkdir -p "$work/corpus" "artifacts/$target"
    cp -R "corpus/$target" "$work/corpus/$target"
    touch "$work/start-$target"
    log=$work/$target.log
    printf '%s: %s s over %s committed inputs... ' "$target" "$seconds" "$(find "corpus/$target" -type f | wc -l)"
    if cargo +nightly fuzz run "$target" "$work/corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        echo "ok: ${runs:-?} runs, ${rate:-?} exec/s"
    else
        echo "FAILED"
        tail -n 80 "$log" >&2
        found=0
        while IFS= read -r artifact; do
            echo "$target: crashing input: fuzz/$artifact (replay: cd fuzz && cargo +nightly fuzz run $target $artifact)" >&2
            found=1
        done < <(find "artifacts/$target" -type f -newer "$work/start-$target")
        [ "$found" = 1 ] || echo "$target: failed without writing an input to fuzz/artifacts/$target (see the log above)" >&2
        failed+=("$target")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "fuzz targets that failed: ${failed[*]}" >&2
    exit 1
fi
echo "every fuzz target ran ${seconds} s without a crash"
