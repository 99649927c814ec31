#!/usr/bin/env bash
# stream_host - the stream and size-latency workloads host-only: a short
# sweep with every message checked, bad options refused with one line, a
# ring corrupted by a third process (detected, with the sequence number,
# exit 1), a receiver that dies mid-stream (a timeout naming the point), and
# sizes that cannot fit the shared memory refused at start (the largest that fits runs).
# timeout: 180
# shellcheck disable=SC2016 # awk programs are single-quoted on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
host_test_begin stream
rows() { echo $(($(wc -l <"$1") - 1)); }

# 1. A short sweep: every point measured, nothing bad, the columns as documented.
start_reader
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/sweep" -t stream,sizelat --sizes 8,100,4k,1M \
	--duration 50ms --lat-sizes 8,1M --lat-iterations 200 --cpu none >"$tmp/sweep.out" 2>&1 || rc=$?
check "sweep: exit 0" [ "$rc" = 0 ]
check "sweep: 12 stream points (4 sizes, 3 directions)" [ "$(rows "$tmp/sweep/stream_results.csv")" = 12 ]
check "sweep: no bad message, every rate positive" awk -F, 'NR > 1 && ($12 != 0 || $10 <= 0) { exit 1 }' "$tmp/sweep/stream_results.csv"
check "sweep: the header is the schema host_writer prints" bash -c "'$BIN/host_writer' --schema | grep -qF \"\$(head -1 '$tmp/sweep/stream_results.csv')\""
check "sweep: 2 size-latency rows" [ "$(rows "$tmp/sweep/size_latency_results.csv")" = 2 ]
check "sweep: the fastest round trip grows with size" awk -F, 'NR == 2 { a = $5 + 0 } NR == 3 { exit !($5 + 0 > a) }' "$tmp/sweep/size_latency_results.csv"
check "sweep: run.json lists both files" grep -q '"stream_results.csv": 12' "$tmp/sweep/run.json"
check "sweep: run.json has the stream settings" grep -q '"verify": "xxh3"' "$tmp/sweep/run.json"
stop_reader

# 2. --verify none says so in every row.
start_reader
"$BIN/host_writer" --shm "$shm" -o "$tmp/none" -t stream --sizes 64 --direction h2g --duration 20ms \
	--verify none --cpu none -q >/dev/null 2>&1 || true
check "verify none: recorded in the row" grep -q '^h2g,64,256,16,none,' "$tmp/none/stream_results.csv"
stop_reader

# 3. Bad options: exit 2 and one line naming the option, before anything starts.
expect2() { # expect2 PATTERN ARGS...
	local pattern=$1 rc=0
	shift
	"$BIN/host_writer" --shm "$shm" -o "$tmp/x" -t stream "$@" >"$tmp/err.out" 2>&1 || rc=$?
	check "host_writer $* -> 2, '$pattern'" bash -c '[ "$1" = 2 ] && grep -qF -- "$2" "$3" && [ "$(grep -c . "$3")" -le 2 ]' _ "$rc" "$pattern" "$tmp/err.out"
}
expect2 "--batch: 64 is more than --slots 32" --slots 32 --batch 64
expect2 "--slots: '100' is not a power of two" --slots 100
expect2 "--sizes: '0' is not a size" --sizes 0
expect2 "--sizes: '65M' is not a size" --sizes 64,65M
expect2 "--verify: 'md5' is not xxh3" --verify md5
expect2 "--direction: 'up' is not h2g" --direction up
# The largest message a ring can hold in 64 MiB: half of it after the set-up page, less a
# control block and a slot header; one byte more is refused before anything starts.
expect2 "--sizes: a 33550017-byte message cannot fit a ring in" --sizes 64,33550017
expect2 "--lat-sizes: a 64000000-byte message cannot fit a ring in" -t sizelat --lat-sizes 64000000
start_reader
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/largest" -t sizelat --lat-sizes 33550016 --lat-iterations 10 \
	--cpu none -q >"$tmp/largest.out" 2>&1 || rc=$?
check "the largest message that fits: measured, exit 0" bash -c '[ "$1" = 0 ] && grep -q "^33550016," "$2"' _ "$rc" "$tmp/largest/size_latency_results.csv"
stop_reader
expect2 "--wait sleep needs a doorbell" --wait sleep
expect2 "--wait: 'nap' is not spin" --wait nap
expect2 "--duration: '0' is not a duration" --duration 0

# 4. A third process corrupting the rings: caught, with a sequence number, exit 1.
start_reader -v
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/corrupt" -t stream --sizes 4k --direction h2g --duration 3s \
	--timeout 5s --cpu none -q >"$tmp/corrupt.out" 2>&1 &
writer=$!
wait_line "$tmp/reader.log" 'attached to session' 20 || true
/usr/bin/python3 - "$shm" <<'PY' &
import mmap, os, sys, time
f = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(f, 0)
end = time.time() + 2
# Flip bytes in ring 0's slots (after the header page, the set-up page and its control block).
base = 4096 + 4096 + 256
while time.time() < end:
    for off in range(base + 100, base + 256 * 4160, 4160 * 7):
        m[off] ^= 0x5a
    time.sleep(0.001)
PY
corrupter=$!
wait "$writer" || rc=$?
wait "$corrupter" || true
check "corruption: exit 1" [ "$rc" = 1 ]
check "corruption: bad messages named with a sequence number" grep -qE 'bad message\(s\).*sequence number [0-9]+' "$tmp/corrupt.out"
check "corruption: no row without its errors" awk -F, 'NR > 1 && $12 == 0 { bad = 1 } END { exit bad }' "$tmp/corrupt/stream_results.csv"
stop_reader

# 5. The receiver dies mid-stream: a timeout that names the point, within the deadline.
start_reader -v
rc=0
start=$SECONDS
"$BIN/host_writer" --shm "$shm" -o "$tmp/dead" -t stream --sizes 64 --direction h2g --duration 30s \
	--timeout 1s --cpu none -q >"$tmp/dead.out" 2>&1 &
writer=$!
wait_line "$tmp/reader.log" 'attached to session' 20 || true
kill -9 "$reader_pid"
wait "$writer" || rc=$?
reader_pid=''
check "dead receiver: exit 1" [ "$rc" = 1 ]
check "dead receiver: the message names the point" grep -qE 'timeout (moving 64-byte messages h2g|waiting for the responder to start a h2g stream of 64-byte)' "$tmp/dead.out"
check "dead receiver: well before the 30 s point would end" [ $((SECONDS - start)) -lt 15 ]
exit $fail
