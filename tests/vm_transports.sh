#!/usr/bin/env bash
# vm_transports - run_test.sh --transports end to end in a TCG micro guest:
# the size-latency ping-pong and the stream over ivshmem and, in the same
# run, over the guest's virtio-serial port and TCP over its virtio-net, and
# the host's UNIX socket, pipe and TCP loopback, every message verified;
# vsock a row saying why it is not available (no /dev/vhost-vsock here, or
# measured where there is one); bad transport names and settings refused
# with one line before anything starts. Then the same with IVSHMEM_NET=tap:
# TCP through a tap in a network namespace setup.sh makes and stop removes
# (that case says it is skipped, and why, where the machine cannot: not
# root, no ip, no /dev/net/tun).
# timeout: 420
# shellcheck disable=SC2016 # awk programs are single-quoted on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
vm_test_begin transports

# Bad input first: one line, exit 2, nothing started.
rc=0
./run_test.sh --transports serial,carrier-pigeon >"$tmp/bad.out" 2>&1 || rc=$?
check "a bad transport name: exit 2, one line listing the valid ones" bash -c \
	'[ "$1" = 2 ] && [ "$(grep -c . "$2")" = 1 ] && grep -q "serial, tcp, vsock, unix, pipe, loopback" "$2"' _ "$rc" "$tmp/bad.out"
rc=0
IVSHMEM_TRANSPORTS=serial,smoke ./setup.sh >"$tmp/badset.out" 2>&1 || rc=$?
check "IVSHMEM_TRANSPORTS=serial,smoke: exit 2, one line" bash -c \
	'[ "$1" = 2 ] && [ "$(grep -c . "$2")" = 1 ] && grep -q "IVSHMEM_TRANSPORTS" "$2"' _ "$rc" "$tmp/badset.out"
rc=0
IVSHMEM_NET=tap IVSHMEM_TOPOLOGY=vm-vm ./setup.sh >"$tmp/badnet.out" 2>&1 || rc=$?
check "IVSHMEM_NET=tap with vm-vm: exit 2, one line" bash -c \
	'[ "$1" = 2 ] && [ "$(grep -c . "$2")" = 1 ] && grep -q "IVSHMEM_NET=tap" "$2"' _ "$rc" "$tmp/badnet.out"
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
	echo "skip: the non-root refusal: needs root and setpriv to become another user"
elif ! "${nobody[@]}" test -r "$PWD/vm/settings.bash" -a -x "$PWD/vm"; then
	# A checkout in a private directory (mktemp -d is 0700) is out of that user's reach:
	# by its absolute path, as setup.sh sources its files (a relative path from inside
	# would pass, and setup.sh then fail on the first file it sources).
	echo "skip: the non-root refusal: uid 65534 cannot read this checkout ($PWD)"
else
	rc=0
	"${nobody[@]}" env IVSHMEM_NET=tap IVSHMEM_STATE_DIR="$tmp/nobody" \
		IVSHMEM_SHM_PATH="$IVSHMEM_SHM_PATH-nobody" ./setup.sh >"$tmp/notroot.out" 2>&1 || rc=$?
	check "IVSHMEM_NET=tap as a user who cannot make a namespace: exit 2, one line saying so" bash -c \
		'[ "$1" = 2 ] && [ "$(grep -c . "$2")" = 1 ] && grep -q "needs root" "$2"' _ "$rc" "$tmp/notroot.out"
fi
check "nothing was started" [ ! -e "$IVSHMEM_STATE_DIR/qemu.pid" ]

./setup.sh >"$tmp/setup.out" 2>&1 || { cat "$tmp/setup.out"; exit 1; }
check "the guest serves the serial port and TCP" bash -c \
	'grep -q "TRANSPORT-READY serial:" "$1" && grep -q "TRANSPORT-READY tcp:7777" "$1"' _ "$IVSHMEM_STATE_DIR/console.log"
rc=0
./run_test.sh --transports --lat-iterations 100 --duration 50ms >"$tmp/run.out" 2>&1 || rc=$?
check "run_test.sh --transports: exit 0" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -n 30 "$tmp/run.out"
csv=$IVSHMEM_RESULTS/transports/transport_results.csv
for t in virtio-serial virtio-net-tcp unix pipe tcp-loopback; do
	check "$t: 7 round-trip and 4 stream rows, none with an error" awk -F, -v t="$t" \
		'$1 == t && $2 == "sizelat" { l++; if ($17 != 0 || $8 <= 0) bad = 1 } $1 == t && $2 == "stream" { s++; if ($17 != 0 || $15 <= 0) bad = 1 } END { exit bad || l != 7 || s != 4 }' "$csv"
done
if [ -c /dev/vhost-vsock ]; then
	check "virtio-vsock: measured" grep -q '^virtio-vsock,stream,' "$csv"
else
	check "virtio-vsock: a row saying /dev/vhost-vsock is missing" grep -q '^virtio-vsock,all,.*,0,/dev/vhost-vsock missing$' "$csv"
