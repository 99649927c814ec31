#!/usr/bin/env bash
# chain_host - the forwarding chain host-only: ring A -> guest_reader ->
# ring B -> host_writer's second thread, every message verified for each
# touch (none, read, write), through run_test.sh too; bad options refused
# with one line; a ring corrupted by a third process (counted by both the
# middle stage and the receiver, exit 1); a responder killed mid-run (a
# timeout naming the point, exit 1, the rows measured before it kept); a
# remote receiver (chain_sink, another process) whose clock offset, on one
# host, must come out within its own bound of zero, none at all, and a
# forged one whose report is impossible (exit 1, never complete).
# timeout: 180
# shellcheck disable=SC2016 # awk programs are single-quoted on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
host_test_begin chain
rows() { echo $(($(wc -l <"$1") - 1)); }
# The columns, by name, for the awk programs below.
cols='BEGIN { FS = "," } NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }'

# 1. Each touch, two sizes, two batches: every message forwarded and verified.
start_reader --cpu 1
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/all" -t chain --chain-sizes 64,4k --chain-batch 1,16 \
	--chain-duration 50ms --cpu 0 --timeout 5s >"$tmp/all.out" 2>&1 || rc=$?
check "all touches: exit 0" [ "$rc" = 0 ]
[ "$rc" = 0 ] || cat "$tmp/all.out"
csv=$tmp/all/chain_results.csv
check "all touches: 12 rows (3 touches, 2 batches, 2 sizes)" [ "$(rows "$csv")" = 12 ]
check "all touches: the header is the schema host_writer prints" bash -c "'$BIN/host_writer' --schema | grep -qF \"\$(head -1 '$csv')\""
for touch in none read write; do
	check "touch $touch: 4 rows, messages > 0, errors 0 at both stages" awk "$cols"'
		$c["touch"] == t { n++; if ($c["messages"] <= 0 || $c["errors"] != 0 || $c["nf_errors"] != 0) bad = 1 }
		END { exit bad || n != 4 }' t="$touch" "$csv"
done
check "every row: a latency for each message counted, ordered percentiles" awk "$cols"'
	{ if ($c["latency_count"] < 1 || $c["latency_method"] != "exact" || $c["min_ns"] <= 0 ||
	      $c["p50_ns"] > $c["p99_ns"] || $c["p99_ns"] > $c["max_ns"] || $c["msgs_per_s"] <= 0) exit 1 }' "$csv"
check "run.json: the chain section, the receiver's CPU and why" bash -c 'grep -q "\"receiver_cpu\": 0" "$1" && grep -q "\"receiver_cpu_reason\"" "$1" && grep -q "\"chain_results.csv\": 12" "$1"' _ "$tmp/all/run.json"
check "run.json: complete" grep -q '"status": "complete"' "$tmp/all/run.json"
stop_reader

# 2. Through run_test.sh, one point in flight at a time (--chain-inflight 1).
rc=0
IVSHMEM_RESULTS=$tmp/rt ./run_test.sh --host-only --test chain --chain-sizes 4k --chain-batch 1 \
	--chain-touch write --chain-inflight 1 --chain-duration 50ms -q >"$tmp/rt.out" 2>&1 || rc=$?
check "run_test.sh --host-only --test chain: exit 0" [ "$rc" = 0 ]
[ "$rc" = 0 ] || cat "$tmp/rt.out"
check "run_test.sh: one write row, inflight 1, verified" awk "$cols"'
	{ n++; if ($c["touch"] != "write" || $c["inflight"] != 1 || $c["errors"] != 0 || $c["messages"] <= 0) bad = 1 }
	END { exit bad || n != 1 }' "$tmp/rt/chain_results.csv"

