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
: "${IVSHMEM_TESTS:=latency,frames,stream,sizelat}"
# The full sweep of --stream: every size from 8 B to 16 MiB, half a second a point.
STREAM_SWEEP=(--test stream,sizelat --sizes ladder --lat-sizes ladder --duration 500ms)
# The benchmark's stream points: 64 B, 4 KiB, 1 MiB and a 4K RGB frame
# (3840x2160x3 bytes), initiator to responder, in shared memory large
# enough for four frames in flight.
BENCH_STREAM=(--test stream --direction h2g --sizes 64,4k,1M,24883200 --duration 500ms)
BENCH_SHM_SIZE=256M
# The benchmark's knee: p99 under 1 ms. The default bound, ten times the
# quiet p50, is a few microseconds for a polling channel, which scheduling
# noise alone passes at a few thousand messages a second.
BENCH_RATE=(--p99-bound 1ms)

BIN=$IVSHMEM_BUILD_DIR

die() { vm_die "$@"; }

# Common host_writer options from the settings.
writer_args() {
	WRITER_ARGS=(--test "$IVSHMEM_TESTS" --iterations "$IVSHMEM_ITERATIONS" --warmup "$IVSHMEM_WARMUP"
		--frame-iterations "$IVSHMEM_FRAME_ITERATIONS" --frames "$IVSHMEM_FRAMES"
		--gap "$IVSHMEM_GAP" --timeout "$IVSHMEM_TIMEOUT" --cpu "$IVSHMEM_WRITER_CPU")
}

# p50 of the round trip from a results directory's run.json.
p50_ns() {
	/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["latency"]["p50_ns"])' \
		"$1/run.json"
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
	# The running VM decides the mode and guest, whatever the environment says.
	IVSHMEM_MODE=$VM_MODE IVSHMEM_GUEST=$VM_GUEST
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
	run_writer "$out" "${WRITER_ARGS[@]}" \
		--meta target=vm --meta topology=host-vm --meta guest="$VM_GUEST" --meta accel="$VM_ACCEL" \
		--meta qemu_version="$VM_QEMU_VERSION" --meta guest_kernel="$VM_GUEST_KERNEL" \
		--meta vcpu_cpu="$VM_VCPU_CPU" --meta vcpus="$VM_VCPUS" \
		--meta guest_memory="$VM_MEM" --meta boot_seconds="$VM_BOOT_SECONDS" "$@"
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

# Run host_writer against a guest_reader on the host (a file in /dev/shm of
# the same size as the VM's), into results dir $1; extra args follow. The
# reader must announce itself first (10 s at most): if it cannot start, its
# own error is what run_test says, not a host_writer timeout. Bad options
# (host_writer's exit status 2) are host_writer's one line, nothing more.
# The shared memory and the reader's log are removed on every exit, and
# the reader stopped (vm/signals.bash).
run_host_only() {
	local out=$1 shm tmp reader_pid rc=0
	shift
	sig_mktemp shm /dev/shm/ivshmem-bench-host.XXXXXX
	sig_mktemp tmp -d "${TMPDIR:-/tmp}/ivshmem-bench-reader.XXXXXX"
	truncate -s "$(settings_bytes "$IVSHMEM_SHM_SIZE")" "$shm"
	# The reader stands for the guest, which no Ctrl-C reaches: only
	# host_writer ends the run; the reader is stopped after it.
	sig_start --apart reader_pid "$BIN/guest_reader" --shm "$shm" --cpu "$IVSHMEM_VCPU_CPU" --once --idle-exit 60 \
		>"$tmp/reader.log" 2>&1
	if ! wait_line --pid "$reader_pid" "$tmp/reader.log" "$VM_READY_TOKEN" 10; then
		sig_exit_if_stopped
		vm_warn "guest_reader on the host did not start: $(grep . "$tmp/reader.log" | tail -n 1)"
		return 1
	fi
	writer_args
	run_writer "$out" --shm "$shm" "${WRITER_ARGS[@]}" \
		--meta target=host --meta guest=host --meta accel=none \
		--meta reader_cpu="$IVSHMEM_VCPU_CPU" "$@"
	rc=$WRITER_RC
	sig_stop "$reader_pid"
	# What the reader said beyond its readiness line, if the run failed:
	# host_writer's own line says the rest (bad options, a full disk).
	if [ $rc -ne 0 ] && ! sig_stopped && grep -qv "^$VM_READY_TOKEN " "$tmp/reader.log"; then
		vm_warn "guest_reader on the host said:"
		grep -v "^$VM_READY_TOKEN " "$tmp/reader.log" | tail -n 5 | sed 's/^/    | /' >&2
	fi
	rm -rf "$shm" "$tmp"
	sig_forget "$shm"
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
	local out=$1 args=() i rc=0
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
	intervm_run "$out" "${args[@]}" --cpu 0 "${INTERVM_META[@]}" "$@" || rc=$?
	sig_exit_if_stopped
	return "$rc"
}

