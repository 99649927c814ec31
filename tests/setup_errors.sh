#!/usr/bin/env bash
# setup_errors - setup.sh and run_test.sh check every setting before they
# start anything: a bad one is one line naming it, exit 2, in under a second,
# and nothing is left behind (no state directory, shared-memory file or
# results). Commands that find no VM say so clearly.
# timeout: 120
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export IVSHMEM_STATE_DIR=$tmp/vm IVSHMEM_SHM_PATH=/dev/shm/ivb-test-errors-$$ IVSHMEM_RESULTS=$tmp/results
shm_before=$(find /dev/shm -maxdepth 1 -name 'ivshmem-bench-host.*' | wc -l)

# expect STATUS PATTERN COMMAND... : COMMAND exits STATUS and prints PATTERN;
# for status 2 also: one line only, under a second, nothing written.
expect() {
	local want=$1 pattern=$2 rc=0 start ms lines
	shift 2
	start=$(date +%s%N)
	"$@" >"$tmp/out" 2>&1 || rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	lines=$(wc -l <"$tmp/out")
	if [ "$rc" = "$want" ] && grep -qF -- "$pattern" "$tmp/out" &&
		{ [ "$want" != 2 ] || { [ "$lines" = 1 ] && [ "$ms" -lt 1000 ]; }; }; then
		ok "$* -> $want ($ms ms)"
	else
		bad "$* -> $rc in $ms ms, $lines lines (want $want, one line, '$pattern'):"
		sed 's/^/    /' "$tmp/out"
	fi
	if [ "$want" = 2 ] && { [ -e "$tmp/vm" ] || [ -e "$IVSHMEM_SHM_PATH" ] || [ -e "$tmp/results" ]; }; then
		bad "$* left something behind: $(ls -d "$tmp/vm" "$IVSHMEM_SHM_PATH" "$tmp/results" 2>/dev/null)"
	fi
}

# setup.sh: the VM's settings.
expect 2 "setup: IVSHMEM_SHM_SIZE=48M: not a power of two of at least 1M" env IVSHMEM_SHM_SIZE=48M ./setup.sh
expect 2 "setup: IVSHMEM_SHM_SIZE=lots: not a size (e.g. 64M)" env IVSHMEM_SHM_SIZE=lots ./setup.sh
expect 2 "setup: IVSHMEM_SHM_SIZE=1T: more than the free space in /dev/shm" env IVSHMEM_SHM_SIZE=1T ./setup.sh
expect 2 "setup: IVSHMEM_SHM_PATH=ivshmem: not an absolute path" env IVSHMEM_SHM_PATH=ivshmem ./setup.sh
expect 2 "setup: IVSHMEM_SHM_PATH=/nonexistent/x: /nonexistent is not a directory" env IVSHMEM_SHM_PATH=/nonexistent/x ./setup.sh
expect 2 "setup: IVSHMEM_ACCEL=xen: expected auto, kvm, tcg" env IVSHMEM_ACCEL=xen ./setup.sh
expect 2 "setup: IVSHMEM_GUEST=windows: expected micro, cloud" env IVSHMEM_GUEST=windows ./setup.sh
expect 2 "setup: IVSHMEM_MODE=fast: expected plain, doorbell" env IVSHMEM_MODE=fast ./setup.sh
expect 2 "setup: IVSHMEM_KERNEL=/nonexistent: not readable" env IVSHMEM_KERNEL=/nonexistent ./setup.sh
expect 2 "setup: IVSHMEM_MEM=abc: not a size with a unit (e.g. 512M, 2G)" env IVSHMEM_MEM=abc ./setup.sh
expect 2 "setup: IVSHMEM_MEM=512: not a size with a unit" env IVSHMEM_MEM=512 ./setup.sh
expect 2 "setup: IVSHMEM_MEM=64M: less than the 128M a guest needs" env IVSHMEM_MEM=64M ./setup.sh
expect 2 "setup: IVSHMEM_MEM=100T: more than the host's memory" env IVSHMEM_MEM=100T ./setup.sh
expect 2 "setup: IVSHMEM_VCPU_CPU=99: not a CPU this machine has online for us" env IVSHMEM_VCPU_CPU=99 ./setup.sh
expect 2 "setup: IVSHMEM_VCPU_CPU=1-3: not a CPU" env IVSHMEM_VCPU_CPU=1-3 ./setup.sh
expect 2 "setup: IVSHMEM_VCPUS=0: not a whole number in 1..64" env IVSHMEM_VCPUS=0 ./setup.sh
expect 2 "setup: IVSHMEM_VECTORS=65: not a whole number in 1..64" env IVSHMEM_VECTORS=65 ./setup.sh
expect 2 "setup: IVSHMEM_VECTORS=0: not a whole number in 1..64" env IVSHMEM_VECTORS=0 ./setup.sh
expect 2 "setup: IVSHMEM_BOOT_TIMEOUT=soon: not a whole number in 1..86400" env IVSHMEM_BOOT_TIMEOUT=soon ./setup.sh
expect 2 "setup: IVSHMEM_KVM_TIMEOUT=0: not a whole number in 1..86400" env IVSHMEM_KVM_TIMEOUT=0 ./setup.sh
expect 2 "longer than the 107 bytes a socket path can have" env IVSHMEM_SERVER_SOCKET="/tmp/$(printf 'x%.0s' {1..120})" ./setup.sh
expect 2 "setup: IVSHMEM_SSH_PORT=70000: not a whole number in 1..65535" env IVSHMEM_GUEST=cloud IVSHMEM_SSH_PORT=70000 ./setup.sh
expect 2 "setup: IVSHMEM_CLOUD_SOURCE=web: expected auto, official, offline" env IVSHMEM_GUEST=cloud IVSHMEM_CLOUD_SOURCE=web ./setup.sh