# 3. Bad options: exit 2 and one line naming the option, before anything starts.
expect2() { # expect2 PATTERN ARGS...
	local pattern=$1 rc=0
	shift
	"$BIN/host_writer" --shm "$shm" -o "$tmp/x" -t chain "$@" >"$tmp/err.out" 2>&1 || rc=$?
	check "host_writer $* -> 2, '$pattern'" bash -c '[ "$1" = 2 ] && grep -qF -- "$2" "$3" && [ "$(grep -c . "$3")" -le 2 ]' _ "$rc" "$pattern" "$tmp/err.out"
}
expect2 "--chain-touch: 'poke' is not none, read or write" --chain-touch read,poke
expect2 "--chain-sizes: 8 bytes is below 24" --chain-sizes 8,64
expect2 "--chain-batch: 64 is more than --chain-slots 32" --chain-slots 32 --chain-batch 1,64
expect2 "--chain-slots: '100' is not a power of two" --chain-slots 100
expect2 "--chain-duration: '0' is not a duration" --chain-duration 0
expect2 "--chain-rx-cpu:" --chain-rx-cpu 4096
expect2 "--chain-sizes: a 33550017-byte message cannot fit a ring in" --chain-sizes 33550017

# 4. A third process corrupting ring A: the middle stage (read) and the receiver count it, exit 1.
start_reader --cpu 1 -v
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/corrupt" -t chain --chain-sizes 4k --chain-batch 16 \
	--chain-touch read --chain-duration 2s --timeout 5s --cpu 0 -q >"$tmp/corrupt.out" 2>&1 &
writer=$!
wait_line "$tmp/reader.log" 'attached to session' 20 || true
/usr/bin/python3 - "$shm" <<'PY' &
import mmap, os, sys, time
f = os.open(sys.argv[1], os.O_RDWR)
m = mmap.mmap(f, 0)
# Flip a message byte in one of ring A's slots (after the header page, the set-up page and
# its control block) every 25 ms, 40 times: some land on messages in flight, fewer than the
# 64 that would end the point, so its row is written.
base = 4096 + 4096 + 256
for k in range(40):
    m[base + ((k * 37) % 256) * 4160 + 100] ^= 0x5a
    time.sleep(0.025)
PY
corrupter=$!
wait "$writer" || rc=$?
wait "$corrupter" || true
check "corruption: exit 1" [ "$rc" = 1 ]
[ "$rc" = 1 ] || { echo "exit $rc:"; cat "$tmp/corrupt.out"; }
check "corruption: bad messages named with a sequence number" grep -qE 'bad message\(s\).*sequence number [0-9]+' "$tmp/corrupt.out"
check "corruption: the row counts them at both stages" awk "$cols"'
	{ n++; if ($c["errors"] == 0 || $c["nf_errors"] == 0) bad = 1 } END { exit bad || n != 1 }' "$tmp/corrupt/chain_results.csv"
check "corruption: the middle stage found them too" grep -qE '(too_many_bad_messages|[1-9][0-9]* found by the middle stage)' "$tmp/corrupt.out"
stop_reader

# 5. The responder dies mid-run: a timeout naming the point, soon; the first point's row kept.
start_reader --cpu 1
rc=0
start=$SECONDS
"$BIN/host_writer" --shm "$shm" -o "$tmp/dead" -t chain --chain-sizes 64 --chain-batch 16 \
	--chain-touch none,read --chain-duration 400ms --timeout 1s --cpu 0 -q >"$tmp/dead.out" 2>&1 &
writer=$!
wait_line "$tmp/dead/chain_results.csv" '^64,16,' 20 || true
# Then until the second point (touch read) has started in the responder: the set-up's
# touch (chain.c's line after the channel's) and the result's started flag; a slow build
# (the sanitizers') can still be opening it when the row appears.
/usr/bin/python3 - "$shm" <<'PY' || true
import mmap, os, struct, sys, time
m = mmap.mmap(os.open(sys.argv[1], os.O_RDONLY), 0, prot=mmap.PROT_READ)
deadline = time.time() + 20
while time.time() < deadline:
    started, = struct.unpack_from("<Q", m, 4096 + 128)
    touch, = struct.unpack_from("<I", m, 4096 + 256)
    if touch == 1 and started == 1:
        break
    time.sleep(0.001)