# One line of the benchmark table from a results directory's run.json.
bench_row() {
	/usr/bin/python3 - "$1/run.json" "$2" "$3" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l, base = r["latency"], float(sys.argv[3])
print("%-34s %10.3f %10.3f %10.3f %10.3f %8.2fx" % (sys.argv[2], l["p50_ns"] / 1e3, l["p90_ns"] / 1e3,
      l["p99_ns"] / 1e3, l["p999_ns"] / 1e3, l["p50_ns"] / base))
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
	sig_run ./run_test.sh --test latency --quiet
	[ "$mode" = plain ] || wait=(--wait hybrid:50us)
	IVSHMEM_RESULTS=$out-stream sig_run ./run_test.sh "${BENCH_STREAM[@]}" "${wait[@]}" --quiet
	if [ "$mode" = plain ]; then
		IVSHMEM_RESULTS=$out-transports sig_run ./run_test.sh --transports --quiet
		IVSHMEM_RESULTS=$out-rate sig_run ./run_test.sh --rate-sweep "${BENCH_RATE[@]}" --quiet
		half=$(bench_half_knee "$out-rate")
		[ -z "$half" ] || IVSHMEM_RESULTS=$out-rate-load sig_run ./run_test.sh --rate "$half" \
			--interference cpu,membw,cache "${BENCH_RATE[@]}" --quiet
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
def knee(name):
    try:
        return json.load(open(os.path.join(base, name, "run.json")))["rate"]["knee_per_s"].get("none")
    except (OSError, KeyError, ValueError):
        return None
kh, kv = knee("host-rate"), knee("plain-rate")
print("Latency under load (open loop, 64 B, latency from the scheduled send time)")
print("%-34s %14s %14s %8s" % ("", "host-only", "VM plain", "ratio"))
f = lambda v: "%14s" % ("%.0f/s" % v if v else "-")
print("%-34s %s %s %8s" % ("knee (p99 under 1 ms)", f(kh), f(kv),
      "%.3fx" % (kv / kh) if kh and kv else "-"))
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
# stream's message rate.
bench_stream_table() {
	/usr/bin/python3 - "$1" <<'PY'
import csv, json, os, sys
base = sys.argv[1]
def load(name):
    path = os.path.join(base, name, "stream_results.csv")
    if not os.path.exists(path):
        return {}
    return {int(r["message_bytes"]): r for r in csv.DictReader(open(path))}
host, plain, bell = load("host-stream"), load("plain-stream"), load("doorbell-stream")
def fig(r, size):
    if not r:
        return None
    return float(r["msgs_per_s"]) if size in (64, 24883200) else float(r["gbps"])
unit = {64: "msgs/s", 4096: "GB/s", 1048576: "GB/s", 24883200: "frames/s"}
label = {64: "64 B", 4096: "4 KiB", 1048576: "1 MiB", 24883200: "4K frame (24.9 MB)"}
print("Streams, initiator to responder, XXH3-checked, 500 ms a point (ratio = VM / host-only)")
print("%-20s %-9s %12s %12s %7s %12s %7s %10s" % ("", "", "host-only", "VM plain", "ratio",
      "VM doorbell", "ratio", "bells/msg"))
for size in (64, 4096, 1048576, 24883200):
    h, p, d = (fig(t.get(size), size) for t in (host, plain, bell))
    def cell(v): return "%12.4g" % v if v is not None else "%12s" % "-"
    def ratio(v): return "%6.2fx" % (v / h) if v is not None and h else "%7s" % "-"
    bells = bell.get(size, {}).get("doorbells_per_msg", "-")
    print("%-20s %-9s %s %s %s %s %s %10s" % (label[size], unit[size], cell(h), cell(p), ratio(p),
          cell(d), ratio(d), bells))
try:
    p50 = json.load(open(os.path.join(base, "doorbell", "run.json")))["latency"]["p50_ns"]
    if bell.get(64):
        rate = float(bell[64]["msgs_per_s"])
        print("Doorbell stream at 64 B: %.4g msgs/s = %.1fx the stop-and-wait doorbell rate "
              "(%.4g msgs/s, 1 / latency p50)" % (rate, rate * p50 / 1e9, 1e9 / p50))
except (OSError, KeyError, ValueError):
    pass
PY
}

# The benchmark: in one invocation, the latency round trip host-only (two
# processes polling shared memory: the limit), the eventfd ping-pong (the
# floor for interrupt wake-ups), and a freshly booted VM in plain and in
# doorbell mode; the ratios against the host-only figures in this run.
bench() {
	local base=$IVSHMEM_RESULTS/bench host_p50 floor_p50 mode half
	IVSHMEM_ITERATIONS=$IVSHMEM_BENCH_ITERATIONS
	export IVSHMEM_ITERATIONS
	rm -rf "$base"
	mkdir -p "$base"
	echo "== host-only: host_writer <-> guest_reader on the host (CPUs $IVSHMEM_WRITER_CPU and $IVSHMEM_VCPU_CPU), polling"
	run_host_only "$base/host" --test latency --quiet
	echo "== host-only streams"
	IVSHMEM_SHM_SIZE=$BENCH_SHM_SIZE run_host_only "$base/host-stream" "${BENCH_STREAM[@]}" --quiet
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
	host_p50=$(p50_ns "$base/host")
	floor_p50=$(p50_ns "$base/eventfd")
	files_write "$base/summary.txt" < <(bench_summary "$base" "$host_p50" "$floor_p50")
	cat "$base/summary.txt"
	# The page of the whole bench: results/bench/report.html (its figures in summary.json).
	/usr/bin/python3 analyze_results.py --quiet --allow-partial "$base" ||
		vm_warn "analyze_results.py $base: exit $? (report.html says why when written)"
}

# The benchmark's summary, from the results directories under $1 and the
# host-only and eventfd p50s $2 and $3.
bench_summary() {
	local base=$1 host_p50=$2 floor_p50=$3 mode
	{
		echo
		echo "Latency round trip, $IVSHMEM_ITERATIONS samples each (us; ratio = p50 / host-only p50)"
		printf '%-34s %10s %10s %10s %10s %9s\n' "" p50 p90 p99 p99.9 ratio
		bench_row "$base/host" "host-only, polling" "$host_p50"
		bench_row "$base/eventfd" "eventfd ping-pong (wake-up floor)" "$host_p50"
		bench_row "$base/eventfd-same-cpu" "eventfd ping-pong, one CPU" "$host_p50"
		for mode in ${IVSHMEM_BENCH_MODES:-plain doorbell}; do
			[ -f "$base/$mode/run.json" ] || continue
			bench_row "$base/$mode" "VM $mode ($(/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["accel"] + ", boot " + r["boot_seconds"] + " s")' "$base/$mode/run.json"))" "$host_p50"
		done
		for mode in ${IVSHMEM_BENCH_MODES:-plain doorbell}; do
			[ -f "$base/vm-vm-$mode/run.json" ] || continue
			bench_row "$base/vm-vm-$mode" "guest A <-> guest B, $mode" "$host_p50"
		done
		if [ -f "$base/plain/run.json" ]; then
			echo "VM plain p50 / host-only p50: $(awk -v a="$(p50_ns "$base/plain")" -v b="$host_p50" 'BEGIN { printf "%.2f", a / b }')x"
		fi
		if [ -f "$base/doorbell/run.json" ]; then
			echo "VM doorbell p50 / eventfd floor p50: $(awk -v a="$(p50_ns "$base/doorbell")" -v b="$floor_p50" 'BEGIN { printf "%.2f", a / b }')x"
		fi
		for mode in ${IVSHMEM_BENCH_MODES:-plain doorbell}; do
			if [ -f "$base/vm-vm-$mode/run.json" ] && [ -f "$base/$mode/run.json" ]; then
				echo "guest<->guest $mode p50 / host<->guest $mode p50: $(awk -v a="$(p50_ns "$base/vm-vm-$mode")" -v b="$(p50_ns "$base/$mode")" 'BEGIN { printf "%.2f", a / b }')x"
			fi
		done
		echo
		bench_stream_table "$base"
		echo
		bench_rate_table "$base"
		echo
		bench_transport_table "$base/plain-transports"
		echo "Results: $base/{host,eventfd,plain,doorbell}/ and $base/{host,plain,doorbell}-stream/"
	}
}

# ---- the other transports (--transports) -------------------------------------

# One line per transport of the run in $1 (run_test.sh --transports): p50
# round trip at 64 B, msgs/s at 64 B and GB/s at 1 MiB, each with its ratio
# to ivshmem's in the same run.
bench_transport_table() {
	[ -f "$1/transports/transport_results.csv" ] || return 0
	/usr/bin/python3 - "$1" <<'PY'
import csv, json, os, sys
base = sys.argv[1]
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
    ref = figs.get(vm_ref if t.startswith("virtio") or t == vm_ref else host_ref, (None, None, None))
    print("%-20s %12s %7s %14s %7s %12s %7s" % (t, cell(p50 / 1e3 if p50 else None, "%12.3f"), ratio(p50, ref[0]),
          cell(mps, "%14.0f"), ratio(mps, ref[1]), cell(gbps, "%12.3f"), ratio(gbps, ref[2])))
for t, w in why.items():
    print("%-18s not available: %s" % (t, w))
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

# Every setting is checked before anything starts (one line, exit 2).
case ${1:-} in
--bench)
	shift
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
	run_host_only "$IVSHMEM_RESULTS" "$@"
	;;
--transports | --transports=*)
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
	run_vm "$IVSHMEM_RESULTS" "${STREAM_SWEEP[@]}" "$@"
	;;
-h | --help)
	sed -n '3,35p' "$0" | sed 's/^# \{0,1\}//'
	;;
*)
	settings_check_run
	settings_state_dir
	if [ "$IVSHMEM_TOPOLOGY" = vm-vm ]; then
		run_intervm "$IVSHMEM_RESULTS" "$@"
	else
		[ ! -d "$VM_STATE_DIR" ] || intervm_refuse_running host-vm
		run_vm "$IVSHMEM_RESULTS" "$@"
	fi
	;;
esac
