#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS_PER_TARGET seconds (default 30), one after the other, on
# the stable toolchain: cargo-fuzz's -Z flags (sanitizer coverage, AddressSanitizer, whose runtime ships with
# stable) are accepted through RUSTC_BOOTSTRAP=1. Each run starts from the seeds in fuzz/corpus/<target>
# (read only; what it discovers goes to a scratch corpus). Exits non-zero when any target crashes, after naming
# the crash artefacts (fuzz/artifacts/<target>/crash-*, replay with `cargo fuzz run <target> <file>`).
#   scripts/fuzz.sh          # 30 s per target
#   scripts/fuzz.sh 600      # a longer hunt
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-30}

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz
fi
export RUSTC_BOOTSTRAP=1
# cargo-fuzz has no --locked: refuse here a Cargo.lock that would need an update.
cargo fetch --locked --target "$(rustc -vV | sed -n 's/^host: //p')"
# Release with debug assertions and overflow checks, AddressSanitizer (cargo-fuzz's defaults); 16 codegen
# units build the fuzz target tree (the server and store crates instrumented) noticeably faster on 2 cores.
# The instrumented build lives outside the checkout (CTS_FUZZ_TARGET_DIR), so a fresh clone on a machine
# that fuzzed before rebuilds only the cts crates, not the ~400 instrumented dependencies.
target_dir=${CTS_FUZZ_TARGET_DIR:-$HOME/.cache/cts-fuzz/target}
build_flags=(--sanitizer address --codegen-units 16 --target-dir "$target_dir")
cargo fuzz build "${build_flags[@]}"

scratch=$(mktemp -d /tmp/cts-fuzz-corpus.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in $(cargo fuzz list); do
  case $target in
    segment_read | import_file) max_len=32768 ;; # Parquet seeds are about 11 KiB
    *) max_len=8192 ;;
  esac
  mkdir -p "$scratch/$target" "artifacts/$target"
  before=$(find "artifacts/$target" -type f | sort)
  echo "== fuzz $target for ${seconds}s"
  if ! cargo fuzz run "${build_flags[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len="$max_len" -timeout=20 -print_final_stats=1 \
    >"$scratch/$target.log" 2>&1; then
    failed+=("$target")
    # The panic or sanitizer report (cargo-fuzz's own summary prints the whole input, too long for a log).
    grep -E -A4 "panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer|SUMMARY:" "$scratch/$target.log" | head -n 40
    comm -13 <(echo "$before") <(find "artifacts/$target" -type f | sort) |
      sed "s|^|crash artefact: $PWD/|"
  fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$scratch/$target.log" |
    sed "s|^|  $target |" || true
done

if ((${#failed[@]})); then
  echo "fuzz targets that crashed: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing: every target ran ${seconds}s without a crash"
