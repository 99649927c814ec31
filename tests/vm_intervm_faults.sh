#!/usr/bin/env bash
# vm_intervm_faults - a vm-vm pair (plain, TCG) when things go wrong:
#  - setup.sh cut short by SIGHUP mid-boot: exit 129, nothing left;
#  - SIGINT, SIGTERM and SIGHUP at a random moment of each workload
#    (latency, frames, stream, sizelat, rate; the signals in turn, to
#    run_test.sh alone or to its process group): guest A is asked to stop,
#    exit 128+N, nothing left running, the share emptied, run.json saying
#    interrupted;
#  - a results directory on a full file system: exit 1 with one line, the
#    earlier run's files there untouched, this run's kept whole in the share;
#  - links planted at results/run.json and results/initiator.log: refused
#    with one line before the run, their targets untouched; one at the old
#    initiator.log.tmp is no longer written through;
#  - --interference: one line saying why not, exit 2; a bad option: only
#    host_writer's own lines, exit 2, the results directory untouched.
# timeout: 300
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin faults
full_mounted=''
unmount_full() {
	[ -z "$full_mounted" ] || umount "$tmp/full" 2>/dev/null || true
	vm_test_end
}
trap unmount_full EXIT
export IVSHMEM_TOPOLOGY=vm-vm IVSHMEM_MODE=plain TMPDIR=$tmp/tmpdir
mkdir "$TMPDIR"
state=$IVSHMEM_STATE_DIR

# 0. setup.sh cut short by SIGHUP while the pair boots (guest A's QEMU
#    has started): exit 129, both guests gone with the shared memory.
stop_run boot HUP pid "$state/a/qemu.pid" '^[0-9]+' ./setup.sh
tail -n 2 "$tmp/boot.out"
check "setup.sh, SIGHUP mid-boot: exit 129 ($rc) within 30 s ($secs s)" test "$rc" = 129 -a "$secs" -lt 30
check "setup.sh, SIGHUP mid-boot: says so" grep -q 'interrupted (SIGHUP): stopping the guests that were booting' "$tmp/boot.out"
check "setup.sh, SIGHUP mid-boot: no QEMU left" bash -c "! pgrep -f -- '$state/[ab]/qemu.pi[d]' >/dev/null"
check "setup.sh, SIGHUP mid-boot: no shared memory, no records left" test ! -e "$IVSHMEM_SHM_PATH" -a ! -e "$state/a/qemu.id" -a ! -e "$state/b/qemu.id"

./setup.sh >"$tmp/setup.out" 2>&1 || { cat "$tmp/setup.out"; exit 1; }
grep 'ready in' "$tmp/setup.out"

