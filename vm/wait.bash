# shellcheck shell=bash
# vm/wait.bash - waiting on events with a deadline, for the VM launcher
# (vm/vm.sh) and the shell tests (tests/lib.bash). Sourced; defines only the
# functions below (prefix wait_) and runs nothing.
#
#   wait_line [--pid PID] FILE REGEX SECONDS [COUNT]
#                         wait until COUNT (1) lines of FILE, as it grows,
#                         match REGEX (bash =~); with --pid, give up early
#                         once process PID has exited and its last lines
#                         are read. FILE need not exist yet.
#   wait_exit PID SECONDS wait until process PID (not necessarily our child)
#                         exits
#
# Both return 0 on the event and non-zero when the deadline passes (or, for
# wait_line --pid, when the process exits first). Neither sleeps for a fixed
# time: tail follows the file (-F, so a file created or replaced later is
# picked up) and notices a process exit within its 50 ms check interval.

wait_line() {
	local pid="" file re secs want seen=0 fd tail_pid line end rc=1
	if [ "${1:-}" = --pid ]; then
		pid=$2
		shift 2
	fi
	file=$1 re=$2 secs=$3 want=${4:-1}
	end=$((SECONDS + secs))
	# tail ends by itself at the deadline (timeout) or once PID is gone
	# (--pid), so the read below cannot outlive either.
	exec {fd}< <(exec timeout "$secs" tail -n +1 -F -s 0.05 ${pid:+--pid="$pid"} "$file" 2>/dev/null)
	tail_pid=$!
	while [ $SECONDS -lt "$end" ] && IFS= read -r -t $((end - SECONDS)) -u "$fd" line; do
		if [[ $line =~ $re ]] && ((++seen >= want)); then
			rc=0
			break
		fi
	done
	kill "$tail_pid" 2>/dev/null || true
	exec {fd}<&-
	return $rc
}

wait_exit() {
	kill -0 "$1" 2>/dev/null || return 0
	timeout "$2" tail --pid="$1" -s 0.05 -f /dev/null
}
