#!/usr/bin/env bash
# server_fuzz: libFuzzer on the doorbell server's and client's message handling, on the responder's handling of whatever shared memory holds, on the ring with a hostile peer rewriting its indices and slots between calls, and on the initiator's receive path against a scripted responder: every kept input replays clean, then a bounded fuzzing run of each target finds nothing.
# timeout: 240
#
# The targets (tests/fuzz/fuzz_*.c) are built by `make fuzz-build` with
# clang, ASan and UBSan. First every input kept in tests/fuzz/corpus/TARGET/
# (seeds, and crashes found before: regression inputs) is run once; then
# each target is fuzzed for FUZZ_TEST_SECONDS (20), starting from those
# inputs. A crash is copied to $BUILD/fuzz/ and named in the failure; once
# fixed, keep it in tests/fuzz/corpus/TARGET/. Longer runs: make fuzz
# FUZZ_SECONDS=N. The fuzzers make their files under $TMPDIR, here a
# private directory removed at the end, even after a crash. Needs clang and its fuzzer runtime (Debian: clang,
# libclang-rt-14-dev); skips without them.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash # check, ok, bad, skip
BUILD=${BUILD:-build}
FUZZ_CC=${FUZZ_CC:-clang}
SECONDS_EACH=${FUZZ_TEST_SECONDS:-20}

tmp=$(mktemp -d /tmp/ivs_fuzz.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# fuzzer_runtime_present: clang links a do-nothing fuzz target.
fuzzer_runtime_present() {
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
		>"$tmp/probe.c"
	"$FUZZ_CC" -fsanitize=fuzzer,address,undefined -o "$tmp/probe" "$tmp/probe.c" >"$tmp/probe.log" 2>&1
}

# replay TARGET: run every kept input once.
replay() {
	local t=$1 inputs=(tests/fuzz/corpus/"$1"/*)
	if [ ! -e "${inputs[0]}" ]; then
		bad "$t has no kept inputs in tests/fuzz/corpus/$t/"
		return
	fi
	if TMPDIR=$tmp "$BUILD/fuzz/$t" "${inputs[@]}" >"$tmp/$t.replay" 2>&1; then
		ok "$t replays its ${#inputs[@]} kept inputs clean"
	else
		bad "$t fails on a kept input"
		grep -E 'Running:|ERROR|SUMMARY|fuzz_' "$tmp/$t.replay" | tail -n 20 | sed 's/^/    | /'
	fi
}

# fuzz TARGET: fuzz it for SECONDS_EACH from the kept inputs.
fuzz() {
	local t=$1 crash stats
	mkdir -p "$tmp/corpus-$t"
	if TMPDIR=$tmp "$BUILD/fuzz/$t" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -close_fd_mask=2 \
		-artifact_prefix="$tmp/crash-$t-" "$tmp/corpus-$t" "tests/fuzz/corpus/$t" \
		>"$tmp/$t.fuzz" 2>&1; then
		stats=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$tmp/$t.fuzz" | grep -oE '[0-9]+$' || echo '?')
		ok "$t: $stats runs in ${SECONDS_EACH} s, no crash ($(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$tmp/$t.fuzz" | tail -n1))"
		return
	fi
	crash=$(find "$tmp" -maxdepth 1 -name "crash-$t-*" | head -n1)
	if [ -n "$crash" ]; then
		cp "$crash" "$BUILD/fuzz/"
		crash=$BUILD/fuzz/$(basename "$crash")
	fi
	bad "$t crashed; input kept as ${crash:-(none written)}"
	grep -E 'ERROR|SUMMARY|fuzz_|#[0-9]+ 0x' "$tmp/$t.fuzz" | head -n 30 | sed 's/^/    | /'
}

main() {
	local t targets=()
	command -v "$FUZZ_CC" >/dev/null || skip "$FUZZ_CC is not installed (Debian packages: clang libclang-rt-14-dev)"
	fuzzer_runtime_present ||
		skip "$FUZZ_CC cannot link -fsanitize=fuzzer: its runtime is missing (Debian package libclang-rt-14-dev): $(head -n1 "$tmp/probe.log")"
	if ! make -s BUILD="$BUILD" fuzz-build >"$tmp/build.log" 2>&1; then
		bad "make fuzz-build failed"
		tail -n 30 "$tmp/build.log"
		exit 1
	fi
	for t in tests/fuzz/fuzz_*.c; do
		targets+=("$(basename "$t" .c)")
	done
	for t in "${targets[@]}"; do
		replay "$t"
	done
	for t in "${targets[@]}"; do
		fuzz "$t"
	done
	echo "$checks checks, $((checks - failures)) passed, $failures failed"
	[ "$failures" = 0 ]
}

main "$@"
