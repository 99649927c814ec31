#!/usr/bin/env bash
# counters_host - the kernel's counters in the stream and rate rows,
# host-only: a stream run and a rate run through run_test.sh have the
# software counters of the initiator's thread filled (task clock close to
# the measured interval, for a thread that polls), the hardware ones filled
# where the machine has a PMU and empty otherwise, with run.json's reason
# said once, never zeros; ctx_switches_per_kmsg agrees with its counts, and
# the printed lines show it; --watch-thread counts another thread (here the
# reader's) in the vcpu_ columns, and a thread that is not there leaves
# them empty with the reason. Skips, saying why, when the kernel counts
# nothing for us (no perf events, or perf_event_paranoid forbids).
# timeout: 180
# shellcheck disable=SC2016 # Python and bash -c programs are single-quoted on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
host_test_begin counters
PY=/usr/bin/python3
SOFTWARE=(host_ctx_switches host_migrations host_page_faults host_task_clock_ns)
HARDWARE=(host_cycles host_instructions host_cache_misses)
VCPU=(vcpu_ctx_switches vcpu_migrations vcpu_page_faults vcpu_task_clock_ns vcpu_cycles
	vcpu_instructions vcpu_cache_misses)
COLUMNS=$(IFS=,; echo "${SOFTWARE[*]},${HARDWARE[*]},${VCPU[*]},ctx_switches_per_kmsg")

# rows FILE EXPR: EXPR (Python, over row r: a dict of strings; i(), f()) holds for every row.
rows() {
	"$PY" - "$@" <<'PY'
import csv, sys
with open(sys.argv[1], newline="") as f:
    rows = list(csv.DictReader(f))
def i(v): return int(v)  # a whole number, or ValueError: not 0 for an empty cell
def f(v): return float(v)
bad = [r for r in rows if not eval(sys.argv[2], {"i": i, "f": f, "r": r})]
for r in bad[:3]:
    print("    row:", {k: v for k, v in r.items() if k.startswith(("host_", "vcpu_", "ctx_", "seconds", "point_", "messages", "received", "duration"))})
sys.exit(0 if rows and not bad else 1)
PY
}
# rows_print FILE EXPR: EXPR of each row, rounded, on one line.
rows_print() {
	"$PY" -c 'import csv, sys; print(" ".join("%.3f" % eval(sys.argv[2], {"i": int, "f": float, "r": r}) for r in csv.DictReader(open(sys.argv[1]))))' "$1" "$2"
}
# json DIR WORKLOAD KEY: run.json's WORKLOAD.counters.KEY
json() {
	"$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["counters"][sys.argv[3]])' \
		"$1/run.json" "$2" "$3"
}
# every_cell FILE EXPR COLUMNS...: EXPR of the cell v holds in every row of each column.
every_cell() {
	local file=$1 expr=$2 c all=''
	shift 2
	for c in "$@"; do all+="${all:+ and }(lambda v: $expr)(r['$c'])"; done
	rows "$file" "$all"
}
# counted DIR WORKLOAD FILE SECONDS_EXPR MESSAGES_COLUMN OUT CLOSE_EXPR CLOSE_WHAT: the
# checks both workloads share; CLOSE_EXPR bounds the task clock's share t of the interval.
counted() {
	local dir=$1 wl=$2 file=$1/$3 secs=$4 msgs=$5 out=$6 close=$7 close_what=$8 sw hw
	sw=$(json "$dir" "$wl" software) hw=$(json "$dir" "$wl" hardware)
	check "$wl: the counter columns end the header" bash -c '[[ "$(head -1 "$1")" == *",$2" ]]' _ "$file" "$COLUMNS"
	check "$wl: the header is the schema host_writer prints" bash -c "'$BIN/host_writer' --schema | grep -qF \"\$(head -1 '$file')\""
	if [[ $sw == "not available: "* ]]; then
		check "$wl: software counters not available: their cells empty" every_cell "$file" "v == ''" "${SOFTWARE[@]}" ctx_switches_per_kmsg
		skip "software counters not available here: ${sw#not available: }"
	fi
	check "$wl: run.json says what the software counters are" bash -c '[[ $1 == "perf_event_open, per host thread"* ]]' _ "$sw"
	check "$wl: software counters are whole numbers >= 0" every_cell "$file" "i(v) >= 0" "${SOFTWARE[@]}"
	echo "     ($wl: task clock / interval: $(rows_print "$file" "i(r['host_task_clock_ns']) / ($secs * 1e9)"))"
	check "$wl: the polling initiator's task clock: $close_what" \
		rows "$file" "(lambda t: 0 < t <= 1.05 and $close)(i(r['host_task_clock_ns']) / ($secs * 1e9))"
	check "$wl: ctx_switches_per_kmsg = 1000 x switches / messages" \
		rows "$file" "abs(f(r['ctx_switches_per_kmsg']) - 1000 * i(r['host_ctx_switches']) / i(r['$msgs'])) < 0.0015"
	if [[ $hw == "not available: "* ]]; then
		check "$wl: no hardware PMU: its cells empty, not zeros" every_cell "$file" "v == ''" "${HARDWARE[@]}"
		check "$wl: run.json gives the reason" bash -c '[[ $1 == *"(perf_event_open PERF_TYPE_HARDWARE "*": E"* ]]' _ "$hw"
		echo "     ($wl hardware: $hw)"
	else
		check "$wl: hardware counters filled: $hw" every_cell "$file" "i(v) >= 0" "${HARDWARE[@]}"
	fi
	check "$wl: run.json gives the hardware counters' reason once" \
		[ "$(grep -c 'perf_event_open PERF_TYPE_HARDWARE' "$dir/run.json")" -le 1 ]
	check "$wl: no --watch-thread: vcpu cells empty" every_cell "$file" "v == ''" "${VCPU[@]}"
	check "$wl: no --watch-thread: run.json says so" [ "$(json "$dir" "$wl" vcpu_software)" = "not counted: no --watch-thread" ]
	check "$wl: the printed lines show ctx-sw/kmsg" grep -qE 'ctx-sw/kmsg [0-9]' "$out"
}

