#!/usr/bin/env bash
# transport_host - the other transports host-only (transport_bench): a pipe,
# a UNIX stream socket and TCP loopback measured with every message
# verified; a responder serving tcp:PORT and unix:PATH on its own; a
# responder killed mid-run (that transport's row says so, the others are
# measured, exit 1); a responder that corrupts its echoes (counted, never
# timed, exit 1); an unavailable transport (a row with its reason, the run
# goes on); and bad names and addresses refused with one line (exit 2).
# timeout: 180
# shellcheck disable=SC2016,SC2054 # awk programs are single-quoted on purpose; option lists hold commas
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
BIN=${BUILD:-build}
tmp=$(mktemp -d)
server_pid=''
cleanup() {
	[ -z "$server_pid" ] || kill -9 "$server_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
SMALL=(--lat-sizes 8,4k --lat-iterations 200 --sizes 64,64k --duration 50ms --timeout 5s -q)
col() { # col FILE NAME: the column number of NAME in FILE's header
	head -n 1 "$1" | tr ',' '\n' | grep -nx -- "$2" | cut -d: -f1
}

# 1. The host-only baselines: 2 round-trip rows and 2 stream rows each, all clean.
rc=0
"$BIN/transport_bench" -o "$tmp/base" "${SMALL[@]}" --unavailable 'vsock=/dev/vhost-vsock missing' \
	>"$tmp/base.out" 2>&1 || rc=$?
csv=$tmp/base/transport_results.csv
check "baselines: exit 0" [ "$rc" = 0 ]
for t in pipe unix tcp; do
	check "baselines: $t has 2 sizelat and 2 stream rows" [ "$(grep -c "^$t,\(sizelat\|stream\)," "$csv")" = 4 ]
done
e=$(col "$csv" errors) a=$(col "$csv" available) p=$(col "$csv" p50_ns) m=$(col "$csv" msgs_per_s)
check "baselines: no errors, every figure positive" awk -F, -v e="$e" -v p="$p" -v m="$m" \
	'NR > 1 && $2 == "sizelat" && ($e != 0 || $p <= 0) { bad = 1 } NR > 1 && $2 == "stream" && ($e != 0 || $m <= 0) { bad = 1 } END { exit bad }' "$csv"
check "baselines: the vsock row says why it is not available" \
	grep -q '^vsock,all,.*,0,/dev/vhost-vsock missing$' "$csv"
check "baselines: run.json complete, with TCP_NODELAY and buffer sizes" bash -c \
	'grep -q "\"status\": \"complete\"" "$1" && grep -q "\"tcp_nodelay\": 1" "$1" && grep -q "\"so_sndbuf\"" "$1"' _ "$tmp/base/run.json"
check "baselines: run.json lists the rows on disk" grep -q '"transport_results.csv": 13' "$tmp/base/run.json"
check "baselines: every available row is marked so" awk -F, -v a="$a" 'NR > 1 && $1 != "vsock" && $a != 1 { bad = 1 } END { exit bad }' "$csv"

# 2. A responder of its own on tcp:PORT and on unix:PATH.
port=$((20000 + RANDOM % 20000))
"$BIN/transport_bench" --serve "tcp:$port" --idle-exit 60s >"$tmp/serve.log" 2>&1 &
server_pid=$!
wait_line --pid "$server_pid" "$tmp/serve.log" TRANSPORT-READY 20 || { cat "$tmp/serve.log"; exit 1; }
rc=0
"$BIN/transport_bench" -o "$tmp/tcp" -T "tcp:127.0.0.1:$port" "${SMALL[@]}" >"$tmp/tcp.out" 2>&1 || rc=$?
check "served tcp: exit 0, 4 rows" bash -c '[ "$1" = 0 ] && [ "$(grep -c "^tcp:127.0.0.1:$2," "$3")" = 4 ]' _ "$rc" "$port" "$tmp/tcp/transport_results.csv"
kill "$server_pid"
wait "$server_pid" || true
"$BIN/transport_bench" --serve "unix:$tmp/sock" --idle-exit 60s >"$tmp/serve2.log" 2>&1 &
server_pid=$!
wait_line --pid "$server_pid" "$tmp/serve2.log" TRANSPORT-READY 20 || { cat "$tmp/serve2.log"; exit 1; }
rc=0
"$BIN/transport_bench" -o "$tmp/unix" -T "unix:$tmp/sock" "${SMALL[@]}" >"$tmp/unix.out" 2>&1 || rc=$?
check "served unix: exit 0, 4 rows" bash -c '[ "$1" = 0 ] && [ "$(grep -c "^unix:" "$2")" = 4 ]' _ "$rc" "$tmp/unix/transport_results.csv"

# 3. The responder killed in the middle of a long stream: that row says so, the pipe after it runs.
rc=0
"$BIN/transport_bench" -o "$tmp/killed" -T "unix:$tmp/sock,pipe" --lat-sizes 64 --lat-iterations 100 \
	--sizes 4k --duration 3s --timeout 5s -q >"$tmp/killed.out" 2>&1 &
writer=$!
sleep 1 # inside the 3 s stream: nothing to wait on but the clock
kill -9 "$server_pid"
wait "$writer" || rc=$?
server_pid=''
csv=$tmp/killed/transport_results.csv
check "killed responder: exit 1" [ "$rc" = 1 ]
check "killed responder: its row says the channel was lost" grep -q "^unix:$tmp/sock,failed,.*the peer closed\|^unix:$tmp/sock,failed,.*timeout" "$csv"
check "killed responder: the pipe after it was measured" grep -q '^pipe,stream,4096,' "$csv"
check "killed responder: run.json says what failed" grep -q '"status": "1 transport(s) failed' "$tmp/killed/run.json"

# 4. A responder that flips a byte of every echo: counted as errors, never timed.
/usr/bin/python3 - "$tmp/evil.sock" >"$tmp/evil.log" 2>&1 <<'PY' &
import os, socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
print("TRANSPORT-READY", flush=True)
c, _ = s.accept()
def read(n):
    b = b""
    while len(b) < n:
        x = c.recv(n - len(b))
        if not x: sys.exit(0)
        b += x
    return b
while True:
    h = read(56)
    magic, typ, ver, flags, ln, pad, seq = struct.unpack("<IHBBIIQ", h[:24])
    body = read(ln)
    if typ == 1:   # SETUP -> READY with the token
        echo = struct.unpack("<I", body[0:4])[0] == 1
        token = struct.unpack("<Q", body[16:24])[0]
        c.sendall(struct.pack("<IHBBIIQ", magic, 2, 2, 0, 0, 0, token) + bytes(32))
    elif typ == 3 and echo: # DATA: echo with a byte flipped, the header as it came
        body = bytearray(body); body[-1] ^= 1
        c.sendall(h + bytes(body))
    elif typ == 4: # SYNC
        c.sendall(h)
    elif typ == 5: # END -> RESULT: "all received, no errors"
        c.sendall(struct.pack("<IHBBIIQ", magic, 6, 2, 0, 32, 0, seq) + bytes(32) + struct.pack("<QQQQ", seq, 0, 0, 0))
PY
server_pid=$!
wait_line --pid "$server_pid" "$tmp/evil.log" TRANSPORT-READY 20 || { cat "$tmp/evil.log"; exit 1; }
rc=0
"$BIN/transport_bench" -o "$tmp/evil" -T "unix:$tmp/evil.sock" --lat-sizes 64 --lat-iterations 50 --sizes 64 \
	--duration 20ms --timeout 5s -q >"$tmp/evil.out" 2>&1 || rc=$?
csv=$tmp/evil/transport_results.csv
e=$(col "$csv" errors) n=$(col "$csv" count)
check "corrupt echoes: exit 1" [ "$rc" = 1 ]
check "corrupt echoes: every round trip is an error, none timed" awk -F, -v e="$e" -v n="$n" \
	'$2 == "sizelat" { found = 1; if ($n != 0 || $e != 60) bad = 1 } END { exit bad || !found }' "$csv"
check "corrupt echoes: run.json is not complete" grep -q '"status": "0 transport(s) failed, 1 point(s) with bad messages"' "$tmp/evil/run.json"
wait "$server_pid" 2>/dev/null || true
server_pid=''

# 5. Nothing listening: a row with the reason, exit 0 for what could run.
rc=0
"$BIN/transport_bench" -o "$tmp/none" -T "unix:$tmp/nobody,vsock:3:5000,pipe" "${SMALL[@]}" \
	>"$tmp/none.out" 2>&1 || rc=$?
csv=$tmp/none/transport_results.csv
check "no listener: exit 0 (an unavailable transport is a row, not a failure)" [ "$rc" = 0 ]
check "no listener: the unix row says it cannot connect" grep -q "^unix:$tmp/nobody,all,.*,0,cannot connect" "$csv"
check "no listener: the vsock row says why" grep -q '^vsock:3:5000,all,.*,0,cannot connect' "$csv"
check "no listener: the pipe was measured" [ "$(grep -c '^pipe,' "$csv")" = 4 ]

# 6. Bad names and addresses: exit 2, one line naming them, nothing written.
expect2() { # expect2 PATTERN ARGS...
	local pattern=$1 rc=0
	shift
	"$BIN/transport_bench" -o "$tmp/bad" "$@" >"$tmp/err.out" 2>&1 || rc=$?
	check "transport_bench $* -> 2, '$pattern'" bash -c '[ "$1" = 2 ] && grep -qF -- "$2" "$3" && [ "$(grep -c . "$3")" -le 2 ] && [ ! -e "$4" ]' _ "$rc" "$pattern" "$tmp/err.out" "$tmp/bad"
}
expect2 "'carrier-pigeon' is not pipe, unix, tcp, serial:SOCKET, tcp:ADDR:PORT, unix:PATH or vsock:CID:PORT" -T carrier-pigeon
expect2 "10.0.0.1 is not an address in 127.0.0.0/8" -T tcp:10.0.0.1:80
expect2 "--serve: 'udp:5' is not tcp:PORT" --serve udp:5
expect2 "--unavailable: 'vsock' is not NAME=REASON" --unavailable vsock
echo "$checks checks, $failures failed"
exit "$fail"
