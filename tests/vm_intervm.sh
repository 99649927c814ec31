#!/usr/bin/env bash
# vm_intervm - the vm-vm topology end to end under TCG: two micro guests on
# one ivshmem device, guest A running host_writer, guest B guest_reader, the
# host only orchestrating. Plain mode and doorbell mode: every frame
# verified, every latency row there, the pair's topology, CPUs and peer ids
# in run.json, each vCPU pinned to its own CPU. A guest killed mid-run (B in
# plain mode, A in doorbell mode) gives a clear error, partial results and no
# hang; an interrupted run stops in the guest. A bad topology, the cloud
# guest, and one topology asked for while the other runs get one line each;
# a boot that misses its deadline names both guests and leaves nothing.
# timeout: 400
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
# shellcheck source=vm/settings.bash
. vm/settings.bash
vm_test_begin intervm
export IVSHMEM_TOPOLOGY=vm-vm IVSHMEM_FRAMES=64x64 IVSHMEM_FRAME_ITERATIONS=4
IVSHMEM_VCPU_CPU_A=$(settings_first_cpu) IVSHMEM_VCPU_CPU_B=$(settings_last_cpu)
export IVSHMEM_VCPU_CPU_A IVSHMEM_VCPU_CPU_B
state=$IVSHMEM_STATE_DIR

# one_line STATUS PATTERN NAME : the last run (lib.bash's run) exited STATUS
# with one line holding PATTERN.
one_line() {
	[ "$rc" = "$1" ] && [ "$(wc -l <"$tmp/$3.out")" = 1 ] && grep -qF -- "$2" "$tmp/$3.out"
}

# qemu_pinned PID CPU : every vCPU thread of QEMU PID may run on CPU only.
qemu_pinned() {
	local task n=0
	for task in /proc/"$1"/task/*; do
		[[ $(cat "$task/comm") == CPU\ * ]] || continue
		[ "$(taskset -pc "${task##*/}" | sed 's/.*: //')" = "$2" ] || return 1
		n=$((n + 1))
	done
	[ "$n" -gt 0 ]
}

# A run long enough to be cut short: a million round trips 1 ms apart.
long=(env IVSHMEM_ITERATIONS=1000000 IVSHMEM_GAP=1ms)

