#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need,
# builds once (one profile for the tests and the `cts` binary they drive),
# starts a Garage object store on loopback (its CTS_OBS_* exported for every test),
# runs the Rust tests with cargo-nextest, the official-SDK tests with pytest and the console tests in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
if ! python3 -c "import huaweicloudsdkcts, pytest, requests" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi

# rsyslog for the SIEM stream tests (cts-transfer starts its own on a loopback port); openssl makes
# the TLS tests' certificates.
if ! [ -x /usr/sbin/rsyslogd ] || ! command -v openssl >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq rsyslog openssl >/dev/null
fi
# The S3-compatible store the object-storage tests run against (about 8 minutes to build the first time).
if ! command -v garage >/dev/null 2>&1; then
  cargo install --locked garage
fi
garage_dir=$(mktemp -d /tmp/cts-garage.XXXXXX)
trap 'scripts/garage.sh stop "$garage_dir"' EXIT
# shellcheck source=/dev/null
source "$(scripts/garage.sh start "$garage_dir")"

# The fuzz crate keeps its own Cargo.lock: after a workspace crate's dependencies change, refresh it with
# `cargo fetch --manifest-path fuzz/Cargo.toml`. Checked first, so a stale one fails before the long steps.
cargo fetch --locked --quiet --manifest-path fuzz/Cargo.toml
# One build for everything: nextest builds the `cts` binary (target/debug/cts, which pytest and the console
# tests run) with the workspace's test features. A separate `cargo build -p cts-cli` would resolve features
# without dev-dependencies and build DataFusion a second time.
cargo nextest run --locked --workspace --no-fail-fast --features cts-cli/sql
# Every fuzz target for 20 s (cargo-fuzz on stable; a crash fails the suite and names its input).
scripts/fuzz.sh 20
CTS_BIN="$PWD/target/debug/cts" python3 -m pytest -q tests/sdk

# The web console end to end in Debian's Chromium (playwright-core, node --test).
if ! [ -x /usr/bin/chromium ]; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
(cd tests/console && npm ci --no-audit --no-fund --silent)
(cd tests/console && CTS_BIN="$PWD/../../target/debug/cts" node --test --test-concurrency=1)
