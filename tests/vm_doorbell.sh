#!/usr/bin/env bash
# vm_doorbell - doorbell mode end to end under TCG: setup.sh starts the
# project's ivshmem server and a micro guest with ivshmem-doorbell behind
# QEMU's intel-iommu; guest_reader takes MSI-X interrupts through VFIO and
# rings the host through BAR0; host_writer is a server peer. Every frame is
# verified, the guest's vCPU is idle while it waits, and stop takes the
# server down with the VM.
# timeout: 300
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin doorbell
export IVSHMEM_MODE=doorbell IVSHMEM_ITERATIONS=300 IVSHMEM_FRAME_ITERATIONS=1

./setup.sh >"$tmp/setup.out" 2>&1 || { cat "$tmp/setup.out"; tail -20 "$tmp/vm/console.log"; exit 1; }
cat "$tmp/setup.out"
check "guest took the device through VFIO" grep -q 'IVB-GUEST-READY vfio:' "$tmp/vm/console.log"
check "status shows the server" bash -c "./setup.sh status | grep -q 'ivshmem server: running'"
check "socket is mode 0600" [ "$(stat -c %a "$IVSHMEM_SERVER_SOCKET")" = 600 ]
check "shared memory is mode 0600" [ "$(stat -c %a "$IVSHMEM_SHM_PATH")" = 600 ]

./run_test.sh >"$tmp/run.out" 2>&1 || { cat "$tmp/run.out"; fail=1; }
grep -E 'RTT us|vCPU thread' "$tmp/run.out" || true
check "3 frames verified in the guest" [ "$(awk -F, 'NR > 1 && $6 == 1' "$IVSHMEM_RESULTS/bandwidth_results.csv" | wc -l)" = 3 ]
check "300 latency samples" [ "$(($(wc -l <"$IVSHMEM_RESULTS/latency_results.csv") - 1))" = 300 ]
check "run.json: doorbell on both sides, idle vCPU" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "complete" and r["mode"] == "doorbell", r
assert r["guest_wait"] == "doorbell" and r["accel"] == "tcg"
assert r["host_peer_id"] != r["guest_peer_id"]
assert r["vcpu_idle_cpu_percent"] < 20, r["vcpu_idle_cpu_percent"]
print("vCPU while waiting: %.1f%% of a CPU" % r["vcpu_idle_cpu_percent"])
' "$IVSHMEM_RESULTS/run.json"
check "server log shows both peers" bash -c "grep -c 'connected' '$tmp/vm/server.log' | grep -qv '^[01]$'"

server=$(cat "$tmp/vm/server.pid")
./setup.sh stop >/dev/null
check "stop ends the server" bash -c "! kill -0 $server 2>/dev/null"
check "stop removes the socket" [ ! -e "$IVSHMEM_SERVER_SOCKET" ]
exit $fail
