#!/usr/bin/env bash
# run_test.sh - run the benchmark against the running VM (./setup.sh starts
# it) and write the results directory.
#
#   ./run_test.sh [host_writer options]   latency and bandwidth tests in the VM
#   ./run_test.sh --host-only [options]   the same against a guest_reader on
#                                         the host (no VM): the baseline
#   ./run_test.sh --bench                 latency host-only and in the VM in one
#                                         run, and the ratio of their p50s
#
# Settings (environment, defaults in README.md): IVSHMEM_RESULTS,
# IVSHMEM_ITERATIONS, IVSHMEM_WARMUP, IVSHMEM_FRAME_ITERATIONS,
# IVSHMEM_FRAMES, IVSHMEM_GAP, IVSHMEM_TIMEOUT, IVSHMEM_WRITER_CPU, and the
# VM settings of setup.sh. Options after the first are passed to host_writer.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=common/vm.sh
. common/vm.sh

: "${IVSHMEM_RESULTS:=results}"
: "${IVSHMEM_ITERATIONS:=1000}"
: "${IVSHMEM_WARMUP:=100}"
: "${IVSHMEM_FRAME_ITERATIONS:=5}"
: "${IVSHMEM_FRAMES:=1080p,1440p,4k}"
: "${IVSHMEM_GAP:=0}"
: "${IVSHMEM_TIMEOUT:=10s}"
: "${IVSHMEM_BENCH_ITERATIONS:=100000}"

BIN=$IVSHMEM_BUILD_DIR

die() {
	echo "run_test: $*" >&2
	exit 1
}

# Common host_writer options from the settings.
writer_args() {
	WRITER_ARGS=(--iterations "$IVSHMEM_ITERATIONS" --warmup "$IVSHMEM_WARMUP"
		--frame-iterations "$IVSHMEM_FRAME_ITERATIONS" --frames "$IVSHMEM_FRAMES"
		--gap "$IVSHMEM_GAP" --timeout "$IVSHMEM_TIMEOUT" --cpu "$IVSHMEM_WRITER_CPU")
}

# p50 of the round trip from a results directory's run.json.
p50_ns() {
	/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["latency"]["p50_ns"])' \
		"$1/run.json"
}

# Run host_writer against the running VM into results dir $1; extra args follow.
run_vm() {
	local out=$1 pid rc=0
	shift
	pid=$(vm_pid)
	[ -n "$pid" ] || die "no VM running: start it with ./setup.sh (or use make test)"
	vm_load_env || die "no $VM_ENV: restart the VM with ./setup.sh stop && ./setup.sh"
	[ "$VM_MODE" = plain ] || die "the VM runs in $VM_MODE mode; this run_test.sh drives plain mode"
	writer_args
	mkdir -p "$out"
	"$BIN/host_writer" --shm "$VM_SHM_PATH" --output "$out" "${WRITER_ARGS[@]}" \
		--meta target=vm --meta guest="$VM_GUEST" --meta accel="$VM_ACCEL" \
		--meta qemu_version="$VM_QEMU_VERSION" --meta guest_kernel="$VM_GUEST_KERNEL" \
		--meta vcpu_cpu="$VM_VCPU_CPU" --meta vcpus="$VM_VCPUS" \
		--meta guest_memory="$VM_MEM" --meta boot_seconds="$VM_BOOT_SECONDS" "$@" || rc=$?
	if [ $rc -ne 0 ] && [ -z "$(vm_pid)" ]; then
		echo "run_test: the VM (pid $pid) died during the run; partial results are in $out/" >&2
		echo "run_test: last lines of $VM_CONSOLE:" >&2
		tail -n 15 "$VM_CONSOLE" | sed 's/^/    | /' >&2
	fi
	return $rc
}

# Run host_writer against a guest_reader on the host (a file in /dev/shm of
# the same size as the VM's), into results dir $1; extra args follow.
run_host_only() {
	local out=$1 shm reader_pid rc=0 size
	shift
	size=$(vm_bytes "$IVSHMEM_SHM_SIZE")
	shm=$(mktemp /dev/shm/ivshmem-bench-host.XXXXXX)
	truncate -s "$size" "$shm"
	"$BIN/guest_reader" --shm "$shm" --cpu "$IVSHMEM_VCPU_CPU" --once --idle-exit 60 \
		>"$shm.log" 2>&1 &
	reader_pid=$!
	writer_args
	mkdir -p "$out"
	"$BIN/host_writer" --shm "$shm" --output "$out" "${WRITER_ARGS[@]}" \
		--meta target=host --meta guest=host --meta accel=none \
		--meta reader_cpu="$IVSHMEM_VCPU_CPU" "$@" || rc=$?
	kill "$reader_pid" 2>/dev/null || true
	wait "$reader_pid" 2>/dev/null || true
	rm -f "$shm" "$shm.log"
	return $rc
}

# Latency host-only, then in the VM, in one invocation; print the ratio.
bench() {
	local base=$IVSHMEM_RESULTS/bench host vm ratio
	IVSHMEM_ITERATIONS=$IVSHMEM_BENCH_ITERATIONS
	[ -n "$(vm_pid)" ] || ./setup.sh
	vm_load_env
	echo "== host-only: host_writer <-> guest_reader on the host, CPUs $IVSHMEM_WRITER_CPU and $IVSHMEM_VCPU_CPU"
	run_host_only "$base/host" --test latency --quiet
	echo "== VM: host_writer <-> guest_reader in the $VM_GUEST guest ($VM_ACCEL), vCPU on CPU $VM_VCPU_CPU"
	run_vm "$base/vm" --test latency --quiet
	host=$(p50_ns "$base/host")
	vm=$(p50_ns "$base/vm")
	ratio=$(awk -v a="$vm" -v b="$host" 'BEGIN { printf "%.2f", a / b }')
	echo
	printf '%-34s %12s %12s %12s\n' "latency round trip ($IVSHMEM_ITERATIONS samples)" p50_ns p99_ns p99.9_ns
	for t in host vm; do
		/usr/bin/python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["latency"]; print("%-34s %12.0f %12.0f %12.0f" % (sys.argv[2], l["p50_ns"], l["p99_ns"], l["p999_ns"]))' \
			"$base/$t/run.json" "$t"
	done
	echo "VM p50 / host-only p50: $ratio x"
	echo "guest boot to ready: ${VM_BOOT_SECONDS}s ($VM_ACCEL)"
	echo "results: $base/host $base/vm"
}

case ${1:-} in
--bench)
	shift
	bench "$@"
	;;
--host-only)
	shift
	run_host_only "$IVSHMEM_RESULTS" "$@"
	;;
-h | --help)
	sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
	;;
*)
	run_vm "$IVSHMEM_RESULTS" "$@"
	;;
esac
