#!/usr/bin/env bash
# vm_state_safety - the state directory cannot be turned against its user:
# setup.sh, run_test.sh, stop and status refuse a state directory that is a
# link, another user's, or writable by others (one line, exit 2); a new one
# is made 0700; links planted at every name setup.sh, QEMU and the server
# write (console.log, qemu.err, qemu.pid, server.pid(.tmp), server.log,
# vm.env, the shared-memory path) are replaced, never written through (one
# at vm.env.tmp, a name no longer written, is left alone);
# and vm.env is read as data, so code planted in it never runs. Boots one
# doorbell micro guest under TCG.
# timeout: 240
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin state
export IVSHMEM_MODE=doorbell
state=$tmp/vm


# refused WHAT PATTERN : every command refuses the state directory, exit 2.
refused() {
	local what=$1 pattern=$2 cmd
	for cmd in "./setup.sh" "./setup.sh stop" "./setup.sh status" "./run_test.sh"; do
		# shellcheck disable=SC2086 # the command's words
		run refused $cmd
		check "$what: '$cmd' refuses, exit 2" bash -c "[ $rc = 2 ] && [ \$(wc -l <'$tmp/refused.out') = 1 ] && grep -qF -- '$pattern' '$tmp/refused.out'"
	done
}

# 1. State directories that are not safely ours.
mkdir -m 0770 "$state"
refused "group-writable" "IVSHMEM_STATE_DIR=$state: writable by others (mode 770)"
chmod 0700 "$state"
chown 65534 "$state"
refused "another user's" "IVSHMEM_STATE_DIR=$state: owned by uid 65534, not by you"
rmdir "$state"
mkdir -m 0700 "$tmp/elsewhere"
ln -s "$tmp/elsewhere" "$state"
refused "a link" "IVSHMEM_STATE_DIR=$state: is a symbolic link"
check "nothing written through the linked directory" [ -z "$(ls -A "$tmp/elsewhere")" ]
rm "$state"

# 2. Links at every name written in the state directory, and at the shared
#    memory's path; each points at a file that must survive untouched.
mkdir -m 0700 "$state" "$tmp/targets"
names=(console.log qemu.err qemu.pid qemu.id server.pid server.pid.tmp server.id server.log vm.env vm.env.tmp)
for n in "${names[@]}"; do
	echo "precious $n" >"$tmp/targets/$n"
	ln -s "$tmp/targets/$n" "$state/$n"
done
echo "precious shm" >"$tmp/targets/shm"
ln -s "$tmp/targets/shm" "$IVSHMEM_SHM_PATH"
run setup ./setup.sh
check "setup.sh boots despite the links" [ "$rc" = 0 ]
for n in "${names[@]}" shm; do
	check "target of $n untouched" [ "$(cat "$tmp/targets/$n")" = "precious $n" ]
done
for n in "${names[@]}"; do
	# vm.env is staged in a private directory (vm/files.bash): nothing
	# writes vm.env.tmp any more, and its link is left as it is.
	[ "$n" != vm.env.tmp ] || continue
	check "$n is not a link" [ ! -L "$state/$n" ]
done
check "the shared memory is a file of its own" bash -c "[ ! -L '$IVSHMEM_SHM_PATH' ] && [ -f '$IVSHMEM_SHM_PATH' ]"

# 3. status makes no state directory; the launcher makes it 0700 whatever
#    the umask.
run fresh env IVSHMEM_STATE_DIR="$tmp/fresh/vm" ./setup.sh status
check "status creates no state directory" [ ! -e "$tmp/fresh" ]
(umask 022 && IVSHMEM_STATE_DIR=$tmp/fresh/vm bash -c '. vm/vm.sh && vm_state_open')
check "a new state directory is mode 0700" [ "$(stat -c %a "$tmp/fresh/vm")" = 700 ]

# 4. vm.env with code in it: read as data, never run.
{
	echo "VM_MODE=doorbell"
	echo "VM_GUEST=micro"
	echo "VM_ACCEL=\$(touch $tmp/pwned1)"
	echo "touch $tmp/pwned2"
	echo "VM_MEM=512M; touch $tmp/pwned3"
	echo "VM_VCPU_CPU=\`touch $tmp/pwned4\`"
	echo "PATH=/nonexistent"
} >"$state/vm.env"
run status ./setup.sh status
check "status runs with the planted vm.env" [ "$rc" = 0 ]
check "the planted values are shown as text" grep -qF "accel \$(touch $tmp/pwned1)" "$tmp/status.out"
run again ./setup.sh
check "setup.sh reads the planted vm.env too" grep -q 'VM already running' "$tmp/again.out"
check "no planted code ran" bash -c "! ls '$tmp'/pwned* 2>/dev/null"
exit $fail
