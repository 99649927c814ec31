#!/usr/bin/env bash
# hostile_host - a hostile peer (tests/helpers/ivb_hostile) writes chosen values into ring indices, end markers, slot headers and session fields during every workload, host-only: no run is complete with a figure that did not happen, an attack that must be seen fails the run, host_writer always ends, and the same guest_reader serves a fresh run within one timeout once the attack stops (also after a kill -9 of host_writer mid-stream).
# timeout: 300
#
# Each case starts its own guest_reader on the test's shared-memory file,
# starts ivb_hostile (it waits for its moment: N messages moved in a stream
# point, or session message N posted), then host_writer with 2 s
# deadlines; once host_writer has ended the attack is stopped and checked:
#   - the attack happened (ivb_hostile said so);
#   - host_writer ended by itself, within WRITER_LIMIT (a loop that only
#     the peer's claims bound would run until killed);
#   - "must" cases (an attack any correct side sees: a forged index or end
#     marker held for the whole run, an echo's end marker below what was
#     taken, garbage in every slot, a forged proof): exit non-zero, run.json
#     not "complete", and the failure names what was seen, not a timeout
#     (a side that waits out its deadline has not noticed the attack);
#   - every case: a "complete" run exits 0 and has no errors in its rows;
#   - guest_reader is still alive, and a fresh host_writer run against it
#     (latency, a short stream each way, a size-latency point) succeeds
#     with --timeout 1s, half the attacked run's: a responder that waits
#     out the attacked point's timeout is too late.
# Each workload also runs as a control: one write, at the attacks' moment,
# to a word no side reads (hdr.host_flags); it must complete.
# At the end, every attacked run's rows are checked for figures that cannot
# have happened, against the fastest real ones of the whole test (controls
# and fresh runs): a stream rate above STREAM_FACTOR times the fastest real
# one of its direction, or a row whose responder spent no CPU; a
# size-latency or latency median, or fastest round trip, below half the
# fastest real one; a rate row that received more than it sent or sent
# more than scheduled.
# An attack held for the whole run takes a CPU from the two sides, so it
# can only make a real figure slower.
# Output: one "ok"/"FAIL" line per check, then "N checks, N passed, N failed".
# shellcheck disable=SC2016 # awk programs are single-quoted on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
host_test_begin hostile

HOSTILE=$BIN/tests/helpers/ivb_hostile
TIMEOUT=2s        # every attacked host_writer's deadline (the responder's point timeout follows it)
FRESH_TIMEOUT=1s  # the fresh run's deadline: half, so a responder that waits out the old point fails it
WRITER_LIMIT=25   # seconds an attacked host_writer may take before it counts as stuck
STREAM_FACTOR=5   # a stream rate this many times the fastest real one is impossible
LATENCY_FACTOR=2  # a round trip this many times faster than the fastest real one is impossible
[ -x "$HOSTILE" ] || skip "$HOSTILE is not built (make all)"

H2G=(-t stream --sizes 64 --direction h2g --duration 300ms)
G2H=(-t stream --sizes 64 --direction g2h --duration 300ms)
BIDIR=(-t stream --sizes 64 --direction bidir --duration 300ms)
SIZELAT=(-t sizelat --lat-sizes 8 --lat-iterations 100000)
RATE=(-t rate --rate 2000 --rate-duration 500ms)
LATENCY=(-t latency -n 5000 -w 100)
# Long enough (tens of ms) that an attacker woken at message 500 lands well
# before the session ends.
LATENCY_LONG=(-t latency -n 300000 -w 100)
FRAMES=(-t frames -f 64x64 -b 300)
HOLD=(--for 10s)  # an attack held until host_writer has ended (then it is stopped)
FRESH=(-t "latency,stream,sizelat" -n 200 -w 10 --sizes 64 --duration 20ms --lat-sizes 8 --lat-iterations 200)

attacked=()       # cases whose figures are checked at the end
early_answers=(latency-ack-ahead latency-ack-forged) # their latency can be shortened unseen (below)
real_runs=()      # result directories of runs nobody attacked

# status_of DIR: run.json's status
status_of() {
	sed -n 's/^ *"status": "\(.*\)",*$/\1/p' "$1/run.json" 2>/dev/null | head -n1
}

# json_num DIR OBJECT KEY: a number inside run.json's "OBJECT": { ... }
json_num() {
	awk -v obj="\"$2\": {" -v key="\"$3\":" 'index($0, obj) { on = 1 } on && index($0, key) { gsub(/[^0-9.]/, "", $2); print $2; exit } on && /}/ { on = 0 }' "$1/run.json" 2>/dev/null
}

