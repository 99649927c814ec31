# shellcheck shell=bash disable=SC2034,SC2054,SC2153
# (SC2034: the VM_* globals are read by vm.sh's functions; SC2054: QEMU
# options contain commas; SC2153: IVSHMEM_* and VM_ACCELS come from vm.sh)
# vm/intervm.bash - the vm-vm topology: two micro guests on one ivshmem
# device, the host only orchestrating. Sourced by vm/vm.sh (whose helpers
# it uses); defines functions prefixed intervm_ and runs nothing.
#
# Guest A is the initiator: its /init runs the static host_writer when the
# host asks. Guest B is the responder: guest_reader, as in a host-vm run.
# Both get the same device: ivshmem-plain over one memory-backend-file
# (share=on), or ivshmem-doorbell on the project's server, each guest taking
# MSI-X through VFIO and ringing the other by peer id.
#
# How a run crosses the boundary (no new C):
#   - parameters: the host writes host_writer's arguments, one a line, into
#     STATE/a/share/ID/args. STATE/a/share is guest A's /results, over
#     virtio-9p. Then it writes "run ID" into STATE/a/request.in, a FIFO
#     that QEMU turns into guest A's second serial port (ttyS1), on which
#     guest A's /init blocks.
#   - results: host_writer writes them into /results/ID/out, so they reach
#     the host's disk in batches as the run goes; a guest that dies leaves
#     what was measured and run.json's status. The host moves them into the
#     results directory at the end, whatever the end.
#   - the end: guest A's console says "IVB-RUN-END ID status N". While the
#     run goes it says "IVB-RUN-ALIVE ID" every 5 s, so a guest that hangs
#     is noticed (INTERVM_IDLE seconds of silence) and a QEMU that exits is
#     noticed at once (tail --pid): no wait is without a deadline.
#
# State: guest A's files (qemu.pid, qemu.id, console.log, qemu.err, share/,
# request.in/.out) in STATE/a, guest B's in STATE/b; the lock, vm.env (with
# VM_TOPOLOGY=vm-vm and the VM_A_*, VM_B_* keys), the server and the shared
# memory records at the top, as for one VM.

INTERVM_GUESTS=(a b)
INTERVM_IDLE=60 # seconds of silence from guest A during a run before giving up
INTERVM_HEARTBEAT=5 # guest A's heartbeat period (vm/initramfs/init), for messages
INTERVM_ENV_KEYS=(VM_A_QEMU_PID VM_A_VCPU_CPU VM_A_VCPU_TIDS VM_A_PEER_ID
	VM_B_QEMU_PID VM_B_VCPU_CPU VM_B_VCPU_TIDS VM_B_PEER_ID)
INTERVM_STOPPING=""  # set by intervm_on_signal during a run
INTERVM_REQUESTED="" # set once guest A has been asked to run
INTERVM_STOP_SENT=0  # when the last stop request went ($SECONDS)

# The single-VM paths, which intervm_use points elsewhere for a while.
INTERVM_TOP_PIDFILE=$VM_PIDFILE INTERVM_TOP_QEMU_ID=$VM_QEMU_ID
INTERVM_TOP_CONSOLE=$VM_CONSOLE INTERVM_TOP_QEMU_ERR=$VM_QEMU_ERR

# Guest G's name for messages.
intervm_name() { [ "$1" = a ] && echo "guest A (initiator)" || echo "guest B (responder)"; }

# intervm_use G : point vm.sh's per-VM paths (pidfile, id, console, QEMU
# errors) at guest G's subdirectory; intervm_use top points them back.
intervm_use() {
	if [ "$1" = top ]; then
		VM_PIDFILE=$INTERVM_TOP_PIDFILE VM_QEMU_ID=$INTERVM_TOP_QEMU_ID
		VM_CONSOLE=$INTERVM_TOP_CONSOLE VM_QEMU_ERR=$INTERVM_TOP_QEMU_ERR
	else
		VM_PIDFILE=$VM_STATE_DIR/$1/qemu.pid VM_QEMU_ID=$VM_STATE_DIR/$1/qemu.id
		VM_CONSOLE=$VM_STATE_DIR/$1/console.log VM_QEMU_ERR=$VM_STATE_DIR/$1/qemu.err
	fi
}

# intervm_pid G : the pid of guest G's QEMU if that very process runs.
intervm_pid() { vm_proc_check "$VM_STATE_DIR/$1/qemu.id"; }

# A pair is recorded here (running or not): stop and status are about it.
intervm_recorded() {
	local g
	for g in "${INTERVM_GUESTS[@]}"; do
		[ -e "$VM_STATE_DIR/$g/qemu.id" ] || [ -e "$VM_STATE_DIR/$g/qemu.pid" ] && return 0
	done
	return 1
}

# The pair's QEMUs for messages: "guest A pid N, guest B pid M" ("gone").
intervm_pids_text() {
	local a b
	a=$(intervm_pid a) b=$(intervm_pid b)
	echo "guest A pid ${a:-gone}, guest B pid ${b:-gone}"
}

# intervm_running : either guest of a pair runs.
intervm_running() { [ -n "$(intervm_pid a)$(intervm_pid b)" ]; }

