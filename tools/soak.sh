#!/usr/bin/env bash
# soak.sh - long runs that must stay clean (make soak; not part of make check):
#   1. 10,000 verified 1080p frames host-only, zero errors;
#   2. 10,000,000 latency round trips host-only, every row on disk;
#   3. 300 sessions against one guest_reader: its memory and fds stay flat;
#   4. 1,000 verified 640x480 frames in a TCG guest (plain mode), zero errors.
# Prints each figure; exits 1 if any condition fails. SOAK_SKIP_VM=1 skips 4.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BUILD:-build}
# shellcheck source=tests/lib.bash
. tests/lib.bash
# shellcheck source=vm/files.bash
. vm/files.bash
# shellcheck source=vm/signals.bash
. vm/signals.bash
# SIGINT, SIGTERM and SIGHUP end it as they end a run (vm/signals.bash):
# the reader and the VM stopped, the temporary files removed, exit 128+N.
sig_catch
sig_mktemp tmp -d "${TMPDIR:-/tmp}/ivb-soak.XXXXXX"
sig_mktemp shm /dev/shm/ivb-soak.XXXXXX
reader_pid=''
truncate -s 64M "$shm"
start_reader() {
	# In the private directory $tmp: nothing else can stand at the name.
	: >"$tmp/reader.log"
	sig_start reader_pid "$BIN/guest_reader" --shm "$shm" --idle-exit 600s --silence 60s >>"$tmp/reader.log" 2>&1
	wait_line "$tmp/reader.log" IVB-GUEST-READY 20 || { echo "guest_reader did not start"; exit 1; }
}
# soak_run CMD... : CMD through sig_run (a signal is passed on to it, and
# ends the soak once it has ended); its status.
soak_run() {
	local rc=0
	sig_run "$@" || rc=$?
	sig_exit_if_stopped
	return "$rc"
}
soak_vm_stop() {
	./setup.sh stop >/dev/null 2>&1 || true
	rm -f "$IVSHMEM_SHM_PATH"
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
fds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }

start_reader
echo "== 1. 10,000 verified 1080p frames, host-only"
t0=$SECONDS
check "10,000 frames: exit 0" soak_run "$BIN/host_writer" --shm "$shm" -o "$tmp/frames" -t frames -f 1080p -b 10000 --cpu none -q
check "10,000 frames: all verified" [ "$(awk -F, 'NR > 1 && $6 == 1' "$tmp/frames/bandwidth_results.csv" | wc -l)" = 10000 ]
echo "   $((SECONDS - t0)) s"

echo "== 2. 10,000,000 latency round trips, host-only"
t0=$SECONDS
check "10M round trips: exit 0" soak_run "$BIN/host_writer" --shm "$shm" -o "$tmp/lat" -t latency -n 10M --cpu none -q
check "10M round trips: every row on disk" [ "$(($(wc -l <"$tmp/lat/latency_results.csv") - 1))" = 10000000 ]
/usr/bin/python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["latency"]; print("   p50 %.3f us, p99 %.3f us, p99.9 %.3f us, max %.1f us" % (l["p50_ns"]/1e3, l["p99_ns"]/1e3, l["p999_ns"]/1e3, l["max_ns"]/1e3))' "$tmp/lat/run.json"
rm -f "$tmp/lat/latency_results.csv"
echo "   $((SECONDS - t0)) s"

echo "== 3. 300 sessions against one guest_reader: memory and fds flat"
for i in $(seq 300); do
	if ! soak_run "$BIN/host_writer" --shm "$shm" -o "$tmp/s" -n 100 -w 0 -b 1 -f 64x64 --cpu none -q \
		--timeout 60s >"$tmp/session.out" 2>&1; then
		bad "session $i failed: $(tail -n 1 "$tmp/session.out")"
		break
	fi
	if [ "$i" = 20 ]; then rss20=$(rss_kb "$reader_pid") fd20=$(fds "$reader_pid"); fi
done
rss300=$(rss_kb "$reader_pid") fd300=$(fds "$reader_pid")
echo "   guest_reader after 20 sessions: ${rss20} kB, ${fd20} fds; after 300: ${rss300} kB, ${fd300} fds"
check "fds flat" [ "$fd300" = "$fd20" ]
check "memory flat (within 1 MiB)" [ $((rss300 - rss20)) -lt 1024 ]

if [ "${SOAK_SKIP_VM:-0}" = 1 ]; then
	echo "== 4. skipped (SOAK_SKIP_VM=1)"
else
	echo "== 4. 1,000 verified 640x480 frames in a TCG guest (plain mode)"
	export IVSHMEM_STATE_DIR=$tmp/vm IVSHMEM_SHM_PATH=/dev/shm/ivb-soak-vm-$$ IVSHMEM_RESULTS=$tmp/vmres
	export IVSHMEM_SERVER_SOCKET=$tmp/vm/ivshmem.sock IVSHMEM_ACCEL=${IVSHMEM_ACCEL:-tcg}
	SIG_AT_EXIT=(soak_vm_stop)
	t0=$SECONDS
	if soak_run ./setup.sh >"$tmp/setup.log" 2>&1; then
		check "VM 1,000 frames: exit 0" soak_run ./run_test.sh -t frames -f 640x480 -b 1000 -q
		check "VM 1,000 frames: all verified" [ "$(awk -F, 'NR > 1 && $6 == 1' "$tmp/vmres/bandwidth_results.csv" | wc -l)" = 1000 ]
	else
		bad "the VM did not start: $(tail -n 3 "$tmp/setup.log")"
	fi
	soak_vm_stop
	SIG_AT_EXIT=()
	echo "   $((SECONDS - t0)) s"
fi
echo "soak: $checks checks, $((checks - failures)) passed, $failures failed"
exit $fail
