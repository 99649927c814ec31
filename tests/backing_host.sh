#!/usr/bin/env bash
# backing_host - IVSHMEM_BACKING host-only: each backing this machine has
# (shm on /dev/shm, memfd, hugetlb on a hugetlbfs mount with enough free
# huge pages) runs a short latency and stream run, and run.json records
# the backing, bar_map "not applicable: host mapping", cpu_pm and the
# host's PLE settings; hugetlb where the machine cannot give it is one line
# and exit 2 saying why; bad values (IVSHMEM_BACKING, IVSHMEM_HUGEPAGES
# without hugetlb) are one line and exit 2. No huge page is reserved here.
# timeout: 180
# shellcheck disable=SC2016 # bash -c programs are single-quoted on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export IVSHMEM_SHM_SIZE=16M
unset IVSHMEM_HUGEPAGES

# one_line RC FILE WORDS : exit status 2 and a single line holding WORDS.
one_line() { [ "$1" = 2 ] && [ "$(grep -c . "$2")" = 1 ] && grep -q -- "$3" "$2"; }

run_backing() {
	local b=$1
	rc=0
	IVSHMEM_BACKING=$b IVSHMEM_RESULTS=$tmp/$b ./run_test.sh --host-only -t latency,stream \
		--iterations 500 --sizes 64,64k --duration 50ms --quiet >"$tmp/$b.out" 2>&1 || rc=$?
	check "$b: the run completes (exit $rc)" [ "$rc" = 0 ]
	[ "$rc" = 0 ] || sed 's/^/    | /' "$tmp/$b.out"
	check "$b: run.json records the backing, the mapping, cpu-pm and PLE" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1] + "/run.json"))
assert r["status"] == "complete" and r["backing"] == sys.argv[2], r.get("backing")
assert r["bar_map"] == "not applicable: host mapping", r["bar_map"]
assert r["cpu_pm"] == "not applicable: no guest", r["cpu_pm"]
assert r["ple"].startswith(("kvm_intel ple_gap=", "kvm_amd pause_filter_count=", "not available: ")), r["ple"]
' "$tmp/$b" "$b"
	check "$b: latency and stream rows" bash -c '[ "$(($(wc -l <"$1/latency_results.csv") - 1))" = 500 ] &&
		[ "$(($(wc -l <"$1/stream_results.csv") - 1))" -ge 2 ]' _ "$tmp/$b"
}

echo "# shm and memfd: every machine has them"
run_backing shm
check "shm: the shared memory was a file on /dev/shm" grep -q '"shm_path": "/dev/shm/ivshmem-bench-host\.' "$tmp/shm/run.json"
run_backing memfd
check "memfd: host_writer mapped the reader's memfd" grep -q '"shm_path": "fd [0-9]* (/memfd:ivshmem-bench' "$tmp/memfd/run.json"

echo "# hugetlb: a hugetlbfs mount and 8 free 2 MiB pages, or its reason"
mount=$(awk '$3 == "hugetlbfs" { print $2; exit }' /proc/mounts)
kb=$(awk '$1 == "Hugepagesize:" { print $2 }' /proc/meminfo)
free=$(cat "/sys/kernel/mm/hugepages/hugepages-${kb}kB/free_hugepages" 2>/dev/null || echo 0)
if [ -n "$mount" ] && [ -w "$mount" ] && [ "$kb" = 2048 ] && [ "$free" -ge 8 ]; then
	run_backing hugetlb
	check "hugetlb: the file was on $mount" grep -q "\"shm_path\": \"$mount/" "$tmp/hugetlb/run.json"
else
	rc=0
	IVSHMEM_BACKING=hugetlb ./run_test.sh --host-only -t latency --quiet >"$tmp/nohuge.out" 2>&1 || rc=$?
	check "hugetlb without a mount or free huge pages: exit 2, one line 'not available: ...' ($(cat "$tmp/nohuge.out"))" \
		one_line "$rc" "$tmp/nohuge.out" "IVSHMEM_BACKING=hugetlb: not available: no"
	echo "skip: the hugetlb run: no hugetlbfs mount with 8 free 2 MiB pages here (mount ${mount:-none}, $free free)"
fi

echo "# bad values: one line, exit 2, nothing started"
rc=0
IVSHMEM_BACKING=tmpfs ./run_test.sh --host-only -t latency --quiet >"$tmp/bad.out" 2>&1 || rc=$?
check "IVSHMEM_BACKING=tmpfs: exit 2, one line naming the valid ones" one_line "$rc" "$tmp/bad.out" "expected shm, memfd, hugetlb"
rc=0
IVSHMEM_BACKING=shm IVSHMEM_HUGEPAGES=4 ./run_test.sh --host-only -t latency --quiet >"$tmp/pages.out" 2>&1 || rc=$?
check "IVSHMEM_HUGEPAGES without hugetlb: exit 2, one line" one_line "$rc" "$tmp/pages.out" "IVSHMEM_HUGEPAGES=4"
rc=0
IVSHMEM_BACKING=memfd IVSHMEM_MODE=plain IVSHMEM_STATE_DIR=$tmp/vm ./setup.sh >"$tmp/plainmemfd.out" 2>&1 || rc=$?
check "a VM with memfd in plain mode: exit 2, one line saying why" one_line "$rc" "$tmp/plainmemfd.out" "not available in plain mode"

echo "$checks checks, $((checks - failures)) passed, $failures failed"
[ "$failures" = 0 ]
