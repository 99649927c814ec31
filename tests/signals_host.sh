#!/usr/bin/env bash
# signals_host - SIGINT, SIGTERM and SIGHUP end a host-only run
# (./run_test.sh --host-only) the same way, at a random moment of each
# workload: all 15 pairs of signal and workload (latency, frames, stream,
# sizelat, rate beside a stress-ng co-runner), sent to run_test.sh alone or,
# every other run, to its whole process group (as a Ctrl-C or timeout(1)
# sends it). Each: exit 128+N; host_writer, guest_reader and stress-ng
# gone; no shared memory or reader log left; run.json saying interrupted.
# Then each signal at a random moment of the start-up (before or just after
# the reader is ready: no run.json, or one saying interrupted), and
# timeout(1) itself on a stream. (The same in a VM: signals_vm and
# vm_intervm_faults.)
# timeout: 240
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
if [ ! -x build/host_writer ] || [ ! -x build/guest_reader ]; then skip "build/host_writer and build/guest_reader not built (make all)"; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# run_test.sh's temporary files (the reader's log, its marks) go here: it
# must be empty after every run.
export TMPDIR=$tmp/tmpdir
mkdir "$TMPDIR"
last_cpu=$(($(nproc) - 1))

# Runs that would last a minute or more: any moment of them is mid-run.
declare -A run=(
	[latency]="env IVSHMEM_TESTS=latency IVSHMEM_ITERATIONS=100000 IVSHMEM_GAP=1ms ./run_test.sh --host-only"
	[frames]="env IVSHMEM_TESTS=frames IVSHMEM_FRAMES=640x480 IVSHMEM_FRAME_ITERATIONS=100000 ./run_test.sh --host-only"
	[stream]="env IVSHMEM_TESTS=stream ./run_test.sh --host-only --sizes 64 --direction h2g --duration 60s"
	[sizelat]="env IVSHMEM_TESTS=sizelat ./run_test.sh --host-only --lat-sizes 64 --lat-iterations 10M"
	[rate]="./run_test.sh --host-only --rate 1k --rate-duration 60s"
)
# The run has begun once run.json says "running" (host_writer's output
# reaches a file in blocks); the rate run once the quiet point's row is on
# disk: the co-runner starts next.
declare -A event=([latency]=run.json [frames]=run.json [stream]=run.json [sizelat]=run.json [rate]=run.json)
declare -A regex=([latency]='"status": "running"' [frames]='"status": "running"' [stream]='"status": "running"'
	[sizelat]='"status": "running"' [rate]='"status": "running"')
if command -v stress-ng >/dev/null; then
	# The quiet run first (a short one), then the signal beside the co-runner.
	run[rate]="./run_test.sh --host-only --rate 1k --rate-duration 2s --interference cpu --interference-cpu $last_cpu"
	event[rate]=rate_results.csv regex[rate]='^none,'
else
	echo "note: stress-ng not installed; the rate runs have no co-runner"
fi

signals=(INT TERM HUP)
i=0
for w in latency frames stream sizelat rate; do
	for sig in "${signals[@]}"; do
		how=pid
		[ $((i % 2)) = 0 ] || how=group
		i=$((i + 1))
		out=$tmp/res-$w-$sig
		# shellcheck disable=SC2086 # the command's words
		stop_run "$w-$sig" "$sig" "$how" "$out/${event[$w]}" "${regex[$w]}" env IVSHMEM_RESULTS="$out" ${run[$w]}
		echo "$w, SIG$sig to the $how:"
		stopped_checks "$w-$sig" "$sig" "$out"
	done
done

# A signal at a random moment of the start-up: between run_test.sh's start
# and run.json's first line, measured first.
t0=$(date +%s%N)
# shellcheck disable=SC2086 # the command's words
env --default-signal=TERM IVSHMEM_RESULTS="$tmp/res-calibrate" ${run[latency]} >/dev/null 2>&1 &
calibrate=$!
wait_line "$tmp/res-calibrate/run.json" running 30 || true
startup_ms=$((($(date +%s%N) - t0) / 1000000))
kill -TERM "$calibrate"
wait "$calibrate" || true
echo "start-up: ${startup_ms} ms to run.json"
for sig in "${signals[@]}"; do
	out=$tmp/res-start-$sig
	# shellcheck disable=SC2086
	stop_run "start-$sig" "$sig" pid "" "" env IVSHMEM_RESULTS="$out" ${run[latency]}
	echo "start-up, SIG$sig:"
	stopped_checks "start-$sig" "$sig" "$out" early
done

# timeout(1): SIGTERM to run_test.sh and its group; --preserve-status
# passes run_test.sh's status on.
out=$tmp/res-timeout
rc=0
IVSHMEM_RESULTS=$out IVSHMEM_TESTS=stream timeout --preserve-status 2 ./run_test.sh --host-only --sizes 64 \
	--direction h2g --duration 60s -q >"$tmp/timeout.out" 2>&1 || rc=$?
check "timeout(1): exit 143 ($rc)" [ "$rc" = 143 ]
check "timeout(1): no host_writer left" bash -c "! pgrep -f -- 'host_write[r] --output $out' >/dev/null"
check "timeout(1): no temporary file left" [ -z "$(ls -A "$TMPDIR")" ]
check "timeout(1): run.json says interrupted" grep -q '"status": "interrupted' "$out/run.json"
exit $fail
