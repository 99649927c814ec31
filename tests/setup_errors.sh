#!/usr/bin/env bash
# setup_errors - setup.sh and run_test.sh turn bad settings into one clear
# line and a non-zero exit, before starting anything.
# timeout: 120
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export IVSHMEM_STATE_DIR=$tmp/vm IVSHMEM_SHM_PATH=/dev/shm/ivb-test-errors-$$

expect() { # expect STATUS PATTERN COMMAND...
	local want=$1 pattern=$2 rc=0
	shift 2
	"$@" >"$tmp/out" 2>&1 || rc=$?
	if [ "$rc" = "$want" ] && grep -qF -- "$pattern" "$tmp/out"; then
		echo "ok   $* -> $want"
	else
		echo "FAIL $* -> $rc (want $want, '$pattern'):"
		sed 's/^/    /' "$tmp/out"
		fail=1
	fi
}
expect 1 "IVSHMEM_SHM_SIZE=48M must be a power of two" env IVSHMEM_SHM_SIZE=48M ./setup.sh
expect 1 "IVSHMEM_SHM_SIZE=lots is not a size" env IVSHMEM_SHM_SIZE=lots ./setup.sh
expect 1 "IVSHMEM_ACCEL=xen: expected auto, kvm or tcg" env IVSHMEM_ACCEL=xen ./setup.sh
expect 1 "IVSHMEM_GUEST=windows: expected micro or cloud" env IVSHMEM_GUEST=windows ./setup.sh
expect 1 "IVSHMEM_KERNEL=/nonexistent: not readable" env IVSHMEM_KERNEL=/nonexistent ./setup.sh
expect 2 "unknown command 'launch'" ./setup.sh launch
expect 1 "no VM running" ./setup.sh ssh
expect 3 "VM: not running" ./setup.sh status
expect 1 "no VM running: start it with ./setup.sh" ./run_test.sh
check "nothing was started" [ ! -e "$tmp/vm/qemu.pid" ]
exit $fail
