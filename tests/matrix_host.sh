#!/usr/bin/env bash
# matrix_host - run_test.sh --host-only --matrix end to end (vm/matrix.bash):
# bad axes are one line and exit 2 before anything runs; a 2x2 matrix of
# stream options gives four results directories, one table row per cell and
# headline figure, and a report; a cell that fails (a frame corrupted on
# purpose) is a row with its reason and the run goes on; --resume keeps the
# cells that finished and runs the others; a SIGINT in the second cell keeps
# the first, marks the second interrupted and exits 130.
# timeout: 300
# shellcheck disable=SC2016,SC2054 # bash -c programs are single-quoted; option lists hold commas
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
if [ ! -x build/host_writer ] || [ ! -x build/guest_reader ]; then skip "build/host_writer and build/guest_reader not built (make all)"; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp/tmpdir
mkdir "$TMPDIR"
short=(-t stream --sizes 64 --direction h2g --duration 50ms -q)

# ---- bad axes: one line, exit 2, nothing written ------------------------------
bad_axes() { # WHAT EXPECTED-TEXT ARG...
	local what=$1 want=$2 out=$tmp/bad rc=0
	shift 2
	IVSHMEM_RESULTS=$out ./run_test.sh "$@" >"$tmp/bad.out" 2>"$tmp/bad.err" || rc=$?
	check "bad axes, $what: exit 2 ($rc)" [ "$rc" = 2 ]
	check "bad axes, $what: one line naming it: $(head -n 1 "$tmp/bad.err")" \
		bash -c '[ "$(wc -l <"$1")" = 1 ] && grep -q -- "$2" "$1"' _ "$tmp/bad.err" "$want"
	check "bad axes, $what: nothing ran, nothing written" test ! -e "$out" -a ! -s "$tmp/bad.out"
}
bad_axes "no values" "axis 'batch' has no values" --host-only --matrix 'batch=' "${short[@]}"
bad_axes "unknown axis" "unknown axis 'bogus'" --host-only --matrix 'batch=1 bogus=2' "${short[@]}"
bad_axes "a value host_writer refuses" "host_writer: --slots: '3' is not a power of two" \
	--host-only --matrix 'batch=1,16 slots=64,3' "${short[@]}"
bad_axes "a VM-level axis host-only" "axis 'vcpus' is a VM-level setting" --host-only --matrix 'vcpus=1,2' "${short[@]}"
bad_axes "an axis also an option" "axis 'duration' is also given as an option" --host-only --matrix 'duration=10ms,20ms' "${short[@]}"
bad_axes "a value twice" "value '16' given twice" --host-only --matrix 'batch=16,16' "${short[@]}"

# ---- a 2x2 matrix ---------------------------------------------------------
out=$tmp/grid
rc=0
IVSHMEM_RESULTS=$out ./run_test.sh --host-only --matrix 'batch=1,16 slots=64,256' "${short[@]}" >"$tmp/grid.out" 2>&1 || rc=$?
check "2x2: exit 0 ($rc)" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -n 20 "$tmp/grid.out"
for cell in cell-001-batch=1,slots=64 cell-002-batch=1,slots=256 cell-003-batch=16,slots=64 cell-004-batch=16,slots=256; do
	check "2x2: $cell complete" grep -q '"status": "complete"' "$out/$cell/run.json"
done
check "2x2: a row per cell and figure (msgs/s and GB/s), the axes as columns" /usr/bin/python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 8, len(rows)
assert {(r["batch"], r["slots"]) for r in rows} == {("1", "64"), ("1", "256"), ("16", "64"), ("16", "256")}
assert all(r["status"] == "ok" and float(r["value"]) > 0 and r["workload"] == "stream" for r in rows)
assert {r["figure"] for r in rows} == {"stream h2g 64 B msgs/s", "stream h2g 64 B GB/s"}, rows
' "$out/matrix_results.csv"
check "2x2: matrix.json lists the axes, the cells in order, status complete" /usr/bin/python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
assert m["status"] == "complete" and [a["name"] for a in m["axes"]] == ["batch", "slots"]
assert [c["label"] for c in m["cells"]] == ["batch=1,slots=64", "batch=1,slots=256", "batch=16,slots=64", "batch=16,slots=256"]
assert m["counts"]["ok"] == 4 and m["reboots"] == 0
' "$out/matrix.json"
rc=0
/usr/bin/python3 analyze_results.py --quiet "$out" >"$tmp/analyze.out" 2>&1 || rc=$?
check "2x2: analyze_results.py reads it (exit $rc), a heatmap and the page" \
	test "$rc" = 0 -a -s "$out/matrix_stream_h2g_64_b_msgs_s.png" -a -s "$out/report.html"
