#!/usr/bin/env bash
# vm_chain - the forwarding chain end to end in a TCG guest: host_writer's
# sender puts messages on ring A, guest_reader in the guest forwards each
# onto ring B (as it is, checked, or modified and checked again), and
# host_writer's second thread verifies every one; plain mode (everyone
# spins) and doorbell mode (hybrid waiting): every point measured, no bad
# message at either stage, the receiver's CPU recorded. The plain guest is
# booted with IVSHMEM_TOPOLOGY=chain and run without --test, as `make test`
# runs it: the chain is what it runs, and run.json says topology chain.
# timeout: 400
# shellcheck disable=SC2016,SC2054 # awk programs are single-quoted; option lists hold commas
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin chain
args=(--chain-sizes 64,4k --chain-batch 1,16 --chain-duration 100ms -q)
unset IVSHMEM_TESTS
cols='BEGIN { FS = "," } NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }'

for mode in plain doorbell; do
	export IVSHMEM_MODE=$mode
	topology=chain extra=()
	[ "$mode" = plain ] || topology=host-vm extra=(-t chain --wait hybrid:50us)
	IVSHMEM_TOPOLOGY=$topology ./setup.sh >"$tmp/setup-$mode.out" 2>&1 || { cat "$tmp/setup-$mode.out"; exit 1; }
	rc=0
	./run_test.sh "${args[@]}" "${extra[@]}" >"$tmp/run-$mode.out" 2>&1 || rc=$?
	check "$mode: exit 0" [ "$rc" = 0 ]
	[ "$rc" = 0 ] || tail -n 20 "$tmp/run-$mode.out"
	csv=$IVSHMEM_RESULTS/chain_results.csv
	check "$mode: 12 points (3 touches, 2 batches, 2 sizes)" [ "$(($(wc -l <"$csv") - 1))" = 12 ]
	check "$mode: every message verified, none bad at either stage, every rate positive" awk "$cols"'
		{ if ($c["messages"] <= 0 || $c["errors"] != 0 || $c["nf_errors"] != 0 || $c["latency_count"] < 1) bad = 1 }
		END { exit bad }' "$csv"
	check "$mode: the guest's CPU per forwarded message is recorded" awk "$cols"'$c["nf_cpu_us_per_msg"] <= 0 { bad = 1 } END { exit bad }' "$csv"
	check "$mode: run.json: complete, the receiver's CPU, the guest's XXH3" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
c = r["chain"]
assert r["status"] == "complete" and r["mode"] == sys.argv[2], r["status"]
assert r["topology"] == sys.argv[3], r["topology"]
assert c["receiver_cpu"] == c["sender_cpu"] == r["writer_cpu"], c
assert c["guest_verify_impl"].startswith("xxh3-") and c["points"] == 12, c
' "$IVSHMEM_RESULTS/run.json" "$mode" "$topology"
	[ "$mode" != plain ] || check "plain: IVSHMEM_TOPOLOGY=chain ran the chain alone" \
		bash -c '[ ! -e "$1/latency_results.csv" ] && [ ! -e "$1/stream_results.csv" ]' _ "$IVSHMEM_RESULTS"
	./setup.sh stop >/dev/null 2>&1
done
exit $fail
