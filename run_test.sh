#!/usr/bin/env bash
# shellcheck disable=SC2030,SC2031,SC2054 # bench_vm changes settings in a subshell on purpose; option lists hold commas
# run_test.sh - run the benchmark against the running VM (./setup.sh starts
# it) and write the results directory.
#
#   ./run_test.sh [host_writer options]   the tests (IVSHMEM_TESTS) in the VM:
#                                         latency, frames, and a short stream
#                                         and size-latency sweep
#   ./run_test.sh --host-only [options]   the same against a guest_reader on
#                                         the host (no VM): the baseline
#   ./run_test.sh [--host-only] --stream [options]
#                                         the full stream and size-latency
#                                         sweep, 8 B to 16 MiB
#   ./run_test.sh [--host-only] --rate R [--interference cpu,membw,cache]
#   ./run_test.sh [--host-only] --rate-sweep
#                                         latency under load: an open-loop
#                                         sender at R msgs/s, or a sweep up
#                                         to the knee, quiet and beside
#                                         stress-ng co-runners
#   ./run_test.sh --transports [LIST]     the size-latency ping-pong and the
#                                         stream over ivshmem and, in the same
#                                         run, over the micro guest's
#                                         virtio-serial, TCP over virtio-net and
#                                         vsock, and the host's UNIX socket,
#                                         pipe and TCP loopback (LIST: a subset
#                                         of serial,tcp,vsock,unix,pipe,loopback)
#   ./run_test.sh ... --repeat N          every selected workload N times, each
#                                         a run of its own (OUT/rep-K), merged
#                                         with a repetition column
#   ./run_test.sh ... --repeat 3..20 --ci 95,5
#                                         repeat until each headline median's
#                                         95 % interval is within +-5 %
#   ./run_test.sh [--host-only] --matrix 'AXIS=V1,V2 ...' [options] [--resume OUT]
#                                         one run per cell of the cross
#                                         product (an axis: a host_writer
#                                         option, or backing, bar-map, vcpus,
#                                         pin, accel, mode, which reboot the
#                                         guest), OUT/cell-NNN-*/ and
#                                         OUT/matrix_results.csv (vm/matrix.bash)
#   ./run_test.sh --bench                 in one run: latency and streams
#                                         host-only, the eventfd floor,
#                                         freshly booted VMs and VM pairs in
#                                         plain and doorbell mode, with ratios
#
# Settings (environment, defaults in README.md): IVSHMEM_RESULTS,
# IVSHMEM_TESTS, IVSHMEM_ITERATIONS, IVSHMEM_WARMUP, IVSHMEM_FRAME_ITERATIONS,
# IVSHMEM_FRAMES, IVSHMEM_GAP, IVSHMEM_TIMEOUT, IVSHMEM_WRITER_CPU, and the
# VM settings of setup.sh. Other options are passed to host_writer.
set -euo pipefail
cd "$(dirname "$0")"
VM_PROG=run_test # the prefix of every message
# shellcheck source=vm/vm.sh
. vm/vm.sh
# shellcheck source=vm/matrix.bash
. vm/matrix.bash
# SIGINT, SIGTERM and SIGHUP end a run the same way (vm/signals.bash): the
# signal is passed on to host_writer (in vm-vm, guest A is asked to stop
# it), which ends the run, keeps what it measured and says in run.json that
# it was interrupted; the host's guest_reader and the temporary files go;
# the exit status is 128+N.
sig_catch

: "${IVSHMEM_RESULTS:=results}"
: "${IVSHMEM_ITERATIONS:=1000}"
: "${IVSHMEM_WARMUP:=100}"
: "${IVSHMEM_FRAME_ITERATIONS:=5}"
: "${IVSHMEM_FRAMES:=1080p,1440p,4k}"
: "${IVSHMEM_GAP:=0}"
: "${IVSHMEM_TIMEOUT:=10s}"
: "${IVSHMEM_BENCH_ITERATIONS:=100000}"
# Repetitions of the benchmark's latency and stream runs: 6 is the fewest
# whose [min, max] is a 95 % interval for the median (96.9 %).
: "${IVSHMEM_BENCH_REPEAT:=6}"
IVSHMEM_TESTS_GIVEN=${IVSHMEM_TESTS:+1} # unset: the running guest's topology may choose (chain)
: "${IVSHMEM_TESTS:=latency,frames,stream,sizelat}"
# The full sweep of --stream: every size from 8 B to 16 MiB, half a second a point.
STREAM_SWEEP=(--test stream,sizelat --sizes ladder --lat-sizes ladder --duration 500ms)
# The benchmark's stream points: 64 B, 4 KiB, 1 MiB and a 4K RGB frame
# (3840x2160x3 bytes), initiator to responder, in shared memory large
# enough for four frames in flight.
BENCH_STREAM=(--test stream --direction h2g --sizes 64,4k,1M,24883200 --duration 500ms)
BENCH_SHM_SIZE=256M
# EIVU's grid: the 64 B stream over batch x ring slots, host-only in full
# and a short version in the plain VM; the defaults (batch 16, 256 slots)
# are a cell of both.
BENCH_GRID='batch=1,4,16,64,256 slots=16,64,256,1024,4096'
BENCH_GRID_VM='batch=1,16,256 slots=64,256,1024'
BENCH_GRID_ARGS=(-t stream --sizes 64 --direction h2g --duration 200ms)
# The benchmark's knee: the rate workload's default rule (a bound from the
# tail of a quiet second, two rates in a row not sustained to stop), which
# holds on a noisy machine; BENCH_RATE adds options to it.
BENCH_RATE=()

BIN=$IVSHMEM_BUILD_DIR

die() { vm_die "$@"; }

# Common host_writer options from the settings.
writer_args() {
	WRITER_ARGS=(--test "$IVSHMEM_TESTS" --iterations "$IVSHMEM_ITERATIONS" --warmup "$IVSHMEM_WARMUP"
		--frame-iterations "$IVSHMEM_FRAME_ITERATIONS" --frames "$IVSHMEM_FRAMES"
		--gap "$IVSHMEM_GAP" --timeout "$IVSHMEM_TIMEOUT" --cpu "$IVSHMEM_WRITER_CPU")
}

# The helpers of the benchmark's tables (Python, before each table's own):
# a figure of a results directory measured once or over its repetitions
# (rep-K/), as the median with its interval, and the ratio of two such
# figures with a bootstrap interval over both (analysis/intervals.py).
BENCH_PY='
import glob, json, os, statistics, sys
from analysis.intervals import bootstrap_ratio, median_interval
LEVEL = 0.95
def runs(d):
    """The results directories of d: its repetitions, or d itself."""
    reps = sorted(glob.glob(os.path.join(d, "rep-[0-9]*")), key=lambda p: int(p.rsplit("-", 1)[1]))
    return reps or [d]
def values(d, get):
    """get(directory) for each run of d, those that have the figure."""
    out = []
    for r in runs(d):
        try:
            v = get(r)
        except (OSError, KeyError, ValueError, IndexError, TypeError):
            continue
        if v is not None:
            out.append(float(v))
    return out
def latency(key):
    return lambda r: json.load(open(os.path.join(r, "run.json")))["latency"][key]
def med(v):
    return statistics.median(v) if v else None