# run_test.sh: host_writer's settings, and the reader's CPU for --host-only.
expect 2 "run_test: IVSHMEM_ITERATIONS=abc: not a whole number in 1..100000000" env IVSHMEM_ITERATIONS=abc ./run_test.sh
expect 2 "run_test: IVSHMEM_WARMUP=-1: not a whole number" env IVSHMEM_WARMUP=-1 ./run_test.sh
expect 2 "run_test: IVSHMEM_FRAME_ITERATIONS=0: not a whole number in 1..1000000" env IVSHMEM_FRAME_ITERATIONS=0 ./run_test.sh
expect 2 "run_test: IVSHMEM_FRAMES=1080p,8k: '8k' is not 1080p, 1440p, 4k or WxH" env IVSHMEM_FRAMES=1080p,8k ./run_test.sh
expect 2 "run_test: IVSHMEM_GAP=2m: not a duration in 0..60s" env IVSHMEM_GAP=2m ./run_test.sh
expect 2 "run_test: IVSHMEM_TIMEOUT=forever: not a duration in 1ms..1h" env IVSHMEM_TIMEOUT=forever ./run_test.sh
expect 2 "run_test: IVSHMEM_WRITER_CPU=99: not a CPU this machine has online for us" env IVSHMEM_WRITER_CPU=99 ./run_test.sh
expect 2 "run_test: IVSHMEM_VCPU_CPU=99: not a CPU" env IVSHMEM_VCPU_CPU=99 ./run_test.sh --host-only
expect 2 "run_test: IVSHMEM_SHM_SIZE=1T: more than the free space in /dev/shm" env IVSHMEM_SHM_SIZE=1T ./run_test.sh --host-only
expect 2 "run_test: IVSHMEM_BENCH_ITERATIONS=1e6: not a whole number" env IVSHMEM_BENCH_ITERATIONS=1e6 ./run_test.sh --bench
check "no host-only shared memory left in /dev/shm" \
	[ "$(find /dev/shm -maxdepth 1 -name 'ivshmem-bench-host.*' | wc -l)" = "$shm_before" ]

# Commands with no VM to act on.
expect 2 "unknown command 'launch'" ./setup.sh launch
expect 1 "no VM running" ./setup.sh ssh
expect 3 "VM: not running" ./setup.sh status
expect 1 "no VM running: start it with ./setup.sh" ./run_test.sh
check "nothing was started" [ ! -e "$tmp/vm/qemu.pid" ]

# Good settings pass the checks: a short host-only run completes. A bad
# option of host_writer's through --host-only is its own lines (the error,
# "Try ... --help"), none of run_test's or of the host's guest_reader.
if [ -x build/guest_reader ] && [ -x build/host_writer ]; then
	run badopt ./run_test.sh --host-only --bogus
	check "a bad option through --host-only: exit 2, host_writer's lines only" bash -c "[ $rc = 2 ] &&
		grep -q \"unrecognized option '--bogus'\" '$tmp/badopt.out' && ! grep -vqE '(^|/)host_writer: |^Try .host_writer --help' '$tmp/badopt.out'"
	check "a bad option through --host-only: nothing written" [ ! -e "$tmp/results" ]
	expect 0 "Bandwidth: frames verified 1" env IVSHMEM_TESTS=default IVSHMEM_ITERATIONS=200 IVSHMEM_WARMUP=10 \
		IVSHMEM_FRAME_ITERATIONS=1 IVSHMEM_FRAMES=1080p IVSHMEM_WRITER_CPU=none ./run_test.sh --host-only
	check "host-only run.json written" [ -s "$tmp/results/run.json" ]
fi
exit $fail
