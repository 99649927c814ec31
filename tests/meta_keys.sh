#!/usr/bin/env bash
# meta_keys: --meta refuses every member run.json has of its own. The lists
# it checks are the ones run.json is checked against as it is written, so
# this takes the members from real run.json files (every workload, and
# transport_bench) and asks --meta for each.
# timeout: 120
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
BUILD=${BUILD:-build}
for p in host_writer transport_bench; do
	[ -x "$BUILD/$p" ] || { echo "FAIL: $BUILD/$p is missing (make all)"; exit 1; }
done
tmp=$(mktemp -d /tmp/ivb-meta.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# The members of a run.json, but those given with --meta (run_test.sh's and ours).
members() {
	/usr/bin/python3 -c 'import json, sys
skip = set(sys.argv[2].split(","))
print("\n".join(k for k in json.load(open(sys.argv[1])) if k not in skip))' "$1" "$2"
}

echo "# every workload host-only, with --meta of our own"
rc=0
IVSHMEM_RESULTS=$tmp/all ./run_test.sh --host-only --test latency,frames,stream,sizelat,rate,limits \
	--iterations 200 --frame-iterations 1 --frames 1080p --sizes 64 --lat-sizes 64 --limit-sizes 64 \
	--duration 50ms --rate 10k --meta ours=1 --quiet >"$tmp/all.out" 2>&1 || rc=$?
check "the run writes every member it declares without stopping (exit $rc)" [ "$rc" = 0 ]
check "run.json holds the --meta member" grep -q '"ours": "1"' "$tmp/all/run.json"
n=0
while read -r key; do
	n=$((n + 1))
	rc=0
	"$BUILD/host_writer" --shm /dev/shm/none --meta "$key=1" >"$tmp/out" 2>&1 || rc=$?
	if [ "$rc" = 2 ] && grep -q "^host_writer: --meta: '$key' is a key run.json has of its own" "$tmp/out"; then
		ok "host_writer --meta $key=1 exits 2"
	else
		bad "host_writer --meta $key=1 exits $rc: $(head -n 1 "$tmp/out")"
	fi
done < <(members "$tmp/all/run.json" ours,target,guest,accel,reader_cpu,backing,bar_map,cpu_pm,ple)
check "run.json had members to ask about ($n)" [ "$n" -gt 20 ]

echo "# transport_bench"
rc=0
"$BUILD/transport_bench" -o "$tmp/tb" -T pipe --sizes 64 --lat-sizes 64 --lat-iterations 20 \
	--duration 20ms -q --meta ours=1 >"$tmp/tb.out" 2>&1 || rc=$?
check "transport_bench runs with --meta (exit $rc)" [ "$rc" = 0 ]
while read -r key; do
	rc=0
	"$BUILD/transport_bench" --meta "$key=1" >"$tmp/out" 2>&1 || rc=$?
	if [ "$rc" = 2 ] && grep -q "^transport_bench: --meta: '$key' is a key run.json has of its own" "$tmp/out"; then
		ok "transport_bench --meta $key=1 exits 2"
	else
		bad "transport_bench --meta $key=1 exits $rc: $(head -n 1 "$tmp/out")"
	fi
done < <(members "$tmp/tb/run.json" ours)

echo "$checks checks, $((checks - failures)) passed, $failures failed"
[ "$failures" = 0 ]