def si(v):
    """3 significant digits, with k, M or G for large numbers."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return "%.3g%s" % (v / div, suffix)
    return "%.3g" % v
def shown(v, fmt=None):
    """median [low, high] (the interval over repetitions), or the one value."""
    f = (lambda x: fmt % x) if fmt else si
    if not v:
        return "-"
    if len(v) == 1:
        return f(v[0])
    low, high, _ = median_interval(v, LEVEL)
    return "%s [%s, %s]" % (f(med(v)), f(low), f(high))
def ratio(a, b, fmt="%.3g"):
    """median(b) / median(a) [bootstrap interval], or the plain ratio."""
    if not a or not b or not med(a):
        return "-"
    r = med(b) / med(a)
    if len(a) < 2 or len(b) < 2:
        return (fmt + "x") % r
    low, high = bootstrap_ratio(a, b, LEVEL)
    return (fmt + "x [" + fmt + ", " + fmt + "]") % (r, low, high)
'

# bench_py ARG... : the Python on standard input, after BENCH_PY.
bench_py() {
	local code
	code=$(cat)
	/usr/bin/python3 -c "$BENCH_PY$code" "$@"
}

# bench_p50_ratio A B : B's round-trip p50 over A's, with its interval; a
# B faster than its bound A is flagged.
bench_p50_ratio() {
	bench_py "$1" "$2" <<'PY'
a, b = (values(d, latency("p50_ns")) for d in sys.argv[1:3])
print(ratio(a, b, "%.2f") + ("  BASELINE BEATEN: faster than what bounds it" if a and b and med(b) < med(a) else ""))
PY
}

# run_writer OUT ARGS... : host_writer with ARGS, its results into OUT, as a
# child that a signal is passed on to (vm/signals.bash); its status in
# WRITER_RC. After a signal, a run.json it could not finish says so.
run_writer() {
	local out=$1 tmp why
	shift
	# Nothing is written through a link planted in the results directory.
	why=$(vm_results_links "$out")
	[ -z "$why" ] || die "$why"
	# host_writer makes OUT itself, once its options are good.
	mkdir -p "$(dirname "$out")"
	sig_mktemp tmp -d "${TMPDIR:-/tmp}/ivshmem-bench-run.XXXXXX"
	: >"$tmp/start" # what run.json must be newer than to be this run's
	WRITER_RC=0
	sig_run "$BIN/host_writer" --output "$out" "$@" || WRITER_RC=$?
	sig_mark_run_json "$out/run.json" "$tmp/start" || true
	rm -rf "$tmp"
	sig_forget "$tmp"
}

# Run host_writer against the running VM into results dir $1; extra args follow.
run_vm() {
	local out=$1 pid missing rc=0
	shift
	[ -d "$VM_STATE_DIR" ] || die "no VM running: start it with ./setup.sh (or use make test)"
	vm_lock "a run"
	pid=$(vm_pid)
	[ -n "$pid" ] || die "no VM running: start it with ./setup.sh (or use make test)"
	vm_load_env || die "no $VM_ENV: restart the VM with ./setup.sh stop && ./setup.sh"
	missing=$(vm_missing)
	[ -z "$missing" ] || die "the VM (QEMU pid $pid) is not usable: $missing; IVSHMEM_MODE=$VM_MODE ./setup.sh restarts it"
	# The running VM decides the mode and guest, whatever the environment says;
	# one booted with IVSHMEM_TOPOLOGY=chain runs the forwarding chain unless
	# IVSHMEM_TESTS (or --test) says otherwise.
	IVSHMEM_MODE=$VM_MODE IVSHMEM_GUEST=$VM_GUEST
	[ "${VM_TOPOLOGY:-}" != chain ] || [ -n "$IVSHMEM_TESTS_GIVEN" ] || IVSHMEM_TESTS=chain
	writer_args
	if [ "$VM_MODE" = doorbell ]; then
		WRITER_ARGS+=(--doorbell "$VM_SERVER_SOCKET" --vectors "$VM_VECTORS")
	else
		WRITER_ARGS+=(--shm "$VM_SHM_PATH")
	fi
	if [ "$VM_GUEST" = cloud ]; then
		vm_cloud_start_reader || die "cannot start guest_reader in the cloud guest"
	fi
	# The first vCPU thread's CPU use while the guest waits for a message.
	[ -z "${VM_VCPU_TIDS:-}" ] || WRITER_ARGS+=(--watch-thread "${VM_VCPU_TIDS%% *}")
	# The VM-level settings it was booted with (vm.env; a VM recorded
	# without them had what there was then: shm, uc, no cpu-pm), and the
	# host's pause-loop exiting now.
	run_writer "$out" "${WRITER_ARGS[@]}" \
		--meta target=vm --meta topology="${VM_TOPOLOGY:-host-vm}" --meta guest="$VM_GUEST" --meta accel="$VM_ACCEL" \
		--meta qemu_version="$VM_QEMU_VERSION" --meta guest_kernel="$VM_GUEST_KERNEL" \
		--meta vcpu_cpu="$VM_VCPU_CPU" --meta vcpus="$VM_VCPUS" \
		--meta guest_memory="$VM_MEM" --meta boot_seconds="$VM_BOOT_SECONDS" \
		--meta backing="${VM_BACKING:-shm}" --meta bar_map="${VM_BAR_MAP:-uc}" \
		--meta cpu_pm="${VM_CPU_PM:-off}" --meta ple="$(vm_ple)" "$@"
	rc=$WRITER_RC
	sig_exit_if_stopped
	if [ "$VM_GUEST" = cloud ] && [ -n "$(vm_pid)" ] && [ $rc -ne 2 ]; then
		cloud_fetch_log "$VM_STATE_DIR" "$out/guest_reader.log" >/dev/null 2>&1 || true
	fi
	if [ $rc -ne 0 ] && [ -z "$(vm_pid)" ]; then
		echo "run_test: the VM (pid $pid) died during the run; partial results are in $out/" >&2
		echo "run_test: last lines of $VM_CONSOLE:" >&2
		tail -n 15 "$VM_CONSOLE" | sed 's/^/    | /' >&2
	fi
	return $rc
}

# Run host_writer against a guest_reader on the host (shared memory of the
# same size as the VM's, on the backing IVSHMEM_BACKING names), into results
# dir $1; extra args follow. The
# reader must announce itself first (10 s at most): if it cannot start, its
# own error is what run_test says, not a host_writer timeout. Bad options
# (host_writer's exit status 2) are host_writer's one line, nothing more.
# The shared memory and the reader's log are removed on every exit, and
# the reader stopped (vm/signals.bash).
run_host_only() {
	local out=$1 shm="" tmp reader_pid rc=0 size reader=() where=() mfd=""
	shift
	# IVSHMEM_BACKING as for a VM: a file on /dev/shm (shm) or on the
	# hugetlbfs mount (hugetlb), or a memfd the reader is started holding
	# and host_writer opens through /proc (memfd). What cannot be is one
	# line, exit 2, before anything starts; huge pages are reserved only
	# when IVSHMEM_HUGEPAGES asks.
	settings_backing host-only
	vm_hugepages_reserve
	vm_backing_available
	size=$(settings_bytes "$IVSHMEM_SHM_SIZE")
	sig_mktemp tmp -d "${TMPDIR:-/tmp}/ivshmem-bench-reader.XXXXXX"
	case $IVSHMEM_BACKING in
	memfd)
		reader=(/usr/bin/python3 -c "$VM_MEMFD_PY" "$size" "$VM_MEMFD_FD" "$BIN/guest_reader" --shm-fd "$VM_MEMFD_FD")
		;;
	*)
		if [ "$IVSHMEM_BACKING" = hugetlb ]; then
			sig_mktemp shm "$SETTINGS_HUGETLB_DIR/ivshmem-bench-host.XXXXXX"
		else
			sig_mktemp shm /dev/shm/ivshmem-bench-host.XXXXXX
		fi
		truncate -s "$size" "$shm"
		reader=("$BIN/guest_reader" --shm "$shm")
		where=(--shm "$shm")
		;;
	esac
	# The reader stands for the guest, which no Ctrl-C reaches: only
	# host_writer ends the run; the reader is stopped after it.
	sig_start --apart reader_pid "${reader[@]}" --cpu "$IVSHMEM_VCPU_CPU" --once --idle-exit 60 \
		>"$tmp/reader.log" 2>&1
	if ! wait_line --pid "$reader_pid" "$tmp/reader.log" "$VM_READY_TOKEN" 10; then
		sig_exit_if_stopped
		vm_warn "guest_reader on the host did not start: $(grep . "$tmp/reader.log" | tail -n 1)"
		sig_stop "$reader_pid"
		rm -rf "$tmp" ${shm:+"$shm"}
		sig_forget "$tmp"
		[ -z "$shm" ] || sig_forget "$shm"
		return 1
	fi
	if [ "$IVSHMEM_BACKING" = memfd ]; then
		# The reader's memfd, opened anew (the same memory) for host_writer.
		exec {mfd}<>"/proc/$reader_pid/fd/$VM_MEMFD_FD" || die "cannot open guest_reader's memfd"
		where=(--shm-fd "$mfd")
	fi
	writer_args
	run_writer "$out" "${where[@]}" "${WRITER_ARGS[@]}" \
		--meta target=host --meta guest=host --meta accel=none \
		--meta reader_cpu="$IVSHMEM_VCPU_CPU" --meta backing="$IVSHMEM_BACKING" \
		--meta bar_map="not applicable: host mapping" --meta cpu_pm="not applicable: no guest" \
		--meta ple="$(vm_ple)" "$@"
	rc=$WRITER_RC
	[ -z "$mfd" ] || exec {mfd}<&-
	sig_stop "$reader_pid"
	# What the reader said beyond its readiness line, if the run failed:
	# host_writer's own line says the rest (bad options, a full disk).
	if [ $rc -ne 0 ] && ! sig_stopped && grep -qv "^$VM_READY_TOKEN " "$tmp/reader.log"; then
		vm_warn "guest_reader on the host said:"
		grep -v "^$VM_READY_TOKEN " "$tmp/reader.log" | tail -n 5 | sed 's/^/    | /' >&2
	fi
	rm -rf ${shm:+"$shm"} "$tmp"
	[ -z "$shm" ] || sig_forget "$shm"
	sig_forget "$tmp"
	sig_exit_if_stopped
	return $rc
}

# ---- vm-vm (IVSHMEM_TOPOLOGY=vm-vm): guest A -> guest B ----------------------
#
# Run the workloads between the two guests of the running vm-vm pair
# (./setup.sh with IVSHMEM_TOPOLOGY=vm-vm boots it), into results dir $1;
# extra host_writer args follow. host_writer runs in guest A (the
# initiator), guest_reader in guest B; the host passes the arguments and
# collects the results (vm/intervm.bash says how). The same CSV files and
# run.json as a host-vm run, with the pair's topology, CPUs and peer ids.
run_intervm() {
	local out=$1 args=() i rc=0 sink_log
	shift
	[ -d "$VM_STATE_DIR" ] || die "no VM pair running: start it with IVSHMEM_TOPOLOGY=vm-vm ./setup.sh (or IVSHMEM_TOPOLOGY=vm-vm make test)"
	vm_lock "a run"
	intervm_check_usable
	writer_args
	# host_writer pins itself inside guest A (its CPU 0); the host CPU of
	# guest A's vCPU is IVSHMEM_VCPU_CPU_A.
	for ((i = 0; i < ${#WRITER_ARGS[@]}; i++)); do
		if [ "${WRITER_ARGS[i]}" = --cpu ]; then i=$((i + 1)); else args+=("${WRITER_ARGS[i]}"); fi
	done
	intervm_meta
	# The chain's end on the host (guest A -> guest B -> host): chain_sink,
	# started before guest A is asked and stopped once it has answered.
	intervm_chain_plan "${args[@]}" "$@"
	if [ -n "$INTERVM_SINK" ]; then
		sig_mktemp sink_log "${TMPDIR:-/tmp}/ivshmem-bench-chain-sink.XXXXXX"
		intervm_sink_start "$sink_log"
		args+=(--chain-receiver remote --meta chain_receiver="the host: chain_sink (pid $INTERVM_SINK_PID) on CPU ${VM_A_VCPU_CPU:-none} (guest A's vCPU's), sleeping 20 us whenever ring B is empty; clock probes on CPU ${VM_B_VCPU_CPU:-none} (guest B's)")
		[[ " $* " == *" -q "* || " $* " == *" --quiet "* ]] ||
			echo "chain: guest A -> guest B -> the host's chain_sink, which shares CPU ${VM_A_VCPU_CPU:-?} with guest A's vCPU$([ "$(nproc)" -ge 3 ] || echo ": three polling stages on $(nproc) CPUs take turns, which bounds the rate and adds to the latency")"
	elif [ -n "$INTERVM_SINK_WHY" ]; then
		echo "chain: guest A -> guest B -> guest A: $INTERVM_SINK_WHY" >&2
	fi
	intervm_run "$out" "${args[@]}" --cpu 0 "${INTERVM_META[@]}" "$@" || rc=$?
	if [ -n "$INTERVM_SINK" ]; then
		if ! kill -0 "$INTERVM_SINK_PID" 2>/dev/null; then
			local st=0
			wait "$INTERVM_SINK_PID" 2>/dev/null || st=$?
			vm_warn "the host's chain receiver (chain_sink, pid $INTERVM_SINK_PID) ended during the run ($([ "$st" -gt 128 ] && echo "killed by SIG$(kill -l "$st")" || echo "exit status $st")): nothing took ring B after that, so guest B stalled on it; its lines are in $out/chain_sink.log"
			rc=1
		fi
		sig_stop "$INTERVM_SINK_PID"
		if [ -d "$out" ] && ! files_write "$out/chain_sink.log" <"$sink_log"; then
			vm_warn "cannot keep chain_sink's lines in $out/chain_sink.log"
		fi
		rm -f "$sink_log"
		sig_forget "$sink_log"
	fi
	sig_exit_if_stopped
	return "$rc"
}

# One line of the benchmark table from a results directory's run.json.
# bench_row DIR LABEL BASEDIR: p50 (median [interval] over the
# repetitions), p99 and p99.9 (medians), and p50's ratio to BASEDIR's.
bench_row() {
	bench_py "$1" "$2" "$3" <<'PY'
d, label, base = sys.argv[1:4]
def us(key):
    return [v / 1e3 for v in values(d, latency(key))]
def one(v):
    return "%.3f" % med(v) if v else "-"
print("%-34s %28s %10s %10s  %s" % (label, shown(us("p50_ns"), "%.3f"), one(us("p99_ns")),
      one(us("p999_ns")), ratio(values(base, latency("p50_ns")), values(d, latency("p50_ns")))))
PY
}

# Boot a VM of mode $1 in state directory $3, run the latency test into
# results directory $2, stop it. The user's VM, if any, is left alone. Run
# through sig_run (a subshell that passes a signal on to the run_test.sh or
# setup.sh it waits for, and stops its VM on every exit).
bench_vm() {
	local mode=$1 out=$2 state=$3 wait=() half
	mkdir -p "$state"
	export IVSHMEM_MODE=$mode IVSHMEM_STATE_DIR=$state IVSHMEM_RESULTS=$out
	export IVSHMEM_SHM_PATH=/dev/shm/ivshmem-bench-$mode-$$
	export IVSHMEM_SERVER_SOCKET=$state/ivshmem.sock
	SIG_AT_EXIT=(bench_vm_stop)
	sig_run ./setup.sh > >(grep -E 'Guest ready|KVM') || exit 1
	sig_run ./run_test.sh --test latency --repeat "$IVSHMEM_BENCH_REPEAT" --quiet
	[ "$mode" = plain ] || wait=(--wait hybrid:50us)
	IVSHMEM_RESULTS=$out-stream sig_run ./run_test.sh "${BENCH_STREAM[@]}" "${wait[@]}" \
		--repeat "$IVSHMEM_BENCH_REPEAT" --quiet
	IVSHMEM_RESULTS=$out-limits sig_run ./run_test.sh --test limits --limit-sizes "$(bench_stream_sizes)" --quiet
	if [ "$mode" = plain ]; then
		IVSHMEM_RESULTS=$out-grid sig_run ./run_test.sh --matrix "$BENCH_GRID_VM" "${BENCH_GRID_ARGS[@]}" \
			--quiet >/dev/null 2>"$out-grid.log" || true
	fi
	if [ "$mode" != plain ]; then
		# ivshmem doorbell beside the other channels: the ivshmem half of
		# --transports (the plain VM measures the channels themselves).
		IVSHMEM_RESULTS=$out-transports sig_run ./run_test.sh --test sizelat,stream --direction h2g \
			--lat-sizes "$TRANSPORT_LAT_SIZES" --sizes "$TRANSPORT_SIZES" "${wait[@]}" --quiet
	else
		IVSHMEM_RESULTS=$out-transports sig_run ./run_test.sh --transports --quiet
		IVSHMEM_RESULTS=$out-rate sig_run ./run_test.sh --rate-sweep "${BENCH_RATE[@]}" --quiet
		half=$(bench_half_knee "$out-rate")
		[ -z "$half" ] || IVSHMEM_RESULTS=$out-rate-load sig_run ./run_test.sh --rate "$half" \
			--interference cpu,membw,cache "${BENCH_RATE[@]}" --quiet
	fi
}

# The message sizes of the benchmark's stream points (BENCH_STREAM's
# --sizes): the limits workload measures each side's copy and XXH3 at them.
bench_stream_sizes() {
	local a prev=""
	for a in "${BENCH_STREAM[@]}"; do
		[ "$prev" != --sizes ] || echo "$a"
		prev=$a
	done
}

# bench_repeated RUNNER OUT ARG... : RUNNER's run IVSHMEM_BENCH_REPEAT
# times (repeat_run), each a run of its own; once when it is 1.
bench_repeated() {
	local REPEAT_PLAN=$IVSHMEM_BENCH_REPEAT REPEAT_MIN=$IVSHMEM_BENCH_REPEAT
	local REPEAT_MAX=$IVSHMEM_BENCH_REPEAT REPEAT_CI="" REPEAT_REBOOT=""
	if [ "$IVSHMEM_BENCH_REPEAT" = 1 ]; then
		"$@"
	else
		repeat_run "$@" >/dev/null
	fi
}

# bench_vm's VM goes with it, however it ends.
bench_vm_stop() {
	./setup.sh stop >/dev/null 2>&1 || true
	rm -f "$IVSHMEM_SHM_PATH"
}

# Half the knee a rate sweep found (its quiet set), or nothing.
bench_half_knee() {
	/usr/bin/python3 -c 'import json,sys
k = json.load(open(sys.argv[1]))["rate"]["knee_per_s"].get("none")
print(int(k // 2) if k else "")' "$1/run.json" 2>/dev/null || true
}

# The latency-under-load table: the knee host-only and in the plain VM, and
# p99 at half of each knee, quiet and beside each co-runner.
bench_rate_table() {
	/usr/bin/python3 - "$1" <<'PY'
import csv, json, os, sys
base = sys.argv[1]
def rate(name):
    try:
        return json.load(open(os.path.join(base, name, "run.json")))["rate"]
    except (OSError, KeyError, ValueError):
        return {}
host, vm = rate("host-rate"), rate("plain-rate")
kh, kv = (r.get("knee_per_s", {}).get("none") for r in (host, vm))
print("Latency under load (open loop, 64 B, latency from the scheduled send time; the knee is the"
      " highest rate sustained before two rates in a row are not)")
print("%-34s %14s %14s %8s" % ("", "host-only", "VM plain", "ratio"))
f = lambda v: "%14s" % ("%.0f/s" % v if v else "-")
print("%-34s %s %s %8s" % ("knee", f(kh), f(kv), "%.3fx" % (kv / kh) if kh and kv else "-"))
def ms(r, *keys):
    v = r
    for k in keys:
        v = v.get(k, {}) if isinstance(v, dict) else {}
    return "%14s" % ("%.3f ms" % (v / 1e6) if isinstance(v, (int, float)) else "-")
print("%-34s %s %s" % ("quiet p99.9 (1 s at the first rate)", ms(host, "quiet_run", "p99_9_ns"),
      ms(vm, "quiet_run", "p99_9_ns")))
print("%-34s %s %s" % ("p99 bound used", ms(host, "p99_bound_ns"), ms(vm, "p99_bound_ns")))
for label, r in (("host-only", host), ("VM plain", vm)):
    why = r.get("stop_reason", {}).get("none")
    if why:
        print("  %-9s stopped: %s" % (label, why))
# A baseline bounds what it is the baseline of: a VM that beats it is a defect until explained.
if kh and kv and kv > kh:
    print("  BASELINE BEATEN: the VM's knee (%.0f/s) is above the host-only knee (%.0f/s). Both sides of"
          " a plain channel poll, so on a machine with as many CPUs as polling threads any other task"
          " stalls one of them for a scheduler slice, and that stall, not the channel, sets p99 below"
          " saturation in both runs: compare their quiet p99.9 above." % (kv, kh))
for label, name in (("host-only", "host-rate-load"), ("VM plain", "plain-rate-load")):
    path = os.path.join(base, name, "rate_results.csv")
    if not os.path.exists(path):
        continue
    for r in csv.DictReader(open(path)):
        print("  %-9s at %8s/s  %-12s p99 %10.1f us  (%sx quiet)" % (label, r["offered_per_s"],
              r["interference"], float(r["p99_ns"]) / 1e3, r["p99_ratio"]))
PY
}

# The stream table of the benchmark: each point host-only, in the VMs and
# their ratios, from the stream_results.csv files of results directories
# host-stream, plain-stream and doorbell-stream under $1; the stop-and-wait
# doorbell rate (1 / the doorbell VM's latency p50) beside the doorbell
# stream's message rate; and each stream's GB/s beside its receiver's own
# copy and XXH3 speed at that size (limits_results.csv of host-limits,
# plain-limits and doorbell-limits): what bounds it.
bench_stream_table() {
	bench_py "$1" <<'PY'
import csv
base = sys.argv[1]
def load(name):
    """The last repetition's rows by size (for the per-message counts)."""
    path = os.path.join(runs(os.path.join(base, name))[-1], "stream_results.csv")
    if not os.path.exists(path):
        return {}
    return {int(r["message_bytes"]): r for r in csv.DictReader(open(path))}
