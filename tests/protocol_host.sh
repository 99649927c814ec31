#!/usr/bin/env bash
# protocol_host - host_writer against guest_reader on a shared-memory file,
# no VM: a verified run with its CSV and JSON files, a guest that stops
# answering mid-run (timeout, partial CSV kept), a corrupted frame (detected
# and reported), and bad input (options, files, sizes) rejected clearly.
# timeout: 180
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
host_test_begin host

# 1. A full run: every frame verified, files as documented.
start_reader
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/ok" -n 2000 -w 50 -b 2 --cpu none >"$tmp/ok.out" 2>&1 || rc=$?
check "full run exits 0" [ "$rc" = 0 ]
check "latency CSV header" [ "$(head -n1 "$tmp/ok/latency_results.csv")" = "iteration,latency_ns,latency_us,received_ns,received_us" ]
check "latency CSV has 2000 rows" [ "$(($(wc -l <"$tmp/ok/latency_results.csv") - 1))" = 2000 ]
check "bandwidth CSV has 6 verified rows" [ "$(awk -F, 'NR > 1 && $6 == 1 && $8 == "ok"' "$tmp/ok/bandwidth_results.csv" | wc -l)" = 6 ]
check "frame sizes are W*H*3" grep -q '^4k,3840,2160,24883200,' "$tmp/ok/bandwidth_results.csv"
check "run.json is valid and complete" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "complete", r["status"]
assert r["latency"]["count"] == 2000 and r["frames_verified"] == 6 and r["frames_failed"] == 0
for k in ("version", "mode", "host_cpu", "clocksource", "shm_size", "start_time", "writer_cpu"):
    assert k in r, k
' "$tmp/ok/run.json"
check "summary printed" grep -q 'p99.9' "$tmp/ok.out"
stop_reader

# 2. The guest stops answering mid-run: timeout naming the message, exit 1,
#    the rows measured so far kept.
start_reader --exit-after 600
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/dead" -n 5000 -w 0 --timeout 500ms --cpu none >"$tmp/dead.out" 2>&1 || rc=$?
check "dead guest: exit 1" [ "$rc" = 1 ]
check "dead guest: message names the message and state" grep -q 'timeout after 0.5 s waiting for PROCESSED of latency message 601; last ack seen: message 600 PROCESSED' "$tmp/dead.out"
check "dead guest: partial latency CSV kept" [ "$(($(wc -l <"$tmp/dead/latency_results.csv") - 1))" = 600 ]
check "dead guest: run.json says timeout" grep -q '"status": "timeout' "$tmp/dead/run.json"
stop_reader

# 3. A frame corrupted after hashing: reported as ERROR digest, others verified.
start_reader
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/bad" -t bandwidth -f 1080p -b 3 --corrupt-frame 2 --cpu none >"$tmp/bad.out" 2>&1 || rc=$?
check "corrupt frame: exit 1" [ "$rc" = 1 ]
check "corrupt frame: row 2 is ERROR digest" [ "$(awk -F, 'NR == 3 { print $6 "," $7 "," $8 }' "$tmp/bad/bandwidth_results.csv")" = "0,3,digest" ]
check "corrupt frame: the others verified" [ "$(awk -F, 'NR > 1 && $6 == 1' "$tmp/bad/bandwidth_results.csv" | wc -l)" = 2 ]
check "corrupt frame: reported" grep -q '1 of 3 frames failed verification' "$tmp/bad.out"
stop_reader

# 4. No guest at all: a clear error within the deadline.
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/none" --timeout 300ms >"$tmp/none.out" 2>&1 || rc=$?
check "no guest: exit 1 with a hint" bash -c "[ $rc = 1 ] && grep -q 'no guest attached within 0.3 s' '$tmp/none.out'"

# 5. Bad input: exit 2 (options) or 1 (files), one clear line, nothing written.
expect() { # expect STATUS PATTERN ARGS...
	local want=$1 pattern=$2 rc=0
	shift 2
	"$BIN/host_writer" "$@" >"$tmp/err.out" 2>&1 || rc=$?
	# shellcheck disable=SC2016 # expanded by the inner shell
	check "host_writer $* -> $want" bash -c '[ "$1" = "$2" ] && grep -qF -- "$3" "$4"' _ "$rc" "$want" "$pattern" "$tmp/err.out"
}
expect 2 "--iterations: 'abc' is not a whole number" --iterations abc
expect 2 "--iterations: '0' is not a whole number in 1..100000000" -n 0
expect 2 "--frames: '8k' is not 1080p, 1440p, 4k or WxH" -f 8k
expect 2 "--timeout: 'soon' is not a duration" --timeout soon
expect 2 "--test: 'speed' is not a workload" --test speed
expect 2 "--cpu: '99' is not an online CPU number" --cpu 99
expect 2 "unrecognized option" --bogus
expect 1 "No such file or directory (is the VM running?" --shm /dev/shm/does-not-exist-ivb
truncate -s 1000 "$tmp/tiny"
expect 1 "too small: 1000 bytes" --shm "$tmp/tiny"
truncate -s 16M "$tmp/small"
expect 2 "frame 4k (24883200 bytes) does not fit" --shm "$tmp/small" --shm-any-fs -o "$tmp/x"
expect 1 "not on tmpfs or hugetlbfs" --shm "$tmp/small" -o "$tmp/x"
expect 0 "Usage: host_writer" --help
expect 0 "host_writer " --version
check "guest_reader: bad option exits 2" bash -c "'$BIN/guest_reader' --silence never >/dev/null 2>&1; [ \$? = 2 ]"
check "guest_reader: missing file exits 1" bash -c "'$BIN/guest_reader' --shm /nonexistent 2>&1 | grep -q 'No such file'"

exit $fail