intervm_clear_stale() {
	local g
	for g in "${INTERVM_GUESTS[@]}"; do
		vm__clear_stale "QEMU of $(intervm_name "$g")" "$VM_STATE_DIR/$g/qemu.id" "$VM_STATE_DIR/$g/qemu.pid"
	done
}

# intervm_refuse_running WANT : exit with one line if what runs in this state
# directory is not of topology WANT (host-vm or vm-vm).
intervm_refuse_running() {
	local pid
	if [ "$1" = host-vm ] && intervm_running; then
		vm_die "a vm-vm pair is running here ($(intervm_pids_text)); you asked for host-vm: ./setup.sh stop first, or IVSHMEM_TOPOLOGY=vm-vm"
	fi
	pid=$(vm_pid)
	if [ "$1" = vm-vm ] && [ -n "$pid" ]; then
		vm_load_env || true
		vm_die "a host-vm VM is running here (${VM_MODE:-?} mode, QEMU pid $pid); IVSHMEM_TOPOLOGY=vm-vm needs it stopped: ./setup.sh stop first"
	fi
}

intervm_load_env() {
	local key
	for key in "${INTERVM_ENV_KEYS[@]}"; do printf -v "$key" '%s' ""; done
	vm_load_env && vm_state_read "$VM_ENV" "${INTERVM_ENV_KEYS[@]}"
}

# What the running pair (env loaded) lacks to be usable, or nothing.
intervm_missing() {
	local g
	for g in "${INTERVM_GUESTS[@]}"; do
		[ -n "$(intervm_pid "$g")" ] || echo "the QEMU of $(intervm_name "$g") is not running"
	done
	vm_missing
	[ -p "$VM_STATE_DIR/a/request.in" ] || echo "guest A's request FIFO is gone"
}

# ---- boot ------------------------------------------------------------------

# intervm_launch G ACCEL KERNEL N : start guest G's QEMU (the Nth to connect
# to the doorbell server) and pin its vCPUs. Sets INTERVM_PID, INTERVM_TIDS
# and INTERVM_PEER (doorbell: the peer id the server gave it; plain: none).
intervm_launch() {
	local g=$1 accel=$2 kernel=$3 n=$4 role=responder cpu=$IVSHMEM_VCPU_CPU_B i pid
	local dir=$VM_STATE_DIR/$1 IVSHMEM_APPEND=${IVSHMEM_APPEND:-} IVSHMEM_VCPU_CPU=$IVSHMEM_VCPU_CPU
	[ "$g" = a ] && role=initiator cpu=$IVSHMEM_VCPU_CPU_A
	IVSHMEM_APPEND="ivb.role=$role${IVSHMEM_APPEND:+ $IVSHMEM_APPEND}"
	intervm_use "$g"
	vm_qemu_args "$accel" "$kernel" || { INTERVM_FAILURE="cannot assemble its QEMU command line"; return 1; }
	for i in "${!VM_QEMU_ARGS[@]}"; do
		[ "${VM_QEMU_ARGS[i]}" != ivshmem-bench,debug-threads=on ] ||
			VM_QEMU_ARGS[i]=ivshmem-bench-$g,debug-threads=on
	done
	if [ "$g" = a ]; then
		VM_QEMU_ARGS+=(-fsdev "local,id=results,path=$dir/share,security_model=none"
			-device virtio-9p-pci,fsdev=results,mount_tag=results
			-chardev "pipe,id=requests,path=$dir/request" -serial chardev:requests)
	fi
	vm_launch || { INTERVM_FAILURE=$VM_BOOT_FAILURE; return 1; }
	pid=$VM_LAUNCHED_PID
	INTERVM_PID=$pid INTERVM_PEER=none
	if [ "$IVSHMEM_MODE" = doorbell ]; then
		# QEMU returns from -daemonize once the server has given it its id;
		# the server logs the connection right after: the Nth such line.
		if ! wait_line "$VM_SERVER_LOG" 'peer [0-9]+ connected' 10 "$n"; then
			INTERVM_FAILURE="the ivshmem server did not log its connection: $(tail -n 1 "$VM_SERVER_LOG")"
			return 1
		fi
		INTERVM_PEER=$(grep -oE 'peer [0-9]+ connected' "$VM_SERVER_LOG" | sed -n "${n}s/peer \([0-9]*\) .*/\1/p")
	fi
	IVSHMEM_VCPU_CPU=$cpu
	vm_pin_vcpus "$pid"
	INTERVM_TIDS=$VM_VCPU_TIDS
}

# Stop whatever the pair has running (QEMUs, server, shared memory) after a
# failed or interrupted boot.
intervm_teardown() {
	local g pid
	for g in "${INTERVM_GUESTS[@]}"; do
		pid=$(intervm_pid "$g")
		[ -z "$pid" ] || vm_kill "$pid"
		rm -f "$VM_STATE_DIR/$g/qemu.pid" "$VM_STATE_DIR/$g/qemu.id"
	done
	vm_stop_server >/dev/null
	vm_remove_shm >/dev/null
}

