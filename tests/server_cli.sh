#!/usr/bin/env bash
# server_cli: ivshmem_server's command line: help, version, bad options, modes 0600, pidfile, daemon, stale socket, clean SIGTERM.
# timeout: 60
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash # wait_line, wait_exit and check, ok, bad
BUILD=${BUILD:-build}
SERVER=$BUILD/ivshmem_server

[ -x "$SERVER" ] || { echo "FAIL: $SERVER is missing (make all)"; exit 1; }
tmp=$(mktemp -d /tmp/ivs_cli.XXXXXX)
shm_name=ivs_cli_test_$$
cleanup() {
	local f
	for f in "$tmp"/*.pid; do
		if [ -e "$f" ]; then kill "$(cat "$f")" 2>/dev/null || true; fi
	done
	rm -f "/dev/shm/$shm_name"
	rm -rf "$tmp"
}
trap cleanup EXIT

# rejects OPTION_NAME ARGS...: exit 2 and a message naming the option, then
# the pointer to --help.
rejects() {
	local name=$1 rc=0
	shift
	timeout 10 "$SERVER" -S "$tmp/never.sock" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" = 2 ] && grep -qF -- "$name" "$tmp/err" &&
		[ "$(tail -n1 "$tmp/err")" = "Try 'ivshmem_server --help'." ]; then
		ok "'$*' exits 2: $(head -n1 "$tmp/err")"
	else
		bad "'$*' exits $rc (want 2) with: $(cat "$tmp/err")"
	fi
}

mode_of() { stat -c %a "$1" 2>/dev/null || echo missing; }

# stop_server RUNNER : end the server that `timeout ... &` (pid RUNNER) runs
# and wait for the server itself to be gone. timeout passes the SIGTERM on
# but, under load, can exit before its child does: waiting for timeout alone
# left the server still listening, and the next section's server found
# "another server is listening" on the socket.
stop_server() {
	local child
	child=$(pgrep -P "$1" ivshmem_server | head -n 1 || true)
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" || true
	[ -z "$child" ] || wait_exit "$child" 10 || true
}

echo "# help and version"
check "--help exits 0 and prints the defaults" \
	bash -c "'$SERVER' --help | grep -q 'default /tmp/ivshmem_socket' && '$SERVER' -h | grep -q 'default 64M'"
# The version is git describe at build time; the tree may have moved since.
version=$("$SERVER" --version)
check "--version prints '$version'" \
	bash -c "grep -qE '^ivshmem_server [^ ]+\$' <<<'$version' && '$SERVER' -V >/dev/null"

echo "# bad options"
rejects --size -l 3M
rejects --size -l 1000
rejects --size --size 2k
rejects --size -l 2T
rejects --size -l lots
rejects --vectors -n 0
rejects --vectors --vectors 65
rejects --vectors -n 1x
rejects --max-peers --max-peers 0
rejects --send-timeout --send-timeout 11m
rejects --send-timeout --send-timeout soon
rejects "'--bogus'" --bogus
rejects "'stray'" stray
rejects "must not contain '/'" -M dir/name
rejects "socket path" -S "/tmp/$(printf 'x%.0s' {1..120})"

echo "# foreground: modes, pidfile, readiness line, SIGTERM"
timeout 30 "$SERVER" -S "$tmp/sock" -M "$tmp/shm" -l 64k --send-timeout 1.5s -p "$tmp/server.pid" \
	>"$tmp/fg.out" 2>&1 &
runner=$!
check "prints 'listening on $tmp/sock'" wait_line "$tmp/fg.out" "^ivshmem_server: listening on $tmp/sock\$" 10
check "socket is mode 600 ($(mode_of "$tmp/sock"))" [ "$(mode_of "$tmp/sock")" = 600 ]
check "shm file is mode 600 and 64k" [ "$(stat -c '%a %s' "$tmp/shm")" = "600 65536" ]
pid=$(cat "$tmp/server.pid")
check "pidfile holds the server's pid ($pid)" grep -q ivshmem_server "/proc/$pid/cmdline"
rc=0
timeout 30 "$SERVER" -S "$tmp/sock" -M "$tmp/shm2" -l 64k >"$tmp/second.out" 2>&1 || rc=$?
check "a second server on the same socket exits 1 ($(tail -n1 "$tmp/second.out"))" \
	bash -c "[ $rc = 1 ] && grep -q 'another server is listening' '$tmp/second.out'"
kill -TERM "$pid"
rc=0
wait "$runner" || rc=$?
check "SIGTERM: exit 0" [ "$rc" = 0 ]
check "SIGTERM: socket, pidfile and the shm it created are gone" \
	bash -c "[ ! -e '$tmp/sock' ] && [ ! -e '$tmp/server.pid' ] && [ ! -e '$tmp/shm' ]"

echo "# shm_open name; an existing shm is kept"
timeout 30 "$SERVER" -S "$tmp/sock" -M "$shm_name" -l 64k >"$tmp/name.out" 2>&1 &
runner=$!
wait_line "$tmp/name.out" "listening on" 10 || true
check "/dev/shm/$shm_name is mode 600" [ "$(mode_of "/dev/shm/$shm_name")" = 600 ]
stop_server "$runner"
check "and removed on SIGTERM" [ ! -e "/dev/shm/$shm_name" ]
truncate -s 64k "$tmp/mine"
timeout 30 "$SERVER" -S "$tmp/sock" -M "$tmp/mine" -l 64k >"$tmp/mine.out" 2>&1 &
runner=$!
wait_line "$tmp/mine.out" "listening on" 10 || true
stop_server "$runner"
check "an existing shm file is used and left in place" [ -e "$tmp/mine" ]
rc=0
timeout 10 "$SERVER" -S "$tmp/sock" -M "$tmp/mine" -l 1M >"$tmp/size.out" 2>&1 || rc=$?
check "an existing shm of another size is refused: $(head -n1 "$tmp/size.out")" \
	bash -c "[ $rc = 1 ] && grep -q 'exists with 65536 bytes' '$tmp/size.out' && [ \$(stat -c %s '$tmp/mine') = 65536 ]"
: >"$tmp/file.sock"
rc=0
timeout 10 "$SERVER" -S "$tmp/file.sock" -M "$tmp/shm" -l 64k >"$tmp/notsock.out" 2>&1 || rc=$?
check "a non-socket at the socket path is left alone (exit $rc)" \
	bash -c "[ $rc = 1 ] && grep -q 'not a socket' '$tmp/notsock.out' && [ -f '$tmp/file.sock' ]"

echo "# stale socket of a killed server is replaced"
timeout 30 "$SERVER" -S "$tmp/sock" -M "$tmp/shm" -l 64k -p "$tmp/killed.pid" >"$tmp/killed.out" 2>&1 &
runner=$!
wait_line "$tmp/killed.out" "listening on" 10 || true
kill -KILL "$(cat "$tmp/killed.pid")"
wait "$runner" 2>/dev/null || true
check "SIGKILL leaves the socket behind" [ -S "$tmp/sock" ]
timeout 30 "$SERVER" -S "$tmp/sock" -M "$tmp/shm" -l 64k >"$tmp/stale.out" 2>&1 &
runner=$!
check "a new server takes over the stale socket" wait_line "$tmp/stale.out" "listening on" 10
stop_server "$runner"
rm -f "$tmp/shm" "$tmp/killed.pid"

echo "# daemon mode"
rc=0
timeout 10 "$SERVER" -d -S "$tmp/sock" -M "$tmp/shm" -l 64k -p "$tmp/daemon.pid" >"$tmp/daemon.out" 2>&1 || rc=$?
check "-d returns 0 once listening and prints the line" \
	bash -c "[ $rc = 0 ] && grep -q '^ivshmem_server: listening on $tmp/sock\$' '$tmp/daemon.out'"
pid=$(cat "$tmp/daemon.pid" 2>/dev/null || true)
[[ $pid =~ ^[1-9][0-9]*$ ]] || pid=none # never kill 0: that is this script's process group
check "pidfile written before -d returned; daemon $pid runs" \
	bash -c "[ -S '$tmp/sock' ] && grep -q ivshmem_server /proc/$pid/cmdline"
[ "$pid" = none ] || kill -TERM "$pid"
check "SIGTERM ends the daemon" wait_exit "$pid" 10
check "and it removed socket and pidfile" bash -c "[ ! -e '$tmp/sock' ] && [ ! -e '$tmp/daemon.pid' ]"

echo "$checks checks, $((checks - failures)) passed, $failures failed"
[ "$failures" = 0 ]