check "2x2: the report names the best cell and the defaults' (batch=16,slots=256)" \
	grep -q "Cell 4 is the defaults'" "$out/performance_report.txt"

# ---- a cell that fails, then --resume -------------------------------------
frames=(-t latency,frames --frames 64x64 --frame-iterations 2 --iterations 100 -q)
out=$tmp/fail
rc=0
IVSHMEM_RESULTS=$out ./run_test.sh --host-only --matrix 'corrupt-frame=1,5 warmup=0,10' "${frames[@]}" >"$tmp/fail.out" 2>&1 || rc=$?
check "failing cells: exit 1 after every cell ($rc)" [ "$rc" = 1 ]
check "failing cells: each is a row with its reason, the others measured" /usr/bin/python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
bad = [r for r in rows if r["status"] == "failed"]
assert sorted(r["cell"] for r in bad) == ["1", "2"], bad
assert all("failed verification" in r["reason"] and r["value"] == "" for r in bad), bad
good = {r["cell"] for r in rows if r["status"] == "ok" and r["figure"] == "latency p50"}
assert good == {"3", "4"}, rows
' "$out/matrix_results.csv"
kept=$(sed -n 's/.*"run_id": "\(.*\)".*/\1/p' "$out/cell-003-corrupt-frame=5,warmup=0/run.json")
rc=0
./run_test.sh --host-only --matrix 'corrupt-frame=1,5 warmup=0,10' "${frames[@]}" --resume "$out" >"$tmp/resume.out" 2>&1 || rc=$?
check "--resume: the finished cells kept" bash -c '[ "$(grep -c "finished earlier, kept" "$1")" = 2 ]' _ "$tmp/resume.out"
check "--resume: cell 3's results untouched" grep -q "\"run_id\": \"$kept\"" "$out/cell-003-corrupt-frame=5,warmup=0/run.json"
check "--resume: the failed cells ran again (and failed again: exit $rc)" \
	bash -c '[ "$1" = 1 ] && grep -q "== cell 1 of 4" "$2" && grep -q "== cell 2 of 4" "$2"' _ "$rc" "$tmp/resume.out"
check "--resume: matrix_results.csv written again with every cell" /usr/bin/python3 -c '
import csv, sys
assert {r["cell"] for r in csv.DictReader(open(sys.argv[1]))} == {"1", "2", "3", "4"}
' "$out/matrix_results.csv"
rc=0
./run_test.sh --host-only --matrix 'corrupt-frame=1,5 warmup=0,20' "${frames[@]}" --resume "$out" >"$tmp/resume2.out" 2>&1 || rc=$?
check "--resume with other axes: exit 2, one line ($rc)" \
	bash -c '[ "$1" = 2 ] && [ "$(wc -l <"$2")" = 1 ] && grep -q "not the same matrix" "$2"' _ "$rc" "$tmp/resume2.out"

# ---- SIGINT in the second cell ---------------------------------------------
out=$tmp/int
stop_after_ms=300 stop_ms=500
stop_run int INT pid "$out/cell-002-duration=30s/run.json" '"status": "running"' \
	env IVSHMEM_RESULTS="$out" ./run_test.sh --host-only --matrix 'duration=50ms,30s' -t stream --sizes 64 --direction h2g -q
check "SIGINT: exit 130 ($rc) within 30 s ($secs s)" test "$rc" = 130 -a "$secs" -lt 30
left=$(procs_left "${stopped_procs[@]}")
check "SIGINT: nothing it started still runs${left:+; left: $left}" test -z "$left"
check "SIGINT: no temporary file left" test -z "$(ls -A "$TMPDIR")"
check "SIGINT: the table has the finished cell and the interrupted one; status interrupted" /usr/bin/python3 -c '
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/matrix_results.csv")))
assert {r["status"] for r in rows if r["cell"] == "1"} == {"ok"}, rows
assert [r["status"] for r in rows if r["cell"] == "2"] == ["interrupted"], rows
m = json.load(open(sys.argv[1] + "/matrix.json"))
assert m["status"] == "interrupted by SIGINT", m["status"]
assert json.load(open(sys.argv[1] + "/run.json"))["status"] == "interrupted by SIGINT"
' "$out"
echo "$checks checks, $((checks - failures)) passed, $failures failed"
exit $fail
