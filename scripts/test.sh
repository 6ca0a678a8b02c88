#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need,
# builds once (one profile for the tests and the `cts` binary they drive),
# runs the Rust tests with cargo-nextest and the official-SDK tests with pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
if ! python3 -c "import huaweicloudsdkcts, pytest, requests" >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
fi

# rsyslog for the SIEM stream tests (cts-transfer starts its own on a loopback port).
if ! [ -x /usr/sbin/rsyslogd ]; then
  apt-get update -qq && apt-get install -y -qq rsyslog >/dev/null
fi

cargo build --locked -p cts-cli
cargo nextest run --locked --workspace --no-fail-fast
CTS_BIN="$PWD/target/debug/cts" python3 -m pytest -q tests/sdk