fi
check "ivshmem: the same sizes in the same run" bash -c \
	'[ "$(($(wc -l <"$1/size_latency_results.csv") - 1))" = 7 ] && [ "$(grep -c "^h2g," "$1/stream_results.csv")" = 4 ]' _ "$IVSHMEM_RESULTS"
check "transports' run.json: complete, TCP_NODELAY on the TCP channels" bash -c \
	'grep -q "\"status\": \"complete\"" "$1" && [ "$(grep -c "\"tcp_nodelay\": 1" "$1")" -ge 2 ]' _ "$IVSHMEM_RESULTS/transports/run.json"
check "transports' run.json: vhost-net recorded as not used" grep -q '"vhost_net": "no' "$IVSHMEM_RESULTS/transports/run.json"
# ivshmem plain answers faster than any channel through QEMU's devices.
check "ivshmem's 64 B p50 is below virtio-serial's and virtio-net's" bash -c '
	iv=$(awk -F, "\$1 == 64 { print \$7 }" "$1/size_latency_results.csv")
	awk -F, -v iv="$iv" "(\$1 == \"virtio-serial\" || \$1 == \"virtio-net-tcp\") && \$2 == \"sizelat\" && \$3 == 64 && \$8 <= iv { bad = 1 } END { exit bad }" "$1/transports/transport_results.csv"' _ "$IVSHMEM_RESULTS"
grep -E 'round trip p50|msg/s' "$tmp/run.out" | grep -E ' (64|1048576) B' || true
./setup.sh stop >/dev/null 2>&1

# IVSHMEM_NET=tap: the same TCP channel through a tap in a namespace.
tap_why=""
[ "$(id -u)" = 0 ] || tap_why="not root"
command -v ip >/dev/null || tap_why="no ip command (iproute2)"
[ -c /dev/net/tun ] || tap_why="no /dev/net/tun"
if [ -n "$tap_why" ]; then
	echo "skip: the tap case: $tap_why"
	exit $fail
fi
IVSHMEM_NET=tap ./setup.sh >"$tmp/tap-setup.out" 2>&1 || { cat "$tmp/tap-setup.out"; exit 1; }
netns=$(sed -n 's/^VM_NETNS=//p' "$IVSHMEM_STATE_DIR/vm.env")
check "tap: vm.env names its namespace ($netns), which exists" bash -c \
	'[[ $1 == ivb-* ]] && grep -q "^VM_NET=tap$" "$2/vm.env" && ip netns list | grep -q "^$1\b"' _ "$netns" "$IVSHMEM_STATE_DIR"
check "tap: the guest is given 10.213.0.2 and serves TCP there" bash -c \
	'tr "\0" " " <"/proc/$(cat "$1/qemu.pid")/cmdline" | grep -q "ivb.net=10.213.0.2/30" &&
	grep -q "TRANSPORT-READY tcp:7777" "$1/console.log"' _ "$IVSHMEM_STATE_DIR"
check "tap: the tap is in the namespace, not in the host's" bash -c \
	'ip -n "$1" -br addr show ivbtap0 | grep -q 10.213.0.1/30 && ! ip link show ivbtap0 >/dev/null 2>&1' _ "$netns"
# Results of their own: nothing of the run above can pass for this one's.
export IVSHMEM_RESULTS=$tmp/tap-results
csv=$IVSHMEM_RESULTS/transports/transport_results.csv
rc=0
./run_test.sh --transports tcp,serial,unix --lat-iterations 100 --duration 50ms >"$tmp/tap-run.out" 2>&1 || rc=$?
check "tap: run_test.sh --transports tcp,serial,unix: exit 0" [ "$rc" = 0 ]
[ "$rc" = 0 ] || tail -n 30 "$tmp/tap-run.out"
for t in virtio-net-tcp virtio-serial unix; do
	check "tap: $t: 7 round-trip and 4 stream rows, every message checked (xxh3), none with an error" awk -F, -v t="$t" \
		'$1 == t && $4 != "xxh3" { bad = 1 } $1 == t && $2 == "sizelat" { l++; if ($17 != 0 || $8 <= 0) bad = 1 } $1 == t && $2 == "stream" { s++; if ($17 != 0 || $15 <= 0) bad = 1 } END { exit bad || l != 7 || s != 4 }' "$csv"
done
check "tap: run.json says tap, in which namespace, and whether vhost-net was used" bash -c \
	'grep -q "\"virtio_net\": \"tap in network namespace $2 (10.213.0.1/30" "$1" && grep -q "\"netns\": \"$2\"" "$1" &&
	grep -qE "\"vhost_net\": \"(yes|no: )" "$1" && grep -q "\"status\": \"complete\"" "$1"' _ "$IVSHMEM_RESULTS/transports/run.json" "$netns"
grep -E 'round trip p50' "$tmp/tap-run.out" | grep -E 'virtio-net-tcp +64 B' || true
./setup.sh stop >"$tmp/tap-stop.out" 2>&1
check "tap: after stop the namespace is gone, and no tap is left" bash -c \
	'! ip netns list | grep -q "^$1\b" && ! ip link show ivbtap0 >/dev/null 2>&1' _ "$netns"
exit $fail
