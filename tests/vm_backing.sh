#!/usr/bin/env bash
# vm_backing - the VM-level settings in a TCG micro guest: IVSHMEM_BAR_MAP=wc
# (the guest maps BAR2 through resource2_wc and says so; run.json records
# bar_map), IVSHMEM_BAR_MAP=vfio (BAR2 as VFIO's region 2, the plain device
# bound to vfio-pci behind QEMU's intel-iommu) and a backing other than shm that this machine can give
# (hugetlb in plain mode, with wc, where a hugetlbfs mount has 8 free 2 MiB
# pages; otherwise memfd, which is doorbell mode's: a second guest), each a
# short latency run whose run.json records backing, bar_map, cpu_pm and ple;
# a running VM with other settings is refused ("stop first"); what cannot
# be combined is one line, exit 2 (memfd in plain mode, wc in doorbell
# mode, cpu-pm under TCG). Its own state directory, shared memory and
# socket; no huge page is reserved here.
# timeout: 300
# shellcheck disable=SC2016 # bash -c programs are single-quoted on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin backing
export IVSHMEM_ITERATIONS=300 IVSHMEM_SHM_SIZE=16M IVSHMEM_TRANSPORTS=none
unset IVSHMEM_HUGEPAGES IVSHMEM_BACKING IVSHMEM_BAR_MAP IVSHMEM_CPU_PM

one_line() { [ "$1" = 2 ] && [ "$(grep -c . "$2")" = 1 ] && grep -q -- "$3" "$2"; }

# Refusals first: one line, exit 2, nothing started.
for bad in "IVSHMEM_BACKING=memfd IVSHMEM_MODE=plain|not available in plain mode" \
	"IVSHMEM_BAR_MAP=wc IVSHMEM_MODE=doorbell|not available in doorbell mode" \
	"IVSHMEM_CPU_PM=on IVSHMEM_ACCEL=tcg|needs KVM" "IVSHMEM_BAR_MAP=wb|expected uc, wc" \
	"IVSHMEM_BAR_MAP=vfio IVSHMEM_GUEST=cloud|micro guest only"; do
	rc=0
	# shellcheck disable=SC2086 # the settings are words on purpose
	env ${bad%%|*} ./setup.sh >"$tmp/bad.out" 2>&1 || rc=$?
	check "${bad%%|*}: exit 2, one line ($(head -n 1 "$tmp/bad.out"))" one_line "$rc" "$tmp/bad.out" "${bad#*|}"
done
check "nothing was started" bash -c '! ./setup.sh status >/dev/null 2>&1'

# latency_run NAME BACKING BAR_MAP : a short latency run into results/NAME,
# run.json checked.
latency_run() {
	rc=0
	IVSHMEM_RESULTS=$tmp/$1 ./run_test.sh -t latency --quiet >"$tmp/$1.out" 2>&1 || rc=$?
	check "$1: the latency run completes (exit $rc)" [ "$rc" = 0 ]
	[ "$rc" = 0 ] || sed 's/^/    | /' "$tmp/$1.out"
	check "$1: run.json records backing $2, bar_map $3, cpu_pm and ple" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1] + "/run.json"))
assert r["status"] == "complete" and r["accel"] == "tcg", r["status"]
assert r["backing"] == sys.argv[2], r["backing"]
assert r["bar_map"] == sys.argv[3], r["bar_map"]
assert r["cpu_pm"] == "not applicable under TCG", r["cpu_pm"]
assert r["ple"].startswith(("kvm_intel ", "kvm_amd ", "not available: ")), r["ple"]
' "$tmp/$1" "$2" "$3"
}

mount=$(awk '$3 == "hugetlbfs" { print $2; exit }' /proc/mounts)
free=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)
backing=memfd
[ -z "$mount" ] || [ ! -w "$mount" ] || [ "$free" -lt 8 ] || backing=hugetlb

echo "# plain mode, IVSHMEM_BAR_MAP=wc$([ "$backing" = hugetlb ] && echo ", IVSHMEM_BACKING=hugetlb on $mount")"
export IVSHMEM_BAR_MAP=wc
[ "$backing" = memfd ] || export IVSHMEM_BACKING=hugetlb
./setup.sh >"$tmp/setup.out" 2>&1 || { cat "$tmp/setup.out"; tail -20 "$tmp/vm/console.log"; exit 1; }
check "the guest mapped resource2_wc and said so" grep -aq 'IVB-GUEST-READY .*/resource2_wc .* bar_map wc' "$tmp/vm/console.log"
check "status shows the settings" bash -c "./setup.sh status | grep -q 'backing ${IVSHMEM_BACKING:-shm}, BAR2 mapped wc, cpu-pm not applicable under TCG'"
latency_run plain-wc "${IVSHMEM_BACKING:-shm}" wc
if [ "$backing" = hugetlb ]; then
	check "the shared memory is a file on $mount" grep -q "\"shm_path\": \"$mount/" "$tmp/plain-wc/run.json"
fi
rc=0
IVSHMEM_BAR_MAP=uc ./setup.sh >"$tmp/differ.out" 2>&1 || rc=$?
check "a VM with wc running: IVSHMEM_BAR_MAP=uc is refused (stop first)" bash -c \
	'[ "$1" = 1 ] && grep -q "BAR map wc (you asked for uc).*stop first" "$2"' _ "$rc" "$tmp/differ.out"
./setup.sh stop >/dev/null 2>&1

echo "# plain mode, IVSHMEM_BAR_MAP=vfio (BAR2 as VFIO's region 2, no interrupts)"
rm -f "$tmp/vm/console.log"
IVSHMEM_BAR_MAP=vfio IVSHMEM_BACKING=shm ./setup.sh >"$tmp/setup-vfio.out" 2>&1 ||
	{ cat "$tmp/setup-vfio.out"; tail -20 "$tmp/vm/console.log"; exit 1; }
check "the guest mapped BAR2 through VFIO and said so" grep -aq 'IVB-GUEST-READY vfio:.* (region 2, no interrupts) .* bar_map vfio' "$tmp/vm/console.log"
IVSHMEM_BAR_MAP=vfio latency_run plain-vfio shm vfio
./setup.sh stop >/dev/null 2>&1

if [ "$backing" = memfd ]; then
	echo "# doorbell mode, IVSHMEM_BACKING=memfd (no hugetlbfs mount with 8 free 2 MiB pages here: mount ${mount:-none}, $free free)"
	unset IVSHMEM_BAR_MAP
	export IVSHMEM_MODE=doorbell IVSHMEM_BACKING=memfd
	./setup.sh >"$tmp/setup-memfd.out" 2>&1 || { cat "$tmp/setup-memfd.out"; tail -20 "$tmp/vm/console.log"; exit 1; }
	check "the server holds a memfd, no file at IVSHMEM_SHM_PATH" bash -c \
		'grep -q "opened /proc/self/fd/" "$1/vm/server.log" && [ ! -e "$IVSHMEM_SHM_PATH" ]' _ "$tmp"
	latency_run doorbell-memfd memfd "uc (VFIO)"
	./setup.sh stop >/dev/null 2>&1
fi
check "stop left no QEMU of ours" bash -c '! ./setup.sh status >/dev/null 2>&1'
check "stop left no server of ours" [ "$(server_count "$IVSHMEM_SERVER_SOCKET")" = 0 ]

echo "$checks checks, $((checks - failures)) passed, $failures failed"
[ "$failures" = 0 ]
