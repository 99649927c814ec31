#!/usr/bin/env bash
# vm_intervm_chain - the two-guest forwarding chain under TCG, guest A ->
# guest B -> host: in a vm-vm pair (plain mode), `run_test.sh -t chain`
# sends from guest A, forwards in guest B and receives on the host
# (chain_sink, started and stopped by run_test.sh): every message verified
# on the host for each touch, each row's latency from two clocks with its
# bound, chain_sink's lines kept beside the results, run.json saying where
# the receiver ran. The host's receiver killed mid-run: a clear error soon,
# exit 1, the rows measured before it kept and the run marked as stopped.
# --chain-receiver local keeps the receiver in guest A (A -> B -> A).
# timeout: 300
# shellcheck disable=SC2016 # awk and bash -c programs are single-quoted on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
# shellcheck source=vm/settings.bash
. vm/settings.bash
if [ ! -x build/chain_sink ]; then skip "build/chain_sink not built (make all)"; fi
vm_test_begin intervm-chain
export IVSHMEM_TOPOLOGY=vm-vm
IVSHMEM_VCPU_CPU_A=$(settings_first_cpu) IVSHMEM_VCPU_CPU_B=$(settings_last_cpu)
export IVSHMEM_VCPU_CPU_A IVSHMEM_VCPU_CPU_B
cols='BEGIN { FS = "," } NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }'
rc=0
./setup.sh >"$tmp/setup.out" 2>&1 || rc=$?
check "the pair boots (plain mode)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || { tail -n 20 "$tmp/setup.out"; exit 1; }

# 1. guest A -> guest B -> host, two sizes, two batches, two touches.
rc=0
IVSHMEM_RESULTS=$tmp/chain ./run_test.sh -t chain --chain-sizes 64,4k --chain-batch 1,16 \
	--chain-touch none,write --chain-duration 100ms >"$tmp/chain.out" 2>&1 || rc=$?
check "chain: exit 0" [ "$rc" = 0 ]
[ "$rc" = 0 ] || cat "$tmp/chain.out"
csv=$tmp/chain/chain_results.csv
check "chain: it says where each stage is" grep -q 'chain: guest A -> guest B -> the host.s chain_sink' "$tmp/chain.out"
check "chain: 8 rows received remotely, every message verified at both stages" awk "$cols"'
	{ n++; if ($c["receiver"] != "remote" || $c["messages"] <= 0 || $c["errors"] != 0 || $c["nf_errors"] != 0) bad = 1 }
	END { exit bad || n != 8 }' "$csv"
# Both guests' clocks are the host's under TCG, offset by when each booted: the bound
# must be real (> 0) and small beside what it bounds (under a tenth of each p50).
check "chain: each row's latency has a clock bound, small beside its p50 ($(awk "$cols"'{ printf "%s/%s ", $c["clock_error_ns"], $c["p50_ns"] }' "$csv"))" \
	awk "$cols"'{ if ($c["latency_count"] < 1 || $c["clock_error_ns"] < 1 || $c["clock_error_ns"] * 10 > $c["p50_ns"]) bad = 1 }
	END { exit bad }' "$csv"
check "chain: chain_sink's lines kept, 8 points, none bad" \
	[ "$(grep -cE '^chain_sink: .* received, .* 0 bad$' "$tmp/chain/chain_sink.log" 2>/dev/null)" = 8 ]
check "chain: run.json names the receiver, its CPU and the topology" bash -c '
	grep -q "\"chain_receiver\": \"the host: chain_sink" "$1" && grep -q "\"receiver\": \"remote" "$1" &&
	grep -q "\"topology\": \"vm-vm\"" "$1" && grep -q "\"status\": \"complete\"" "$1"' _ "$tmp/chain/run.json"
check "chain: no chain_sink left running" bash -c '! pgrep -f "chain_sink --shm $1" >/dev/null' _ "$IVSHMEM_SHM_PATH"

# 2. The host's receiver killed mid-run: exit 1 within the deadline, the rows before kept.
rc=0
IVSHMEM_TIMEOUT=3s IVSHMEM_RESULTS=$tmp/killed ./run_test.sh -t chain --chain-sizes 64 \
	--chain-batch 1,16 --chain-touch none --chain-duration 1s -q >"$tmp/killed.out" 2>&1 &
runner=$!
# Once the second point (64 B, batch 16: the run before ended on 4 KiB ones) has started in
# guest B, as the shared memory shows (the set-up's size and batch, the result's started
# flag; 60 s at most), the receiver goes: the first point's row is written by then.
/usr/bin/python3 - "$IVSHMEM_SHM_PATH" <<'PY' || true
import mmap, os, struct, sys, time
m = mmap.mmap(os.open(sys.argv[1], os.O_RDONLY), 0, prot=mmap.PROT_READ)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    if struct.unpack_from("<II", m, 4096 + 8) == (64, 16) and struct.unpack_from("<Q", m, 4096 + 128)[0] == 1:
        break
    time.sleep(0.001)
PY
pkill -KILL -f "chain_sink --shm $IVSHMEM_SHM_PATH" || true
start=$SECONDS
wait "$runner" || rc=$?
check "killed receiver: exit 1 ($rc)" [ "$rc" = 1 ]
check "killed receiver: over within the 3 s deadline and the collection ($((SECONDS - start)) s)" [ $((SECONDS - start)) -lt 30 ]
check "killed receiver: the error names it" grep -qE "the host's chain receiver \(chain_sink, pid [0-9]+\) ended during the run \(killed by SIGKILL\)" "$tmp/killed.out"
check "killed receiver: the first row kept, run.json not complete" bash -c '
	[ "$(grep -c "^64,1," "$1/chain_results.csv")" = 1 ] && ! grep -q "\"status\": \"complete\"" "$1/run.json"' _ "$tmp/killed"
[ "$rc" = 1 ] || cat "$tmp/killed.out"

# 3. --chain-receiver local: guest A's own thread receives (A -> B -> A), no chain_sink.
rc=0
IVSHMEM_RESULTS=$tmp/local ./run_test.sh -t chain --chain-sizes 64 --chain-batch 16 \
	--chain-touch none --chain-duration 100ms --chain-receiver local >"$tmp/local.out" 2>&1 || rc=$?
check "local receiver: exit 0, one row received locally" bash -c '[ "$1" = 0 ] &&
	[ "$(grep -c ",local,0$" "$2")" = 1 ] && [ ! -e "$3" ]' _ "$rc" "$tmp/local/chain_results.csv" "$tmp/local/chain_sink.log"
check "local receiver: it says so" grep -q 'chain: guest A -> guest B -> guest A: --chain-receiver local' "$tmp/local.out"
exit $fail
