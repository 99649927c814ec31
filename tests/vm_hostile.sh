#!/usr/bin/env bash
# vm_hostile - a hostile third process on the host (tests/helpers/ivb_hostile) against the micro guest's responder under TCG, plain mode: a huge head written into the empty ring 0 of a slow rate point, a forged end marker on the echo ring of a size-latency point, and a kill -9 of host_writer in the middle of a 30 s stream; no attacked run is complete, and each time the guest serves a fresh run with --timeout 5s.
# timeout: 400
#
# The host-only cases (tests/hostile_host.sh) cover every attack; these
# check that the guest's statically linked responder, on BAR2 of the
# ivshmem device, behaves as the host-only one does.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin hostile
export IVSHMEM_MODE=plain
BIN=${BUILD:-build}
HOSTILE=$BIN/tests/helpers/ivb_hostile
[ -x "$HOSTILE" ] || skip "$HOSTILE is not built (make all)"
WRITER_LIMIT=60 # seconds an attacked host_writer may take before it counts as stuck

writer() { # writer NAME ARGS...: host_writer against the guest, bounded
	local name=$1
	shift
	timeout -k 1 "$WRITER_LIMIT" "$BIN/host_writer" --shm "$IVSHMEM_SHM_PATH" -o "$tmp/$name" --cpu none -q \
		"$@" >"$tmp/$name.out" 2>&1
}

ended() { [ "$1" != 124 ] && [ "$1" != 137 ]; } # not killed by timeout

status_of() {
	sed -n 's/^ *"status": "\(.*\)",*$/\1/p' "$tmp/$1/run.json" 2>/dev/null | head -n1
}

# fresh NAME: a run with --timeout 5s attaches and completes
fresh() {
	local rc=0
	writer "$1.fresh" -T 5s -t latency,sizelat -n 100 -w 10 --lat-sizes 64 --lat-iterations 100 || rc=$?
	if [ "$rc" = 0 ]; then
		ok "$1: then a fresh run with --timeout 5s attaches and completes"
	else
		bad "$1: then a fresh run with --timeout 5s fails (exit $rc): $(tail -n1 "$tmp/$1.fresh.out")"
	fi
}

# attack NAME WRITER-ARGS... -- HOSTILE-ARGS...: the attacker waits, host_writer runs; it must not complete
attack() {
	local name=$1 wargs=() hpid rc=0 status
	shift
	while [ "$1" != -- ]; do wargs+=("$1"); shift; done
	shift
	"$HOSTILE" --shm "$IVSHMEM_SHM_PATH" --deadline 60s "$@" >"$tmp/$name.hostile" 2>&1 &
	hpid=$!
	wait_line --pid "$hpid" "$tmp/$name.hostile" 'waiting for the moment' 10 || true
	writer "$name" -T 5s "${wargs[@]}" || rc=$?
	kill "$hpid" 2>/dev/null || true
	wait "$hpid" 2>/dev/null || true
	status=$(status_of "$name")
	echo "$name: $(grep -m1 'attack in' "$tmp/$name.hostile" | cut -c1-200)"
	echo "$name: host_writer exit $rc, status: $status"
	check "$name: the attack happened" grep -q 'attack in session' "$tmp/$name.hostile"
	check "$name: host_writer ended by itself" ended "$rc"
	if [ "$rc" != 0 ] && [ "$status" != complete ]; then
		ok "$name: the attacked run fails"
	else
		bad "$name: the attacked run exits $rc with status '$status'"
	fi
	fresh "$name"
}

./setup.sh >"$tmp/setup.out" 2>&1 || { cat "$tmp/setup.out"; exit 1; }
rc=0
writer control -T 10s -t latency,sizelat -n 200 --lat-sizes 64 --lat-iterations 200 || rc=$?
check "control: an unattacked run in the guest completes" [ "$rc" = 0 ]

# Defect: a huge head in the empty ring 0 sent the responder into garbage for ever.
attack rate-head-huge -t rate --rate 500 --rate-duration 2s -- \
	--at moved:100 --set ring0.head=0x4000000000000000 --when-empty 0 --count 20 --every 5ms
# Defect: a forged end marker on the echo ring made round trips that never happened.
attack sizelat-end-below -t sizelat --lat-sizes 64 --lat-iterations 5000 -- \
	--at moved:200 --set ring1.end=0

# Defect: a kill -9 initiator kept the responder in its point for the old timeout.
"$HOSTILE" --shm "$IVSHMEM_SHM_PATH" --deadline 60s --at moved:2000 >"$tmp/kill9.hostile" 2>&1 &
hpid=$!
wait_line --pid "$hpid" "$tmp/kill9.hostile" 'waiting for the moment' 10 || true
"$BIN/host_writer" --shm "$IVSHMEM_SHM_PATH" -o "$tmp/kill9" --cpu none -q -T 30s -t stream --sizes 64 \
	--direction h2g --duration 30s >"$tmp/kill9.out" 2>&1 &
wpid=$!
check "kill -9: the stream moved 2000 messages" wait_line "$tmp/kill9.hostile" 'moment came' 60
kill -9 "$wpid"
wait "$wpid" 2>/dev/null || true
wait "$hpid" 2>/dev/null || true
fresh "kill -9 of host_writer mid-stream (--timeout 30s)"

./setup.sh stop >/dev/null 2>&1
echo "$checks checks, $((checks - failures)) passed, $failures failed"
exit "$fail"
