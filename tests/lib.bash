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
#   stop_run NAME SIGNAL HOW FILE REGEX CMD...
#                         a run cut short by a signal: CMD (a run_test.sh
#                         run) in a session of its own, its output in
#                         $tmp/NAME.out; once a line of FILE (its output,
#                         run.json, a CSV) matches REGEX (60 s at most; an
#                         empty FILE: at once), a random moment later:
#                         $stop_after_ms (100) plus up to $stop_ms ms (800),
#                         or without FILE 0 to $startup_ms ms (50)
#                         its descendants are noted in stopped_procs (the
#                         shared memory of a host guest_reader among them
#                         in stopped_shm) and SIGNAL goes to it alone
#                         (HOW=pid) or to its whole process group
#                         (HOW=group, as a Ctrl-C or timeout(1) sends it);
#                         rc is its exit status, secs how long it took to
#                         end after the signal
#   procs_left WORD...    those of stopped_procs' words still running
#   stopped_checks NAME SIGNAL DIR [early]
#                         what stop_run left: exit status 128+N within
#                         30 s; nothing it started still running; no
#                         temporary file (TMPDIR empty, its shared memory
#                         gone); DIR/run.json saying the run was
#                         interrupted (early: or no run.json at all)
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

# proc_start PID : field 22 of /proc/PID/stat (its start time), or fail.
proc_start() {
	local stat fields
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	read -r -a fields <<<"${stat##*)}"
	echo "${fields[19]}"
}

# descendants PID : "pid:start:comm" of every process below PID.
descendants() {
	local p
	for p in $(ps -e -o pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END { n = split(kids[root], q, " "); for (i = 1; i <= n; i++) { print q[i]; m = split(kids[q[i]], r, " "); for (j = 1; j <= m; j++) q[++n] = r[j] } }'); do
		echo "$p:$(proc_start "$p" || echo gone):$(cat "/proc/$p/comm" 2>/dev/null || echo gone)"
	done
}

procs_left() {
	local w pid start
	for w; do
		pid=${w%%:*} start=${w#*:} start=${start%%:*}
		[ "$(proc_start "$pid" 2>/dev/null)" = "$start" ] || continue
		[ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" != Z ] || continue
		echo "$w"
	done
}

stop_run() {
	local name=$1 sig=$2 how=$3 file=$4 event=$5 pid w t0
	shift 5
	# With the default dispositions: a background command of a script has
	# SIGINT ignored, and a shell cannot trap what it was started ignoring.
	setsid env --default-signal=INT,TERM,HUP "$@" >"$tmp/$name.out" 2>&1 &
	pid=$!
	stopped_procs=() stopped_shm=""
	if [ -z "$file" ]; then
		# A moment of the start-up: 0 to startup_ms ms after it.
		sleep "$(awk -v ms="$((RANDOM % (${startup_ms:-50} + 1)))" 'BEGIN { printf "%.3f", ms / 1000 }')"
	else
		if ! wait_line --pid "$pid" "$file" "$event" 60; then
			echo "$name: no line matching '$event' in $file before it ended or within 60 s:"
			sed 's/^/    | /' "$tmp/$name.out"
		fi
		# The moment is chosen at random, not waited for: any moment of
		# the run must end the same way.
		sleep "$(awk -v ms="$((${stop_after_ms:-100} + RANDOM % ${stop_ms:-800}))" 'BEGIN { printf "%.3f", ms / 1000 }')"
	fi
	mapfile -t stopped_procs < <(descendants "$pid")
	for w in "${stopped_procs[@]}"; do
		[ "${w##*:}" = guest_reader ] || continue
		stopped_shm=$(tr '\0' '\n' <"/proc/${w%%:*}/cmdline" 2>/dev/null | sed -n '/^--shm$/{n;p;q}')
	done
	t0=$(date +%s%N)
	if [ "$how" = group ]; then
		kill -s "$sig" -- "-$pid" || echo "$name: it had already ended"
	else
		kill -s "$sig" "$pid" || echo "$name: it had already ended"
	fi
	rc=0
	wait "$pid" || rc=$?
	secs=$((($(date +%s%N) - t0) / 1000000000))
}

stopped_checks() {
	local name=$1 sig=$2 dir=$3 early=${4:-} n left
	n=$((128 + $(kill -l "$sig")))
	tail -n 4 "$tmp/$name.out" | sed 's/^/    | /'
	check "$name: SIG$sig: exit $n ($rc) within 30 s ($secs s)" test "$rc" = "$n" -a "$secs" -lt 30
	left=$(procs_left "${stopped_procs[@]}")
	check "$name: SIG$sig: nothing it started still runs (of ${#stopped_procs[@]}: ${stopped_procs[*]##*:})${left:+; left: $left}" test -z "$left"
	check "$name: SIG$sig: no temporary file left" test -z "$(ls -A "${TMPDIR:-/tmp}")" -a ! -e "${stopped_shm:-/nonexistent}"
	if [ -n "$early" ] && [ ! -e "$dir/run.json" ]; then
		ok "$name: SIG$sig: no run.json (stopped before host_writer wrote one)"
		return
	fi
	check "$name: SIG$sig: run.json says interrupted" /usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["status"]
print("    status: " + s)
assert "interrupt" in s and s not in ("running", "complete"), s
' "$dir/run.json"
}
