#!/usr/bin/env bash
# sanitizers: the server tests, the ring and the host-only protocol, stream and chain tests (chain_sink included) built with ASan and UBSan (make SANITIZE=1) run clean: they pass, and no sanitizer reports an error or a leak.
# timeout: 300
#
# Usage: tests/sanitizers.sh [TARGET...]
#   A TARGET is what to build and run under the sanitizers: a program the
#   Makefile builds, named by its path in the build directory (default:
#   tests/server_protocol tests/server_robust), or a test script tests/*.sh,
#   which is then run with BUILD pointing at the sanitized build (after
#   `make all` there), so every program it starts is sanitized too.
# The sanitized build goes to $SAN_BUILD ($BUILD/san), apart from the
# normal one. Every sanitizer report, from the target or from any process
# it starts, is written to a log file of its own (log_path): a target
# fails if it exits non-zero or leaves such a file.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash # check, ok, bad, skip
BUILD=${BUILD:-build}
SAN_BUILD=${SAN_BUILD:-$BUILD/san}
DEFAULT_TARGETS=(tests/server_protocol tests/server_robust tests/unit_ring tests/protocol_proof
	tests/unit_hist tests/protocol_host.sh tests/stream_host.sh tests/chain_host.sh)
TARGET_TIMEOUT=${SAN_TARGET_TIMEOUT:-120}

tmp=$(mktemp -d /tmp/ivs_san.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# build_targets TARGET...: the programs named, or everything for a script.
build_targets() {
	local t goals=()
	for t in "$@"; do
		case $t in
		*.sh) goals+=(all) ;;
		*) goals+=("$SAN_BUILD/$t") ;;
		esac
	done
	make -s -j2 BUILD="$SAN_BUILD" SANITIZE=1 "${goals[@]}" >"$tmp/build.log" 2>&1
}

# run_target TARGET: run it with every sanitizer report going to its own
# file; pass if it exits 0 and no report was written.
run_target() {
	local t=$1 name rc=0 reports
	name=$(basename "$t" .sh)
	mkdir -p "$tmp/$name"
	export ASAN_OPTIONS="log_path=$tmp/$name/report:detect_leaks=1:halt_on_error=1"
	export UBSAN_OPTIONS="log_path=$tmp/$name/report:print_stacktrace=1"
	case $t in
	*.sh) BUILD=$SAN_BUILD timeout "$TARGET_TIMEOUT" bash "$t" >"$tmp/$name.out" 2>&1 || rc=$? ;;
	*) timeout "$TARGET_TIMEOUT" "$SAN_BUILD/$t" >"$tmp/$name.out" 2>&1 || rc=$? ;;
	esac
	unset ASAN_OPTIONS UBSAN_OPTIONS
	reports=$(find "$tmp/$name" -name 'report*' | sort)
	if [ "$rc" = 0 ] && [ -z "$reports" ]; then
		ok "$t under ASan+UBSan: $(tail -n1 "$tmp/$name.out")"
		return
	fi
	bad "$t under ASan+UBSan: exit $rc, $(echo "$reports" | grep -c . || true) sanitizer report(s)"
	sed 's/^/    | /' "$tmp/$name.out" | tail -n 20
	local r
	for r in $reports; do
		sed 's/^/    san: /' "$r" | head -n 40
	done
}

main() {
	local targets=("$@") t
	[ ${#targets[@]} -gt 0 ] || targets=("${DEFAULT_TARGETS[@]}")
	echo "# building ${targets[*]} with SANITIZE=1 into $SAN_BUILD"
	if ! build_targets "${targets[@]}"; then
		bad "make SANITIZE=1 failed"
		tail -n 30 "$tmp/build.log"
		exit 1
	fi
	for t in "${targets[@]}"; do
		run_target "$t"
	done
	echo "$checks checks, $((checks - failures)) passed, $failures failed"
	[ "$failures" = 0 ]
}

main "$@"
