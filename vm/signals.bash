# shellcheck shell=bash
# vm/signals.bash - how a script ends on SIGINT, SIGTERM or SIGHUP, the same
# way whichever it is: the signal is passed on to the child doing the work
# (host_writer, make, apt-get; in vm-vm, guest A is asked to stop), which is
# waited for; what it measured is kept, and marked as cut short; the other
# children are stopped and waited for, the temporary files removed, and the
# script exits 128+N. Sourced by vm/vm.sh; defines functions prefixed sig_
# and runs nothing until sig_catch.
#
#   sig_catch               trap INT, TERM and HUP, and EXIT for the clean-up
#   sig_run CMD...          run CMD (a program, or a function in a subshell
#                           that catches signals the same way) as a child,
#                           pass a signal on to it and wait for it whatever
#                           comes; returns its status (the caller finishes
#                           up, then calls sig_exit_if_stopped)
#   sig_start [--apart] VAR CMD...
#                           start the external CMD in the background, its pid
#                           in VAR; stopped (TERM, waited for) on every exit.
#                           --apart: in a session of its own, out of reach of
#                           the signals a terminal or timeout(1) sends to the
#                           whole process group (a responder that stands for
#                           a guest, which would not get them either)
#   sig_stop PID            stop such a child now: TERM, KILL after 10 s, reap
#   sig_mktemp VAR ARG...   mktemp ARG..., the name in VAR, removed on every exit
#   sig_forget PATH         no longer remove PATH on exit (it is kept)
#   sig_defer HOOK          until sig_undefer, a signal calls HOOK NAME and
#                           returns to the caller, which is waiting for the
#                           end in its own way (vm-vm: guest A's answer)
#   sig_stopped             a signal came; SIG_NAME (INT, TERM, HUP), SIG_STATUS (128+N)
#   sig_exit_if_stopped     exit 128+N if a signal came
#   sig_mark_run_json FILE REF
#                           a run.json that still says "running" after a
#                           run cut short says "interrupted by SIG..."
#
# Without sig_run or sig_defer in progress, a signal ends the script at once
# (exit 128+N, through the EXIT trap). A child started in the background by
# a script gets SIGINT ignored; these start theirs with the default
# dispositions, so a Ctrl-C reaches them as it would in the foreground. A
# signal that arrives while a foreground command runs is acted on once that
# command returns (bash's rule): long work goes through sig_run.

SIG_NAME=""     # the first stop signal received, INT, TERM or HUP; empty if none
SIG_STATUS=0    # 128 + its number
SIG_COUNT=0     # signals received so far (sig_run's wait loop compares it)
SIG_HELD=0      # >0 while signals are recorded and passed on, not acted on
SIG_RUN_PID=""  # the child sig_run waits for
SIG_HOOK=""     # sig_defer's function
SIG_CHILDREN=() # children stopped on exit
SIG_TEMPS=()    # files and directories removed on exit
SIG_AT_EXIT=()  # functions the EXIT trap calls first (setup.sh: a boot cut short)
# Children get the default dispositions (bash ignores SIGINT in background
# commands of a script).
# shellcheck disable=SC2054 # one option, a list of signals
SIG_ENV=(env --default-signal=INT,TERM,HUP)

sig_catch() {
	trap 'sig__on INT' INT
	trap 'sig__on TERM' TERM
	trap 'sig__on HUP' HUP
	trap sig__exit EXIT
}

# sig__on NAME : the handler.
sig__on() {
	# A trap that fires inside "IFS= read" runs with that IFS: restore it.
	local IFS=$' \t\n'
	SIG_COUNT=$((SIG_COUNT + 1))
	if [ -z "$SIG_NAME" ]; then
		SIG_NAME=$1
		SIG_STATUS=$((128 + $(kill -l "$1")))
	fi
	if [ -n "$SIG_HOOK" ]; then
		"$SIG_HOOK" "$1"
	elif [ -n "$SIG_RUN_PID" ]; then
		kill -s "$1" "$SIG_RUN_PID" 2>/dev/null || true
	fi
	[ "$SIG_HELD" -gt 0 ] || exit "$SIG_STATUS"
}

