#!/usr/bin/env bash
# setup_stale - a pidfile whose pid now belongs to another program is stale:
# `./setup.sh stop` and `status` say so, remove it and leave that program
# alone, even when its command line mentions qemu-system or ivshmem_server
# (the VM and the server are known by their executable and start time,
# recorded when they started, which no argument can fake). No VM needed.
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
tmp=$(mktemp -d)
decoys=()
cleanup() {
	local p
	for p in "${decoys[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT
export IVSHMEM_STATE_DIR=$tmp/vm IVSHMEM_SHM_PATH=/dev/shm/ivb-test-stale-$$
state=$tmp/vm
mkdir -m 0700 "$state"

# Programs that are not the VM, with the words the old check looked for.
tail -f server/ivshmem_server.c >/dev/null &
server_decoy=$!
(exec -a "qemu-system-x86_64 -name ivshmem-bench" sleep 300) &
qemu_decoy=$!
decoys+=("$server_decoy" "$qemu_decoy")

alive() { kill -0 "$1" 2>/dev/null; }

# 1. Plain pidfiles (as an older setup.sh left them) naming the decoys.
echo "$qemu_decoy" >"$state/qemu.pid"
echo "$server_decoy" >"$state/server.pid"
run status ./setup.sh status
check "status: exit 3, not running" bash -c "[ $rc = 3 ] && grep -q 'VM: not running' '$tmp/status.out'"
check "status: no unbound variable" bash -c "! grep -q 'unbound variable' '$tmp/status.out'"
check "status: the stale pidfile is reported" grep -q "stale qemu.pid: the QEMU started here is gone (pid $qemu_decoy now belongs to another process, left alone" "$tmp/status.out"
echo "$qemu_decoy" >"$state/qemu.pid"
echo "$server_decoy" >"$state/server.pid"
run stop ./setup.sh stop
check "stop: exit 0" [ "$rc" = 0 ]
check "stop: the QEMU look-alike still runs" alive "$qemu_decoy"
check "stop: the tail of server/ivshmem_server.c still runs" alive "$server_decoy"
check "stop: both stale pidfiles reported" bash -c "grep -q 'stale qemu.pid' '$tmp/stop.out' && grep -q 'stale server.pid: the ivshmem server started here is gone (pid $server_decoy' '$tmp/stop.out'"
check "stop: no process was said to be stopped" bash -c "! grep -q 'Stopped' '$tmp/stop.out'"
check "stop: the pidfiles are removed" bash -c "[ ! -e '$state/qemu.pid' ] && [ ! -e '$state/server.pid' ]"

# 2. A record with the right pid and executable but another start time: a
#    pid reused by another qemu-system process is not ours either.
printf 'pid=%s\nstart=1\nexe=%s\n' "$qemu_decoy" "$(readlink "/proc/$qemu_decoy/exe")" >"$state/qemu.id"
echo "$qemu_decoy" >"$state/qemu.pid"
run stop2 ./setup.sh stop
check "other start time: left alone and reported" bash -c "kill -0 $qemu_decoy && grep -q 'stale qemu.pid' '$tmp/stop2.out'"
check "other start time: record removed" [ ! -e "$state/qemu.id" ]

# 3. A record of a process that has exited.
sleep 0 &
gone=$!
wait "$gone"
printf 'pid=%s\nstart=1\nexe=/usr/bin/sleep\n' "$gone" >"$state/server.id"
run stop3 ./setup.sh stop
check "exited: reported as such" grep -q "stale server.pid: the ivshmem server started here is gone (pid $gone has exited)" "$tmp/stop3.out"
check "exited: record removed" [ ! -e "$state/server.id" ]
exit $fail
