#!/usr/bin/env bash
# faults_results - what a run leaves on disk when things go wrong: a writer
# killed mid-run (samples already flushed, status "running"), shared memory
# truncated under it (caught, named, partial results kept, exit 1), a full
# disk (exit 1, one line, no half row, no temporary file), an unwritable
# run.json, an older run's files in the directory (removed, never passed
# off as this run's), and a --shm path that is a planted symlink (refused,
# target untouched).
# timeout: 180
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
host_test_begin faults
full_mounted=''
# A fresh 64 MiB file for each case (a case may have truncated it).
fresh_reader() {
	truncate -s 0 "$shm"
	truncate -s 64M "$shm"
	start_reader
}
unmount_full() {
	[ -z "$full_mounted" ] || umount "$tmp/full" 2>/dev/null || true
	host_test_end
}
trap unmount_full EXIT

# Every line of a CSV has the header's number of fields: no half row.
whole_rows() {
	awk -F, 'NR == 1 { n = NF } NF != n { bad = 1 } END { exit bad }' "$1"
}
# whole_or_cut FILE : every line that ends has the header's fields; only a last line without
# its end of line may have fewer (SIGKILL can stop a write(2) between two pages: the
# analysis reads such a line as cut short and leaves it out).
whole_or_cut() {
	local body=$1
	if [ -n "$(tail -c 1 "$1")" ]; then
		body=$(mktemp) && head -n -1 "$1" >"$body" || return 1
		awk -F, -v n="$(head -n 1 "$1" | awk -F, '{ print NF }')" 'END { exit !(NF < n) }' "$1" || return 1
	fi
	whole_rows "$body"
}
json() { # json FILE EXPR: print a Python expression over run.json as r
	/usr/bin/python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}
# Wait until FILE has more than N lines (30 s at most), as they are written.
wait_rows() {
	wait_line "$1" . 30 $(($2 + 1))
}

# 1. A writer killed mid-latency: what it measured is on disk, whole, and
#    run.json says the run never completed.
fresh_reader
"$BIN/host_writer" --shm "$shm" -o "$tmp/killed" -n 50000000 -w 0 --cpu none -q >/dev/null 2>&1 &
writer=$!
check "killed: samples reach the disk while the run goes" wait_rows "$tmp/killed/latency_results.csv" 1000
kill -9 "$writer"
wait "$writer" 2>/dev/null || true
check "killed: every row is whole, but for a last one cut short ($(tail -c 1 "$tmp/killed/latency_results.csv" | od -An -c | tr -d ' '))" \
	whole_or_cut "$tmp/killed/latency_results.csv"
check "killed: run.json says running" [ "$(json "$tmp/killed/run.json" 'r["status"]')" = running ]
check "killed: run.json has a run id" [ "$(json "$tmp/killed/run.json" 'len(r["run_id"])')" = 32 ]
stop_reader

# 2. The shared memory truncated under the writer: caught, named, kept.
fresh_reader
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/shrunk" -n 50000000 -w 0 --cpu none -q >"$tmp/shrunk.out" 2>&1 &
writer=$!
wait_rows "$tmp/shrunk/latency_results.csv" 300 || true
truncate -s 0 "$shm"
wait "$writer" || rc=$?
check "shrunk: exit 1, not a bus error" [ "$rc" = 1 ]
check "shrunk: says how far and where" grep -qE 'shared memory shrank to 0 bytes during message [0-9]+' "$tmp/shrunk.out"
check "shrunk: run.json says so" grep -q 'shrank to 0 bytes' "$tmp/shrunk/run.json"
check "shrunk: the samples measured are kept, whole" bash -c "[ \$(wc -l <'$tmp/shrunk/latency_results.csv') -gt 300 ] && awk -F, 'NF != 5 { exit 1 }' '$tmp/shrunk/latency_results.csv'"
stop_reader
check "shrunk: guest_reader names it too" grep -q 'guest_reader: shared memory shrank to 0 bytes' "$tmp/reader.log"
check "shrunk: run.json lists what is on disk" [ "$(json "$tmp/shrunk/run.json" 'r["files"]["latency_results.csv"]')" = "$(($(wc -l <"$tmp/shrunk/latency_results.csv") - 1))" ]
stop_reader