# intervm_boot_with ACCEL DEADLINE : boot both guests in parallel under
# ACCEL; 0 once both consoles say they are ready within DEADLINE seconds.
# Otherwise everything is stopped, INTERVM_FAILED lists the guests that
# failed and INTERVM_WHY_<g> says why.
intervm_boot_with() {
	local accel=$1 deadline=$2 kernel start g n=0 waiter=() rc token
	local -A pid=() tids=() peer=()
	kernel=$(vm_kernel)
	INTERVM_FAILED=() INTERVM_WHY_a="" INTERVM_WHY_b=""
	VM_BOOTING=1
	for g in "${INTERVM_GUESTS[@]}"; do
		(umask 077 && mkdir -p "$VM_STATE_DIR/$g") || vm_die "cannot create $VM_STATE_DIR/$g"
		intervm_use "$g"
		vm_boot_files
	done
	intervm_use top
	# Guest A's share and request FIFOs, made anew: nothing planted there is
	# followed (the state directory is ours alone, see settings_state_dir).
	rm -rf "$VM_STATE_DIR/a/share" "$VM_STATE_DIR/a/request.in" "$VM_STATE_DIR/a/request.out"
	(umask 077 && mkdir "$VM_STATE_DIR/a/share" && mkfifo "$VM_STATE_DIR/a/request.in" "$VM_STATE_DIR/a/request.out") ||
		vm_die "cannot make guest A's share and request FIFOs in $VM_STATE_DIR/a"
	start=$(date +%s.%N)
	if [ "$IVSHMEM_MODE" = doorbell ]; then
		vm_start_server || { INTERVM_FAILED=(a b) INTERVM_WHY_a=$VM_BOOT_FAILURE INTERVM_WHY_b=$VM_BOOT_FAILURE; return 1; }
	else
		vm_make_shm
	fi
	for g in "${INTERVM_GUESTS[@]}"; do
		n=$((n + 1))
		if ! intervm_launch "$g" "$accel" "$kernel" "$n"; then
			INTERVM_FAILED=("$g")
			printf -v "INTERVM_WHY_$g" '%s' "$INTERVM_FAILURE"
			intervm_use top
			intervm_teardown
			return 1
		fi
		pid[$g]=$INTERVM_PID tids[$g]=$INTERVM_TIDS peer[$g]=$INTERVM_PEER
	done
	intervm_use top
	# Both boot at once: one waiter per console, each with the deadline.
	for g in "${INTERVM_GUESTS[@]}"; do
		token=$VM_READY_TOKEN
		[ "$g" = a ] && token='IVB-INITIATOR-(READY|FAILED)'
		wait_line --pid "${pid[$g]}" "$VM_STATE_DIR/$g/console.log" "$token" "$deadline" &
		waiter+=($!)
	done
	for g in "${INTERVM_GUESTS[@]}"; do
		rc=0
		wait "${waiter[0]}" || rc=$?
		waiter=("${waiter[@]:1}")
		if [ "$rc" = 0 ] && ! grep -q IVB-INITIATOR-FAILED "$VM_STATE_DIR/$g/console.log"; then
			continue
		fi
		INTERVM_FAILED+=("$g")
		if [ "$rc" = 0 ]; then
			printf -v "INTERVM_WHY_$g" '%s' "$(grep -B1 -m1 IVB-INITIATOR-FAILED "$VM_STATE_DIR/$g/console.log" | head -n 1 | tr -d '\r')"
		elif kill -0 "${pid[$g]}" 2>/dev/null; then
			printf -v "INTERVM_WHY_$g" 'not ready within %ss' "$deadline"
		else
			printf -v "INTERVM_WHY_$g" 'QEMU exited before the guest was ready %s' "$(grep -m1 . "$VM_STATE_DIR/$g/qemu.err")"
		fi
	done
	if [ ${#INTERVM_FAILED[@]} -gt 0 ]; then
		intervm_teardown
		return 1
	fi
	VM_A_QEMU_PID=${pid[a]} VM_A_VCPU_CPU=$IVSHMEM_VCPU_CPU_A VM_A_VCPU_TIDS=${tids[a]} VM_A_PEER_ID=${peer[a]}
	VM_B_QEMU_PID=${pid[b]} VM_B_VCPU_CPU=$IVSHMEM_VCPU_CPU_B VM_B_VCPU_TIDS=${tids[b]} VM_B_PEER_ID=${peer[b]}
	VM_TOPOLOGY=vm-vm VM_MODE=$IVSHMEM_MODE VM_GUEST=micro VM_ACCEL=$accel VM_QEMU_PID=""
	VM_SHM_PATH=$IVSHMEM_SHM_PATH VM_SHM_SIZE=$IVSHMEM_SHM_SIZE VM_KERNEL=$kernel
	VM_GUEST_KERNEL=$(vm_kernel_version "$kernel") VM_QEMU_VERSION=$(qemu-system-x86_64 --version | head -n1)
	VM_VCPU_CPU=$IVSHMEM_VCPU_CPU_B VM_VCPUS=$IVSHMEM_VCPUS VM_MEM=$IVSHMEM_MEM
	VM_BOOT_SECONDS=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	VM_STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ) VM_SERVER_SOCKET=$IVSHMEM_SERVER_SOCKET
	VM_VECTORS=$IVSHMEM_VECTORS VM_VCPU_TIDS=${tids[b]}
	vm_state_write "$VM_ENV" "${VM_ENV_KEYS[@]}" "${INTERVM_ENV_KEYS[@]}"
	VM_BOOTING=""
}

# setup.sh start's hook on every exit for a pair (vm_boot_abandoned's
# counterpart): a boot cut short, by SIGINT, SIGTERM or SIGHUP or by an
# error, leaves nothing behind; a pair that was already up is left alone.
intervm_boot_abandoned() {
	[ -n "$VM_BOOTING" ] || return 0
	if sig_stopped; then
		vm_warn "interrupted (SIG$SIG_NAME): stopping the guests that were booting"
	fi
	intervm_use top
	intervm_teardown >/dev/null 2>&1 || true
}

# intervm_start's hooks for vm_boot_accels.
intervm__booted() {
	intervm_load_env
	vm_log "Guests A and B ready in ${VM_BOOT_SECONDS}s under $1"
	vm_log "  guest A (initiator): QEMU pid $VM_A_QEMU_PID, vCPU on host CPU $VM_A_VCPU_CPU, peer id $VM_A_PEER_ID"
	vm_log "  guest B (responder): QEMU pid $VM_B_QEMU_PID, vCPU on host CPU $VM_B_VCPU_CPU, peer id $VM_B_PEER_ID"
	vm_log "Consoles: $VM_STATE_DIR/{a,b}/console.log. Stop them with: ./setup.sh stop"
}

# A failed attempt is told after the last one (INTERVM_FAILED, per guest),
# except KVM's, which TCG follows.
intervm__boot_failed() {
	[ -z "$2" ] || vm_log "KVM: the guests did not boot (KVM present but unusable here); stopped them, falling back to TCG"
}

# Start the pair unless it runs (as vm_start does for one VM).
intervm_start() {
	local missing g first differs
	vm_state_open
	mkdir -p "$IVSHMEM_CACHE_DIR"
	vm_clear_stale
	intervm_clear_stale
	intervm_refuse_running vm-vm
	if intervm_running; then
		intervm_load_env || true
		if [ "$VM_MODE" != "$IVSHMEM_MODE" ]; then
			vm_die "a vm-vm pair is running in ${VM_MODE:-?} mode ($(intervm_pids_text)); you asked for $IVSHMEM_MODE: ./setup.sh stop first"
		fi
		differs=$(vm_running_differs)
		[ -z "$differs" ] ||
			vm_die "a vm-vm pair is running with $differs ($(intervm_pids_text)): ./setup.sh stop first"
		missing=$(intervm_missing)
		if [ -z "$missing" ]; then
			vm_log "VM pair already running: guest A pid $VM_A_QEMU_PID, guest B pid $VM_B_QEMU_PID, $VM_MODE mode, ${VM_ACCEL:-?}"
			return 0
		fi
		vm_log "The running pair is not usable: ${missing//$'\n'/; }. Restarting it"
		intervm_stop
	fi
	vm_stop_server
	vm_remove_shm
	vm_net_down # a host-vm VM's of this state directory that died
	vm_shm_free
	[ "$IVSHMEM_VCPU_CPU_A" != "$IVSHMEM_VCPU_CPU_B" ] ||
		vm_warn "guests A and B share host CPU $IVSHMEM_VCPU_CPU_A: each waits for the other's time slice (IVSHMEM_VCPU_CPU_A, IVSHMEM_VCPU_CPU_B)"
	vm_boot_accels "guests A (initiator) and B (responder), $IVSHMEM_MODE mode," intervm_boot_with \
		intervm__booted intervm__boot_failed && return 0
	first=1
	for g in "${INTERVM_FAILED[@]}"; do
		local why=INTERVM_WHY_$g
		vm_warn "$(intervm_name "$g") failed: ${!why}"
		if [ -s "$VM_STATE_DIR/$g/console.log" ]; then
			[ -z "$first" ] || vm_warn "last lines of its console, $VM_STATE_DIR/$g/console.log:"
			tail -n 15 "$VM_STATE_DIR/$g/console.log" | sed 's/\r$//; s/^/    | /' >&2
		fi
		[ -s "$VM_STATE_DIR/$g/qemu.err" ] && sed 's/^/    qemu: /' "$VM_STATE_DIR/$g/qemu.err" >&2
	done
	return 1
}

intervm_stop() {
	local g pid stopped=""
	intervm_clear_stale
	for g in "${INTERVM_GUESTS[@]}"; do
		pid=$(intervm_pid "$g")
		if [ -n "$pid" ]; then
			vm_kill "$pid"
			vm_log "Stopped the QEMU of $(intervm_name "$g") (pid $pid)"
			stopped=1
		fi
		rm -f "$VM_STATE_DIR/$g/qemu.pid" "$VM_STATE_DIR/$g/qemu.id"
	done
	[ -n "$stopped" ] || vm_log "No VM pair running (state in $VM_STATE_DIR)"
	rm -f "$VM_STATE_DIR/a/request.in" "$VM_STATE_DIR/a/request.out"
	vm_stop_server
	vm_remove_shm
}

intervm_status() {
	local g pid missing spid
	if vm_lock_try "setup.sh status"; then
		vm_clear_stale
		intervm_clear_stale
	else
		vm_log "VM pair: $VM_BUSY"
	fi
	if ! intervm_running; then
		vm_log "VM pair: not running (state in $VM_STATE_DIR)"
		return 3
	fi
	intervm_load_env || true
	vm_log "VM pair (vm-vm): running, $VM_MODE mode, micro guests, accel $VM_ACCEL, memory $VM_MEM and $VM_VCPUS vCPU(s) each"
	for g in "${INTERVM_GUESTS[@]}"; do
		local cpu_key=VM_${g^^}_VCPU_CPU peer_key=VM_${g^^}_PEER_ID
		pid=$(intervm_pid "$g")
		vm_log "  $(intervm_name "$g"): $([ -n "$pid" ] && echo "QEMU pid $pid" || echo "QEMU NOT running"), vCPU pinned to host CPU ${!cpu_key}, peer id ${!peer_key}, console $VM_STATE_DIR/$g/console.log"
	done
	vm_log "  kernel $VM_GUEST_KERNEL, $VM_QEMU_VERSION"
	vm_log "  shared memory $VM_SHM_PATH ($VM_SHM_SIZE); started $VM_STARTED, ready in ${VM_BOOT_SECONDS}s"
	if [ "$VM_MODE" = doorbell ]; then
		spid=$(vm_server_pid)
		if [ -n "$spid" ]; then
			vm_log "  ivshmem server: running, pid $spid, socket $VM_SERVER_SOCKET, log $VM_SERVER_LOG"
		else
			vm_log "  ivshmem server: NOT running"
		fi
	fi
	vm_log "  results share $VM_STATE_DIR/a/share (guest A's /results), requests $VM_STATE_DIR/a/request.in"
	missing=$(intervm_missing)
	if [ -n "$missing" ]; then
		vm_log "VM pair: NOT usable: ${missing//$'\n'/; }; IVSHMEM_TOPOLOGY=vm-vm IVSHMEM_MODE=$VM_MODE ./setup.sh restarts it"
		return 1
	fi
}

# ---- a run -----------------------------------------------------------------

# intervm_request LINE : one request to guest A. The FIFO is opened
# read-write, which never blocks (QEMU holds the other end, or the line
# waits in the pipe for nobody and the dead QEMU is noticed by the wait).
intervm_request() {
	local fd
	exec {fd}<>"$VM_STATE_DIR/a/request.in" || return 1
	printf '%s\n' "$1" >&"$fd"
	exec {fd}>&-
}

# intervm_on_signal NAME : SIGINT, SIGTERM or SIGHUP during a run
# (vm/signals.bash calls it and returns to the wait): ask guest A to stop
# the run (its /init sends host_writer SIGTERM; host_writer ends the run
# and says so in run.json); the wait goes on, with a deadline, for what it
# writes. A request that reaches /init before it has started host_writer
# finds nothing to stop, so intervm_follow repeats it as guest A speaks.
intervm_on_signal() {
	INTERVM_STOPPING=1
	[ -n "$INTERVM_REQUESTED" ] || return 0
	intervm_request "stop $INTERVM_RUN_ID" 2>/dev/null || true
	INTERVM_STOP_SENT=$SECONDS
}

# intervm_follow ID OFFSET PID LOGFD OUT : follow guest A's console from
# byte OFFSET until run ID ends; print host_writer's lines (and keep them
# on descriptor LOGFD), with the results directory named as OUT, where
# they end up. Sets INTERVM_RC to the run's status; returns 1 if guest A's
# QEMU (PID) exited, 2 if it fell silent for INTERVM_IDLE seconds.
intervm_follow() {
	local id=$1 offset=$2 qemu=$3 logfd=$4 out=$5 fd tail_pid line begun="" rc=0 idle=$INTERVM_IDLE
	local stop_deadline=""
	# tail ignores the signals that stop the run (a Ctrl-C, or timeout's
	# SIGTERM, reaches the whole process group): the wait goes on for
	# guest A's answer (a signal ignored before exec stays ignored).
	exec {fd}< <(trap '' INT TERM HUP && exec tail -c +$((offset + 1)) -F -s 0.05 --pid="$qemu" "$VM_STATE_DIR/a/console.log" 2>/dev/null)
	tail_pid=$!
	INTERVM_RC=""
	while :; do
		if IFS= read -r -t "$idle" -u "$fd" line; then
			line=${line%$'\r'}
			# Stopping: say it again, at most once a second, until the end.
			if [ -n "$INTERVM_STOPPING" ] && [ $((SECONDS - INTERVM_STOP_SENT)) -ge 1 ]; then
				intervm_on_signal
			fi
			case $line in
			"IVB-RUN-BEGIN $id") begun=1 ;;
			"IVB-RUN-ALIVE $id") ;;
			"IVB-RUN-END $id status "*)
				INTERVM_RC=${line#"IVB-RUN-END $id status "}
				break
				;;
			*)
				# host_writer's own output; the results are where the host puts them.
				if [ -n "$begun" ]; then
					line=${line//\/results\/$id\/out/$out}
					printf '%s\n' "$line"
					{ printf '%s\n' "$line" 1>&"$logfd"; } 2>/dev/null || true
				fi
				;;
			esac
			continue
		fi
		rc=$?
		if [ -n "$INTERVM_STOPPING" ]; then
			# Interrupted: guest A has been asked to stop; wait a little more.
			if [ -z "$stop_deadline" ]; then
				stop_deadline=$((SECONDS + idle))
				continue
			elif [ $SECONDS -lt "$stop_deadline" ]; then
				continue
			fi
			rc=2
			break
		fi
		if [ "$rc" -gt 128 ]; then rc=2; else rc=1; fi
		break
	done
	# SIGKILL: it ignores the others.
	kill -KILL "$tail_pid" 2>/dev/null || true
	exec {fd}<&-
	[ -n "$INTERVM_RC" ] && return 0
	return "$rc"
}