host, plain, bell = load("host-stream"), load("plain-stream"), load("doorbell-stream")
def fig(r, size):
    if not r:
        return None
    return float(r["msgs_per_s"]) if size in (64, 24883200) else float(r["gbps"])
def reps(name, size):
    """The figure at size in each repetition of the stream run name."""
    def get(d):
        rows = [r for r in csv.DictReader(open(os.path.join(d, "stream_results.csv")))
                if int(r["message_bytes"]) == size]
        return fig(rows[0], size) if rows else None
    return values(os.path.join(base, name), get)
unit = {64: "msgs/s", 4096: "GB/s", 1048576: "GB/s", 24883200: "frames/s"}
label = {64: "64 B", 4096: "4 KiB", 1048576: "1 MiB", 24883200: "4K frame (24.9 MB)"}
print("Streams, initiator to responder, XXH3-checked, 500 ms a point: median [95 % interval] over the"
      " repetitions (ratio = VM / host-only [interval])")
print("%-20s %-9s %22s %22s %22s %22s %22s %10s" % ("", "", "host-only", "VM plain", "ratio",
      "VM doorbell", "ratio", "bells/msg"))
beaten = []
for size in (64, 4096, 1048576, 24883200):
    h, p, d = (reps(name, size) for name in ("host-stream", "plain-stream", "doorbell-stream"))
    bells = bell.get(size, {}).get("doorbells_per_msg", "-")
    print("%-20s %-9s %22s %22s %22s %22s %22s %10s" % (label[size], unit[size], shown(h), shown(p),
          ratio(h, p), shown(d), ratio(h, d), bells))
    beaten += ["VM %s at %s (%.4g %s against %.4g)" % (mode, label[size], med(v), unit[size], med(h))
               for mode, v in (("plain", p), ("doorbell", d)) if v and h and med(v) > med(h)]
