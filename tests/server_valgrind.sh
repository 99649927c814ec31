#!/usr/bin/env bash
# server_valgrind: server_protocol and server_robust under valgrind: no memory errors, no leaks, no fd left open.
# timeout: 300
#
# Both tests run the server library in their own process, so valgrind sees
# the server and the client library together. --track-fds lists the fds
# open at exit; any beyond stdin/stdout/stderr and those inherited from the
# runner is a leak.
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CYCLES=${IVS_VALGRIND_CYCLES:-200}
checks=0 failures=0

command -v valgrind >/dev/null || { echo "SKIP: valgrind is not installed"; exit 77; }
for t in server_protocol server_robust; do
	[ -x "$BUILD/tests/$t" ] || { echo "FAIL: $BUILD/tests/$t is missing (make all)"; exit 1; }
done
if [ "$(nm "$BUILD/tests/server_robust" 2>/dev/null | grep -c __asan_init)" != 0 ]; then
	echo "SKIP: $BUILD is an ASan build; valgrind cannot run it"
	exit 77
fi
tmp=$(mktemp -d /tmp/ivs_valgrind.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# fds_leaked LOG: fds valgrind lists as open at exit, not inherited.
fds_leaked() {
	awk '/== Open [^:]* [0-9]+:/ { if (fd != "") print fd; fd = $0; next }
	     /<inherited from parent>/ { fd = ""; next }
	     END { if (fd != "") print fd }' "$1"
}

# run_one NAME ENV...: one test under valgrind.
run_one() {
	local name=$1 rc=0 log=$tmp/$1.vg
	shift
	env "$@" valgrind --quiet --track-fds=yes --leak-check=full \
		--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
		--log-file="$log" "$BUILD/tests/$name" >"$tmp/$name.out" 2>&1 || rc=$?
	checks=$((checks + 1))
	if [ "$rc" = 0 ] && [ -z "$(fds_leaked "$log")" ]; then
		echo "ok   $name under valgrind: $(tail -n1 "$tmp/$name.out")"
	else
		failures=$((failures + 1))
		echo "FAIL $name under valgrind (exit $rc)"
		# The failed checks first (with what a misbehaving cycle said), then the end.
		grep -E '^FAIL |misbehaved' "$tmp/$name.out" | head -n 20 | sed 's/^/    failed: /'
		sed 's/^/    /' "$tmp/$name.out" | tail -n 20
		sed 's/^/    vg: /' "$log" | tail -n 40
	fi
}

run_one server_protocol
run_one server_robust IVS_ROBUST_CYCLES="$CYCLES"

echo "$checks checks, $((checks - failures)) passed, $failures failed"
[ "$failures" = 0 ]
