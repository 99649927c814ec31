#!/usr/bin/env bash
# vm_concurrency - one user of a VM at a time: while a run is going, a second
# run_test.sh, setup.sh start and setup.sh stop are refused at once, naming
# the run (pid, start time), and the guest is not touched; status says who
# is busy; once the run ends the VM is free again. Two doorbell setups at
# once: the second is refused naming the first, and one server runs, not two.
# Boots the micro guest twice under TCG.
# timeout: 300
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin concurrency
lock=$tmp/vm/lock
first=""
stop_first() {
	local w
	[ -n "$first" ] || return 0
	w=$(pgrep -P "$first" -x host_writer || true)
	[ -z "$w" ] || kill -TERM "$w" 2>/dev/null || true
	wait "$first" 2>/dev/null || true
	first=""
}
trap 'stop_first; vm_test_end' EXIT


./setup.sh >"$tmp/setup.out" 2>&1 || { cat "$tmp/setup.out"; exit 1; }
qemu=$(cat "$tmp/vm/qemu.pid")

# 1. A long run holds the VM (1 ms between messages: minutes).
IVSHMEM_ITERATIONS=1000000 IVSHMEM_GAP=1ms ./run_test.sh --test latency >"$tmp/first.out" 2>&1 &
first=$!
wait_line "$lock" '^what=a run$' 20 || { bad "the run did not take the lock"; cat "$tmp/first.out"; exit 1; }
wait_line --pid "$first" "$tmp/first.out" 'attached' 30 || true
started=$(sed -n 's/^started=//p' "$lock")

busy="busy: a run (pid $first, started $started) is using this VM"
run second env IVSHMEM_RESULTS="$tmp/second" ./run_test.sh
check "second run: refused at once, exit 1 ($ms ms)" bash -c "[ $rc = 1 ] && [ $ms -lt 2000 ]"
check "second run: names the first" grep -qF "run_test: $busy" "$tmp/second.out"
check "second run: wrote no results" [ ! -e "$tmp/second" ]
run stop ./setup.sh stop
check "stop during a run: refused naming the run" bash -c "[ $rc = 1 ] && grep -qF 'setup: $busy' '$tmp/stop.out'"
check "stop during a run: QEMU still runs" kill -0 "$qemu"
run start ./setup.sh
check "setup.sh during a run: refused naming the run" bash -c "[ $rc = 1 ] && grep -qF 'setup: $busy' '$tmp/start.out'"
run status ./setup.sh status
check "status during a run: says who is busy, exit 0" bash -c "[ $rc = 0 ] && grep -qF 'VM: $busy' '$tmp/status.out' && grep -q 'VM: running' '$tmp/status.out'"
check "the first run is still going" kill -0 "$first"

# 2. The run ends (interrupted): the VM is free again.
stop_first
check "the first run kept its partial results" [ -s "$IVSHMEM_RESULTS/latency_results.csv" ]
run third env IVSHMEM_RESULTS="$tmp/third" IVSHMEM_ITERATIONS=500 IVSHMEM_FRAME_ITERATIONS=1 IVSHMEM_FRAMES=1080p ./run_test.sh
check "after the run: a new run works" bash -c "[ $rc = 0 ] && [ -s '$tmp/third/run.json' ]"
run stop ./setup.sh stop
check "after the run: stop works" bash -c "[ $rc = 0 ] && ! kill -0 $qemu 2>/dev/null"

# 3. Two doorbell setups at once: one boots, the other is refused.
export IVSHMEM_MODE=doorbell
# Nobody holds the lock now. Start from an empty file: its holder rewrites
# it in place, and a rewrite no shorter than the old text ("setup.sh stop")
# is invisible to tail -F, which only sees a file grow or shrink.
: >"$lock"
./setup.sh >"$tmp/b.out" 2>&1 &
b=$!
wait_line "$lock" '^what=setup.sh start$' 20 || bad "the first setup did not take the lock"
run c ./setup.sh
check "second doorbell setup: refused at once ($ms ms)" bash -c "[ $rc = 1 ] && [ $ms -lt 2000 ] && grep -q 'busy: setup.sh start (pid $b, started ' '$tmp/c.out'"
rc=0
wait "$b" || rc=$?
check "first doorbell setup: booted" bash -c "[ $rc = 0 ] && grep -q 'Guest ready' '$tmp/b.out'"
check "one ivshmem server, not two" [ "$(server_count "$IVSHMEM_SERVER_SOCKET")" = 1 ]
./setup.sh stop >/dev/null
check "stop leaves no server behind" [ "$(server_count "$IVSHMEM_SERVER_SOCKET")" = 0 ]
exit $fail