# A baseline bounds what it is the baseline of: a VM that beats it is a defect until explained.
for b in beaten:
    print("  BASELINE BEATEN: %s streamed faster than host-only; the host-only run is not a bound here" % b)
try:
    p50 = json.load(open(os.path.join(base, "doorbell", "run.json")))["latency"]["p50_ns"]
    if bell.get(64):
        rate = float(bell[64]["msgs_per_s"])
        print("Doorbell stream at 64 B: %.4g msgs/s = %.1fx the stop-and-wait doorbell rate "
              "(%.4g msgs/s, 1 / latency p50)" % (rate, rate * p50 / 1e9, 1e9 / p50))
except (OSError, KeyError, ValueError):
    pass
# The receiver's own speed at each size: the responder's rows of the limits
# run beside each stream run (its copy out of shared memory, else its
# private copy; its XXH3).
def limits(name):
    path = os.path.join(base, name, "limits_results.csv")
    if not os.path.exists(path):
        return {}
    return {(int(r["message_bytes"]), r["loop"]): float(r["gbps"])
            for r in csv.DictReader(open(path)) if r["side"] == "responder"}
bounds = [(who, stream, limits(name), reader) for who, stream, name, reader in (
    ("host-only", "host-stream", "host-limits", "the reader's"),
    ("VM plain", "plain-stream", "plain-limits", "the guest's"),
    ("VM doorbell", "doorbell-stream", "doorbell-limits", "the guest's"))]
