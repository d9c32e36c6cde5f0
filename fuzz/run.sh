#!/usr/bin/env bash
# Runs every `cargo fuzz` target for SECONDS each (default 60), one after the other, and fails on
# the first crash, hang or failed property. Not part of .ci/run (too long for CI); see README
# "Fuzzing".
#
#   fuzz/run.sh [SECONDS] [TARGET...]     (default: 60 s; config, pattern and elf)
#
# Needs `cargo install cargo-fuzz --locked` and a C++ compiler (libFuzzer is built from source).
# Works on stable Rust: RUSTC_BOOTSTRAP=1 lets it accept the `-Z` flags cargo fuzz passes.
# Builds with optimisations, debug assertions, overflow checks and AddressSanitizer (cargo
# fuzz's defaults). Each target's corpus grows in fuzz/corpus/<target> (seeded from
# fuzz/seeds/<target>), crashing inputs land in fuzz/artifacts/<target>/ and the libFuzzer
# output in fuzz/artifacts/<target>.log; none of them is committed.
set -euo pipefail

seconds=${1:-60}
case $seconds in
    '' | *[!0-9]*) echo "usage: fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
shift || true
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    targets=(config pattern elf)
fi
summary=()
for target in "${targets[@]}"; do
    if [[ ! -f "fuzz/fuzz_targets/$target.rs" ]]; then
        echo "no fuzz target $target (fuzz/fuzz_targets/$target.rs)" >&2
        exit 2
    fi
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    extra=()
    if [[ -f "fuzz/$target.dict" ]]; then
        extra+=("-dict=fuzz/$target.dict")
    fi
    if [[ $target == pattern ]]; then
        # Service names and patterns are short. Each run compiles a regex (most of the time,
        # measured) and fills a table quadratic in the lengths: ~70 runs/s on 4 KB inputs
        # against ~300 on inputs under 512 bytes.
        extra+=("-max_len=512")
    fi
    log="fuzz/artifacts/$target.log"
    echo "== $target: ${seconds}s (log: $log)"
    # -timeout: one input taking over 10 s is a hang, and a failure.
    set +e
    cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${extra[@]}" 2>&1 |
        tee "$log" |
        grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|==[0-9]+==|SUMMARY|Failing input|thread .* panicked)'
    status=${PIPESTATUS[0]}
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    corpus=$(sed -n 's/^#[0-9]*[[:space:]]*DONE .* corp: \([^ ]*\).*/\1/p' "$log" | tail -1)
    if [[ $status -ne 0 ]]; then
        echo "== $target FAILED (exit $status): see $log and fuzz/artifacts/$target/" >&2
        exit 1
    fi
    summary+=("$target: ${seconds}s, ${execs:-?} execs (${rate:-?}/s), corpus ${corpus:-?} (inputs/size), no crash")
done
echo "== all targets passed"
printf '   %s\n' "${summary[@]}"
