#!/usr/bin/env bash
# server_qemu: our doorbell server against real QEMU ivshmem-doorbell devices (paused TCG QEMUs) and a host peer.
# timeout: 120
#
# QEMU connects to the server while it realizes the device, before the
# guest runs, so paused QEMUs (-S) without a guest are full peers: they
# get an id, the shm and eventfds, and their main loop reads their own
# eventfds. The host peer (tests/helpers/ivs_peer_probe.c, built by the
# Makefile) logs what it learns; this script waits on those lines.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash # wait_line and check, ok, bad
BUILD=${BUILD:-build}
QEMU=${QEMU:-qemu-system-x86_64}
PYTHON=${IVSHMEM_PYTHON:-/usr/bin/python3}
VECTORS=2

command -v "$QEMU" >/dev/null || { echo "SKIP: $QEMU is not installed"; exit 77; }
PROBE=$BUILD/tests/helpers/ivs_peer_probe
for f in "$BUILD/ivshmem_server" "$PROBE"; do
	[ -e "$f" ] || { echo "FAIL: $f is missing (make all)"; exit 1; }
done

tmp=$(mktemp -d /tmp/ivs_qemu.XXXXXX)
declare -A pid=()
cleanup() {
	local p
	for p in "${pid[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "$failures" != 0 ]; then
		for f in "$tmp"/*.log; do echo "--- $f"; cat "$f"; done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# count FILE REGEX: matching lines.
count() { grep -cE -- "$2" "$1" 2>/dev/null || true; }

# alive NAME: that background process still runs.
alive() { kill -0 "${pid[$1]}" 2>/dev/null; }

# stop NAME: SIGTERM, then reap it (every process here runs under timeout,
# which bounds the wait).
stop() {
	kill -TERM "${pid[$1]}" 2>/dev/null || true
	wait "${pid[$1]}" 2>/dev/null || true
	unset "pid[$1]"
}

# start_qemu NAME: a paused q35 TCG QEMU with an ivshmem-doorbell device.
start_qemu() {
	timeout 100 "$QEMU" -machine q35 -accel tcg -nodefaults -nographic -S -display none \
		-chardev socket,id=c,path="$tmp/sock" \
		-device ivshmem-doorbell,chardev=c,vectors=$VECTORS \
		-monitor unix:"$tmp/$1.mon",server=on,wait=off >"$tmp/$1.log" 2>&1 &
	pid[$1]=$!
}

# hmp NAME COMMAND: run a monitor command, print its output.
hmp() {
	timeout 10 "$PYTHON" - "$tmp/$1.mon" "$2" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
def until_prompt():
    buf = b""
    while not buf.rstrip().endswith(b"(qemu)"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf.decode(errors="replace")
until_prompt()
s.sendall(sys.argv[2].encode() + b"\n")
print(until_prompt())
EOF
}

echo "# server and host peer"
timeout 110 "$BUILD/ivshmem_server" -v -S "$tmp/sock" -M "$tmp/shm" -l 1M -n $VECTORS >"$tmp/server.log" 2>&1 &
pid[server]=$!
wait_line "$tmp/server.log" "listening on $tmp/sock" 10 || { bad "server did not start"; exit 1; }
timeout 105 "$PROBE" "$tmp/sock" $VECTORS 100 --ring >"$tmp/probe.log" 2>&1 &
pid[probe]=$!
check "host peer connects as id 0" wait_line "$tmp/probe.log" '^id 0$' 10

echo "# two QEMUs"
start_qemu a
check "QEMU a becomes peer 1 with $VECTORS eventfds" wait_line "$tmp/probe.log" '^connect 1 1$' 30
start_qemu b
check "QEMU b becomes peer 2 with $VECTORS eventfds" wait_line "$tmp/probe.log" '^connect 2 1$' 30
check "the host peer saw exactly ids 1 and 2, vectors 0 and 1 each" \
	[ "$(grep '^connect' "$tmp/probe.log" | sort | tr '\n' ' ')" = "connect 1 0 connect 1 1 connect 2 0 connect 2 1 " ]
check "server logged both" wait_line "$tmp/server.log" 'peer 2 connected \(3 peers\)' 5
check "each QEMU reads the eventfds of its own vectors (rung by the host)" \
	wait_line "$tmp/probe.log" '^consumed [12] [01]$' 10 4
check "both QEMUs still run" bash -c "kill -0 ${pid[a]} && kill -0 ${pid[b]}"
if [ -x "$PYTHON" ]; then
	hmp a "info pci" >"$tmp/a.pci" || true
	check "QEMU a shows device 1af4:1110 with a 1 MiB BAR2 (HMP info pci)" \
		bash -c "grep -q 'PCI device 1af4:1110' '$tmp/a.pci' &&
			grep -q 'BAR2: 64 bit prefetchable memory.*\[0x000ffffe\]' '$tmp/a.pci'"
else
	echo "     ($PYTHON missing: no monitor check)"
fi

echo "# QEMU a leaves, QEMU c comes"
check "QEMU a ends on SIGTERM" stop a
check "the host peer gets the disconnect notice for 1" wait_line "$tmp/probe.log" '^gone 1$' 10
check "server logged it" wait_line "$tmp/server.log" 'peer 1 disconnected' 5
start_qemu c
# Not id 1: QEMU b saw 1 leave, and QEMU frees that peer's eventfd array
# but writes the next connect for the id into it (heap corruption).
check "QEMU c gets the fresh id 3 with $VECTORS eventfds, not 1" wait_line "$tmp/probe.log" '^connect 3 1$' 30
check "id 1 never came back" [ "$(count "$tmp/probe.log" '^connect 1 ')" = "$VECTORS" ]
check "QEMU c reads its eventfds too" wait_line "$tmp/probe.log" '^consumed 3 [01]$' 10 2
check "no ring went unread" [ "$(count "$tmp/probe.log" '^unconsumed')" = 0 ]
# QEMU prints "invalid peer" for a bad disconnect, "Too many eventfd" for
# an id it still holds, and nothing at all when all is well.
check "QEMU b and c logged no complaint" \
	bash -c "! grep -h . '$tmp/b.log' '$tmp/c.log'"
check "QEMUs b and c still run" bash -c "kill -0 ${pid[b]} && kill -0 ${pid[c]}"

echo "# server stops"
check "server exits on SIGTERM" stop server
check "and removed its socket" [ ! -e "$tmp/sock" ]
check "the host peer learns the server left" wait_line "$tmp/probe.log" '^error .*server closed the connection' 5
check "QEMUs keep running without their server" bash -c "kill -0 ${pid[b]} && kill -0 ${pid[c]}"
stop b || true
stop c || true

echo "$checks checks, $((checks - failures)) passed, $failures failed"
[ "$failures" = 0 ]
