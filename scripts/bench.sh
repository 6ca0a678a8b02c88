#!/usr/bin/env bash
# Runs `cts bench` against a local PostgreSQL: starts the dedicated cluster (scripts/postgres.sh), builds cts in
# release mode and passes the remaining arguments on, e.g. `scripts/bench.sh --traces 1000000 --json`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
postgres_url="$("$repo/scripts/postgres.sh")"
(cd "$repo" && cargo build --release -p cts-cli)
exec "${CARGO_TARGET_DIR:-$repo/target}/release/cts" bench --postgres-url "$postgres_url" "$@"