# intervm_collect SRC LOG OUT : copy a run's results (the files host_writer
# wrote in the share directory SRC, and its output LOG) into the results
# directory OUT, in place of a previous run's files there (as host_writer
# replaces its own); whole or not at all. They are copied into a private
# directory in OUT and compared with the originals, then the earlier run's
# files are removed and the new ones renamed into place, run.json last, so
# no run.json ever lists files that are not all there. SRC is left as it
# is: the caller removes it once this succeeds. On failure OUT is as it
# was and INTERVM_WHY says why (one line). Only regular files are taken:
# what guest A put in the share is a claim.
intervm_collect() {
	local src=$1 log=$2 out=$3 stage f name names=() err
	INTERVM_WHY=""
	if ! mkdir -p "$out" 2>/dev/null; then
		INTERVM_WHY="cannot create $out"
		return 1
	fi
	if ! sig_mktemp stage -d "$out/.collect.XXXXXX" 2>/dev/null; then
		INTERVM_WHY="cannot create a directory in $out"
		return 1
	fi
	for f in "$src"/* "$log"; do
		[ -e "$f" ] || [ -L "$f" ] || continue
		name=${f##*/}
		[ "$f" != "$log" ] || name=initiator.log
		if [ -L "$f" ] || [ ! -f "$f" ]; then
			vm_warn "ignored $f: not a regular file"
			continue
		fi
		if ! err=$(cp -P -- "$f" "$stage/$name" 2>&1); then
			INTERVM_WHY="cannot copy $name into $out: ${err##*: }"
			break
		fi
		if [ -L "$stage/$name" ] || ! cmp -s -- "$f" "$stage/$name"; then
			INTERVM_WHY="the copy of $name in $out differs from what guest A wrote"
			break
		fi
		names+=("$name")
	done
	[ -n "$INTERVM_WHY" ] || INTERVM_WHY=$(vm_results_links "$out")
	if [ -z "$INTERVM_WHY" ]; then
		# A run cut short whose run.json still says "running" says so.
		[ ! -f "$stage/run.json" ] || sig_mark_run_json "$stage/run.json" "$log" || true
		# The earlier run's files: run.json first, so none lists a mix.
		while read -r name; do rm -f -- "$out/$name"; done < <(vm_results_names)
		for name in "${names[@]}"; do
			[ "$name" != run.json ] || continue
			err=$(files_place "$stage/$name" "$out/$name" 2>&1) || { INTERVM_WHY=${err#"$VM_PROG: "}; break; }
		done
		if [ -z "$INTERVM_WHY" ] && [ -f "$stage/run.json" ]; then
			err=$(files_place "$stage/run.json" "$out/run.json" 2>&1) || INTERVM_WHY=${err#"$VM_PROG: "}
		fi
	fi
	rm -rf -- "$stage"
	sig_forget "$stage"
	[ -z "$INTERVM_WHY" ]
}

# intervm_run OUT HOST_WRITER_ARGS... : one run of host_writer in guest A,
# against guest_reader in guest B, its results into directory OUT. The
# caller holds the lock and has checked the pair (intervm_check_usable).
# Returns host_writer's exit status (1 if a guest died or the results could
# not be collected; after SIGINT, SIGTERM or SIGHUP, the caller exits
# 128+N: sig_exit_if_stopped).
intervm_run() {
	local out=$1 id dir offset qemu_a qemu_b rc=0 arg how why logfd log
	shift
	for arg; do
		[[ $arg != *$'\n'* ]] || vm_die "a host_writer argument holds a newline: not supported in vm-vm"
		case $arg in
		-o* | --o | --ou | --out | --outp | --outpu | --output | --o=* | --ou=* | --out=* | --outp=* | --outpu=* | --output=*)
			printf '%s: %s: in vm-vm the results go to IVSHMEM_RESULTS (%s)\n' "$VM_PROG" "$arg" "$out" >&2
			return 2
			;;
		--interference | --interference=*)
			# The co-runners are host_writer's children: in vm-vm they would
			# run inside guest A (a micro guest, no stress-ng), sharing the
			# initiator's vCPU, not beside the responder.
			printf '%s: %s: not supported in vm-vm: the co-runners would run inside guest A, beside the initiator, not beside the responder (use IVSHMEM_TOPOLOGY=host-vm or --host-only)\n' "$VM_PROG" "$arg" >&2
			return 2
			;;
		esac
	done
	# Nothing is written through a link planted in the results directory.
	why=$(vm_results_links "$out")
	[ -z "$why" ] || vm_die "$why"
	qemu_a=$(intervm_pid a) qemu_b=$(intervm_pid b)
	# What an earlier run left in the share (its host was killed, or its
	# results could not be collected) is stale: guest A stops that run
	# before it starts this one.
	find "$VM_STATE_DIR/a/share" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
	id=$(od -An -N8 -tx1 /dev/urandom | tr -dc 0-9a-f)
	dir=$VM_STATE_DIR/a/share/$id
	SIG_TEMPS+=("$dir") # until the run is asked for
	if ! mkdir "$dir" || ! files_write "$dir/args" < <([ $# -eq 0 ] || printf '%s\n' "$@"); then
		vm_die "cannot write the run's arguments in $dir"
	fi
	# host_writer's output, kept in the state directory (ours alone) until
	# it is collected with the results.
	log=$VM_STATE_DIR/a/initiator.log
	files_open --replace logfd "$log" || vm_die "cannot write in $VM_STATE_DIR/a"
	offset=$(stat -c %s "$VM_STATE_DIR/a/console.log")
	INTERVM_RUN_ID=$id INTERVM_STOPPING="" INTERVM_REQUESTED="" INTERVM_STOP_SENT=0
	# From here a signal asks guest A to stop the run, and the wait goes on.
	sig_defer intervm_on_signal
	intervm_request "run $id" || vm_die "cannot write to guest A's requests ($VM_STATE_DIR/a/request.in)"
	INTERVM_REQUESTED=1
	sig_forget "$dir" # its results are kept until collected
	[ -z "$INTERVM_STOPPING" ] || intervm_on_signal
	intervm_follow "$id" "$offset" "$qemu_a" "$logfd" "$out" || how=$?
	exec {logfd}>&-
	if [ ! -d "$dir/out" ]; then
		# host_writer wrote nothing (bad options, or it never started): the
		# results directory stays as it was.
		rm -rf "$dir" "$log"
	elif intervm_collect "$dir/out" "$log" "$out"; then
		rm -rf "$dir" "$log"
	else
		vm_warn "cannot collect the results into $out: $INTERVM_WHY; this run's files are kept in $dir/out until the next run"
		rc=1
	fi
	if [ -n "${how:-}" ]; then
		rc=1
		if [ "$how" = 1 ] || [ -z "$(intervm_pid a)" ]; then
			vm_warn "guest A (the initiator, QEMU pid $qemu_a) died during the run; partial results are in $out/"
			intervm_tail a
		else
			vm_warn "guest A (the initiator, QEMU pid $qemu_a) said nothing for ${INTERVM_IDLE}s (no output, no heartbeat every ${INTERVM_HEARTBEAT}s); gave up; partial results are in $out/"
			intervm_tail a
		fi
	elif [ "$rc" != 0 ]; then
		: # the results are not where they belong: that is the run's status
	elif [[ $INTERVM_RC =~ ^[0-9]+$ ]]; then
		rc=$INTERVM_RC
	else
		vm_warn "guest A did not run host_writer: $INTERVM_RC"
		rc=1
	fi
	if [ "$rc" != 0 ] && [ -z "$(intervm_pid b)" ]; then
		vm_warn "guest B (the responder, QEMU pid $qemu_b) died during the run; partial results are in $out/"
		intervm_tail b
	fi
	# Until here a signal only noted (the collection is whole or not at
	# all); the caller exits 128+N (sig_exit_if_stopped).
	sig_undefer
	return "$rc"
}

# intervm_tail G : the end of guest G's console, on stderr.
intervm_tail() {
	vm_warn "last lines of $VM_STATE_DIR/$1/console.log:"
	tail -n 15 "$VM_STATE_DIR/$1/console.log" | sed 's/\r$//; s/^/    | /' >&2
}

# intervm_check_usable : the pair runs and can be reached, or exit with one
# line saying what to do. Loads its vm.env.
intervm_check_usable() {
	local missing
	intervm_refuse_running vm-vm
	intervm_running || vm_die "no VM pair running: start it with IVSHMEM_TOPOLOGY=vm-vm ./setup.sh (or IVSHMEM_TOPOLOGY=vm-vm make test)"
	intervm_load_env || vm_die "no $VM_ENV: restart the pair with ./setup.sh stop && IVSHMEM_TOPOLOGY=vm-vm ./setup.sh"
	missing=$(intervm_missing)
	[ -z "$missing" ] || vm_die "the VM pair is not usable: ${missing//$'\n'/; }; IVSHMEM_TOPOLOGY=vm-vm IVSHMEM_MODE=$VM_MODE ./setup.sh restarts it"
}

# intervm_meta : host_writer's --meta options describing the pair, into
# INTERVM_META (the pair's vm.env loaded). run.json's own host_cpu and
# host_kernel describe where host_writer ran, guest A; host_machine_cpu and
# host_machine_kernel are the machine's.
intervm_meta() {
	INTERVM_META=(--meta target=vm-vm --meta topology=vm-vm --meta guest=micro --meta accel="$VM_ACCEL"
		--meta qemu_version="$VM_QEMU_VERSION" --meta guest_kernel="$VM_GUEST_KERNEL"
		--meta initiator="guest A" --meta responder="guest B"
		--meta guest_a_qemu_pid="$VM_A_QEMU_PID" --meta guest_b_qemu_pid="$VM_B_QEMU_PID"
		--meta guest_a_vcpu_cpu="$VM_A_VCPU_CPU" --meta guest_b_vcpu_cpu="$VM_B_VCPU_CPU"
		--meta vcpu_cpu="$VM_B_VCPU_CPU" --meta guest_a_peer_id="$VM_A_PEER_ID"
		--meta guest_b_peer_id="$VM_B_PEER_ID" --meta vcpus="$VM_VCPUS"
		--meta guest_memory="$VM_MEM" --meta boot_seconds="$VM_BOOT_SECONDS"
		--meta host_machine_cpu="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
		--meta host_machine_kernel="$(uname -r)"
		--meta backing="${VM_BACKING:-shm}" --meta bar_map="${VM_BAR_MAP:-uc}"
		--meta cpu_pm="${VM_CPU_PM:-off}" --meta ple="$(vm_ple)")
}

# intervm_chain_plan ARG... : whether the host receives the chain (guest
# A -> guest B -> host): the workloads host_writer will run (its last
# --test among ARGs) include chain, no --chain-receiver says otherwise, and
# the pair is in plain mode with its memory in a file the host can map.
# Sets INTERVM_SINK (1 or empty) and INTERVM_SINK_WHY (why not, when chain
# runs without it: its receiver is then guest A's own thread).
intervm_chain_plan() {
	local tests=default receiver="" prev=""
	INTERVM_SINK="" INTERVM_SINK_WHY=""
	for arg; do
		case $prev in
		-t | --te | --tes | --test) tests=$arg ;;
		--chain-receiver) receiver=$arg ;;
		esac
		case $arg in
		-t?*) tests=${arg#-t} ;;
		--te=* | --tes=* | --test=*) tests=${arg#*=} ;;
		--chain-receiver=*) receiver=${arg#*=} ;;
		esac
		prev=$arg
	done
	[[ ,$tests, == *,chain,* || ,$tests, == *,all,* ]] || return 0
	case $receiver in
	local) INTERVM_SINK_WHY="--chain-receiver local: guest A's own thread receives" ;;
	remote | "")
		if [ "$VM_MODE" != plain ]; then
			INTERVM_SINK_WHY="the host receives only in plain mode (a remote receiver polls, with no doorbell to wake guest B)"
		elif [ ! -f "$VM_SHM_PATH" ]; then
			INTERVM_SINK_WHY="the pair's memory is not a file the host can map (${VM_BACKING:-shm} backing)"
		else
			INTERVM_SINK=1
		fi
		;;
	esac
	if [ -z "$INTERVM_SINK" ] && [ "$receiver" = remote ]; then
		vm_die "--chain-receiver remote: $INTERVM_SINK_WHY"
	fi
}

