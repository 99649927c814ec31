#!/usr/bin/env bash
# tests/run.sh - run the test suite: every compiled test in build/tests/,
# every tests/*.sh and every tests/test_*.py (through Debian's pytest), each
# under its own timeout. Output is shown only for tests that fail. Exit
# codes: 0 pass, 77 skip (the test prints why), anything else fails.
# Ends with "N passed, N failed, N skipped"; exits non-zero on any failure.
#
# A test sets its own timeout with a line "timeout: SECONDS" in its first
# 20 lines (default 120). Run a subset with: tests/run.sh NAME...
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PYTHON=${IVSHMEM_PYTHON:-/usr/bin/python3}
log_dir=$BUILD/test-logs
mkdir -p "$log_dir"

passed=0 failed=0 skipped=0
failures=()

test_timeout() {
	local src=$1 t
	t=$(head -n 20 "$src" 2>/dev/null | grep -oE 'timeout: *[0-9]+' | head -n1 | grep -oE '[0-9]+' || true)
	echo "${t:-120}"
}

run_one() {
	local name=$1 src=$2
	shift 2
	local t log rc start end
	t=$(test_timeout "$src")
	log=$log_dir/$name.log
	start=$(date +%s)
	set +e
	timeout --kill-after=10 "$t" "$@" >"$log" 2>&1
	rc=$?
	set -e
	end=$(date +%s)
	case $rc in
	0)
		passed=$((passed + 1))
		printf 'PASS  %-40s %3ss\n' "$name" $((end - start))
		;;
	77)
		skipped=$((skipped + 1))
		printf 'SKIP  %-40s %s\n' "$name" "$(tail -n1 "$log")"
		;;
	*)
		failed=$((failed + 1))
		failures+=("$name")
		[ "$rc" = 124 ] && echo "(timed out after ${t}s)" >>"$log"
		printf 'FAIL  %-40s %3ss (exit %s)\n' "$name" $((end - start)) "$rc"
		# The failed checks first (a long log's end may not hold them), then its end.
		grep -m 20 -E '^(FAIL|not ok)\b' "$log" | sed 's/^/    ! /' || true
		sed 's/^/    | /' "$log" | tail -n 60
		;;
	esac
}

selected() {
	local want=$1 n
	shift
	[ $# -eq 0 ] && return 0
	for n in "$@"; do [ "$n" = "$want" ] && return 0; done
	return 1
}

for src in tests/*.c; do
	[ -e "$src" ] || continue
	name=$(basename "$src" .c)
	selected "$name" "$@" || continue
	run_one "$name" "$src" "$BUILD/tests/$name"
done
for src in tests/*.sh; do
	if [ ! -e "$src" ] || [ "$src" = tests/run.sh ]; then continue; fi
	name=$(basename "$src" .sh)
	selected "$name" "$@" || continue
	run_one "$name" "$src" bash "$src"
done
for src in tests/test_*.py; do
	[ -e "$src" ] || continue
	name=$(basename "$src" .py)
	selected "$name" "$@" || continue
	run_one "$name" "$src" "$PYTHON" -m pytest -q -p no:cacheprovider "$src"
done

echo
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