lines = []
for size in (64, 4096, 1048576, 24883200):
    for who, stream, lim, reader in bounds:
        copy = lim.get((size, "copy_shm")) or lim.get((size, "copy"))
        xxh3 = lim.get((size, "xxh3"))
        gbps = med(values(os.path.join(base, stream), lambda d: [
            r["gbps"] for r in csv.DictReader(open(os.path.join(d, "stream_results.csv")))
            if int(r["message_bytes"]) == size][0]))
        if gbps is None or not copy:
            continue
        line = "  %-19s %-12s %8.4g GB/s = %5.3fx %s copy speed %8.4g GB/s" % (
            label[size], who, gbps, gbps / copy, reader, copy)
        if xxh3:
            both = 1 / (1 / copy + 1 / xxh3)
            line += "; %5.3fx its copy + XXH3 %8.4g GB/s" % (gbps / both, both)
        lines.append(line)
if lines:
    print("What bounds each stream: its GB/s beside its receiver's own speed at that size, measured\n"
          "alone in the same run (limits_results.csv): its copy out of shared memory, and that copy\n"
          "+ XXH3 (1 / (1/copy + 1/xxh3)), the work the receiver does for every message; a stream at"
          "\nup to about 1.1x that bound is at the bound, within this machine's noise (measured at"
          "\nanother moment: the limits once, the stream as the median of its repetitions)")
    print("\n".join(lines))
PY
}

# The benchmark: in one invocation, the latency round trip host-only (two
# processes polling shared memory: the limit), the eventfd ping-pong (the
# floor for interrupt wake-ups), and a freshly booted VM in plain and in
# doorbell mode; the ratios against the host-only figures in this run.
bench() {
	local base=$IVSHMEM_RESULTS/bench mode half
	IVSHMEM_ITERATIONS=$IVSHMEM_BENCH_ITERATIONS
	export IVSHMEM_ITERATIONS
	rm -rf "$base"
	mkdir -p "$base"
	echo "== host-only: host_writer <-> guest_reader on the host (CPUs $IVSHMEM_WRITER_CPU and $IVSHMEM_VCPU_CPU), polling"
	bench_repeated run_host_only "$base/host" --test latency --quiet
	echo "== host-only streams"
	IVSHMEM_SHM_SIZE=$BENCH_SHM_SIZE bench_repeated run_host_only "$base/host-stream" "${BENCH_STREAM[@]}" --quiet
	echo "== host-only grid: the 64 B stream over batch x slots ($BENCH_GRID)"
	IVSHMEM_RESULTS=$base/host-grid sig_run ./run_test.sh --host-only --matrix "$BENCH_GRID" \
		"${BENCH_GRID_ARGS[@]}" --quiet >/dev/null 2>"$base/host-grid.log" || true
	echo "== host-only limits: each side's copy and XXH3 speed at the stream's message sizes"
	IVSHMEM_SHM_SIZE=$BENCH_SHM_SIZE run_host_only "$base/host-limits" --test limits \
		--limit-sizes "$(bench_stream_sizes)" --quiet
	echo "== host-only latency under load: a rate sweep to the knee, then half the knee beside co-runners"
	run_host_only "$base/host-rate" --test rate --rate-sweep "${BENCH_RATE[@]}" --quiet
	half=$(bench_half_knee "$base/host-rate")
	[ -z "$half" ] || run_host_only "$base/host-rate-load" --test rate --rate "$half" \
		--interference cpu,membw,cache "${BENCH_RATE[@]}" --quiet
	echo "== eventfd ping-pong between two host threads (CPUs $IVSHMEM_WRITER_CPU and $IVSHMEM_VCPU_CPU)"
	sig_run "$BIN/eventfd_pingpong" -n "$IVSHMEM_ITERATIONS" -a "$IVSHMEM_WRITER_CPU" -b "$IVSHMEM_VCPU_CPU" -o "$base/eventfd"
	echo "== the same, both threads on CPU $IVSHMEM_WRITER_CPU (no cross-CPU wake-up)"
	sig_run "$BIN/eventfd_pingpong" -n "$IVSHMEM_ITERATIONS" -a "$IVSHMEM_WRITER_CPU" -b "$IVSHMEM_WRITER_CPU" -o "$base/eventfd-same-cpu"
	for mode in ${IVSHMEM_BENCH_MODES:-plain doorbell}; do
		echo "== VM, $mode mode: boot, then host_writer <-> guest_reader in the guest"
		IVSHMEM_SHM_SIZE=$BENCH_SHM_SIZE sig_run bench_vm "$mode" "$(cd "$base" && pwd)/$mode" "$(cd "$base" && pwd)/vm-$mode"
		sig_exit_if_stopped
	done
	for mode in ${IVSHMEM_BENCH_MODES:-plain doorbell}; do
		echo "== VM pair, $mode mode: guest A (host_writer) <-> guest B (guest_reader)"
		intervm_bench_run "$mode" "$(cd "$base" && pwd)/vm-vm-$mode" "$(cd "$base" && pwd)/vmvm-$mode" ||
			{ sig_exit_if_stopped; vm_warn "the $mode VM pair did not run; its row is left out"; }
	done
	files_write "$base/summary.txt" < <(bench_summary "$base")
	cat "$base/summary.txt"
	# The page of the whole bench: results/bench/report.html (its figures in summary.json).
	/usr/bin/python3 analyze_results.py --quiet --allow-partial "$base" ||
		vm_warn "analyze_results.py $base: exit $? (report.html says why when written)"
}

# The benchmark's summary, from the results directories under $1.
bench_summary() {
	local base=$1 mode
	{
		echo
		echo "Latency round trip, $IVSHMEM_ITERATIONS samples a run (us; p50: median [95 % interval] over"
		echo "the runs' repetitions, p99 and p99.9: their medians; ratio = p50 / host-only p50 [interval])"
		printf '%-34s %28s %10s %10s  %s\n' "" p50 p99 p99.9 ratio
		bench_row "$base/host" "host-only, polling" "$base/host"
		bench_row "$base/eventfd" "eventfd ping-pong (wake-up floor)" "$base/host"
		bench_row "$base/eventfd-same-cpu" "eventfd ping-pong, one CPU" "$base/host"
		for mode in ${IVSHMEM_BENCH_MODES:-plain doorbell}; do
			[ -f "$base/$mode/run.json" ] || continue
			bench_row "$base/$mode" "VM $mode ($(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["accel"] + ", boot " + r["boot_seconds"] + " s")' "$base/$mode/run.json"))" "$base/host"
		done
		for mode in ${IVSHMEM_BENCH_MODES:-plain doorbell}; do
			[ -f "$base/vm-vm-$mode/run.json" ] || continue
			bench_row "$base/vm-vm-$mode" "guest A <-> guest B, $mode" "$base/host"
		done
		if [ -f "$base/plain/run.json" ]; then
			echo "VM plain p50 / host-only p50: $(bench_p50_ratio "$base/host" "$base/plain")"
		fi
		if [ -f "$base/doorbell/run.json" ]; then
			echo "VM doorbell p50 / eventfd floor p50: $(bench_p50_ratio "$base/eventfd" "$base/doorbell")"
		fi
		for mode in ${IVSHMEM_BENCH_MODES:-plain doorbell}; do
			if [ -f "$base/vm-vm-$mode/run.json" ] && [ -f "$base/$mode/run.json" ]; then
				echo "guest<->guest $mode p50 / host<->guest $mode p50: $(bench_p50_ratio "$base/$mode" "$base/vm-vm-$mode")"
			fi
		done
		echo
		bench_stream_table "$base"
		echo
		bench_rate_table "$base"
		echo
		bench_grid_table "$base"
		echo
		bench_transport_table "$base/plain-transports" "$base/doorbell-transports"
		echo "Results: $base/{host,eventfd,plain,doorbell}/ and $base/{host,plain,doorbell}-{stream,limits}/"
	}
}