# stolen : steal, irq and softirq time of all CPUs so far, in ms (/proc/stat's ticks).
stolen() {
	awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { print int(($7 + $8 + $9) * 1000 / hz); exit }' /proc/stat
}

# 1. A host-only stream (three directions, 64 B, 100 ms a point).
rc=0
stolen0=$(stolen)
IVSHMEM_RESULTS=$tmp/stream ./run_test.sh --host-only --test stream --sizes 64 --duration 100ms \
	>"$tmp/stream.out" 2>&1 || rc=$?
stolen_ms=$(($(stolen) - stolen0))
sed 's/^/    | /' "$tmp/stream.out"
check "stream: exit 0" [ "$rc" = 0 ]
# host_cpu_percent is the thread's CPU clock over the whole point (point_seconds), which
# holds the interval: the task clock is at most that CPU time, and at least that CPU time
# less the wall time outside the interval (a thread descheduled while the point opens or
# closes has a low host_cpu_percent and a full interval). 2 ms for rounding and clock reads;
# above, also the steal and interrupt time of the run (the task clock counts time the
# hypervisor took while the thread ran, the thread's CPU clock does not: README, counters).
WHOLE="f(r['host_cpu_percent']) / 100 * f(r['point_seconds'])"
counted "$tmp/stream" stream stream_results.csv "f(r['seconds'])" messages "$tmp/stream.out" \
	"$WHOLE - (f(r['point_seconds']) - f(r['seconds'])) - 0.002 <= i(r['host_task_clock_ns']) / 1e9 <= $WHOLE + 0.002 + $stolen_ms / 1000" \
	"within the CPU time the point's CPU clock leaves for the interval (+ ${stolen_ms} ms stolen)"
check "stream: every point's line shows ctx-sw/kmsg" \
	[ "$(grep -cE '^  (h2g|g2h|bidir) .* ctx-sw/kmsg [0-9]' "$tmp/stream.out")" = 3 ]

# 2. A host-only rate run: 10k messages/s for 300 ms; the figure beside p99.
rc=0
IVSHMEM_RESULTS=$tmp/rate ./run_test.sh --host-only --test rate --rate 10k --rate-duration 300ms \
	>"$tmp/rate.out" 2>&1 || rc=$?
sed 's/^/    | /' "$tmp/rate.out"
check "rate: exit 0" [ "$rc" = 0 ]
# The interval is the schedule's 300 ms and the last echo: not the 1 s quiet run before it.
counted "$tmp/rate" rate rate_results.csv "f(r['duration_s'])" received "$tmp/rate.out" \
	"t > 0.05" "more than 5 %, at most 105 % of the schedule"
check "rate: ctx-sw/kmsg beside p99" grep -qE 'p99 +[0-9.]+  ctx-sw/kmsg [0-9.]+  p99.9' "$tmp/rate.out"

# 3. --watch-thread: the reader's thread counted as the vcpu_ columns (it polls too).
start_reader
watched=$reader_pid rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/watch" -t stream --sizes 64 --direction h2g --duration 100ms \
	--cpu none --watch-thread "$watched" >"$tmp/watch.out" 2>&1 || rc=$?
stop_reader
check "watch: exit 0" [ "$rc" = 0 ]
check "watch: run.json names the thread" bash -c '[[ $1 == "perf_event_open, thread $2 (--watch-thread)"* ]]' _ \
	"$(json "$tmp/watch" stream vcpu_software)" "$watched"
echo "     (watch: its task clock / interval: $(rows_print "$tmp/watch/stream_results.csv" "i(r['vcpu_task_clock_ns']) / (f(r['seconds']) * 1e9)"))"
check "watch: its software counters filled, its task clock 5-105 % of the interval" \
	rows "$tmp/watch/stream_results.csv" "all(i(r[c]) >= 0 for c in ('vcpu_ctx_switches', 'vcpu_migrations', 'vcpu_page_faults')) and 0.05 <= i(r['vcpu_task_clock_ns']) / (f(r['seconds']) * 1e9) <= 1.05"
check "watch: the line shows the thread's switches" grep -qE 'ctx-sw/kmsg [0-9.]+ \(vCPU [0-9.]+\)' "$tmp/watch.out"

# 4. A thread that is not there: its cells empty, and why.
start_reader
gone=$(sh -c 'echo $$')
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/gone" -t stream --sizes 64 --direction h2g --duration 20ms \
	--cpu none --watch-thread "$gone" -q >"$tmp/gone.out" 2>&1 || rc=$?
stop_reader
check "gone: exit 0" [ "$rc" = 0 ]
check "gone: vcpu cells empty" every_cell "$tmp/gone/stream_results.csv" "v == ''" "${VCPU[@]}"
check "gone: run.json says why" bash -c '[[ $1 == "not available: no thread $2 "*"ESRCH)" ]]' _ \
	"$(json "$tmp/gone" stream vcpu_software)" "$gone"

echo "$checks checks, $((checks - failures)) passed, $failures failed"
exit $fail