# rows_with_errors DIR: rows whose errors column is not 0
rows_with_errors() {
	local f
	for f in "$1"/stream_results.csv "$1"/size_latency_results.csv "$1"/rate_results.csv; do
		[ -f "$f" ] || continue
		awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "errors") c = i; next } c && $c + 0 != 0' "$f"
	done
}

# recovers NAME: a fresh run against the same guest_reader succeeds within one timeout
recovers() {
	local name=$1 dir=$tmp/$1.fresh rc=0 start
	if ! kill -0 "$reader_pid" 2>/dev/null; then
		bad "$name: guest_reader died: $(tail -n2 "$tmp/reader.log" | tr '\n' ' ')"
		reader_pid=''
		return
	fi
	start=$(date +%s%N)
	timeout -k 1 "$WRITER_LIMIT" "$BIN/host_writer" --shm "$shm" -o "$dir" --cpu none -q \
		-T "$FRESH_TIMEOUT" "${FRESH[@]}" >"$dir.out" 2>&1 || rc=$?
	if [ "$rc" = 0 ] && [ "$(status_of "$dir")" = complete ]; then
		ok "$name: then a fresh run succeeds ($((($(date +%s%N) - start) / 1000000)) ms, --timeout $FRESH_TIMEOUT)"
		real_runs+=("$dir")
	else
		bad "$name: then a fresh run fails (exit $rc): $(tail -n1 "$dir.out")"
	fi
}

# attack NAME must|may|control WRITER-ARGS... -- HOSTILE-ARGS...
# One case: a fresh guest_reader, the attacker waiting, host_writer, checks.
attack() {
	local name=$1 expect=$2 wargs=() hpid wpid rc=0 status errs start
	shift 2
	while [ "$1" != -- ]; do wargs+=("$1"); shift; done
	shift
	start_reader
	"$HOSTILE" --shm "$shm" --deadline 20s "$@" >"$tmp/$name.hostile" 2>&1 &
	hpid=$!
	if ! wait_line --pid "$hpid" "$tmp/$name.hostile" 'waiting for the moment' 10; then
		bad "$name: ivb_hostile did not start: $(tail -n2 "$tmp/$name.hostile" | tr '\n' ' ')"
		kill "$hpid" 2>/dev/null || true
		stop_reader
		return
	fi
	start=$(date +%s%N)
	timeout -k 1 "$WRITER_LIMIT" "$BIN/host_writer" --shm "$shm" -o "$tmp/$name" --cpu none -q \
		-T "$TIMEOUT" "${wargs[@]}" >"$tmp/$name.out" 2>&1 &
	wpid=$!
	wait "$wpid" || rc=$?
	kill "$hpid" 2>/dev/null || true
	wait "$hpid" 2>/dev/null || true
	status=$(status_of "$tmp/$name")
	echo "$name: $(grep -m1 'attack in' "$tmp/$name.hostile" | cut -c1-220)"
	echo "$name: host_writer exit $rc after $((($(date +%s%N) - start) / 1000000)) ms, status: $status"
	if ! grep -q 'attack in session' "$tmp/$name.hostile"; then
		bad "$name: the attack never happened: $(tail -n1 "$tmp/$name.hostile")"
	fi
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		bad "$name: host_writer did not end within $WRITER_LIMIT s (a loop only the peer's claims bound)"
	fi
	case $expect in
	must)
		if [ "$rc" = 0 ] || [ "$status" = complete ]; then
			bad "$name: the attacked run exits $rc with status '$status'; it must fail"
		elif [[ $status =~ timeout|stalled ]]; then
			bad "$name: the attacked run fails only by a timeout, without seeing the attack: $status"
		else
			ok "$name: the attacked run fails, naming what it saw"
		fi
		;;
	control)
		if [ "$rc" = 0 ] && [ "$status" = complete ]; then
			ok "$name: a write to a word no side reads changes nothing"
			real_runs+=("$tmp/$name")
		else
			bad "$name: a write to a word no side reads fails the run (exit $rc): $status"
		fi
		;;
	esac
	if [ "$status" = complete ]; then
		errs=$(rows_with_errors "$tmp/$name")
		if [ "$rc" != 0 ] || [ -n "$errs" ]; then
			bad "$name: status complete but exit $rc, rows with errors: $errs"
		fi
	fi
	[ "$expect" = control ] || attacked+=("$name")
	recovers "$name"
	stop_reader
}