# The grid of the benchmark: per side, the best cell of the 64 B stream's
# msgs/s and its ratio to the defaults' cell and to batch 1's best.
bench_grid_table() {
	bench_py "$1" <<'PY'
import csv
base = sys.argv[1]
print("EIVU's grid: the 64 B stream (msgs/s, initiator to responder) over batch x ring slots")
for label, name in (("host-only", "host-grid"), ("VM plain", "plain-grid")):
    path = os.path.join(base, name, "matrix_results.csv")
    if not os.path.exists(path):
        continue
    rows = [r for r in csv.DictReader(open(path)) if r["status"] == "ok" and r["figure"].endswith("msgs/s")]
    failed = {r["cell"]: r["reason"] for r in csv.DictReader(open(path)) if r["status"] != "ok"}
    if not rows:
        print("  %-9s no cell measured" % label)
        continue
    cell = lambda r: "batch %s, %s slots" % (r["batch"], r["slots"])
    best = max(rows, key=lambda r: float(r["value"]))
    default = [r for r in rows if r["batch"] == "16" and r["slots"] == "256"]
    one = [r for r in rows if r["batch"] == "1"]
    one = max(one, key=lambda r: float(r["value"])) if one else None
    line = "  %-9s best %s: %s msgs/s" % (label, cell(best), si(float(best["value"])))
    if default:
        line += " = %.2fx the defaults (%s msgs/s)" % (float(best["value"]) / float(default[0]["value"]),
                                                     si(float(default[0]["value"])))
    if one:
        gain = float(best["value"]) / float(one["value"])
        line += "; %.2fx batch 1's best (%s, %s msgs/s)" % (gain, cell(one), si(float(one["value"])))
    print(line)
    if one and gain < 1.5:
        print("  %-9s batching gains little here: at 64 B each message's own work (its copy, its XXH3,"
              " the receiver's check) costs more than the index update a batch saves" % "")
    if failed:
        print("  %-9s %d cells failed (the first: %s): see %s" % ("", len(failed),
              next(iter(failed.values())), path))
PY
}

# ---- the other transports (--transports) -------------------------------------

# One line per transport of the run in $1 (run_test.sh --transports): p50
# round trip at 64 B, msgs/s at 64 B and GB/s at 1 MiB, each with its ratio
# to ivshmem's in the same run; and ivshmem doorbell's, from the same sizes
# in the doorbell VM ($2, if given).
bench_transport_table() {
	[ -f "$1/transports/transport_results.csv" ] || return 0
	/usr/bin/python3 - "$1" "${2:-}" <<'PY'
import csv, json, os, sys
base, bell = sys.argv[1], sys.argv[2]
def rows(path):
    return list(csv.DictReader(open(path))) if os.path.exists(path) else []
def ivshmem(d):
    lat = {int(r["message_bytes"]): float(r["p50_ns"]) for r in rows(os.path.join(d, "size_latency_results.csv"))}
    st = {int(r["message_bytes"]): r for r in rows(os.path.join(d, "stream_results.csv")) if r["direction"] == "h2g"}
    return (lat.get(64), float(st[64]["msgs_per_s"]) if 64 in st else None,
            float(st[1048576]["gbps"]) if 1048576 in st else None)
run = json.load(open(os.path.join(base, "run.json")))
mode = run.get("mode", "?")
vm = run.get("target") == "vm"
# Guest channels beside ivshmem in the guest; the host's beside ivshmem on the host.
vm_ref = "ivshmem %s, VM" % mode
host_ref = "ivshmem %s, host" % mode
figs = {}
if vm:
    figs[vm_ref] = ivshmem(base)
    if bell and os.path.exists(os.path.join(bell, "run.json")):
        figs["ivshmem doorbell, VM"] = ivshmem(bell)
    if os.path.exists(os.path.join(base, "host-ivshmem", "run.json")):
        figs[host_ref] = ivshmem(os.path.join(base, "host-ivshmem"))
else:
    figs[host_ref] = ivshmem(base)
why = {}
for r in rows(os.path.join(base, "transports", "transport_results.csv")):
    t = r["transport"]
    if r["available"] != "1":
        why[t] = r["reason"]
        continue
    f = list(figs.get(t, (None, None, None)))
    size = int(r["message_bytes"])
    if r["test"] == "sizelat" and size == 64 and r["p50_ns"]:
        f[0] = float(r["p50_ns"])
    if r["test"] == "stream" and size == 64:
        f[1] = float(r["msgs_per_s"])
    if r["test"] == "stream" and size == 1048576:
        f[2] = float(r["gbps"])
    figs[t] = tuple(f)
print("Other channels, same guest and run, every message checked (ratio = transport / ivshmem %s on the"
      " same side: virtio-* to the VM's, the host's channels to host-only)" % mode)
print("%-20s %12s %7s %14s %7s %12s %7s" % ("", "p50 64 B us", "ratio", "64 B msgs/s", "ratio", "1 MiB GB/s", "ratio"))
def cell(v, fmt): return fmt % v if v is not None else "%*s" % (len(fmt % 1.0), "-")
def ratio(v, r): return "%6.2fx" % (v / r) if v is not None and r else "%7s" % "-"
for t, (p50, mps, gbps) in figs.items():
    ref = figs.get(vm_ref if t.startswith("virtio") or t.endswith(", VM") else host_ref, (None, None, None))
    print("%-20s %12s %7s %14s %7s %12s %7s" % (t, cell(p50 / 1e3 if p50 else None, "%12.3f"), ratio(p50, ref[0]),
          cell(mps, "%14.0f"), ratio(mps, ref[1]), cell(gbps, "%12.3f"), ratio(gbps, ref[2])))
for t, w in why.items():
    print("%-18s not available: %s" % (t, w))
if bell and os.path.exists(os.path.join(bell, "run.json")):
    wait = json.load(open(os.path.join(bell, "run.json"))).get("wait_policy", "?")
    print("ivshmem doorbell, VM: the doorbell VM of the same bench, --wait %s (a responder that spins "
          "first answers back-to-back round trips without sleeping)" % wait)
print("One run of each (the stream table above gives ivshmem's spread over repetitions); ivshmem"
      " streams at its default batch of 16: at 1 MiB --batch 1 streams about twice as fast (README,"
      " Other channels)")
PY
}

# The transports, their row names, and the sizes both ivshmem and they run.
TRANSPORTS_ALL=serial,tcp,vsock,unix,pipe,loopback
TRANSPORT_LAT_SIZES=8,64,512,4k,32k,256k,1M
TRANSPORT_SIZES=64,4k,64k,1M

