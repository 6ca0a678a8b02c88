#!/usr/bin/env bash
# Runs the load test of issue #11 on a release build: `cts bench load` starts its own `cts serve` on loopback with a
# fresh data directory (rate limits off), runs 2 ingest clients (batches of 100 seeded KooGallery traces) and 2 query
# clients (ListTraces by user+trace_name, by resource_id, first and next pages, CSV export) for at most 60 s or
# 1,000,000 requests, looks up 1,000 acknowledged trace ids, and prints the table.
# Arguments replace those defaults, e.g. `scripts/loadtest.sh --duration 20 --ingest-clients 4 --json`
# (`cts bench load --help` lists them; flags not given keep the same defaults).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
(cd "$repo" && cargo build --release -p cts-cli)
if [ "$#" -eq 0 ]; then
  set -- --duration 60 --requests 1000000 --ingest-clients 2 --query-clients 2 --batch 100 --verify-sample 1000
fi
exec "${CARGO_TARGET_DIR:-$repo/target}/release/cts" bench load "$@"