# control NAME WRITER-ARGS... -- MOMENT-ARGS...: one write to a word no side reads
control() {
	local name=$1 wargs=()
	shift
	while [ "$1" != -- ]; do wargs+=("$1"); shift; done
	shift
	attack "$name" control "${wargs[@]}" -- "$@" --set hdr.host_flags=0
}

# killed_initiator: kill -9 host_writer in the middle of a 30 s stream with
# --timeout 30s; a run with --timeout 5s must attach and complete.
killed_initiator() {
	local rc=0 wpid start
	start_reader
	"$HOSTILE" --shm "$shm" --deadline 20s --at moved:10000 >"$tmp/kill9.hostile" 2>&1 &
	wait_line "$tmp/kill9.hostile" 'waiting for the moment' 10 || true
	"$BIN/host_writer" --shm "$shm" -o "$tmp/kill9" --cpu none -q -T 30s -t stream --sizes 64 \
		--direction h2g --duration 30s >"$tmp/kill9.out" 2>&1 &
	wpid=$!
	if ! wait_line "$tmp/kill9.hostile" 'moment came' 20; then
		bad "kill -9: the stream never moved 10000 messages"
	fi
	kill -9 "$wpid"
	wait "$wpid" 2>/dev/null || true
	start=$(date +%s%N)
	"$BIN/host_writer" --shm "$shm" -o "$tmp/kill9.fresh" --cpu none -q -T 5s "${FRESH[@]}" \
		>"$tmp/kill9.fresh.out" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		ok "kill -9 of host_writer mid-stream (--timeout 30s): a run with --timeout 5s attaches and completes ($((($(date +%s%N) - start) / 1000000)) ms)"
	else
		bad "kill -9 of host_writer mid-stream (--timeout 30s): a run with --timeout 5s fails (exit $rc): $(tail -n1 "$tmp/kill9.fresh.out")"
	fi
	stop_reader
}

# ---------------------------------------------------------------------------
# Figures that cannot have happened, against the fastest real ones
# ---------------------------------------------------------------------------

declare -A stream_max=([h2g]=0 [g2h]=0 [bidir]=0)
real_sizelat_p50=1e18 real_sizelat_min=1e18 real_latency_p50=1e18 real_latency_min=1e18

smaller() { awk -v a="$1" -v b="$2" 'BEGIN { print (b != "" && b + 0 < a + 0 ? b : a) }'; }

# fastest_real: the fastest figures of the runs nobody attacked
fastest_real() {
	local d dir rate
	for d in "${real_runs[@]}"; do
		if [ -f "$d/stream_results.csv" ]; then
			while IFS=, read -r dir rate; do
				stream_max[$dir]=$(awk -v a="${stream_max[$dir]}" -v b="$rate" 'BEGIN { print (b > a ? b : a) }')
			done < <(awk -F, 'NR > 1 { print $1 "," $10 }' "$d/stream_results.csv")
		fi
		if [ -f "$d/size_latency_results.csv" ]; then
			real_sizelat_p50=$(smaller "$real_sizelat_p50" "$(awk -F, 'NR == 2 { print $7 }' "$d/size_latency_results.csv")")
			real_sizelat_min=$(smaller "$real_sizelat_min" "$(awk -F, 'NR == 2 { print $5 }' "$d/size_latency_results.csv")")
		fi
		real_latency_p50=$(smaller "$real_latency_p50" "$(json_num "$d" latency p50_ns)")
		real_latency_min=$(smaller "$real_latency_min" "$(json_num "$d" latency min_ns)")
	done
	echo "fastest real figures (${#real_runs[@]} runs): stream msgs/s h2g ${stream_max[h2g]}" \
		"g2h ${stream_max[g2h]} bidir ${stream_max[bidir]}; size-latency p50 $real_sizelat_p50 ns," \
		"min $real_sizelat_min ns; latency p50 $real_latency_p50 ns, min $real_latency_min ns"
}