# 3. A full disk: exit 1 with one line, no half row, no temporary file.
mkdir -p "$tmp/full"
if mount -t tmpfs -o size=256k tmpfs "$tmp/full" 2>/dev/null; then
	full_mounted=1
	fresh_reader
	rc=0
	"$BIN/host_writer" --shm "$shm" -o "$tmp/full/r" -n 200000 -w 0 -b 1 -f 64x64 --cpu none -q \
		>"$tmp/full.out" 2>&1 || rc=$?
	check "full disk: exit 1" [ "$rc" = 1 ]
	check "full disk: says so" grep -q 'No space left on device' "$tmp/full.out"
	check "full disk: said once, in one line" [ "$(grep -c . "$tmp/full.out")" = 1 ]
	check "full disk: no half row" whole_rows "$tmp/full/r/latency_results.csv"
	check "full disk: no temporary file" [ ! -e "$tmp/full/r/run.json.tmp" ]
	stop_reader
else
	echo "note: cannot mount a small tmpfs (not root?); full-disk case not run"
fi

# 4. run.json cannot be written (a directory in its place): exit 1, one line.
fresh_reader
mkdir -p "$tmp/nojson/run.json"
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/nojson" -n 100 -b 1 -f 64x64 --cpu none -q >"$tmp/nojson.out" 2>&1 || rc=$?
check "run.json unwritable: exit 1" [ "$rc" = 1 ]
check "run.json unwritable: says so" grep -q "cannot write the results: .*run.json" "$tmp/nojson.out"
check "run.json unwritable: said once, in one line" [ "$(grep -c . "$tmp/nojson.out")" = 1 ]
check "run.json unwritable: no temporary file" [ ! -e "$tmp/nojson/run.json.tmp" ]
stop_reader

# 5. An older run's files are not passed off as this run's.
fresh_reader
mkdir -p "$tmp/stale"
printf 'frame,width\nold,1\n' >"$tmp/stale/bandwidth_results.csv"
printf 'iteration,latency_ns\n0,1\n' >"$tmp/stale/latency_results.csv"
: >"$tmp/stale/run.json.tmp"
rc=0
"$BIN/host_writer" --shm "$shm" -o "$tmp/stale" -t latency -n 100 --cpu none -q >/dev/null 2>&1 || rc=$?
check "stale: run exits 0" [ "$rc" = 0 ]
check "stale: the old bandwidth file is gone" [ ! -e "$tmp/stale/bandwidth_results.csv" ]
check "stale: no old temporary file" [ ! -e "$tmp/stale/run.json.tmp" ]
check "stale: run.json lists only this run's file" [ "$(json "$tmp/stale/run.json" 'sorted(r["files"].items())')" = "[('latency_results.csv', 100)]" ]
stop_reader

# 6. A planted symlink as --shm: refused, and its target untouched.
printf 'precious' >"$tmp/precious"
cp "$shm" "$tmp/shm-copy" 2>/dev/null || true
ln -s "$shm" "$tmp/link-to-shm"
ln -s "$tmp/precious" "$tmp/link-to-file"
rc=0
"$BIN/host_writer" --shm "$tmp/link-to-shm" -o "$tmp/sym" -n 10 --cpu none >"$tmp/sym.out" 2>&1 || rc=$?
check "symlink: exit 1" [ "$rc" = 1 ]
check "symlink: says it is a symlink" grep -q 'is a symlink; refusing to follow it' "$tmp/sym.out"
rc=0
"$BIN/host_writer" --shm "$tmp/link-to-file" -o "$tmp/sym" -n 10 --cpu none --shm-any-fs >"$tmp/sym.out" 2>&1 || rc=$?
check "symlink to a file: refused even with --shm-any-fs" [ "$rc" = 1 ]
check "symlink to a file: target untouched" [ "$(cat "$tmp/precious")" = precious ]
rc=0
"$BIN/guest_reader" --shm "$tmp/link-to-shm" --once --idle-exit 1 >"$tmp/sym.out" 2>&1 || rc=$?
check "guest_reader refuses a symlink too (exit 4: cannot attach)" bash -c "[ $rc = 4 ] && grep -q 'is a symlink' '$tmp/sym.out'"
exit $fail