# intervm_sink_start LOG : start the host's chain_sink on the pair's memory,
# its lines into LOG; its pid in INTERVM_SINK_PID. It receives on guest A's
# host CPU, yielding while ring B is empty (the middle stage, guest B, keeps
# its CPU, as a local receiver leaves it), and measures the clocks' offset
# on guest B's, where guest A can answer each probe at once.
intervm_sink_start() {
	local cpu=${VM_A_VCPU_CPU:-none} probe=${VM_B_VCPU_CPU:-none}
	sig_start INTERVM_SINK_PID "$BIN/chain_sink" --shm "$VM_SHM_PATH" --cpu "${cpu:-none}" \
		--probe-cpu "${probe:-none}" >"$1" 2>&1
}

# intervm_bench_run MODE OUT STATE [OPTION...] : for the benchmark: boot a
# pair in MODE in state directory STATE (with its own shared memory and
# socket: the user's VMs are left alone), run run_test.sh with OPTIONs
# (default: --test latency --quiet) into OUT, stop the pair. The other
# IVSHMEM_* settings (IVSHMEM_ITERATIONS, ...) apply. Returns run_test.sh's
# status (1 if the pair did not boot).
intervm_bench_run() {
	local mode=$1 out=$2 state=$3
	shift 3
	[ $# -gt 0 ] || set -- --test latency --quiet
	INTERVM_BENCH_SETTINGS=(IVSHMEM_TOPOLOGY=vm-vm IVSHMEM_MODE="$mode" IVSHMEM_STATE_DIR="$state" IVSHMEM_RESULTS="$out"
		IVSHMEM_SHM_PATH="/dev/shm/ivshmem-bench-vmvm-$mode-$$" IVSHMEM_SERVER_SOCKET="$state/ivshmem.sock")
	mkdir -p "$state"
	# A subshell that passes a signal on and stops the pair however it ends
	# (vm/signals.bash).
	sig_run intervm__bench_pair "$@"
}

intervm__bench_pair() {
	SIG_AT_EXIT=(intervm__bench_stop)
	sig_run env "${INTERVM_BENCH_SETTINGS[@]}" "$VM_TOP/setup.sh" > >(grep -E 'ready in|KVM') || exit 1
	sig_run env "${INTERVM_BENCH_SETTINGS[@]}" "$VM_TOP/run_test.sh" "$@"
}

intervm__bench_stop() { env "${INTERVM_BENCH_SETTINGS[@]}" "$VM_TOP/setup.sh" stop >/dev/null 2>&1; }
