#!/usr/bin/env bash
# vm_stream - the stream and size-latency workloads end to end in a TCG
# guest, plain mode (both sides spin) and doorbell mode (VFIO MSI-X in the
# guest, hybrid waiting, doorbells suppressed): every point measured, no bad
# message, the responder's CPU and doorbells recorded.
# timeout: 400
# shellcheck disable=SC2016,SC2054 # awk programs are single-quoted; option lists hold commas
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin stream
args=(-t stream,sizelat --sizes 64,4k,256k --duration 100ms --lat-sizes 8,64k --lat-iterations 100 -q)

for mode in plain doorbell; do
	export IVSHMEM_MODE=$mode
	./setup.sh >"$tmp/setup-$mode.out" 2>&1 || { cat "$tmp/setup-$mode.out"; exit 1; }
	extra=()
	[ "$mode" = plain ] || extra=(--wait hybrid:50us)
	rc=0
	./run_test.sh "${args[@]}" "${extra[@]}" >"$tmp/run-$mode.out" 2>&1 || rc=$?
	check "$mode: exit 0" [ "$rc" = 0 ]
	[ "$rc" = 0 ] || tail -n 20 "$tmp/run-$mode.out"
	csv=$IVSHMEM_RESULTS/stream_results.csv
	check "$mode: 9 stream points" [ "$(($(wc -l <"$csv") - 1))" = 9 ]
	check "$mode: no bad message, every rate positive" awk -F, 'NR > 1 && ($12 != 0 || $10 <= 0) { exit 1 }' "$csv"
	check "$mode: the guest's CPU per message is recorded" awk -F, 'NR > 1 && $14 <= 0 { exit 1 }' "$csv"
	check "$mode: 2 size-latency rows, no bad message" awk -F, 'NR > 1 { n++; if ($12 != 0) exit 1 } END { exit n != 2 }' "$IVSHMEM_RESULTS/size_latency_results.csv"
	if [ "$mode" = doorbell ]; then
		check "doorbell: waits hybrid, recorded" grep -q '"wait_policy": "hybrid:50us"' "$IVSHMEM_RESULTS/run.json"
		# A streaming consumer rarely sleeps: far fewer doorbells than messages.
		check "doorbell: suppression keeps h2g 64 B under 0.5 doorbells a message" awk -F, '$1 == "h2g" && $2 == 64 { exit !($18 < 0.5) }' "$csv"
	fi
	grep -E '^  (h2g|g2h|bidir) ' "$tmp/run-$mode.out" || true
	./setup.sh stop >/dev/null 2>&1
done
exit $fail
