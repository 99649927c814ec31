#!/usr/bin/env bash
# limits_host - the limits workload host-only: run_test.sh --host-only
# --test limits writes a row per size, loop and side with a positive rate
# and the columns host_writer's schema prints; bad sizes and loops are
# refused with one line and exit 2; a responder that dies in the middle of
# a loop is a timeout naming the loop, within the loop's time and the
# deadline; a new initiator is served at once by a responder whose old
# initiator died in the middle of a long loop.
# timeout: 180
# shellcheck disable=SC2016 # awk programs are single-quoted on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
host_test_begin limits
rows() { echo $(($(wc -l <"$1") - 1)); }
# in_loop : wait (20 s at most) until the responder has acknowledged a LIMITS
# message as RECEIVED: it is in its loop.
in_loop() {
	/usr/bin/python3 - "$shm" <<'PY'
import mmap, os, struct, sys, time
m = mmap.mmap(os.open(sys.argv[1], os.O_RDONLY), 0, prot=mmap.PROT_READ)
end = time.monotonic() + 20
while time.monotonic() < end:
    seq, cmd = struct.unpack_from("<QI", m, 72)
    ack = struct.unpack_from("<Q", m, 128)[0]
    if cmd == 5 and seq and ack == (seq << 8 | 1):
        sys.exit(0)
    time.sleep(0.01)
sys.exit(1)
PY
}

# 1. End to end through run_test.sh: 2 sizes x 3 loops x 2 sides.
run sweep env IVSHMEM_BUILD_DIR="$(cd "$BIN" && pwd)" IVSHMEM_RESULTS="$tmp/res" \
	./run_test.sh --host-only --test limits --limit-sizes 64,4k --limit-duration 50ms -q
csv=$tmp/res/limits_results.csv
check "sweep: exit 0" [ "$rc" = 0 ]
check "sweep: 12 rows" [ "$(rows "$csv")" = 12 ]
for loop in copy copy_shm xxh3; do
	for side in initiator responder; do
		for size in 64 4096; do
			check "sweep: $size B $loop $side, positive GB/s" awk -F, -v s="$size" -v l="$loop" -v d="$side" '
				$1 == s && $2 == l && $3 == d && $4 > 0 && $7 > 0 && $8 > 0 { n++ } END { exit n != 1 }' "$csv"
		done
	done
done
check "sweep: GB/s is bytes / seconds" awk -F, 'NR > 1 { r = $5 / $6 / 1e9; if (r / $8 < 0.999 || r / $8 > 1.001) exit 1 }' "$csv"
check "sweep: the header is the schema host_writer prints" bash -c "'$BIN/host_writer' --schema | grep -qF \"limits limits_results.csv \$(head -1 '$csv')\""
check "sweep: run.json lists the file" grep -q '"limits_results.csv": 12' "$tmp/res/run.json"
check "sweep: run.json says what was measured" grep -q '"responder_xxh3_impl": "xxh3-' "$tmp/res/run.json"

# 2. Bad options: exit 2, one line naming the option (and the pointer to --help).
expect2() { # expect2 PATTERN ARGS...
	local pattern=$1 rc=0
	shift
	"$BIN/host_writer" --shm "$shm" -o "$tmp/x" -t limits "$@" >"$tmp/err.out" 2>&1 || rc=$?
	check "host_writer -t limits $* -> 2, '$pattern'" bash -c '[ "$1" = 2 ] && grep -qF -- "$2" "$3" && [ "$(grep -vc "^Try " "$3")" = 1 ]' _ "$rc" "$pattern" "$tmp/err.out"
}
expect2 "--limit-sizes: '0' is not a size" --limit-sizes 0
expect2 "--limit-sizes: '65M' is not a size" --limit-sizes 64,65M
expect2 "--limit-sizes: a 67100673-byte buffer cannot fit" --limit-sizes 4k,67100673
expect2 "--limit-loops: 'memcpy' is not copy" --limit-loops memcpy
expect2 "--limit-duration: '0' is not a duration" --limit-duration 0
run bad-run env IVSHMEM_BUILD_DIR="$(cd "$BIN" && pwd)" IVSHMEM_RESULTS="$tmp/bad" \
	./run_test.sh --host-only --test limits --limit-sizes 0
check "run_test.sh with a bad size: exit 2, one line and the pointer to --help" \
	bash -c '[ "$1" = 2 ] && [ "$(grep -vc "^Try " "$2")" = 1 ]' _ "$rc" "$tmp/bad-run.out"

# 3. The responder dies in the middle of its loop: a timeout naming the loop,
# after the loop's time and the deadline, not before and not much after.
start_reader -v
start=$SECONDS
"$BIN/host_writer" --shm "$shm" -o "$tmp/dead" -t limits --limit-sizes 4k --limit-loops xxh3 \
	--limit-duration 2s --timeout 1s --cpu none -q >"$tmp/dead.out" 2>&1 &
writer=$!
check "dead responder: its loop began" in_loop
kill -9 "$reader_pid"
reader_pid=''
rc=0
wait "$writer" || rc=$?
check "dead responder: exit 1" [ "$rc" = 1 ]
check "dead responder: the message names the loop" grep -q "timeout.*the responder's xxh3 loop over 4096 bytes" "$tmp/dead.out"
check "dead responder: within the loops' time and the deadline" [ $((SECONDS - start)) -lt 15 ]

# 4. A new initiator is served at once, though the old one died in the
# middle of a 20 s loop on the responder.
start_reader -v
"$BIN/host_writer" --shm "$shm" -o "$tmp/old" -t limits --limit-sizes 4k --limit-loops copy \
	--limit-duration 20s --cpu none -q >"$tmp/old.out" 2>&1 &
writer=$!
wait_line "$tmp/reader.log" 'attached to session' 20 || true
# It dies in its own loop (24 s); what it would have posted next is posted
# for it: LIMITS (command 5), a 20 s copy loop over 4 KiB.
kill -9 "$writer"
wait "$writer" 2>/dev/null || true
/usr/bin/python3 - "$shm" <<'PY'
import mmap, os, struct, sys
m = mmap.mmap(os.open(sys.argv[1], os.O_RDWR), 0)
m[4096:4096 + 64] = struct.pack("<IIQQ40x", 0, 4096, 0, 20 * 10**9)  # loop, len, warm-up, duration
struct.pack_into("<Q", m, 88, 4096)       # payload_size
struct.pack_into("<I", m, 80, 5)          # command
seq = struct.unpack_from("<Q", m, 72)[0]
struct.pack_into("<Q", m, 72, seq + 1)    # seq, posted last
PY
check "takeover: the dead initiator's loop began" in_loop
start=$(date +%s%N)
run new "$BIN/host_writer" --shm "$shm" -o "$tmp/new" -t limits --limit-sizes 64 --limit-loops xxh3 \
	--limit-duration 50ms --cpu none -q
ms=$((($(date +%s%N) - start) / 1000000))
check "takeover: the new initiator's run: exit 0" [ "$rc" = 0 ]
check "takeover: served within 5 s, not after the old 20 s loop ($ms ms)" [ "$ms" -lt 5000 ]
check "takeover: the old loop was left unanswered" grep -q "session ended .* during message" "$tmp/reader.log"
stop_reader
exit $fail
