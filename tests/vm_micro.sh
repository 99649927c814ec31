#!/usr/bin/env bash
# vm_micro - end to end under TCG: setup.sh boots the micro guest (its own
# state directory and shared-memory file, so a user's VM is untouched),
# run_test.sh runs a short latency and bandwidth test with every frame
# verified, a second setup.sh starts no second VM, status and stop work,
# and a VM killed mid-run leaves its partial results and a clear message.
# timeout: 300
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin micro
export IVSHMEM_ITERATIONS=2000 IVSHMEM_FRAME_ITERATIONS=1

./setup.sh >"$tmp/setup.out" 2>&1 || { cat "$tmp/setup.out"; exit 1; }
cat "$tmp/setup.out"
check "guest ready under tcg" grep -q 'Guest ready in .* under tcg' "$tmp/setup.out"
check "shared memory file is mode 0600" [ "$(stat -c %a "$IVSHMEM_SHM_PATH")" = 600 ]
pid=$(cat "$tmp/vm/qemu.pid")
./setup.sh >"$tmp/again.out" 2>&1
check "second setup.sh reuses the VM" grep -q "VM already running: pid $pid" "$tmp/again.out"
check "status names mode and accel" bash -c "./setup.sh status | grep -q 'mode plain, guest micro, accel tcg'"
rc=0
IVSHMEM_MODE=doorbell ./setup.sh >"$tmp/mode.out" 2>&1 || rc=$?
check "other mode refused while running" bash -c "[ $rc = 1 ] && grep -q 'stop first' '$tmp/mode.out'"

./run_test.sh >"$tmp/run.out" 2>&1 || { cat "$tmp/run.out"; fail=1; }
check "3 frames verified in the guest" [ "$(awk -F, 'NR > 1 && $6 == 1' "$IVSHMEM_RESULTS/bandwidth_results.csv" | wc -l)" = 3 ]
check "2000 latency samples" [ "$(($(wc -l <"$IVSHMEM_RESULTS/latency_results.csv") - 1))" = 2000 ]
check "run.json has the VM's provenance" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "complete" and r["accel"] == "tcg" and r["target"] == "vm"
assert r["guest"] == "micro" and r["mode"] == "plain" and "QEMU" in r["qemu_version"]
assert r["guest_kernel"].endswith("amd64") and r["frames_failed"] == 0
# It polls: far above the near 0 % of a doorbell guest, though on a busy
# host its pinned CPU gives it less than a whole CPU.
assert r["guest_wait"] == "plain" and r["vcpu_idle_cpu_percent"] > 25, r["vcpu_idle_cpu_percent"]
' "$IVSHMEM_RESULTS/run.json"
grep -A3 'RTT us' "$tmp/run.out" || true

# The VM dies mid-run: partial results stay, the message says so.
./build/host_writer --shm "$IVSHMEM_SHM_PATH" -o "$tmp/dead" -n 100000000 -w 0 --timeout 1s \
	--cpu none >"$tmp/dead.out" 2>&1 &
writer=$!
# Killed once rows are on disk (they reach it in batches of 256).
wait_line --pid "$writer" "$tmp/dead/latency_results.csv" '^[0-9]' 30 || true
kill -KILL "$pid"
rc=0
wait "$writer" || rc=$?
check "VM killed: host_writer exits 1 naming the message" bash -c "[ $rc = 1 ] && grep -q 'timeout after 1.0 s waiting for PROCESSED of latency message' '$tmp/dead.out'"
check "VM killed: partial latency CSV on disk" [ "$(wc -l <"$tmp/dead/latency_results.csv")" -gt 1 ]
check "status after the VM died" bash -c "! ./setup.sh status >/dev/null"
./setup.sh stop >/dev/null
check "pidfile removed" [ ! -e "$tmp/vm/qemu.pid" ]
exit $fail
