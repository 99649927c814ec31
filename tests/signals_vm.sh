#!/usr/bin/env bash
# signals_vm - SIGINT, SIGTERM and SIGHUP end a run against a VM (the micro
# guest under TCG, plain mode) the same way as host-only (signals_host):
# one run of each workload (latency, frames, stream, sizelat, rate beside a
# stress-ng co-runner on the host), the signals taken in turn so each is
# sent at least once, to run_test.sh alone or to its whole process group,
# at a random moment of the run. Each: exit 128+N; host_writer and
# stress-ng gone; no temporary file; run.json saying interrupted; the guest
# still serving (a short run after the five completes). (setup.sh cut
# short mid-boot: vm_cleanup, and vm_intervm_faults for a pair.)
# timeout: 240
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin signals
export TMPDIR=$tmp/tmpdir
mkdir "$TMPDIR"

# A moment 1.2 to 3.7 s in: host_writer first measures the idle vCPU for a
# second, and the moment must fall in the workload.
stop_after_ms=1200 stop_ms=2500

./setup.sh >"$tmp/setup.out" 2>&1 || { cat "$tmp/setup.out"; exit 1; }
grep 'Guest ready' "$tmp/setup.out"

# Runs that would last a minute or more under TCG: any moment is mid-run.
declare -A run=(
	[latency]="env IVSHMEM_TESTS=latency IVSHMEM_ITERATIONS=100000 IVSHMEM_GAP=1ms ./run_test.sh"
	[frames]="env IVSHMEM_TESTS=frames IVSHMEM_FRAMES=640x480 IVSHMEM_FRAME_ITERATIONS=100000 ./run_test.sh"
	[stream]="env IVSHMEM_TESTS=stream ./run_test.sh --sizes 64 --direction h2g --duration 60s"
	[sizelat]="env IVSHMEM_TESTS=sizelat ./run_test.sh --lat-sizes 64 --lat-iterations 10M"
	[rate]="./run_test.sh --rate 1k --rate-duration 60s"
)
# The run has begun once run.json says "running"; the rate run beside its
# co-runner once the quiet point's row is on disk.
declare -A event=([latency]=run.json [frames]=run.json [stream]=run.json [sizelat]=run.json [rate]=run.json)
declare -A regex=([latency]='"status": "running"' [frames]='"status": "running"' [stream]='"status": "running"'
	[sizelat]='"status": "running"' [rate]='"status": "running"')
if command -v stress-ng >/dev/null; then
	# The point beside the co-runner outlasts the signal's random delay (at
	# most 0.9 s after the quiet row) by seconds, however loaded the machine.
	run[rate]="./run_test.sh --rate 1k --rate-duration 5s --interference cpu"
	event[rate]=rate_results.csv regex[rate]='^none,'
else
	echo "note: stress-ng not installed; the rate run has no co-runner"
fi

signals=(INT TERM HUP)
i=0
for w in latency frames stream sizelat rate; do
	sig=${signals[i % 3]} how=pid
	[ $((i % 2)) = 0 ] || how=group
	i=$((i + 1))
	out=$tmp/res-$w
	# shellcheck disable=SC2086 # the command's words
	stop_run "$w" "$sig" "$how" "$out/${event[$w]}" "${regex[$w]}" env IVSHMEM_RESULTS="$out" ${run[$w]}
	echo "$w, SIG$sig to the $how:"
	stopped_checks "$w" "$sig" "$out"
done

run after env IVSHMEM_TESTS=latency IVSHMEM_ITERATIONS=200 ./run_test.sh -q
check "the guest still serves: a run after them completes" [ "$rc" = 0 ]
exit $fail