# The EXIT trap: the hooks, then the children, then the files; after a
# signal the status is 128+N whatever path the script took to its end.
sig__exit() {
	local rc=$? f p
	trap '' INT TERM HUP
	for f in "${SIG_AT_EXIT[@]}"; do "$f" || true; done
	for p in "${SIG_CHILDREN[@]}"; do sig_stop "$p"; done
	[ ${#SIG_TEMPS[@]} -eq 0 ] || rm -rf -- "${SIG_TEMPS[@]}"
	[ -z "$SIG_NAME" ] || rc=$SIG_STATUS
	exit "$rc"
}

sig_stopped() { [ -n "$SIG_NAME" ]; }

sig_exit_if_stopped() {
	[ -z "$SIG_NAME" ] || exit "$SIG_STATUS"
}

sig_run() {
	local rc n=$SIG_COUNT
	SIG_HELD=$((SIG_HELD + 1))
	if declare -F "$1" >/dev/null; then
		# A function: in a subshell of its own that ends the same way
		# (it starts with no children, files or hooks of ours).
		sig__subshell "$@" &
	else
		"${SIG_ENV[@]}" "$@" &
	fi
	SIG_RUN_PID=$!
	# A signal that came while it was being started was not passed on.
	[ "$SIG_COUNT" = "$n" ] || kill -s "$SIG_NAME" "$SIG_RUN_PID" 2>/dev/null || true
	while :; do
		n=$SIG_COUNT rc=0
		wait "$SIG_RUN_PID" || rc=$?
		# A signal during the wait cuts it short (status 128+N, the child
		# still running): wait again. bash keeps a child's status, so a
		# wait after the child's end returns it again.
		[ "$SIG_COUNT" != "$n" ] || break
	done
	SIG_RUN_PID=""
	SIG_HELD=$((SIG_HELD - 1))
	return "$rc"
}

# sig__subshell FUNCTION ARG... : sig_run's child for a function (run in
# the background, so in a subshell): fresh state, the same traps.
sig__subshell() {
	SIG_NAME="" SIG_STATUS=0 SIG_HELD=0 SIG_RUN_PID="" SIG_HOOK=""
	SIG_CHILDREN=() SIG_TEMPS=() SIG_AT_EXIT=()
	sig_catch
	"$@"
}

# sig__hold, sig__release N : a section where a signal is noted, not acted
# on (what it makes is not yet registered for the clean-up); N is
# SIG_COUNT before it. At its end, a signal that came during it acts as it
# would have: the script ends, unless a caller holds signals too.
sig__hold() { SIG_HELD=$((SIG_HELD + 1)); }
sig__release() {
	SIG_HELD=$((SIG_HELD - 1))
	[ "$SIG_HELD" -gt 0 ] || [ "$SIG_COUNT" = "$1" ] || exit "$SIG_STATUS"
}

sig_start() {
	# Prefixed locals: the caller's VAR must not be one of them.
	local sig__var sig__pid sig__apart=() sig__n=$SIG_COUNT
	# setsid does not fork here: a background child of a script leads no
	# process group, so the pid stays the program's.
	[ "$1" != --apart ] || { sig__apart=(setsid); shift; }
	sig__var=$1
	shift
	sig__hold
	"${SIG_ENV[@]}" "${sig__apart[@]}" "$@" &
	sig__pid=$!
	SIG_CHILDREN+=("$sig__pid")
	printf -v "$sig__var" '%s' "$sig__pid"
	sig__release "$sig__n"
}

sig_stop() {
	local pid=$1 i
	if kill -TERM "$pid" 2>/dev/null; then
		wait_exit "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
	for i in "${!SIG_CHILDREN[@]}"; do
		[ "${SIG_CHILDREN[i]}" != "$pid" ] || unset 'SIG_CHILDREN[i]'
	done
}

sig_mktemp() {
	local sig__var=$1 sig__name sig__n=$SIG_COUNT
	shift
	sig__hold
	if ! sig__name=$(mktemp "$@"); then
		sig__release "$sig__n"
		return 1
	fi
	SIG_TEMPS+=("$sig__name")
	printf -v "$sig__var" '%s' "$sig__name"
	sig__release "$sig__n"
}

sig_forget() {
	local i
	for i in "${!SIG_TEMPS[@]}"; do
		[ "${SIG_TEMPS[i]}" != "$1" ] || unset 'SIG_TEMPS[i]'
	done
}

sig_defer() {
	SIG_HOOK=$1
	SIG_HELD=$((SIG_HELD + 1))
}

sig_undefer() {
	SIG_HOOK=""
	SIG_HELD=$((SIG_HELD - 1))
}

# sig_mark_run_json FILE REF : after a signal, FILE (a run.json written
# since the file REF was made) that still says "running" - its writer was
# stopped before it could say where - says "interrupted by SIGNAME" instead;
# the rows it lists stay. Written whole, through a staged file.
sig_mark_run_json() {
	local file=$1 ref=$2
	sig_stopped && [ -f "$file" ] && [ ! -L "$file" ] && [ "$file" -nt "$ref" ] || return 0
	files_stage "$file" || return 1
	if /usr/bin/python3 - "$file" "$FILES_STAGED" "SIG$SIG_NAME" <<'PY'; then
import json, sys
src, dst, sig = sys.argv[1:4]
with open(src) as f:
    r = json.load(f)
if r.get("status") != "running":
    sys.exit(1)
r["status"] = "interrupted by %s before host_writer recorded where" % sig
with open(dst, "w") as f:
    json.dump(r, f, indent=2)
    f.write("\n")
PY
		files_place "$FILES_STAGED" "$file"
	else
		files_discard "$FILES_STAGED"
	fi
}