json() { /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
lines() { grep -c . "$tmp/$1.out" || true; }
share_empty() { [ -z "$(ls -A "$state/a/share")" ] && [ ! -e "$state/a/initiator.log" ]; }

# 1. Signals. Runs that would last a minute or more under TCG; the run has
#    begun once host_writer (in guest A) says the responder attached.
declare -A run=(
	[latency]="env IVSHMEM_TESTS=latency IVSHMEM_ITERATIONS=100000 IVSHMEM_GAP=1ms ./run_test.sh"
	[frames]="env IVSHMEM_TESTS=frames IVSHMEM_FRAMES=640x480 IVSHMEM_FRAME_ITERATIONS=100000 ./run_test.sh"
	[stream]="env IVSHMEM_TESTS=stream ./run_test.sh --sizes 64 --direction h2g --duration 60s"
	[sizelat]="env IVSHMEM_TESTS=sizelat ./run_test.sh --lat-sizes 64 --lat-iterations 10M"
	[rate]="./run_test.sh --rate 1k --rate-duration 60s"
)
# A moment 0.1 to 2.6 s after the responder attached (no idle vCPU is
# measured in vm-vm).
stop_ms=2500
signals=(HUP INT TERM)
i=0
for w in latency frames stream sizelat rate; do
	sig=${signals[i % 3]} how=group
	[ $((i % 2)) = 0 ] || how=pid
	i=$((i + 1))
	out=$tmp/res-$w
	# shellcheck disable=SC2086 # the command's words
	stop_run "$w" "$sig" "$how" "$tmp/$w.out" 'guest_reader attached' env IVSHMEM_RESULTS="$out" ${run[$w]}
	echo "$w, SIG$sig to the $how:"
	stopped_checks "$w" "$sig" "$out"
	check "$w: SIG$sig: the share is emptied, the log collected" bash -c "$(declare -f share_empty); state='$state' share_empty && [ -s '$out/initiator.log' ]"
done

# 2. A full results file system: the rows do not fit.
mkdir "$tmp/full"
if mount -t tmpfs -o size=256k tmpfs "$tmp/full" 2>/dev/null; then
	full_mounted=1
	export IVSHMEM_TESTS=latency
	run small env IVSHMEM_RESULTS="$tmp/full/r" IVSHMEM_ITERATIONS=200 ./run_test.sh -q
	check "full disk: a small run fits (exit $rc)" [ "$rc" = 0 ]
	id=$(json "$tmp/full/r/run.json" run_id)
	cp "$tmp/full/r/latency_results.csv" "$tmp/small.csv"
	run full env IVSHMEM_RESULTS="$tmp/full/r" IVSHMEM_ITERATIONS=20000 ./run_test.sh -q
	check "full disk: exit 1 ($rc) with one line" test "$rc" = 1 -a "$(lines full)" = 1
	check "full disk: the line says why and where the results are" grep -q "run_test: cannot collect the results into $tmp/full/r: cannot copy .*No space left on device; this run's files are kept in $state/a/share/.*/out" "$tmp/full.out"
	check "full disk: the earlier run's run.json and rows untouched" test "$(json "$tmp/full/r/run.json" run_id)" = "$id" -a "$(json "$tmp/full/r/run.json" status)" = complete
	check "full disk: ... byte for byte" cmp -s "$tmp/small.csv" "$tmp/full/r/latency_results.csv"
	check "full disk: no staging directory left" test -z "$(find "$tmp/full/r" -name '.*')"
	check "full disk: this run's rows kept whole in the share" test "$(cat "$state"/a/share/*/out/latency_results.csv | wc -l)" = 20001
	check "full disk: ... and its run.json says complete" grep -q '"status": "complete"' "$state"/a/share/*/out/run.json
	umount "$tmp/full" && full_mounted=''
	unset IVSHMEM_TESTS
else
	echo "note: cannot mount a small tmpfs (not root?); full-disk case not run"
fi

# 3. Links planted in the results directory.
export IVSHMEM_TESTS=latency IVSHMEM_ITERATIONS=200 IVSHMEM_RESULTS=$tmp/links
mkdir -p "$IVSHMEM_RESULTS"
echo precious >"$tmp/precious"
for name in initiator.log run.json; do
	ln -s "$tmp/precious" "$IVSHMEM_RESULTS/$name"
	before=$(ls -A "$state/a/share")
	run "link-$name" ./run_test.sh -q
	check "link at $name: refused, exit 1 ($rc), one line" test "$rc" = 1 -a "$(lines "link-$name")" = 1
	check "link at $name: the line names it" grep -q "run_test: $IVSHMEM_RESULTS/$name is a symbolic link (to $tmp/precious): refusing to write through it" "$tmp/link-$name.out"
	check "link at $name: nothing ran, the target is untouched" test "$(ls -A "$state/a/share")" = "$before" -a "$(cat "$tmp/precious")" = precious
	rm "$IVSHMEM_RESULTS/$name"
done
ln -s "$tmp/precious" "$IVSHMEM_RESULTS/initiator.log.tmp"
run oldtmp ./run_test.sh
check "link at initiator.log.tmp: the run completes (exit $rc)" [ "$rc" = 0 ]
check "link at initiator.log.tmp: its target untouched" [ "$(cat "$tmp/precious")" = precious ]
check "link at initiator.log.tmp: initiator.log is a file of its own" test -f "$IVSHMEM_RESULTS/initiator.log" -a ! -L "$IVSHMEM_RESULTS/initiator.log"
id=$(json "$IVSHMEM_RESULTS/run.json" run_id)

# 4. What vm-vm does not do, and bad options: one line, or host_writer's own.
run intf ./run_test.sh --rate 1k --interference cpu
check "--interference: exit 2 ($rc), one line" test "$rc" = 2 -a "$(lines intf)" = 1
check "--interference: says why (the co-runners would run in guest A)" grep -q "run_test: --interference: not supported in vm-vm: the co-runners would run inside guest A" "$tmp/intf.out"
run bogus ./run_test.sh --bogus
check "bad option: exit 2 ($rc)" [ "$rc" = 2 ]
check "bad option: host_writer's lines only" test "$(grep -vEc '^(/bin/)?host_writer: |^Try .host_writer --help' "$tmp/bogus.out")" = 0 -a "$(lines bogus)" -ge 1
check "bad option: the results directory untouched" test "$(json "$IVSHMEM_RESULTS/run.json" run_id)" = "$id"
check "bad option: the share emptied" share_empty
exit $fail
