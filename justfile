# Evon Hub tasks. `just --list` shows them; each is one plain cargo command, so `just` is optional.

# Run the hub on its embedded SQLite database in ./evon-data.
serve *ARGS:
    cargo run --release -p evon-hub -- serve {{ARGS}}

# Every test, each database test on SQLite and on PostgreSQL (127.0.0.1:5432, or EVON_TEST_POSTGRES_URL).
test:
    cargo test --workspace

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# The access engine at the 1k and 10k sizes (criterion).
bench:
    cargo bench -p evon-domain --bench access

# GET /api/server under load (wrk) at each fixture size, as admin and as a non-superuser.
bench-servers *SIZES:
    scripts/bench-servers.sh {{SIZES}}

# The HTTP API under load (wrk): ping, lists, rule writes, a no-work baseline, and peak RSS.
bench-http *SIZES:
    scripts/bench-http.sh {{SIZES}}

# Schemathesis against GET /api/schema on a fresh release hub; FUZZ_SECONDS (120) bounds the run.
fuzz-api:
    scripts/fuzz-api.sh

# Every cargo-fuzz target (fuzz/, nightly) over a copy of its committed corpus; FUZZ_TARGET_SECONDS (20) each.
fuzz-targets:
    scripts/fuzz-targets.sh

# Screenshot of the API documentation page (GET /api/) in headless Chromium, to docs/api-docs.png.
api-docs-screenshot:
    scripts/api-docs-screenshot.sh

# Everything CI does.
ci:
    bash .ci/run
