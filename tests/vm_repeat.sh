#!/usr/bin/env bash
# vm_repeat - run_test.sh --repeat against the micro guest under TCG: each
# repetition a new session of the same guest; with --repeat-reboot a
# freshly booted guest for every repetition after the first, and the guest
# left running after; --repeat with --transports or --host-only
# --repeat-reboot refused in one line. Boots the micro guest three times.
# timeout: 300
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin repeat
export IVSHMEM_TRANSPORTS=none
PY=/usr/bin/python3
# rep_field DIR K EXPR : EXPR of repetition K's run.json r.
rep_field() { "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1/rep-$2/run.json" "$3"; }

run boot ./setup.sh
[ "$rc" = 0 ] || { bad "boot failed"; exit 1; }
qemu=$(cat "$tmp/vm/qemu.pid")

run two ./run_test.sh --test latency,sizelat --iterations 300 --lat-sizes 64,4k --lat-iterations 100 --quiet --repeat 2
check "--repeat 2: exit 0" [ "$rc" = 0 ]
check "two repetitions, both complete, merged complete" \
	[ "$(rep_field "$IVSHMEM_RESULTS" 1 'r["status"]') $(rep_field "$IVSHMEM_RESULTS" 2 'r["status"]') $("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["status"])' "$IVSHMEM_RESULTS/run.json")" = "complete complete complete" ]
check "same guest for both (QEMU $qemu still runs)" bash -c "[ \"\$(cat '$tmp/vm/qemu.pid')\" = $qemu ] && kill -0 $qemu"
check "size_latency_results.csv has both repetitions" \
	[ "$(tail -n +2 "$IVSHMEM_RESULTS/size_latency_results.csv" | cut -d, -f1 | sort -u | paste -sd,)" = 1,2 ]

run reboot ./run_test.sh --test latency --iterations 300 --quiet --repeat 2 --repeat-reboot
check "--repeat 2 --repeat-reboot: exit 0" [ "$rc" = 0 ]
check "a new guest for the second repetition (QEMU $qemu gone, another runs)" \
	bash -c "! kill -0 $qemu 2>/dev/null && [ -s '$tmp/vm/qemu.pid' ] && kill -0 \$(cat '$tmp/vm/qemu.pid')"
check "the two repetitions had different guest_reader processes or boots" \
	[ "$(rep_field "$IVSHMEM_RESULTS" 1 'r["boot_seconds"] + "/" + str(r["run_id"])')" != "$(rep_field "$IVSHMEM_RESULTS" 2 'r["boot_seconds"] + "/" + str(r["run_id"])')" ]

run refused ./run_test.sh --transports serial --repeat 2
check "--transports with --repeat: exit 2, one line" bash -c "[ $rc = 2 ] && [ \$(wc -l <'$tmp/refused.out') = 1 ]"
run refused2 ./run_test.sh --host-only --test latency --repeat 2 --repeat-reboot
check "--host-only --repeat-reboot: exit 2, one line" bash -c "[ $rc = 2 ] && [ \$(wc -l <'$tmp/refused2.out') = 1 ]"
exit $fail
