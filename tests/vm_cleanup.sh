#!/usr/bin/env bash
# vm_cleanup - what a plain-mode VM leaves in /dev/shm: `./setup.sh stop`
# removes the shared-memory file the VM made (also after QEMU was killed),
# but not a file that has since replaced it at that path; a second VM may
# not take over a path a running VM maps; a start that fails leaves no
# shared memory and shows its own QEMU error, not an earlier one; a boot
# interrupted by a signal leaves nothing running. Boots the micro guest four
# times under TCG.
# timeout: 300
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin cleanup
shm=$IVSHMEM_SHM_PATH

boot() {
	run boot ./setup.sh
	[ "$rc" = 0 ] || { bad "boot failed"; exit 1; }
}

# 1. A second VM (another state directory) may not take the path over.
boot
check "the shared memory exists while the VM runs" [ -f "$shm" ]
run second env IVSHMEM_STATE_DIR="$tmp/vm2" IVSHMEM_SERVER_SOCKET="$tmp/vm2.sock" ./setup.sh
check "second VM on the same path: refused, exit 1" bash -c "[ $rc = 1 ] && grep -q 'IVSHMEM_SHM_PATH=$shm is in use by pid [0-9]* (qemu-system' '$tmp/second.out'"
check "second VM: the first one's file is untouched" [ "$(stat -c %s "$shm")" = $((64 << 20)) ]
check "second VM: no QEMU was started for it" [ ! -e "$tmp/vm2/qemu.pid" ]

# 2. stop removes it.
run stop ./setup.sh stop
check "stop removes the shared memory" [ ! -e "$shm" ]
check "stop says so" grep -q "Removed the shared memory $shm" "$tmp/stop.out"

# 3. A file that replaced it at the path is someone else's: left alone.
boot
rm "$shm"
echo "not the VM's" >"$shm"
run stop2 ./setup.sh stop
check "a replacement file is left alone" [ "$(cat "$shm")" = "not the VM's" ]
rm -f "$shm"

# 4. QEMU killed: stop still removes the file the VM made.
boot
kill -KILL "$(cat "$tmp/vm/qemu.pid")"
wait_exit "$(cat "$tmp/vm/qemu.pid")" 10
run stop3 ./setup.sh stop
check "after QEMU was killed: the stale pidfile is reported" grep -q 'stale qemu.pid' "$tmp/stop3.out"
check "after QEMU was killed: the shared memory is removed" [ ! -e "$shm" ]

# 5. A start that fails: its own error, nothing left behind.
echo "an error from an earlier attempt" >"$tmp/vm/qemu.err"
run failed env IVSHMEM_QEMU_ARGS=-no-such-option ./setup.sh
check "failed start: exit 1 with QEMU's own error" bash -c "[ $rc = 1 ] && grep -q 'QEMU failed to start: .*-no-such-option' '$tmp/failed.out'"
check "failed start: no stale QEMU error shown" bash -c "! grep -q 'earlier attempt' '$tmp/failed.out'"
check "failed start: no shared memory left" [ ! -e "$shm" ]
check "failed start: no QEMU record left" bash -c "[ ! -e '$tmp/vm/qemu.pid' ] && [ ! -e '$tmp/vm/qemu.id' ]"

# 6. setup.sh stopped by a signal during the boot: nothing left running.
./setup.sh >"$tmp/killed.out" 2>&1 &
setup=$!
wait_line "$tmp/vm/qemu.id" '^pid=' 30 || bad "QEMU did not start"
qemu=$(sed -n 's/^pid=//p' "$tmp/vm/qemu.id")
kill -TERM "$setup"
rc=0
wait "$setup" || rc=$?
sed 's/^/    | /' "$tmp/killed.out"
check "interrupted boot: exit 143 (128+SIGTERM), says so" bash -c "[ $rc = 143 ] && grep -q 'interrupted (SIGTERM): stopping the VM that was booting' '$tmp/killed.out'"
check "interrupted boot: its QEMU is gone" bash -c "! kill -0 $qemu 2>/dev/null"
check "interrupted boot: no shared memory left" [ ! -e "$shm" ]
run after ./setup.sh status
check "interrupted boot: status says not running" [ "$rc" = 3 ]
exit $fail
