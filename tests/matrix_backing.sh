#!/usr/bin/env bash
# matrix_backing - a backing the machine lacks is a cell of its own in a
# host-only matrix: its row says "not available" and why, and the cells the
# machine can give are measured. Here that is hugetlb when no hugetlbfs is
# mounted or it has no free pages (skipped, said why, when it has both).
# timeout: 120
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
if [ ! -x build/host_writer ] || [ ! -x build/guest_reader ]; then skip "build/host_writer and build/guest_reader not built (make all)"; fi
mount=$(awk '$3 == "hugetlbfs" { print $2; exit }' /proc/mounts)
if [ -n "$mount" ] && [ "$(awk '$1 == "HugePages_Free:" { print $2 }' /proc/meminfo)" -gt 64 ]; then
	skip "this machine has hugetlbfs at $mount with free huge pages: no backing is missing"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

rc=0
IVSHMEM_RESULTS=$tmp/m ./run_test.sh --host-only --matrix 'backing=shm,hugetlb' -t latency --iterations 300 -q \
	>"$tmp/out" 2>"$tmp/err" || rc=$?
check "the matrix runs both cells and exits 1 for the one that failed ($rc)" [ "$rc" = 1 ]
check "the shm cell is measured" grep -q '^1,shm,ok,latency,' "$tmp/m/matrix_results.csv"
check "the hugetlb cell is a row saying it is not available, and why ($(grep ',hugetlb,' "$tmp/m/matrix_results.csv" | head -n 1))" \
	grep -qE '^2,hugetlb,failed,.*not available: (no hugetlbfs is mounted|no free huge pages)' "$tmp/m/matrix_results.csv"
echo "$checks checks, $((checks - failures)) passed, $failures failed"
[ "$failures" = 0 ]