# run_transports OUT LIST [host_writer options]: the size-latency ping-pong
# and the stream over ivshmem (the running micro guest, or host-only when
# none runs) into OUT, and over each transport of LIST into OUT/transports
# (transport_bench): the guest's virtio-serial port, TCP over its virtio-net
# and vsock, and the host's UNIX socket, pipe and TCP loopback. A transport
# this machine or VM cannot give is a row saying why; the others run.
run_transports() {
	local out=$1 list=$2 t specs=() missing=() rc=0 trc=0 vm=""
	shift 2
	for t in ${list//,/ }; do
		if [[ ,$TRANSPORTS_ALL, != *",$t,"* ]]; then
			echo "run_test: --transports: '$t' is not one of ${TRANSPORTS_ALL//,/, }" >&2
			exit 2
		fi
	done
	if [ -d "$VM_STATE_DIR" ] && [ -n "$(vm_pid)" ] && vm_load_env && [ "$VM_GUEST" = micro ]; then
		vm=1
	fi
	# ivshmem, the same sizes, the same verification.
	set -- --test sizelat,stream --lat-sizes "$TRANSPORT_LAT_SIZES" --sizes "$TRANSPORT_SIZES" \
		--direction h2g "$@"
	if [ -n "$vm" ]; then
		run_vm "$out" "$@" || rc=$?
		# The host's own channels are set beside ivshmem on the host.
		[ "$rc" != 0 ] || run_host_only "$out/host-ivshmem" "$@" || rc=$?
	else
		vm_warn "no micro guest running: ivshmem host-only, and no guest transports (./setup.sh starts one)"
		run_host_only "$out" "$@" || rc=$?
	fi
	[ "$rc" != 2 ] || return 2
	for t in ${list//,/ }; do
		case $t in
		unix) specs+=(unix=unix) ;;
		pipe) specs+=(pipe=pipe) ;;
		loopback) specs+=(tcp-loopback=tcp) ;;
		serial | tcp | vsock)
			local name=virtio-$t want="" var
			[ "$t" != tcp ] || name=virtio-net-tcp
			if [ -z "$vm" ]; then
				missing+=(--unavailable "$name=no micro guest running (./setup.sh)")
				continue
			fi
			case $t in
			serial) var=$VM_TRANSPORT_SERIAL want="serial:$VM_TRANSPORT_SERIAL" ;;
			tcp) var=$VM_TRANSPORT_TCP_PORT want="tcp:${VM_TRANSPORT_TCP_HOST:-127.0.0.1}:$VM_TRANSPORT_TCP_PORT" ;;
			vsock) var=$VM_TRANSPORT_VSOCK_CID want="vsock:$VM_TRANSPORT_VSOCK_CID:7777" ;;
			esac
			if [ -n "$var" ]; then
				specs+=("$name=$want")
			elif [[ ";$VM_TRANSPORT_UNAVAILABLE" == *";$t="* ]]; then
				local why=${VM_TRANSPORT_UNAVAILABLE#*"$t="}
				missing+=(--unavailable "$name=${why%%;*}")
			else
				missing+=(--unavailable "$name=the VM was started without it (IVSHMEM_TRANSPORTS=$VM_TRANSPORTS)")
			fi
			;;
		esac
	done
	# The guest's responders announce themselves on the console when they serve.
	if [ -n "$vm" ]; then
		for t in "${specs[@]}"; do
			case $t in
			virtio-serial=*) wait_line "$VM_CONSOLE" "TRANSPORT-READY serial:" 30 >/dev/null || true ;;
			virtio-net-tcp=*) wait_line "$VM_CONSOLE" "TRANSPORT-READY tcp:" 30 >/dev/null || true ;;
			esac
		done
	fi
	# The options both take, as host_writer got them.
	local same=() prev=""
	for t in "$@"; do
		case $prev in
		--lat-iterations | --duration | --verify | --timeout) same+=("$prev" "$t") ;;
		esac
		[ "$t" != --quiet ] && [ "$t" != -q ] || same+=(-q)
		prev=$t
	done
	local vmmeta=() netns=()
	if [ -n "$vm" ] && [ "${VM_NET:-user}" = tap ]; then
		# The guest's address is in the VM's network namespace: the whole
		# transport_bench runs there (the host's channels and the serial
		# port's UNIX socket work the same inside it), and --netns lets it
		# take an address outside 127.0.0.0/8 once it has checked it is there.
		netns=(ip netns exec "$VM_NETNS")
		vmmeta=(--netns "$VM_NETNS" --meta virtio_net="tap in network namespace $VM_NETNS ($VM_NET_HOST/$VM_NET_BITS, guest $VM_TRANSPORT_TCP_HOST)"
			--meta netns="$VM_NETNS" --meta vhost_net="$VM_VHOST_NET")
	elif [ -n "$vm" ]; then
		vmmeta=(--meta virtio_net="user-mode network (slirp), restrict=on, one 127.0.0.1 forward"
			--meta vhost_net="no: QEMU's user-mode network has no vhost backend$([ -c /dev/vhost-net ] || echo ", and /dev/vhost-net is missing")")
	fi
	echo "== other transports: ${specs[*]%%=*}"
	sig_run "${netns[@]}" "$BIN/transport_bench" -o "$out/transports" -T "$(IFS=,; echo "${specs[*]}")" "${missing[@]}" \
		--lat-sizes "$TRANSPORT_LAT_SIZES" --sizes "$TRANSPORT_SIZES" --timeout "$IVSHMEM_TIMEOUT" \
		--cpu "$IVSHMEM_WRITER_CPU" --peer-cpu "$IVSHMEM_VCPU_CPU" "${same[@]}" \
		--meta target="$([ -n "$vm" ] && echo vm || echo host)" --meta accel="${VM_ACCEL:-none}" \
		"${vmmeta[@]}" || trc=$?
	sig_exit_if_stopped
	[ "$rc" != 0 ] || rc=$trc
	return "$rc"
}