PY
kill -9 "$reader_pid"
wait "$writer" || rc=$?
reader_pid=''
check "dead responder: exit 1" [ "$rc" = 1 ]
check "dead responder: the message names the point" grep -qE 'timeout in a chain of 64-byte messages \(touch read, batch 16' "$tmp/dead.out"
check "dead responder: well before a run of its own would end" [ $((SECONDS - start)) -lt 15 ]
check "dead responder: the first point's row kept, listed in run.json" bash -c '[ "$(grep -c "^64,16,.*,none," "$1/chain_results.csv")" = 1 ] && grep -q "\"chain_results.csv\": 1" "$1/run.json" && grep -q "\"status\": \"timeout in a chain" "$1/run.json"' _ "$tmp/dead"
# 6. A remote receiver (--chain-receiver remote): chain_sink, another process, takes ring B.
# On one host both clocks are the same clock, so each point's measured offset must be
# within its own error bound of zero: the probes' arithmetic checked against the truth.
# A second chain_sink on the same memory takes no point the first has claimed, and the
# first none the second has: each point is received once.
start_reader --cpu 1
"$BIN/chain_sink" --shm "$shm" --cpu 0 --probe-cpu 1 --idle 60s >"$tmp/sink.out" 2>&1 &
sink=$!
"$BIN/chain_sink" --shm "$shm" --cpu 0 --probe-cpu 1 --idle 60s >"$tmp/sink-b.out" 2>&1 &
sink_b=$!
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/remote" -t chain --chain-sizes 64,4k --chain-batch 1,16 \
	--chain-touch none,write --chain-duration 50ms --chain-receiver remote --cpu 0 --timeout 5s \
	>"$tmp/remote.out" 2>&1 || rc=$?
kill "$sink" "$sink_b" 2>/dev/null || true
wait "$sink" || true
wait "$sink_b" || true
cat "$tmp/sink-b.out" >>"$tmp/sink.out"
check "remote receiver: exit 0" [ "$rc" = 0 ]
[ "$rc" = 0 ] || cat "$tmp/remote.out" "$tmp/sink.out"
check "remote receiver: 8 rows, receiver remote, verified, a latency and a clock bound each" awk "$cols"'
	{ n++; if ($c["receiver"] != "remote" || $c["messages"] <= 0 || $c["errors"] != 0 || $c["nf_errors"] != 0 ||
	           $c["latency_count"] < 1 || $c["clock_error_ns"] < 1 || $c["p50_ns"] > $c["max_ns"]) bad = 1 }
	END { exit bad || n != 8 }' "$tmp/remote/chain_results.csv"
check "remote receiver: the two chain_sinks served the 8 points once each, none bad" \
	[ "$(grep -cE '^chain_sink: .* received, .* 0 bad$' "$tmp/sink.out")" = 8 ]
check "remote receiver: a point claimed by one was left to it by the other ($(grep -c 'left to it' "$tmp/sink.out"))" \
	grep -q '^chain_sink: a point taken by process [0-9]*; left to it$' "$tmp/sink.out"
check "remote receiver: each offset within its bound of the truth, 0 ($(grep -oE 'offset -?[0-9]+ ns \+- [0-9]+' "$tmp/sink.out" | head -3 | tr '\n' ' '))" \
	awk '/clock offset/ { for (i = 1; i <= NF; i++) if ($i == "offset") { o = $(i + 1); e = $(i + 4) + 0 }
		n++; if (o < 0) o = -o; if (o > e) bad = 1 } END { exit bad || n != 8 }' "$tmp/sink.out"
check "remote receiver: run.json says where the receiver was and how latency was timed" bash -c '
	grep -q "\"receiver\": \"remote: another process" "$1" && grep -q "less the clocks. offset" "$1" &&
	grep -q "\"status\": \"complete\"" "$1"' _ "$tmp/remote/run.json"
check "remote receiver: the lines say two clocks" grep -q '(two clocks)' "$tmp/remote.out"
# No receiver at all: the first point says so once its deadline passes, exit 1.
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/nosink" -t chain --chain-sizes 64 --chain-batch 1 \
	--chain-touch none --chain-duration 50ms --chain-receiver remote --cpu 0 --timeout 1s -q \
	>"$tmp/nosink.out" 2>&1 || rc=$?
