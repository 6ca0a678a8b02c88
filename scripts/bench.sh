#!/usr/bin/env bash
# Runs `cts bench` against a local PostgreSQL: starts the dedicated cluster (scripts/postgres.sh), builds cts in
# release mode with the `sql` feature (the aggregation goes through POST /v3/{project_id}/queries) and passes the
# remaining arguments on, e.g. `scripts/bench.sh --traces 10M --checkpoints 1M --json`. See docs/benchmarks.md.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
postgres_url="$("$repo/scripts/postgres.sh")"
features=()
if grep -Eq '^sql[[:space:]]*=' "$repo/crates/cts-cli/Cargo.toml"; then
    features=(--features sql)
else
    echo "bench.sh: cts-cli has no sql feature yet; the SQL aggregation will print n/a" >&2
fi
(cd "$repo" && cargo build --release -p cts-cli "${features[@]}")
exec "${CARGO_TARGET_DIR:-$repo/target}/release/cts" bench --postgres-url "$postgres_url" "$@"
