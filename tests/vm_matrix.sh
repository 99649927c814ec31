#!/usr/bin/env bash
# vm_matrix - a VM-level axis under TCG (./run_test.sh --matrix 'vcpus=1,2'
# crossed with a workload axis): the guest is booted once per vCPU count,
# not once per cell, every cell is measured in a guest that has the vCPUs
# its label says (run.json's vcpus), matrix.json counts the boots, and the
# guest the matrix started is stopped at the end.
# timeout: 400
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
if [ ! -x build/host_writer ]; then skip "build/host_writer not built (make all)"; fi
[ -r /boot/vmlinuz-"$(uname -r)" ] || ls /boot/vmlinuz-* >/dev/null 2>&1 || skip "no guest kernel in /boot (linux-image-amd64)"
vm_test_begin matrix
rc=0
./run_test.sh --matrix 'vcpus=1,2 iterations=100,200' -t latency --warmup 10 -q >"$tmp/matrix.out" 2>&1 || rc=$?
check "vcpus=1,2 x iterations=100,200: exit 0 ($rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -n 30 "$tmp/matrix.out"
out=$IVSHMEM_RESULTS
check "two boots for four cells (one reboot between the vCPU counts)" /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
assert m["reboots"] == 2 and [b["vm_settings"] for b in m["boots"]] == ["IVSHMEM_VCPUS=1", "IVSHMEM_VCPUS=2"], m["boots"]
assert [c["boot"] for c in m["cells"]] == [1, 1, 2, 2], m["cells"]
assert m["counts"]["ok"] == 4 and m["guest_after"] == "stopped", (m["counts"], m["guest_after"])
' "$out/matrix.json"
for cell in cell-001-vcpus=1,iterations=100 cell-002-vcpus=1,iterations=200 cell-003-vcpus=2,iterations=100 cell-004-vcpus=2,iterations=200; do
	want=${cell#*vcpus=} want=${want%%,*}
	check "$cell: measured in a guest of $want vCPU(s)" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "complete" and str(r["vcpus"]) == sys.argv[2] and r["accel"] == "tcg", r
' "$out/$cell/run.json" "$want"
done
check "a latency p50 per cell in matrix_results.csv" /usr/bin/python3 -c '
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["figure"] == "latency p50"]
assert sorted((r["vcpus"], r["iterations"]) for r in rows) == [("1", "100"), ("1", "200"), ("2", "100"), ("2", "200")]
assert all(float(r["value"]) > 0 for r in rows)
' "$out/matrix_results.csv"
check "the guest the matrix started is stopped" bash -c './setup.sh status 2>/dev/null | grep -q "not running"'
grep '^== ' "$tmp/matrix.out" || true

# cpu-pm=on is KVM's: where KVM cannot run a guest (no /dev/kvm, or a KVM boot that
# failed here before, as the cache records), its cell is a row saying so, and no boot.
# (IVSHMEM_ACCEL=tcg, as the VM tests have it, would refuse the value: exit 2.)
mkdir -p "$tmp/cache" && echo "2026-01-01T00:00:00Z on kernel test" >"$tmp/cache/kvm-failed"
rc=0
IVSHMEM_ACCEL=auto IVSHMEM_CACHE_DIR=$tmp/cache IVSHMEM_RESULTS=$tmp/pm ./run_test.sh --matrix 'cpu-pm=on' -t latency \
	--iterations 100 -q >"$tmp/pm.out" 2>&1 || rc=$?
check "cpu-pm=on without a working KVM: exit 1 ($rc)" [ "$rc" = 1 ]
check "its row says not available and why ($(tail -n 1 "$tmp/pm/matrix_results.csv" 2>/dev/null))" \
	grep -qE '^1,on,failed,.*IVSHMEM_CPU_PM=on: not available: needs KVM' "$tmp/pm/matrix_results.csv"
# shellcheck disable=SC2016 # a bash -c program
check "no boot for it" bash -c '! ls "$1"/boot-*.log >/dev/null 2>&1' _ "$tmp/pm"
exit $fail