check "no remote receiver: exit 1, saying so" bash -c '[ "$1" = 1 ] && grep -q "no remote receiver took ring B within 1 s" "$2"' _ "$rc" "$tmp/nosink.out"
# A forged receiver: it says ready and measured at once, then reports a window whose end
# count is below its start: an impossible report, exit 1, never a complete run.
/usr/bin/python3 - "$shm" >"$tmp/forger.out" 2>&1 <<'PY' &
import mmap, os, struct, sys, time
m = mmap.mmap(os.open(sys.argv[1], os.O_RDWR), 0)
TX, RX, WIN = 4096 + 320, 4096 + 384, 4096 + 448   # chain.c's struct chain_remote
deadline = time.time() + 20
while time.time() < deadline:
    magic, point = struct.unpack_from("<QQ", m, TX)
    if magic == 0x3158522D4E494843 and point:
        break
    time.sleep(0.001)
struct.pack_into("<Q", m, RX + 8, 1)            # ready, without a probe
time.sleep(0.05)
struct.pack_into("<Q", m, RX + 16, 1)           # measured
time.sleep(0.05)
struct.pack_into("<QQQQ", m, WIN, 1, 2, 10, 5)  # t0, t1, c0 = 10 > c1 = 5
struct.pack_into("<Qq", m, RX + 32, 5, 0)       # received 5, rc 0
struct.pack_into("<Q", m, RX + 24, 1)           # done
print("forged")
PY
forger=$!
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/forged" -t chain --chain-sizes 64 --chain-batch 1 \
	--chain-touch none --chain-duration 50ms --chain-receiver remote --cpu 0 --timeout 3s -q \
	>"$tmp/forged.out" 2>&1 || rc=$?
wait "$forger" || true
check "forged receiver: exit 1, an impossible report named ($(tail -n 1 "$tmp/forged.out"))" bash -c '
	[ "$1" = 1 ] && grep -q "an impossible report from the remote receiver" "$2"' _ "$rc" "$tmp/forged.out"
check "forged receiver: no row, run.json not complete" bash -c '
	[ "$(wc -l <"$1/chain_results.csv")" = 1 ] && ! grep -q "\"status\": \"complete\"" "$1/run.json"' _ "$tmp/forged"
stop_reader
# A forged sender: chain_sink sees a point whose set-up is garbage; it answers that point
# with a refusal (EPROTO) and goes on serving, never reading past its mapping.
"$BIN/chain_sink" --shm "$shm" --idle 20s >"$tmp/sink2.out" 2>&1 &
sink=$!
/usr/bin/python3 - "$shm" >"$tmp/fsend.out" 2>&1 <<'PY'
import mmap, os, struct, sys, time
m = mmap.mmap(os.open(sys.argv[1], os.O_RDWR), 0)
P, TX, RX = 4096, 4096 + 320, 4096 + 384
m[P:P + 4096] = os.urandom(4096)                   # params, result, set-up: garbage
struct.pack_into("<Q", m, 0, 0x3148434E45425649)   # a session header's magic
struct.pack_into("<8Q", m, RX, *([0] * 8))
struct.pack_into("<8Q", m, 4096 + 512, *([0] * 8))  # the summary line: no receiver's claim
struct.pack_into("<QQQQQQQQ", m, TX, 0x3158522D4E494843, 7, 1, 0, 0, 1 << 62, 0, 0)
deadline = time.time() + 10
while time.time() < deadline and not struct.unpack_from("<Q", m, RX + 24)[0]:
    time.sleep(0.005)
print("done", struct.unpack_from("<Q", m, RX + 24)[0], "rc", struct.unpack_from("<q", m, RX + 40)[0])
PY
alive=0
kill -0 "$sink" 2>/dev/null && alive=1
kill "$sink" 2>/dev/null || true
wait "$sink" || true
check "forged sender: chain_sink refused the point ($(cat "$tmp/fsend.out"), $(head -n 1 "$tmp/sink2.out")) and was still serving" \
	bash -c '[ "$1" = 1 ] && grep -qx "done 1 rc -71" "$2" && grep -q "^chain_sink: a point not received: its set-up is impossible" "$3"' _ "$alive" "$tmp/fsend.out" "$tmp/sink2.out"
expect2 "--chain-receiver: 'far' is not local or remote" --chain-receiver far

exit $fail