# impossible_rows DIR: print each row with a figure that cannot have happened
impossible_rows() {
	local dir=$1 p
	if [ -f "$dir/stream_results.csv" ]; then
		awk -F, -v h2g="${stream_max[h2g]}" -v g2h="${stream_max[g2h]}" -v bidir="${stream_max[bidir]}" \
			-v f="$STREAM_FACTOR" '
			NR == 1 { next }
			{ real = $1 == "h2g" ? h2g : $1 == "g2h" ? g2h : bidir; max = real * f }
			$10 + 0 > max || $7 + 0 > max * ($9 + 0) + 1000 { print "stream row with " $7 " messages at " $10 " msgs/s (fastest real: " real "): " $0; next }
			$7 + 0 < 0 || $12 + 0 < 0 || $10 + 0 < 0 { print "stream row with a negative figure: " $0; next }
			$12 + 0 == 0 && $14 + 0 <= 0 { print "stream row with no CPU spent by the responder: " $0 }' \
			"$dir/stream_results.csv"
	fi
	if [ -f "$dir/size_latency_results.csv" ]; then
		awk -F, -v real="$real_sizelat_p50" -v rmin="$real_sizelat_min" -v f="$LATENCY_FACTOR" '
			NR > 1 && $7 + 0 < real / f { print "size-latency row with p50 " $7 " ns (fastest real: " real " ns): " $0; next }
			NR > 1 && $5 + 0 < rmin / f { print "size-latency row with a round trip of " $5 " ns (fastest real: " rmin " ns): " $0 }' \
			"$dir/size_latency_results.csv"
	fi
	if [ -f "$dir/rate_results.csv" ]; then
		awk -F, '
			NR == 1 { next }
			$11 + 0 > $10 + 0 || $10 + 0 > $9 + 0 { print "rate row with more received than sent, or sent than scheduled: " $0; next }
			$4 + 0 > 1.02 * $3 + 10 { print "rate row achieving more than offered: " $0; next }
			$17 + 0 < 0 { print "rate row with a negative latency: " $0 }' \
			"$dir/rate_results.csv"
	fi
	p=$(json_num "$dir" latency p50_ns)
	if [ -n "$p" ] && [[ ! " ${early_answers[*]} " =~ \ ${dir##*/}\  ]]; then
		awk -v p="$p" -v m="$(json_num "$dir" latency min_ns)" -v real="$real_latency_p50" \
			-v rmin="$real_latency_min" -v f="$LATENCY_FACTOR" 'BEGIN {
				if (p + 0 < real / f) print "latency p50 " p " ns (fastest real: " real " ns)"
				else if (m + 0 < rmin / f) print "latency round trip of " m " ns (fastest real: " rmin " ns)" }'
	fi
}

# check_figures: every attacked run, against the fastest real figures
check_figures() {
	local name lines
	fastest_real
	for name in "${attacked[@]}"; do
		mapfile -t lines < <(impossible_rows "$tmp/$name")
		if [ "${#lines[@]}" -gt 0 ]; then
			bad "$name: figures that did not happen (status '$(status_of "$tmp/$name" | cut -c1-80)'):"
			printf '    | %s\n' "${lines[@]}"
		else
			ok "$name: no figure that did not happen"
		fi
	done
}

# ---------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------

control h2g-control "${H2G[@]}" -- --at moved:1000
control g2h-control "${G2H[@]}" -- --at moved:1000
control bidir-control "${BIDIR[@]}" -- --at moved:1000
control sizelat-control "${SIZELAT[@]}" -- --at moved:1000
control rate-control "${RATE[@]}" -- --at moved:100
control latency-control "${LATENCY[@]}" -- --at seq:500
control frames-control "${FRAMES[@]}" -- --at seq:10

# Stream h2g: ring 0's tail is the responder's; its head, end and slots the initiator's.
attack h2g-tail-zero must "${H2G[@]}" -- --at moved:1000 --set ring0.tail=0 "${HOLD[@]}"
attack h2g-tail-back must "${H2G[@]}" -- --at moved:1000 --set ring0.tail=-300 "${HOLD[@]}"
attack h2g-tail-ahead must "${H2G[@]}" -- --at moved:1000 --set ring0.tail=+0x4000000000000000 "${HOLD[@]}"
attack h2g-tail-flicker may "${H2G[@]}" -- --at moved:1000 --set ring0.tail=0 --set ring0.tail=+0 "${HOLD[@]}"
attack h2g-tail-ahead-flicker may "${H2G[@]}" -- --at moved:1000 --set ring0.tail=+0x4000000000000000 --set ring0.tail=+0 "${HOLD[@]}"
attack h2g-head-huge-empty may "${H2G[@]}" -- --at moved:1000 --set ring0.head=0x4000000000000000 --when-empty 0 --count 20 --every 1ms
attack h2g-head-ahead must "${H2G[@]}" -- --at moved:1000 --set ring0.head=+0x100000 "${HOLD[@]}"
attack h2g-end-below must "${H2G[@]}" -- --at moved:1000 --set ring0.end=5 "${HOLD[@]}"
attack h2g-slot-len must "${H2G[@]}" -- --at moved:1000 --set 'ring0.slot[all].len=0xffffffff' "${HOLD[@]}"
attack h2g-slot-seq-skip must "${H2G[@]}" -- --at moved:1000 --set 'ring0.slot[pending].seq=+1' "${HOLD[@]}"
attack h2g-session-flip may "${H2G[@]}" -- --at moved:1000 --set hdr.session_id=random
attack h2g-ack-forged must "${H2G[@]}" -- --at moved:1000 --set hdr.ack=ack:processed "${HOLD[@]}"

# Stream g2h: ring 1's head, end and slots are the responder's.
attack g2h-head-ahead must "${G2H[@]}" -- --at moved:1000 --set ring1.head=+0x4000000000000000 "${HOLD[@]}"
attack g2h-head-back must "${G2H[@]}" -- --at moved:1000 --set ring1.head=0 "${HOLD[@]}"
attack g2h-end-below must "${G2H[@]}" -- --at moved:1000 --set ring1.end=5 "${HOLD[@]}"
attack g2h-slot-check must "${G2H[@]}" -- --at moved:1000 --set 'ring1.slot[all].check=random' "${HOLD[@]}"

# Stream bidir: ring 1's tail is the initiator's, read by the responder as producer.
attack bidir-tail1-zero must "${BIDIR[@]}" -- --at moved:1000 --set ring1.tail=0 "${HOLD[@]}"
attack bidir-tail0-flicker may "${BIDIR[@]}" -- --at moved:1000 --set ring0.tail=0 --set ring0.tail=+0 "${HOLD[@]}"

# Size-latency: the echo's end marker, and a huge head into the empty ring 0.
attack sizelat-end-below must "${SIZELAT[@]}" -- --at moved:1000 --set ring1.end=0
attack sizelat-head-huge may "${SIZELAT[@]}" -- --at moved:1000 --set ring0.head=0x4000000000000000 --when-empty 0 --count 20 --every 1ms
# A forged length must land between the echo's write and its read, a window
# of nanoseconds: a run long enough that the attacker is scheduled inside it.
attack sizelat-echo-len must -t sizelat --lat-sizes 8 --lat-iterations 3000000 -- --at moved:1000 \
	--set 'ring1.slot[all].len=0x7fffffff' "${HOLD[@]}"

# Rate at a small rate: ring 0 is empty most of the time.
attack rate-head-huge may "${RATE[@]}" -- --at moved:100 --set ring0.head=0x4000000000000000 --when-empty 0 --count 20 --every 1ms
attack rate-end-below must "${RATE[@]}" -- --at moved:100 --set ring1.end=0
attack rate-echo-seq-skip may "${RATE[@]}" -- --at moved:100 --set 'ring1.slot[all].seq=+1' "${HOLD[@]}"

# Latency and frames: the session fields.
# A session id changed under the initiator is seen (the responder leaves for
# the other session, the ack goes back, and the id is checked at the close).
attack latency-session-flip must "${LATENCY_LONG[@]}" -- --at seq:500 --set hdr.session_id=random
# Answers written in the responder's place. Most are seen (the responder
# finds it was overtaken or skipped, the ack goes back or ahead, the end of
# the session says so), but one written exactly as the responder is about
# to write it, a little earlier, is not: that round trip comes out short
# (README, "Who must be trusted"), so these runs' latency figures are not held
# to the fastest real ones below.
attack latency-ack-ahead may "${LATENCY_LONG[@]}" -- --at seq:500 --set hdr.ack=ack:processed+1 "${HOLD[@]}"
attack latency-ack-forged may "${LATENCY_LONG[@]}" -- --at seq:500 --set hdr.ack=ack:processed "${HOLD[@]}"
attack latency-command may "${LATENCY[@]}" -- --at seq:500 --set hdr.command=0x77 "${HOLD[@]}"
# Frames whose check takes the responder milliseconds: a forged PROCESSED
# lands inside that window however the attacker is scheduled.
attack frames-ack-forged must -t frames -f 1080p -b 20 -- --at seq:10 --set hdr.ack=ack:processed "${HOLD[@]}"
attack frames-payload-size may "${FRAMES[@]}" -- --at seq:10 --set hdr.payload_size=0xffffffffff "${HOLD[@]}"

killed_initiator
check_figures

echo "$checks checks, $((checks - failures)) passed, $failures failed"
exit "$fail"