# rows_on_disk RUNNER OUT : once run_test.sh (pid RUNNER, output OUT) has
# started a run, wait until latency rows reach the share.
rows_on_disk() {
	local csv
	wait_line --pid "$1" "$2" 'guest_reader attached' 60 || return 1
	# The run's directory is there before guest A is asked; its CSV soon.
	csv=$(echo "$state"/a/share/*)/out/latency_results.csv
	wait_line --pid "$1" "$csv" '^[0-9]+,' 60
}

# run_json FILE PYTHON : assertions on run.json.
run_json() { /usr/bin/python3 -c "import json, sys; r = json.load(open(sys.argv[1])); $2" "$1"; }

# ---- settings and refusals (no boot) ---------------------------------------
run topology env IVSHMEM_TOPOLOGY=mesh ./setup.sh
check "bad topology: one line, exit 2" one_line 2 "setup: IVSHMEM_TOPOLOGY=mesh: expected host-vm, vm-vm" topology
run cloud env IVSHMEM_GUEST=cloud ./setup.sh
check "cloud guest with vm-vm: one line, exit 2" one_line 2 "setup: IVSHMEM_GUEST=cloud: does not combine with IVSHMEM_TOPOLOGY=vm-vm" cloud
run runtopo env IVSHMEM_TOPOLOGY=ring ./run_test.sh
check "run_test, bad topology: one line, exit 2" one_line 2 "run_test: IVSHMEM_TOPOLOGY=ring: expected host-vm, vm-vm" runtopo
check "nothing was created" [ ! -e "$state" ]
run norun ./run_test.sh
check "run_test with no pair: one line, exit 1" one_line 1 "run_test: no VM pair running: start it with IVSHMEM_TOPOLOGY=vm-vm ./setup.sh" norun

# A boot that misses its deadline names both guests and leaves nothing.
run late env IVSHMEM_BOOT_TIMEOUT=1 ./setup.sh
check "missed deadline: exit 1 naming guest A" bash -c "[ $rc = 1 ] && grep -q 'guest A (initiator) failed: not ready within 1s' '$tmp/late.out'"
check "missed deadline: naming guest B" grep -q 'guest B (responder) failed: not ready within 1s' "$tmp/late.out"
check "missed deadline: no QEMU left" bash -c "! pgrep -f -- '$state/[ab]/qemu.pid' >/dev/null"
check "missed deadline: no shared memory left" [ ! -e "$IVSHMEM_SHM_PATH" ]

# A host-vm VM recorded as running here (a real QEMU, paused, recorded by the
# launcher's own functions): a vm-vm request is refused in one line.
qemu-system-x86_64 -S -machine none -nodefaults -display none -daemonize -pidfile "$state/qemu.pid"
# shellcheck disable=SC2016 # run by that bash
bash -c '. vm/vm.sh && vm_proc_record "$VM_QEMU_ID" "$(cat "$VM_PIDFILE")" &&
	printf "VM_TOPOLOGY=host-vm\nVM_MODE=plain\n" >"$VM_ENV"'
hostvm=$(cat "$state/qemu.pid")
run busy ./setup.sh
check "vm-vm while a host-vm VM runs: one line, exit 1" one_line 1 "setup: a host-vm VM is running here (plain mode, QEMU pid $hostvm); IVSHMEM_TOPOLOGY=vm-vm needs it stopped: ./setup.sh stop first" busy
run busyrun ./run_test.sh
check "run_test vm-vm while a host-vm VM runs: one line, exit 1" one_line 1 "run_test: a host-vm VM is running here" busyrun
env IVSHMEM_TOPOLOGY=host-vm ./setup.sh stop >/dev/null
check "stop ends the host-vm VM" bash -c "! kill -0 $hostvm 2>/dev/null"

# ---- plain mode ------------------------------------------------------------
export IVSHMEM_MODE=plain
./setup.sh >"$tmp/setup-plain.out" 2>&1 || { cat "$tmp/setup-plain.out"; exit 1; }
cat "$tmp/setup-plain.out"
check "plain: both guests ready under tcg" grep -q 'Guests A and B ready in .* under tcg' "$tmp/setup-plain.out"
a=$(cat "$state/a/qemu.pid") b=$(cat "$state/b/qemu.pid")
run status ./setup.sh status
check "status: both guests with pid, CPU and peer id" bash -c "[ $rc = 0 ] &&
	grep -q 'guest A (initiator): QEMU pid $a, vCPU pinned to host CPU $IVSHMEM_VCPU_CPU_A, peer id none' '$tmp/status.out' &&
	grep -q 'guest B (responder): QEMU pid $b, vCPU pinned to host CPU $IVSHMEM_VCPU_CPU_B, peer id none' '$tmp/status.out'"
check "guest A's vCPU pinned to CPU $IVSHMEM_VCPU_CPU_A" qemu_pinned "$a" "$IVSHMEM_VCPU_CPU_A"
check "guest B's vCPU pinned to CPU $IVSHMEM_VCPU_CPU_B" qemu_pinned "$b" "$IVSHMEM_VCPU_CPU_B"
run hostvm env IVSHMEM_TOPOLOGY=host-vm ./setup.sh
check "host-vm while the pair runs: one line, exit 1" one_line 1 "setup: a vm-vm pair is running here (guest A pid $a, guest B pid $b); you asked for host-vm" hostvm
run hostvmrun env IVSHMEM_TOPOLOGY=host-vm ./run_test.sh
check "run_test host-vm while the pair runs: one line, exit 1" one_line 1 "run_test: a vm-vm pair is running here" hostvmrun

run plain env IVSHMEM_ITERATIONS=2000 ./run_test.sh
check "plain: exit 0" [ "$rc" = 0 ]
check "plain: 4 frames verified in guest B" [ "$(awk -F, 'NR > 1 && $6 == 1' "$IVSHMEM_RESULTS/bandwidth_results.csv" | wc -l)" = 4 ]
check "plain: 2000 latency rows" [ "$(($(wc -l <"$IVSHMEM_RESULTS/latency_results.csv") - 1))" = 2000 ]
check "plain: run.json records the pair" run_json "$IVSHMEM_RESULTS/run.json" "
assert r['status'] == 'complete' and r['mode'] == 'plain' and r['frames_failed'] == 0, r['status']
assert r['topology'] == 'vm-vm' and r['target'] == 'vm-vm' and r['guest_wait'] == 'plain'
assert r['guest_a_vcpu_cpu'] == '$IVSHMEM_VCPU_CPU_A' and r['guest_b_vcpu_cpu'] == '$IVSHMEM_VCPU_CPU_B'
assert r['guest_a_qemu_pid'] == '$a' and r['guest_b_qemu_pid'] == '$b'
assert r['guest_a_peer_id'] == 'none' and r['guest_b_peer_id'] == 'none'
assert r['files']['latency_results.csv'] == 2000 and r['files']['bandwidth_results.csv'] == 4, r['files']"
check "plain: host_writer's output kept, naming the host's results directory" grep -qF "Results in $IVSHMEM_RESULTS/" "$IVSHMEM_RESULTS/initiator.log"
check "plain: the share is left empty" [ -z "$(ls -A "$state/a/share")" ]

# Ctrl-C (SIGINT to the whole process group, in a session of its own)
# stops the run in guest A, which says so in run.json.
setsid env --default-signal=INT "${long[@]}" IVSHMEM_RESULTS="$tmp/int" ./run_test.sh -t latency >"$tmp/int.out" 2>&1 &
runner=$!
rows_on_disk "$runner" "$tmp/int.out" || bad "interrupted run: no latency rows"
kill -INT -- "-$runner"
start=$SECONDS rc=0
wait "$runner" || rc=$?
check "interrupted run: exit 130 within 20 s ($((SECONDS - start)) s)" bash -c "[ $rc = 130 ] && [ $((SECONDS - start)) -lt 20 ]"
check "interrupted run: run.json says so, its rows kept" run_json "$tmp/int/run.json" "
n = sum(1 for _ in open('$tmp/int/latency_results.csv')) - 1
assert r['status'].startswith('interrupted during latency message') and r['files']['latency_results.csv'] == n > 0, (r['status'], n)"

# Guest B dies mid-run: host_writer's deadline in guest A ends the run.
"${long[@]}" IVSHMEM_TIMEOUT=2s IVSHMEM_RESULTS="$tmp/dead" ./run_test.sh -t latency >"$tmp/deadb.out" 2>&1 &
runner=$!
rows_on_disk "$runner" "$tmp/deadb.out" || bad "B killed: no latency rows before the kill"
kill -KILL "$b"
start=$SECONDS rc=0
wait "$runner" || rc=$?
cat "$tmp/deadb.out"
check "B killed: exit 1 within 30 s ($((SECONDS - start)) s)" bash -c "[ $rc = 1 ] && [ $((SECONDS - start)) -lt 30 ]"
check "B killed: host_writer names the message" grep -q 'timeout after 2.0 s waiting for PROCESSED of latency message' "$tmp/deadb.out"
check "B killed: run_test names guest B" grep -q "run_test: guest B (the responder, QEMU pid $b) died during the run; partial results are in $tmp/dead/" "$tmp/deadb.out"
check "B killed: partial latency rows, listed in run.json" run_json "$tmp/dead/run.json" "
n = sum(1 for _ in open('$tmp/dead/latency_results.csv')) - 1
assert n > 0 and r['files']['latency_results.csv'] == n, (n, r['files'])
assert r['status'].startswith('timeout after 2.0 s'), r['status']"
run deadstatus ./setup.sh status
check "B killed: status exit 1 naming guest B" bash -c "[ $rc = 1 ] && grep -q 'NOT usable: the QEMU of guest B (responder) is not running' '$tmp/deadstatus.out'"
./setup.sh stop >/dev/null
check "stop: guest A's QEMU gone" bash -c "! kill -0 $a 2>/dev/null"
check "stop: shared memory removed" [ ! -e "$IVSHMEM_SHM_PATH" ]

# ---- doorbell mode ---------------------------------------------------------
export IVSHMEM_MODE=doorbell
./setup.sh >"$tmp/setup-doorbell.out" 2>&1 || { cat "$tmp/setup-doorbell.out"; exit 1; }
cat "$tmp/setup-doorbell.out"
a=$(cat "$state/a/qemu.pid") b=$(cat "$state/b/qemu.pid")
peer_a=$(sed -n 's/.*guest A (initiator): .*peer id \([0-9]*\)$/\1/p' "$tmp/setup-doorbell.out")
peer_b=$(sed -n 's/.*guest B (responder): .*peer id \([0-9]*\)$/\1/p' "$tmp/setup-doorbell.out")
check "doorbell: two peer ids, distinct ($peer_a, $peer_b)" bash -c "[ -n '$peer_a' ] && [ -n '$peer_b' ] && [ '$peer_a' != '$peer_b' ]"
check "doorbell: guest B took the device through VFIO as peer $peer_b" grep -q "IVB-GUEST-READY vfio:.*(peer $peer_b," "$state/b/console.log"
check "doorbell: status shows the server" bash -c "./setup.sh status | grep -q 'ivshmem server: running'"

run doorbell env IVSHMEM_ITERATIONS=300 ./run_test.sh
check "doorbell: exit 0" [ "$rc" = 0 ]
check "doorbell: 4 frames verified in guest B" [ "$(awk -F, 'NR > 1 && $6 == 1' "$IVSHMEM_RESULTS/bandwidth_results.csv" | wc -l)" = 4 ]
check "doorbell: 300 latency rows" [ "$(($(wc -l <"$IVSHMEM_RESULTS/latency_results.csv") - 1))" = 300 ]
check "doorbell: both guests sleep on MSI-X and ring each other's peer id" run_json "$IVSHMEM_RESULTS/run.json" "
assert r['status'] == 'complete' and r['mode'] == 'doorbell' and r['frames_failed'] == 0, r['status']
assert r['wait'] == 'vfio-msix' and r['guest_wait'] == 'doorbell'
assert (r['host_peer_id'], r['guest_peer_id']) == ($peer_a, $peer_b), (r['host_peer_id'], r['guest_peer_id'])
assert (r['guest_a_peer_id'], r['guest_b_peer_id']) == ('$peer_a', '$peer_b')"
grep -A3 'RTT us' "$tmp/doorbell.out" || true

# Guest A dies mid-run: the host sees its QEMU exit and keeps what was written.
"${long[@]}" IVSHMEM_RESULTS="$tmp/deada" ./run_test.sh -t latency >"$tmp/deada.out" 2>&1 &
runner=$!
rows_on_disk "$runner" "$tmp/deada.out" || bad "A killed: no latency rows before the kill"
kill -KILL "$a"
start=$SECONDS rc=0
wait "$runner" || rc=$?
check "A killed: exit 1 within 10 s ($((SECONDS - start)) s)" bash -c "[ $rc = 1 ] && [ $((SECONDS - start)) -lt 10 ]"
check "A killed: run_test names guest A" grep -q "run_test: guest A (the initiator, QEMU pid $a) died during the run; partial results are in $tmp/deada/" "$tmp/deada.out"
check "A killed: run.json still says running; the rows are kept" run_json "$tmp/deada/run.json" "
n = sum(1 for _ in open('$tmp/deada/latency_results.csv')) - 1
assert r['status'] == 'running' and 'latency_results.csv' in r['files'] and n > 0, (r, n)"

server=$(cat "$state/server.pid")
./setup.sh stop >/dev/null
check "stop: guest B's QEMU gone" bash -c "! kill -0 $b 2>/dev/null"
check "stop ends the server" bash -c "! kill -0 $server 2>/dev/null"
check "stop removes the shared memory" [ ! -e "$IVSHMEM_SHM_PATH" ]
exit $fail
