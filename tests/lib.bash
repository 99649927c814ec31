# shellcheck shell=bash
# tests/lib.bash - shared by the shell tests (sourced, not run: the runner
# runs only tests/*.sh files that are tests, and this one is not named so).
#
#   check WHAT CMD...     run CMD; print "ok" or "FAIL" and WHAT; a failure
#                         sets fail=1 and the test goes on (checks and
#                         failures count them; ok and bad record one)
#   skip REASON           exit 77 with the reason
#   wait_line, wait_exit  from vm/wait.bash (the launcher's own): wait for
#                         lines of a growing file, or a process exit, with
#                         a deadline
#   run NAME CMD...       run CMD with its output in $tmp/NAME.out (also
#                         shown, indented), its exit status in rc and its
#                         duration in ms
#   server_count SOCKET   how many ivshmem_server processes serve SOCKET
#   vm_test_begin NAME    a private VM for this test: state directory, shared
#                         memory, socket and results under a temporary
#                         directory ($tmp), stopped and removed on exit
#   host_test_begin NAME  a host-only protocol test: $tmp, a 64 MiB shared-
#                         memory file $shm and $BIN, removed on exit with the
#                         reader; start_reader [ARGS] starts guest_reader on
#                         $shm (pid in reader_pid, log $tmp/reader.log) and
#                         waits for its readiness line; stop_reader ends it

# shellcheck disable=SC2034 # fail is read by the test that sources this file

# shellcheck source=vm/wait.bash
. "$(dirname "${BASH_SOURCE[0]}")/../vm/wait.bash"

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

run() {
	local name=$1 start
	shift
	rc=0
	start=$(date +%s%N)
	"$@" >"$tmp/$name.out" 2>&1 || rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	sed 's/^/    | /' "$tmp/$name.out"
}

server_count() {
	local p n=0
	for p in $(pgrep -x ivshmem_server || true); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$1" && n=$((n + 1))
	done
	echo "$n"
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

host_test_begin() {
	BIN=${BUILD:-build}
	tmp=$(mktemp -d)
	shm=$(mktemp "/dev/shm/ivb-test-$1.XXXXXX")
	reader_pid=''
	trap host_test_end EXIT
	truncate -s 64M "$shm"
}

host_test_end() {
	[ -z "$reader_pid" ] || kill -9 "$reader_pid" 2>/dev/null || true
	rm -rf "$tmp" "$shm"
}

start_reader() {
	: >"$tmp/reader.log"
	"$BIN/guest_reader" --shm "$shm" --idle-exit 60s --silence 30s "$@" >>"$tmp/reader.log" 2>&1 &
	reader_pid=$!
	# Its readiness line first (bounded), so short deadlines measure the
	# protocol, not process start-up on a loaded machine.
	wait_line --pid "$reader_pid" "$tmp/reader.log" IVB-GUEST-READY 20 && return
	echo "guest_reader did not start:"
	cat "$tmp/reader.log"
	exit 1
}

stop_reader() {
	kill "$reader_pid" 2>/dev/null || true
	wait "$reader_pid" 2>/dev/null || true
	reader_pid=''
}
