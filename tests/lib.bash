# shellcheck shell=bash
# tests/lib.sh - shared by the shell tests (sourced, not run: the runner
# runs only tests/*.sh files that are tests, and this one is not named so).
#
#   check WHAT CMD...     run CMD; print "ok" or "FAIL" and WHAT; a failure
#                         sets fail=1 and the test goes on (checks and
#                         failures count them; ok and bad record one)
#   skip REASON           exit 77 with the reason
#   wait_line FILE REGEX SECONDS [N]
#                         wait until N (1) lines of FILE (as it grows) match
#   wait_exit PID SECONDS wait until process PID (not our child) exits
#   vm_test_begin NAME    a private VM for this test: state directory, shared
#                         memory, socket and results under a temporary
#                         directory ($tmp), stopped and removed on exit

# shellcheck disable=SC2034 # fail is read by the test that sources this file
checks=0 failures=0 fail=0
ok() {
	checks=$((checks + 1))
	echo "ok   $*"
}
bad() {
	checks=$((checks + 1)) failures=$((failures + 1)) fail=1
	echo "FAIL $*"
}
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else bad "$what"; fi
}

skip() {
	echo "skip: $*"
	exit 77
}

wait_line() {
	local file=$1 re=$2 end=$((SECONDS + $3)) want=${4:-1} seen=0 fd pid line rc=1
	exec {fd}< <(exec timeout "$3" tail -n +1 -F "$file" 2>/dev/null)
	pid=$!
	while [ $SECONDS -lt "$end" ] && IFS= read -r -t $((end - SECONDS)) -u "$fd" line; do
		if [[ $line =~ $re ]] && ((++seen >= want)); then
			rc=0
			break
		fi
	done
	kill "$pid" 2>/dev/null || true
	exec {fd}<&-
	return $rc
}

wait_exit() {
	kill -0 "$1" 2>/dev/null || return 0
	timeout "$2" tail --pid="$1" -s 0.05 -f /dev/null
}

vm_test_begin() {
	command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed"
	tmp=$(mktemp -d)
	export IVSHMEM_STATE_DIR=$tmp/vm IVSHMEM_SHM_PATH=/dev/shm/ivb-test-$1-$$
	export IVSHMEM_SERVER_SOCKET=$tmp/vm/ivshmem.sock IVSHMEM_RESULTS=$tmp/results
	export IVSHMEM_ACCEL=${IVSHMEM_ACCEL:-tcg}
	trap vm_test_end EXIT
}

vm_test_end() {
	./setup.sh stop >/dev/null 2>&1 || true
	rm -rf "$tmp" "$IVSHMEM_SHM_PATH"
}