# --rate and --rate-sweep are options of the rate workload: run it alone.
with_rate() {
	local a out=()
	[ "${1:-}" != --host-only ] || { out=(--host-only); shift; }
	for a in "$@"; do
		case $a in
		--rate | --rate=* | --rate-sweep)
			out+=(--test rate)
			break
			;;
		esac
	done
	out+=("$@")
	[ ${#out[@]} -eq 0 ] || printf '%s\0' "${out[@]}"
}
mapfile -d '' -t args < <(with_rate "$@")
set -- "${args[@]}"

# ---- repetitions (--repeat, --ci) --------------------------------------------
#
# --repeat N runs the selected workloads N times into OUT/rep-1 .. rep-N,
# each a run of its own (a new session, the responder re-attached, its own
# warm-up); --repeat MIN..MAX --ci LEVEL,WIDTH repeats until the LEVEL %
# interval of every headline median is within +-WIDTH % (analysis/repeat.py
# decides), at least MIN and at most MAX times. Then OUT's CSVs are the
# repetitions' rows with a repetition column, and run.json says how many,
# the rule and why it stopped. --repeat-reboot boots a fresh guest before
# every repetition after the first.
REPEAT_MIN=1 REPEAT_MAX=1 REPEAT_PLAN="" REPEAT_CI="" REPEAT_REBOOT=""

repeat_fail() { # the one line, exit 2
	echo "run_test: $*" >&2
	exit 2
}

# repeat_options ARG... : take --repeat, --ci and --repeat-reboot out of the
# arguments (the rest in ARGS) and check them.
repeat_options() {
	local a v level width
	ARGS=()
	while [ $# -gt 0 ]; do
		a=$1
		shift
		case $a in
		--repeat | --ci)
			[ $# -gt 0 ] || repeat_fail "$a needs a value"
			v=$1
			shift
			;;
		--repeat=* | --ci=*) v=${a#*=} a=${a%%=*} ;;
		--repeat-reboot) REPEAT_REBOOT=1 && continue ;;
		*) ARGS+=("$a") && continue ;;
		esac
		case $a in
		--repeat)
			if [[ $v =~ ^([0-9]{1,4})$ ]]; then
				REPEAT_MIN=$((10#$v)) REPEAT_MAX=$((10#$v))
			elif [[ $v =~ ^([0-9]{1,4})\.\.([0-9]{1,4})$ ]]; then
				REPEAT_MIN=$((10#${BASH_REMATCH[1]})) REPEAT_MAX=$((10#${BASH_REMATCH[2]}))
			else
				repeat_fail "--repeat: '$v' is not a count (5) or a range (3..20)"
			fi
			[ "$REPEAT_MIN" -ge 1 ] || repeat_fail "--repeat: '$v': at least one repetition"
			[ "$REPEAT_MAX" -ge "$REPEAT_MIN" ] || repeat_fail "--repeat: '$v': the range ends before it starts"
			[ "$REPEAT_MAX" -le 1000 ] || repeat_fail "--repeat: '$v': at most 1000 repetitions"
			REPEAT_PLAN=$v
			;;
		--ci)
			[[ $v =~ ^([0-9]+(\.[0-9]+)?),([0-9]+(\.[0-9]+)?)$ ]] ||
				repeat_fail "--ci: '$v' is not LEVEL,WIDTH (e.g. 95,5: a 95 % interval within +-5 % of the median)"
			level=${BASH_REMATCH[1]} width=${BASH_REMATCH[3]}
			awk -v l="$level" 'BEGIN { exit !(l > 0 && l < 100) }' ||
				repeat_fail "--ci: '$v': the level is a percentage between 0 and 100 (e.g. 95)"
			awk -v w="$width" 'BEGIN { exit !(w > 0 && w <= 100) }' ||
				repeat_fail "--ci: '$v': the width is a percentage of the median above 0 (e.g. 5)"
			REPEAT_CI=$v
			;;
		esac
	done
	if [ -n "$REPEAT_CI" ]; then
		# The adaptive rule needs room: 3..20 unless a range is given.
		if [ -z "$REPEAT_PLAN" ]; then
			REPEAT_MIN=3 REPEAT_MAX=20 REPEAT_PLAN=3..20
		elif [ "$REPEAT_MIN" = "$REPEAT_MAX" ]; then
			repeat_fail "--ci needs --repeat MIN..MAX (a range to stop in), not '$REPEAT_PLAN'"
		fi
	fi
	return 0
}

# The host's load now, as JSON: the 1-minute load average, the steal time
# and all the CPU time /proc/stat counts (jiffies), the CPUs online.
repeat_host_load() {
	local load
	read -r load _ </proc/loadavg
	awk -v load="$load" -v cpus="$(nproc)" '$1 == "cpu" {
		t = 0; for (i = 2; i <= 9; i++) t += $i
		printf "{\"loadavg_1m\": %s, \"steal_jiffies\": %d, \"total_jiffies\": %d, \"cpus\": %d}", load, $9, t, cpus
		exit }' /proc/stat
}

# repeat_merge OUT WHY : OUT's CSVs and run.json from its repetitions.
repeat_merge() {
	local ci=()
	[ -z "$REPEAT_CI" ] || ci=(--ci "$REPEAT_CI")
	[ -z "$REPEAT_QUIET" ] || ci+=(--quiet)
	/usr/bin/python3 -m analysis.repeat merge "$1" --plan "$REPEAT_PLAN" --stopped "$2" "${ci[@]}"
}

# At exit after a signal: what the repetitions measured so far is merged.
repeat_at_exit() {
	[ -n "$REPEAT_OUT" ] && sig_stopped || return 0
	repeat_merge "$REPEAT_OUT" interrupted >/dev/null || true
}

# repeat_run RUNNER OUT ARG... : RUNNER OUT/rep-K ARG... for each repetition.
repeat_run() {
	local runner=$1 dir=$2 k rc=0 before why stale settled
	shift 2
	why=$(vm_results_links "$dir")
	[ -z "$why" ] || die "$why"
	mkdir -p "$dir"
	# An earlier run's repetitions are not this run's.
	for stale in "$dir"/rep-*; do
		[ ! -d "$stale" ] || [ -L "$stale" ] || rm -rf -- "$stale"
	done
	REPEAT_OUT=$dir
	SIG_AT_EXIT+=(repeat_at_exit)
	why="done"
	# --quiet (host_writer's) quiets the repetitions' own lines too.
	REPEAT_QUIET=""
	for k in "$@"; do
		[ "$k" != --quiet ] && [ "$k" != -q ] || REPEAT_QUIET=1
	done
	for ((k = 1; k <= REPEAT_MAX; k++)); do
		[ -n "$REPEAT_QUIET" ] || echo "== repetition $k of $REPEAT_PLAN"
		if [ "$k" -gt 1 ] && [ -n "$REPEAT_REBOOT" ]; then
			if ! sig_run ./setup.sh stop >/dev/null || ! sig_run ./setup.sh >/dev/null; then
				vm_warn "repetition $k: the guest did not boot again"
				rc=1 why=failed
				break
			fi
		fi
		before=$(repeat_host_load)
		# In a subshell of its own: whatever it holds (the VM's lock, the
		# host-only reader) is let go before the next repetition.
		sig_run "$runner" "$dir/rep-$k" "$@" || rc=$?
		[ ! -d "$dir/rep-$k" ] ||
			printf '{"before": %s, "after": %s}\n' "$before" "$(repeat_host_load)" |
			files_write "$dir/rep-$k/host_load.json" || true
		if sig_stopped; then
			why=interrupted
			break
		elif [ "$rc" != 0 ]; then
			why=failed
			[ "$rc" = 2 ] || vm_warn "repetition $k failed (exit $rc$([ "$rc" -le 128 ] || echo ", killed by SIG$(kill -l "$rc")")); the $((k - 1)) before it are merged in $dir, which says it is partial"
			break
		fi
		if [ -n "$REPEAT_CI" ] && [ "$k" -ge "$REPEAT_MIN" ]; then
			settled=0
			/usr/bin/python3 -m analysis.repeat settled "$dir" --ci "$REPEAT_CI" || settled=$?
			[ "$settled" != 2 ] || { rc=1; why=failed; break; }
			[ "$settled" != 0 ] || { why=settled; break; }
			[ "$k" -lt "$REPEAT_MAX" ] || why="max reached"
		fi
	done
	REPEAT_OUT=""
	[ "$rc" = 2 ] || repeat_merge "$dir" "$why" || { [ "$rc" != 0 ] || rc=1; }
	sig_exit_if_stopped
	return "$rc"
}

# run_maybe_repeated RUNNER OUT ARG... : once into OUT, or repeated.
run_maybe_repeated() {
	if [ -z "$REPEAT_PLAN" ]; then
		"$@"
	else
		repeat_run "$@"
	fi
}

REPEAT_OUT="" REPEAT_QUIET=""
repeat_options "$@"
set -- "${ARGS[@]}"

# Every setting is checked before anything starts (one line, exit 2).
# --matrix (or --resume) anywhere, after --host-only or not: the matrix
# (vm/matrix.bash), each cell one of the runs below.
if matrix_wanted "$@"; then
	matrix_main "$@"
	exit
fi
case ${1:-} in
--bench)
	shift
	[ -z "$REPEAT_PLAN" ] || repeat_fail "--repeat: not with --bench (IVSHMEM_BENCH_REPEAT sets the bench's repetitions)"
	[[ $IVSHMEM_BENCH_REPEAT =~ ^[1-9][0-9]{0,2}$ ]] ||
		repeat_fail "IVSHMEM_BENCH_REPEAT: '$IVSHMEM_BENCH_REPEAT' is not a count of repetitions (1 to 999)"
	settings_check_run
	settings_cpu IVSHMEM_VCPU_CPU
	settings_shm_size /dev/shm
	settings_check_vm
	bench "$@"
	;;
--host-only)
	shift
	settings_check_run
	settings_cpu IVSHMEM_VCPU_CPU
	settings_shm_size /dev/shm
	if [ "${1:-}" = --stream ]; then
		shift
		set -- "${STREAM_SWEEP[@]}" "$@"
	fi
	[ -z "$REPEAT_REBOOT" ] || repeat_fail "--repeat-reboot: there is no guest to boot in --host-only"
	run_maybe_repeated run_host_only "$IVSHMEM_RESULTS" "$@"
	;;
--transports | --transports=*)
	[ -z "$REPEAT_PLAN" ] || repeat_fail "--repeat: not with --transports"
	list=$TRANSPORTS_ALL
	if [[ $1 == --transports=* ]]; then
		list=${1#--transports=}
	elif [ -n "${2:-}" ] && [[ $2 != -* ]]; then
		list=$2
		shift
	fi
	shift
	settings_check_run
	settings_state_dir
	run_transports "$IVSHMEM_RESULTS" "$list" "$@"
	;;
--stream)
	shift
	settings_check_run
	settings_state_dir
	run_maybe_repeated run_vm "$IVSHMEM_RESULTS" "${STREAM_SWEEP[@]}" "$@"
	;;
-h | --help)
	sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	;;
*)
	settings_check_run
	settings_state_dir
	if [ "$IVSHMEM_TOPOLOGY" = vm-vm ]; then
		[ -z "$REPEAT_REBOOT" ] || repeat_fail "--repeat-reboot: not with a VM pair (the pair is booted by IVSHMEM_TOPOLOGY=vm-vm ./setup.sh)"
		run_maybe_repeated run_intervm "$IVSHMEM_RESULTS" "$@"
	else
		[ ! -d "$VM_STATE_DIR" ] || intervm_refuse_running host-vm
		run_maybe_repeated run_vm "$IVSHMEM_RESULTS" "$@"
	fi
	;;
esac
