#!/usr/bin/env bash
# vm_restart - QEMU alone is not a usable VM. A doorbell VM whose ivshmem
# server died, or a plain VM whose shared-memory file was deleted, cannot be
# reached from the host: status says so (exit 1), run_test.sh refuses with
# one line saying what to do, and setup.sh restarts the whole set instead of
# calling it ready; afterwards one server runs and a run works. Boots the
# micro guest four times under TCG.
# timeout: 300
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin restart
export IVSHMEM_ITERATIONS=300 IVSHMEM_FRAME_ITERATIONS=1 IVSHMEM_FRAMES=1080p


# 1. Doorbell: the server dies under a running VM.
export IVSHMEM_MODE=doorbell
run boot ./setup.sh
[ "$rc" = 0 ] || { bad "doorbell boot failed"; exit 1; }
qemu=$(cat "$tmp/vm/qemu.pid")
server=$(cat "$tmp/vm/server.pid")
kill -KILL "$server"
wait_exit "$server" 10
run status ./setup.sh status
check "server gone: status exit 1, says what is missing" bash -c "[ $rc = 1 ] && grep -q 'VM: NOT usable: its ivshmem server is not running; IVSHMEM_MODE=doorbell ./setup.sh restarts it' '$tmp/status.out'"
run refused ./run_test.sh
check "server gone: run_test refuses in one line" bash -c "[ $rc = 1 ] && [ \$(wc -l <'$tmp/refused.out') = 1 ] && grep -q 'not usable: its ivshmem server is not running' '$tmp/refused.out'"
run again ./setup.sh
check "server gone: setup.sh restarts, exit 0" bash -c "[ $rc = 0 ] && grep -q 'is not usable: its ivshmem server is not running. Restarting it' '$tmp/again.out' && grep -q 'Guest ready' '$tmp/again.out'"
check "server gone: not called ready as it was" bash -c "! grep -q 'VM already running' '$tmp/again.out'"
check "server gone: the old QEMU is gone" bash -c "! kill -0 $qemu 2>/dev/null"
check "server gone: a new QEMU runs" bash -c "[ \"\$(cat '$tmp/vm/qemu.pid')\" != $qemu ]"
check "server gone: one server runs" [ "$(server_count "$IVSHMEM_SERVER_SOCKET")" = 1 ]
run status2 ./setup.sh status
check "server back: status exit 0" [ "$rc" = 0 ]
run run ./run_test.sh
check "server back: a run works" bash -c "[ $rc = 0 ] && grep -q 'frames verified 1, failed 0' '$tmp/run.out'"
./setup.sh stop >/dev/null

# 2. Plain: the shared-memory file is deleted under a running VM.
export IVSHMEM_MODE=plain
run boot ./setup.sh
[ "$rc" = 0 ] || { bad "plain boot failed"; exit 1; }
qemu=$(cat "$tmp/vm/qemu.pid")
rm "$IVSHMEM_SHM_PATH"
run status ./setup.sh status
check "file gone: status exit 1" bash -c "[ $rc = 1 ] && grep -q 'NOT usable: its shared-memory file $IVSHMEM_SHM_PATH is gone' '$tmp/status.out'"
run again ./setup.sh
check "file gone: setup.sh restarts" bash -c "[ $rc = 0 ] && grep -q 'Restarting it' '$tmp/again.out' && ! kill -0 $qemu 2>/dev/null"
check "file gone: the file is back" [ -f "$IVSHMEM_SHM_PATH" ]
run run ./run_test.sh
check "file back: a run works" [ "$rc" = 0 ]
exit $fail
