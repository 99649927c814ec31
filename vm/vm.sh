# shellcheck shell=bash disable=SC2054 # QEMU options contain commas
# vm/vm.sh - the VM launcher's helpers, sourced by setup.sh, run_test.sh
# and the tests. Everything is prefixed vm_; settings come from IVSHMEM_*
# environment variables with the defaults below (README.md lists them).
#
# The launcher boots QEMU daemonized with its console on a log file, waits
# for the guest's readiness token on that console (an event, with a
# deadline), pins the vCPU thread, and records what it started in
# $VM_STATE_DIR/vm.env so that status, stop and the benchmark can say
# exactly what ran.

VM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# shellcheck source=vm/settings.bash
. "$VM_TOP/vm/settings.bash"

: "${IVSHMEM_MODE:=plain}"                  # plain | doorbell
: "${IVSHMEM_TOPOLOGY:=host-vm}"            # host-vm | vm-vm (two guests, vm/intervm.bash) | chain
# IVSHMEM_TOPOLOGY=chain is host-vm whose default workload is the forwarding
# chain (host -> the guest, which forwards -> host): vm.env records it
# (VM_TOPOLOGY=chain), so `make test` against that guest runs the chain.
VM_CHAIN_TOPOLOGY=""
if [ "$IVSHMEM_TOPOLOGY" = chain ]; then
	IVSHMEM_TOPOLOGY=host-vm VM_CHAIN_TOPOLOGY=1
fi
: "${IVSHMEM_GUEST:=micro}"                 # micro | cloud
: "${IVSHMEM_SHM_PATH:=/dev/shm/ivshmem}"   # shared-memory file (plain mode)
: "${IVSHMEM_SHM_SIZE:=64M}"                # power of two
: "${IVSHMEM_BACKING:=shm}"                 # shm | memfd | hugetlb: where the shared memory lives
: "${IVSHMEM_HUGEPAGES:=}"                  # huge pages to reserve for hugetlb (empty: touch nothing)
: "${IVSHMEM_HUGETLB_DIR:=}"                # hugetlbfs mount for hugetlb (empty: the first mounted)
: "${IVSHMEM_BAR_MAP:=uc}"                  # uc | wc: how the guest maps BAR2 (resource2, resource2_wc)
: "${IVSHMEM_CPU_PM:=off}"                  # off | on: KVM's -overcommit cpu-pm=on
: "${IVSHMEM_MEM:=512M}"                    # guest memory
: "${IVSHMEM_VCPUS:=1}"                     # guest vCPUs
: "${IVSHMEM_ACCEL:=auto}"                  # auto | kvm | tcg
: "${IVSHMEM_STATE_DIR:=$VM_TOP/.vm}"       # pidfile, console log, vm.env
: "${IVSHMEM_BUILD_DIR:=$VM_TOP/build}"     # binaries and the initramfs
: "${IVSHMEM_CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/ivshmem-bench}" # what outlives a VM
: "${IVSHMEM_BOOT_TIMEOUT:=$([ "$IVSHMEM_GUEST" = cloud ] && echo 400 || echo 90)}" # seconds to ready under TCG
: "${IVSHMEM_KVM_TIMEOUT:=$([ "$IVSHMEM_GUEST" = cloud ] && echo 120 || echo 20)}"  # seconds under KVM before falling back
: "${IVSHMEM_KERNEL:=}"                     # guest kernel (default: newest /boot/vmlinuz-*)
: "${IVSHMEM_VCPU_CPU:=$(settings_last_cpu)}" # host CPU for the vCPU thread(s)
: "${IVSHMEM_VCPU_CPU_A:=$(settings_first_cpu)}" # vm-vm: guest A's (the initiator's) vCPU
: "${IVSHMEM_VCPU_CPU_B:=$IVSHMEM_VCPU_CPU}" # vm-vm: guest B's (the responder's) vCPU
: "${IVSHMEM_WRITER_CPU:=0}"                # host CPU for host_writer
: "${IVSHMEM_SERVER_SOCKET:=$IVSHMEM_STATE_DIR/ivshmem.sock}" # doorbell server socket
: "${IVSHMEM_VECTORS:=2}"                   # doorbell MSI-X vectors
: "${IVSHMEM_TRANSPORTS:=serial,tcp,vsock}" # the micro guest's other channels (none: no devices)
: "${IVSHMEM_NET:=user}"                    # user | tap: what carries the tcp channel (see "the tap network")
: "${IVSHMEM_GUEST_ARGS:=}"                 # extra guest_reader options, e.g. -v
: "${IVSHMEM_QEMU_ARGS:=}"                  # extra QEMU options (split on spaces)

# shellcheck source=vm/files.bash
. "$VM_TOP/vm/files.bash"
# shellcheck source=vm/cloud.sh
. "$VM_TOP/vm/cloud.sh"
# shellcheck source=vm/wait.bash
. "$VM_TOP/vm/wait.bash"
# shellcheck source=vm/signals.bash
. "$VM_TOP/vm/signals.bash"

VM_STATE_DIR=$IVSHMEM_STATE_DIR
VM_PIDFILE=$VM_STATE_DIR/qemu.pid        # QEMU's own pidfile
VM_QEMU_ID=$VM_STATE_DIR/qemu.id         # who that QEMU is (see "state")
VM_CONSOLE=$VM_STATE_DIR/console.log
VM_ENV=$VM_STATE_DIR/vm.env
VM_READY_TOKEN=IVB-GUEST-READY
VM_FAILED_TOKEN=IVB-GUEST-FAILED # guest_reader cannot attach as asked: no use waiting
VM_SERVER_PIDFILE=$VM_STATE_DIR/server.pid # the server's own pidfile
VM_SERVER_ID=$VM_STATE_DIR/server.id     # who that server is
VM_SHM_ID=$VM_STATE_DIR/shm.id           # the shared memory made for this VM
VM_SERVER_LOG=$VM_STATE_DIR/server.log
VM_QEMU_ERR=$VM_STATE_DIR/qemu.err
VM_INITRAMFS=$IVSHMEM_BUILD_DIR/guest/initramfs.cpio.gz

# The vm-vm topology (two guests) builds on the helpers below and on the
# paths above, which it points at each guest's subdirectory in turn.
# shellcheck source=vm/intervm.bash
. "$VM_TOP/vm/intervm.bash"

# Debian packages the project needs, for building, the VM and the tests.
# libxxhash-dev: the streams' message check; clang and libclang-rt-14-dev:
# the fuzzers; stress-ng: the co-runners of the latency-under-load runs;
# chromium: tests/test_analyze_browser.py renders report.html.
VM_PACKAGES=(gcc make libc6-dev libssl-dev libxxhash-dev qemu-system-x86 qemu-utils linux-image-amd64
	busybox-static cpio kmod python3-pandas python3-matplotlib python3-pytest
	genisoimage mmdebstrap openssh-client curl e2fsprogs util-linux iproute2 procps shellcheck strace valgrind
	clang libclang-rt-14-dev stress-ng chromium)

vm_log() { printf '%s\n' "$*"; }
vm_warn() { printf '%s: %s\n' "$VM_PROG" "$*" >&2; }
vm_die() {
	vm_warn "$@"
	exit 1
}

# ---- packages and build ----------------------------------------------------

# Install whatever Debian packages are missing (through sudo when not
# root). apt's output goes to build/apt.log, made first: on a fresh clone
# there is no build/ yet. apt waits for a dpkg lock held by another
# install (a second developer, unattended-upgrades) instead of failing.
vm_install_deps() {
	local missing=() pkg sudo=() log=$IVSHMEM_BUILD_DIR/apt.log apt_opts fd
	for pkg in "${VM_PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		command -v sudo >/dev/null || vm_die "missing packages (${missing[*]}) and no sudo to install them: install them as root"
		sudo=(sudo)
	fi
	mkdir -p "$IVSHMEM_BUILD_DIR" || vm_die "cannot create $IVSHMEM_BUILD_DIR"
	files_open fd "$log" || exit 1
	apt_opts=(-q -o DPkg::Lock::Timeout=600)
	vm_log "Installing ${missing[*]} (log: $log)"
	# apt may start services; they must not inherit the lock (vm_detached).
	# A signal is passed on to apt-get, which is waited for (sig_run).
	vm_detached sig_run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update 1>&"$fd" 2>&1 ||
		{ sig_exit_if_stopped; vm_die "apt-get update failed: $(vm_apt_error "$log"); see $log"; }
	vm_detached sig_run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y --no-install-recommends \
		"${missing[@]}" 1>&"$fd" 2>&1 ||
		{ sig_exit_if_stopped; vm_die "apt-get install failed: $(vm_apt_error "$log"); see $log"; }
	exec {fd}>&-
}

# The last error apt wrote to log $1 (its "E: " lines), or its last line.
vm_apt_error() {
	local e
	e=$(grep '^E: ' "$1" | tail -n 1)
	[ -n "$e" ] || e=$(grep . "$1" | tail -n 1)
	printf '%s' "${e:-no output}"
}

vm_build() {
	sig_run make -C "$VM_TOP" -s BUILD="$IVSHMEM_BUILD_DIR" all 2> >(grep -v -e 'statically linked applications' \
		-e 'in function' >&2) || { sig_exit_if_stopped; vm_die "build failed"; }
}

# The guest kernel: IVSHMEM_KERNEL, or the newest Debian kernel in /boot.
vm_kernel() {
	if [ -n "$IVSHMEM_KERNEL" ]; then
		[ -r "$IVSHMEM_KERNEL" ] || settings_fail IVSHMEM_KERNEL "not readable"
		echo "$IVSHMEM_KERNEL"
		return
	fi
	local k
	k=$(find /boot -maxdepth 1 -name 'vmlinuz-*' | sort -V | tail -n 1)
	[ -n "$k" ] || vm_die "no kernel in /boot: install linux-image-amd64 (./setup.sh deps)"
	echo "$k"
}

# Kernel version of a vmlinuz-VERSION path.
vm_kernel_version() { basename "$1" | sed 's/^vmlinuz-//'; }

# vm_modules KVER MODULE... : the files of MODULE and what it depends on,
# in load order, each once.
vm_modules() {
	local kver=$1
	shift
	modprobe -S "$kver" -a --show-depends "$@" | awk '$1 == "insmod" && !seen[$2]++ { print $2 }'
}

# Build the micro guest's initramfs: busybox, guest_reader, host_writer
# (the initiator of a vm-vm pair's guest A), /init, the VFIO modules (with
# their dependencies) for doorbell mode and the virtio-9p ones for guest A's
# results share. Rebuilt only when one of those inputs changes.
vm_build_initramfs() {
	local kernel kver root stamp new_stamp modules m9p mtr m
	kernel=$(vm_kernel)
	kver=$(vm_kernel_version "$kernel")
	[ -d "/lib/modules/$kver" ] || vm_die "no modules for $kver in /lib/modules"
	mapfile -t modules < <(vm_modules "$kver" vfio-pci)
	[ ${#modules[@]} -gt 0 ] || vm_die "cannot resolve the vfio-pci module for $kver"
	mapfile -t m9p < <(vm_modules "$kver" virtio_pci 9pnet_virtio 9p)
	[ ${#m9p[@]} -gt 0 ] || vm_die "cannot resolve the 9p modules for $kver"
	# The other channels: virtio-serial, virtio-net, virtio-vsock.
	mapfile -t mtr < <(vm_modules "$kver" virtio_pci virtio_console virtio_net vmw_vsock_virtio_transport)
	[ ${#mtr[@]} -gt 0 ] || vm_die "cannot resolve the virtio transport modules for $kver"
	new_stamp=$(sha256sum /bin/busybox "$IVSHMEM_BUILD_DIR/guest_reader" "$IVSHMEM_BUILD_DIR/guest/host_writer" \
		"$IVSHMEM_BUILD_DIR/guest/transport_bench" "$VM_TOP/vm/initramfs/init" "${modules[@]}" "${m9p[@]}" \
		"${mtr[@]}" | sha256sum | cut -d' ' -f1)
	stamp=$VM_INITRAMFS.stamp
	if [ -f "$VM_INITRAMFS" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$new_stamp" ]; then
		return 0
	fi
	files_refuse_link "$VM_INITRAMFS" && files_refuse_link "$stamp" || exit 1
	vm_log "Building the micro guest initramfs (kernel $kver)"
	sig_mktemp root -d # removed on every exit
	mkdir -p "$root"/{bin,dev,proc,sys,etc,tmp} "$(dirname "$VM_INITRAMFS")"
	cp /bin/busybox "$root/bin/busybox"
	cp "$IVSHMEM_BUILD_DIR/guest_reader" "$root/bin/guest_reader"
	cp "$IVSHMEM_BUILD_DIR/guest/host_writer" "$root/bin/host_writer"
	cp "$IVSHMEM_BUILD_DIR/guest/transport_bench" "$root/bin/transport_bench"
	cp "$VM_TOP/vm/initramfs/init" "$root/init"
	chmod 0755 "$root/init" "$root/bin/guest_reader" "$root/bin/host_writer" "$root/bin/transport_bench"
	: >"$root/etc/modules.list"
	: >"$root/etc/modules-9p.list"
	: >"$root/etc/modules-transport.list"
	for m in "${mtr[@]}"; do
		mkdir -p "$root$(dirname "$m")"
		cp "$m" "$root$m"
		echo "$m" >>"$root/etc/modules-transport.list"
	done
	for m in "${modules[@]}"; do
		mkdir -p "$root$(dirname "$m")"
		cp "$m" "$root$m"
		echo "$m" >>"$root/etc/modules.list"
	done
	for m in "${m9p[@]}"; do
		mkdir -p "$root$(dirname "$m")"
		cp "$m" "$root$m"
		echo "$m" >>"$root/etc/modules-9p.list"
	done
	files_stage "$VM_INITRAMFS" || exit 1
	if ! (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >>"$FILES_STAGED"; then
		files_discard "$FILES_STAGED"
		vm_die "cannot build $VM_INITRAMFS"
	fi
	rm -rf "$root"
	sig_forget "$root"
	files_place "$FILES_STAGED" "$VM_INITRAMFS" || exit 1
	files_write "$stamp" <<<"$new_stamp" || exit 1
}

# ---- backings, huge pages, PLE ----------------------------------------------
#
# Where the shared memory lives (IVSHMEM_BACKING, checked by
# settings_backing):
#   shm      a file on /dev/shm (IVSHMEM_SHM_PATH): QEMU's
#            memory-backend-file or the server's file; the host maps it
#   hugetlb  a file of that name on a hugetlbfs mount instead, the same way
#   memfd    doorbell mode: the server's memory is a memfd, handed to QEMU
#            and host_writer over the socket; host-only: a memfd both
#            sides inherit. Plain mode has none (settings_backing says why)

# VM_MEMFD_PY SIZE FD CMD... (python3 -c): make a memfd of SIZE bytes as
# descriptor FD, inherited, and exec CMD (same pid) holding it.
VM_MEMFD_FD=9
# shellcheck disable=SC2016 # Python, not shell
VM_MEMFD_PY='import os, sys
size, want = int(sys.argv[1]), int(sys.argv[2])
fd = os.memfd_create("ivshmem-bench", 0)
os.ftruncate(fd, size)
if fd != want:
    os.dup2(fd, want)
    os.close(fd)
os.set_inheritable(want, True)
os.execvp(sys.argv[3], sys.argv[3:])'

# vm_shm_where : the shared memory as vm.env and status name it.
vm_shm_where() {
	if [ "$IVSHMEM_BACKING" = memfd ]; then
		echo "memfd (from the ivshmem server)"
	else
		echo "$IVSHMEM_SHM_PATH"
	fi
}

# vm_hugepages_reserve : with IVSHMEM_HUGEPAGES=N (hugetlb), make the
# pool of the mount's huge page size N pages, saying so; nothing without
# it. The pool stays as it is after the VM or the run: the user asked.
vm_hugepages_reserve() {
	local f was now
	[ "$IVSHMEM_BACKING" = hugetlb ] && [ -n "$IVSHMEM_HUGEPAGES" ] || return 0
	f=/sys/kernel/mm/hugepages/hugepages-${SETTINGS_HUGETLB_KB}kB/nr_hugepages
	was=$(cat "$f")
	[ "$was" != "$((10#$IVSHMEM_HUGEPAGES))" ] || return 0
	echo "$((10#$IVSHMEM_HUGEPAGES))" >"$f" 2>/dev/null || true
	now=$(cat "$f")
	vm_log "IVSHMEM_HUGEPAGES=$IVSHMEM_HUGEPAGES: $f was $was, now $now (${SETTINGS_HUGETLB_KB} kB pages; they stay reserved until you write 0 there)"
}

# vm_backing_available : with hugetlb, enough free huge pages for the
# shared memory, or one line and exit 2 ("not available: ..."). Asked after
# vm_hugepages_reserve, and after a file of ours at the path was removed.
vm_backing_available() {
	local need free
	[ "$IVSHMEM_BACKING" = hugetlb ] || return 0
	need=$(($(settings_bytes "$IVSHMEM_SHM_SIZE") / (SETTINGS_HUGETLB_KB * 1024)))
	free=$(settings_hugepages_free)
	[ "$free" -ge "$need" ] ||
		settings_fail IVSHMEM_BACKING "not available: no free huge pages ($need of ${SETTINGS_HUGETLB_KB} kB needed for IVSHMEM_SHM_SIZE=$IVSHMEM_SHM_SIZE, $free free; IVSHMEM_HUGEPAGES=N reserves them)"
}

# vm_ple : the host's pause-loop-exiting settings, as run.json's "ple"
# records them (kvm_intel ple_gap/ple_window, kvm_amd
# pause_filter_count/pause_filter_thresh), or why there are none.
vm_ple() {
	local m p out
	for m in kvm_intel kvm_amd; do
		[ -d "/sys/module/$m/parameters" ] || continue
		out=$m
		case $m in
		kvm_intel) set -- ple_gap ple_window ;;
		kvm_amd) set -- pause_filter_count pause_filter_thresh ;;
		esac
		for p; do out+=" $p=$(cat "/sys/module/$m/parameters/$p" 2>/dev/null || echo unreadable)"; done
		echo "$out"
		return
	done
	echo "not available: module not loaded (neither kvm_intel nor kvm_amd)"
}

# ---- state -----------------------------------------------------------------
#
# A process started here (QEMU, the ivshmem server) is known by what was
# recorded the moment it started, in qemu.id or server.id: its pid, its
# start time (field 22 of /proc/PID/stat, clock ticks since boot) and its
# executable (/proc/PID/exe). No command-line argument can fake the last two,
# and a pid that now belongs to another program has another start time, so a
# stale pidfile is reported and removed, never acted on.

# vm_state_read FILE KEY... : set each variable KEY from the line KEY=VALUE
# of FILE (the last one wins); other lines are ignored. FILE is data, never
# run: whatever a value holds stays a string. Fails if FILE is missing.
vm_state_read() {
	local file=$1 line key want
	shift
	[ -f "$file" ] && [ ! -L "$file" ] || return 1
	while IFS= read -r line || [ -n "$line" ]; do
		key=${line%%=*}
		[[ $line == *=* ]] || continue
		for want; do
			[ "$key" = "$want" ] && printf -v "$key" '%s' "${line#*=}"
		done
	done <"$file"
	return 0
}

# vm_state_open : make the state directory (0700), or use the existing one
# settings_state_dir accepted (ours, writable by nobody else). Either way no
# one else can add or swap a name in it, so the checks below hold until we
# write.
vm_state_open() {
	settings_state_dir
	(umask 077 && mkdir -p "$VM_STATE_DIR") || vm_die "cannot create the state directory $VM_STATE_DIR"
	settings_state_dir
}

# vm_state_new FILE : FILE made anew, empty (vm/files.bash): whatever had
# that name (a link planted there included) is replaced, not followed, so no
# write lands elsewhere. The state directory is ours alone
# (settings_state_dir): a link in it is stale, not someone else's.
vm_state_new() {
	files_new --replace "$1" 2>/dev/null && return 0
	vm_warn "cannot create $1"
	return 1
}

# vm_state_file FILE : FILE is a regular file of ours, not a link (checked
# on what QEMU and the server wrote).
vm_state_file() { [ -f "$1" ] && [ ! -L "$1" ] && [ -O "$1" ]; }

# vm_state_write FILE KEY... : write the variables KEY as KEY=VALUE lines,
# whole or not at all (vm/files.bash: a staged file renamed over FILE; a
# rename replaces a link, it does not follow it). A newline in a value
# becomes a space: one line per key.
vm_state_write() {
	local file=$1
	shift
	# Not a pipeline: files_write runs in this shell, whose clean-up on a
	# signal knows its staging directory.
	files_write --replace "$file" < <(vm__state_lines "$@")
}

vm__state_lines() {
	local key val
	for key; do
		val=${!key-}
		printf '%s=%s\n' "$key" "${val//$'\n'/ }"
	done
}

# vm_proc_start PID : the start time of process PID, or fail.
vm_proc_start() {
	local stat fields
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	# Field 2, the command name in parentheses, may hold spaces and
	# parentheses itself: count from the last ")".
	read -r -a fields <<<"${stat##*)}"
	[ -n "${fields[19]:-}" ] || return 1
	echo "${fields[19]}"
}

# vm_proc_state PID : the state letter of process PID (R, S, Z, ...).
vm_proc_state() {
	local stat fields
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	read -r -a fields <<<"${stat##*)}"
	echo "${fields[0]:-}"
}

# vm_proc_exe PID : the executable of process PID (as it was started: a
# binary replaced since, by a rebuild or an upgrade, is "PATH (deleted)").
vm_proc_exe() {
	local exe
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	echo "${exe% (deleted)}"
}

# vm_proc_record FILE PID [KEY...] : record process PID, and the caller's
# variables KEY, in FILE. Fails if PID is gone.
vm_proc_record() {
	local file=$1 pid=$2 start exe
	shift 2
	start=$(vm_proc_start "$pid") && exe=$(vm_proc_exe "$pid") || return 1
	vm_state_write "$file" pid start exe "$@"
}

# vm_proc_check FILE : the pid recorded in FILE if that very process still
# runs, else nothing.
vm_proc_check() {
	local pid="" start="" exe=""
	vm_state_read "$1" pid start exe || return 0
	if [[ $pid =~ ^[0-9]+$ ]] && [ "$(vm_proc_start "$pid")" = "$start" ] &&
		[ "$(vm_proc_exe "$pid")" = "$exe" ]; then
		echo "$pid"
	fi
}

# PID of the QEMU started here, or nothing.
vm_pid() { vm_proc_check "$VM_QEMU_ID"; }

# PID of the ivshmem server started here, or nothing.
vm_server_pid() { vm_proc_check "$VM_SERVER_ID"; }

# The records of a process that no longer runs here are reported and
# removed; whatever process has its pid now is left alone.
vm_clear_stale() {
	vm__clear_stale QEMU "$VM_QEMU_ID" "$VM_PIDFILE"
	vm__clear_stale "ivshmem server" "$VM_SERVER_ID" "$VM_SERVER_PIDFILE"
}

vm__clear_stale() {
	local what=$1 id=$2 pidfile=$3 pid="" start="" exe="" now
	[ -e "$id" ] || [ -e "$pidfile" ] || [ -L "$id" ] || [ -L "$pidfile" ] || return 0
	[ -z "$(vm_proc_check "$id")" ] || return 0
	vm_state_read "$id" pid start exe || pid=$(head -c 32 "$pidfile" 2>/dev/null | tr -dc 0-9) || true
	# A process killed a moment ago may still be a zombie, its parent yet to
	# reap it: that one has exited too.
	if [[ $pid =~ ^[0-9]+$ ]] && [ -e "/proc/$pid" ] && [ "$(vm_proc_state "$pid")" != Z ]; then
		now="pid $pid now belongs to another process, left alone: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60 | sed 's/ *$//')"
	else
		now="pid ${pid:-?} has exited"
	fi
	vm_warn "stale $(basename "$pidfile"): the $what started here is gone ($now); removed the record"
	rm -f "$id" "$pidfile"
}

# ---- the lock --------------------------------------------------------------
#
# One user of a state directory at a time: setup.sh start and stop, and a
# run, hold an exclusive flock(2) on STATE/lock while they work, so a second
# one is refused at once instead of taking over the guest or racing a boot.
# The holder writes its pid, what it is and when it started into the file,
# so the refusal can say who. The kernel drops the lock when the holder
# exits, however it exits; QEMU and the server must not inherit it.

VM_LOCK_FD=""
VM_LOCK=$VM_STATE_DIR/lock

# vm_lock_try WHAT : take the lock for WHAT ("a run", "setup.sh start", ...),
# or fail at once with who holds it in VM_BUSY.
vm_lock_try() {
	local pid="" what="" started=""
	# Made through vm/files.bash when missing (or a link: the state
	# directory is ours alone), then opened in place: every user must lock
	# the same inode.
	if [ -L "$VM_LOCK" ] || [ ! -e "$VM_LOCK" ]; then
		files_new --replace "$VM_LOCK" || vm_die "cannot create $VM_LOCK"
	fi
	exec {VM_LOCK_FD}>>"$VM_LOCK" || vm_die "cannot open $VM_LOCK"
	if flock -n "$VM_LOCK_FD"; then
		# In place, not through a rename: the lock is on this inode. Through
		# the descriptor (/proc/self/fd opens the very file, not the name).
		printf 'pid=%s\nwhat=%s\nstarted=%s\n' "$$" "$1" "$(date '+%Y-%m-%d %H:%M:%S')" >"/proc/self/fd/$VM_LOCK_FD"
		return 0
	fi
	exec {VM_LOCK_FD}>&-
	VM_LOCK_FD=""
	vm_state_read "$VM_LOCK" pid what started || true
	if [[ $pid =~ ^[0-9]+$ ]] && [ -n "$what" ] && kill -0 "$pid" 2>/dev/null; then
		VM_BUSY="busy: $what (pid $pid, started $started) is using this VM"
	else
		VM_BUSY="busy: another setup.sh or run_test.sh is using this VM"
	fi
	return 1
}

# vm_lock WHAT : take the lock or exit naming who holds it.
vm_lock() { vm_lock_try "$1" || vm_die "$VM_BUSY ($VM_STATE_DIR); try again when it has finished"; }

# vm_detached CMD... : run CMD without the lock's descriptor (a daemon it
# starts would hold the lock for as long as it lives).
vm_detached() {
	if [ -n "$VM_LOCK_FD" ]; then "$@" {VM_LOCK_FD}>&-; else "$@"; fi
}

# ---- results ---------------------------------------------------------------

# vm_results_names : the names a run writes in its results directory:
# run.json, the logs the scripts keep there and every workload's files
# (host_writer --schema).
vm_results_names() {
	local f
	printf '%s\n' run.json initiator.log guest_reader.log
	while read -r _ f _; do echo "$f"; done < <("$IVSHMEM_BUILD_DIR/host_writer" --schema)
}

# vm_results_links OUT : the line refusing the first of vm_results_names
# that is a symbolic link in OUT, or nothing. A run never writes through a
# link (vm/files.bash), and says so before it starts.
vm_results_links() {
	local name
	while read -r name; do
		if [ -L "$1/$name" ]; then
			echo "$1/$name is a symbolic link (to $(readlink -- "$1/$name")): refusing to write through it; remove it if it is yours"
			return
		fi
	done < <(vm_results_names)
}

# What vm.env records about the running VM.
VM_ENV_KEYS=(VM_TOPOLOGY VM_MODE VM_GUEST VM_ACCEL VM_QEMU_PID VM_SHM_PATH VM_SHM_SIZE VM_KERNEL
	VM_GUEST_KERNEL VM_QEMU_VERSION VM_VCPU_CPU VM_VCPUS VM_MEM VM_BOOT_SECONDS
	VM_STARTED VM_SERVER_SOCKET VM_VECTORS VM_VCPU_TIDS VM_TRANSPORTS VM_TRANSPORT_SERIAL
	VM_TRANSPORT_TCP_PORT VM_TRANSPORT_VSOCK_CID VM_TRANSPORT_UNAVAILABLE VM_TRANSPORT_TCP_HOST
	VM_NET VM_NETNS VM_VHOST_NET VM_BACKING VM_BAR_MAP VM_CPU_PM)

# Load vm.env (what the running VM was started with) into the VM_* variables
# of VM_ENV_KEYS; a key it lacks is empty. Parsed, never sourced.
vm_load_env() {
	local key
	for key in "${VM_ENV_KEYS[@]}"; do printf -v "$key" '%s' ""; done
	vm_state_read "$VM_ENV" "${VM_ENV_KEYS[@]}"
}

# Record what was started: accel $1, QEMU pid $2, kernel $3, guest kernel
# $4, seconds to ready $5.
# shellcheck disable=SC2034 # the VM_* are written by name, through VM_ENV_KEYS
vm_write_env() {
	VM_TOPOLOGY=${VM_CHAIN_TOPOLOGY:+chain} VM_MODE=$IVSHMEM_MODE VM_GUEST=$IVSHMEM_GUEST VM_ACCEL=$1 VM_QEMU_PID=$2
	VM_TOPOLOGY=${VM_TOPOLOGY:-host-vm}
	VM_SHM_PATH=$(vm_shm_where) VM_SHM_SIZE=$IVSHMEM_SHM_SIZE VM_KERNEL=$3 VM_GUEST_KERNEL=$4
	VM_QEMU_VERSION=$(qemu-system-x86_64 --version | head -n1) VM_VCPU_CPU=$IVSHMEM_VCPU_CPU
	VM_VCPUS=$IVSHMEM_VCPUS VM_MEM=$IVSHMEM_MEM VM_BOOT_SECONDS=$5
	VM_STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ) VM_SERVER_SOCKET=$IVSHMEM_SERVER_SOCKET
	VM_VECTORS=$IVSHMEM_VECTORS
	# VM_TRANSPORT_* were set by vm_transport_args for this boot, and
	# VM_BACKING, VM_BAR_MAP and VM_CPU_PM by vm_qemu_args (VM_BAR_MAP then
	# by vm_boot_with, from the guest's own readiness line).
	vm_state_write "$VM_ENV" "${VM_ENV_KEYS[@]}"
}

# ---- boot ------------------------------------------------------------------

# vm_shm_record : record the shared memory this VM uses, once made (plain
# mode) or once the server made it (doorbell), in shm.id: its path, device
# and inode, so that stop removes that file and no other.
vm_shm_record() {
	# shellcheck disable=SC2034 # written by name
	local path=$IVSHMEM_SHM_PATH dev ino
	read -r dev ino < <(stat -c '%d %i' "$path" 2>/dev/null) || return 0
	vm_state_write "$VM_SHM_ID" path dev ino
}

# vm_shm_intact : the shared memory recorded in shm.id is still at its path
# (an older VM without the record: a file at its path will do).
vm_shm_intact() {
	local path="" dev="" ino=""
	if ! vm_state_read "$VM_SHM_ID" path dev ino; then
		[ -f "$VM_SHM_PATH" ]
		return
	fi
	[ -f "$path" ] && [ "$(stat -c '%d %i' "$path" 2>/dev/null)" = "$dev $ino" ]
}

# vm_missing : what the running VM (vm.env loaded) lacks for the host to
# reach it, or nothing: QEMU alone is not a usable VM.
vm_missing() {
	if [ "$VM_MODE" = doorbell ]; then
		[ -n "$(vm_server_pid)" ] || echo "its ivshmem server is not running"
	else
		vm_shm_intact || echo "its shared-memory file ${VM_SHM_PATH:-?} is gone"
	fi
	if [ "${VM_NET:-}" = tap ] && [ ! -e "$VM_NETNS_DIR/$VM_NETNS" ]; then
		echo "its network namespace ${VM_NETNS:-?} is gone"
	fi
}

# vm_remove_shm : remove the shared memory recorded in shm.id, if its path
# still names that very file and it is ours; whatever else stands there now
# is left alone. Called once QEMU and the server are gone (a doorbell server
# removes its own on a clean exit; this is for one that was killed).
vm_remove_shm() {
	local path="" dev="" ino=""
	vm_state_read "$VM_SHM_ID" path dev ino || return 0
	if [ -f "$path" ] && [ ! -L "$path" ] && [ -O "$path" ] &&
		[ "$(stat -c '%d %i' "$path")" = "$dev $ino" ]; then
		rm -f "$path" && vm_log "Removed the shared memory $path"
	fi
	rm -f "$VM_SHM_ID"
}

# vm_shm_free : IVSHMEM_SHM_PATH is mapped by no running process, or exit:
# it would be another VM's (another state directory with the same path),
# and making ours there would cut that VM off from its host side.
vm_shm_free() {
	local maps f pid
	mapfile -t maps < <(grep -slF -- "$IVSHMEM_SHM_PATH" /proc/[0-9]*/maps)
	for f in "${maps[@]}"; do
		awk -v p="$IVSHMEM_SHM_PATH" '$6 == p { found = 1 } END { exit !found }' "$f" 2>/dev/null || continue
		pid=${f#/proc/}
		pid=${pid%/maps}
		vm_die "IVSHMEM_SHM_PATH=$IVSHMEM_SHM_PATH is in use by pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null)), another VM's: stop it, or choose another IVSHMEM_SHM_PATH"
	done
}

# Fresh shared-memory file, mode 0600 (stale headers from a previous run go),
# made through vm/files.bash: sized while it is still in its private
# directory, then renamed onto the path, replacing a link of ours there
# (settings_shm_path has checked that whatever is there is ours) without
# following it; another user's file in a sticky /dev/shm cannot be replaced.
vm_make_shm() {
	local mask rc=0
	mask=$(umask)
	umask 077
	files_stage "$IVSHMEM_SHM_PATH" 2>/dev/null || rc=1
	umask "$mask"
	if [ $rc != 0 ] || ! truncate -s "$(settings_bytes "$IVSHMEM_SHM_SIZE")" "$FILES_STAGED" ||
		! files_place --replace "$FILES_STAGED" "$IVSHMEM_SHM_PATH" 2>/dev/null; then
		[ -z "$FILES_STAGED" ] || files_discard "$FILES_STAGED"
		vm_die "cannot create $IVSHMEM_SHM_PATH"
	fi
	vm_shm_record
}

# Doorbell mode: start the project's ivshmem server (QEMU blocks in device
# set-up until the server answers, so it must listen first). It daemonizes
# only once it listens, so its return is the readiness event. A server of an
# earlier VM of this state directory is stopped first.
vm_start_server() {
	# shellcheck disable=SC2034 # socket is recorded by name in server.id
	local pid socket=$IVSHMEM_SERVER_SOCKET
	vm_stop_server >/dev/null
	# The server writes its pidfile through PIDFILE.tmp and would follow a
	# link there: nothing may stand at either name.
	rm -f "$IVSHMEM_SHM_PATH" "$IVSHMEM_SERVER_SOCKET" "$VM_SERVER_PIDFILE" "$VM_SERVER_PIDFILE.tmp" "$VM_SERVER_ID"
	vm_state_new "$VM_SERVER_LOG" || return 1
	# memfd: the server is started holding a memfd (VM_MEMFD_PY), which it
	# opens through /proc/self/fd like a file of that size, and hands to
	# QEMU and host_writer over its socket as it would any shared memory.
	local shm=$IVSHMEM_SHM_PATH prefix=()
	if [ "$IVSHMEM_BACKING" = memfd ]; then
		shm=/proc/self/fd/$VM_MEMFD_FD
		prefix=(/usr/bin/python3 -c "$VM_MEMFD_PY" "$(settings_bytes "$IVSHMEM_SHM_SIZE")" "$VM_MEMFD_FD")
	fi
	if ! vm_detached "${prefix[@]}" "$IVSHMEM_BUILD_DIR/ivshmem_server" --socket "$IVSHMEM_SERVER_SOCKET" \
		--shm "$shm" --size "$(settings_bytes "$IVSHMEM_SHM_SIZE")" --vectors "$IVSHMEM_VECTORS" \
		--pidfile "$VM_SERVER_PIDFILE" --daemon --verbose >>"$VM_SERVER_LOG" 2>&1; then
		VM_BOOT_FAILURE="the ivshmem server did not start: $(tail -n 2 "$VM_SERVER_LOG")"
		return 1
	fi
	pid=""
	vm_state_file "$VM_SERVER_PIDFILE" && pid=$(cat "$VM_SERVER_PIDFILE")
	if ! [[ $pid =~ ^[0-9]+$ ]] || ! vm_proc_record "$VM_SERVER_ID" "$pid" socket; then
		VM_BOOT_FAILURE="the ivshmem server exited as soon as it started: $(tail -n 2 "$VM_SERVER_LOG")"
		return 1
	fi
	[ "$IVSHMEM_BACKING" = memfd ] || vm_shm_record
}

# Stop the server started here, if it runs (SIGTERM; SIGKILL after 5 s).
vm_stop_server() {
	local pid
	pid=$(vm_server_pid)
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	wait_exit "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
	rm -f "$VM_SERVER_PIDFILE" "$VM_SERVER_ID"
	vm_log "Stopped the ivshmem server (pid $pid)"
}

# Is KVM worth trying? /dev/kvm must be there and usable by us.
vm_kvm_usable() { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }

# Fill VM_QEMU_ARGS for accel $1 (kvm|tcg).
vm_qemu_args() {
	local accel=$1 kernel=$2 machine=q35 cpu=max append
	# VFIO in the guest (doorbell mode, or a plain BAR2 mapped through it)
	# needs an IOMMU for the device: QEMU's intel-iommu, intel_iommu=on.
	local iommu=""
	[ "$IVSHMEM_MODE" = plain ] && [ "$IVSHMEM_BAR_MAP" != vfio ] || iommu=1
	if [ "$accel" = kvm ]; then
		cpu=host
		[ -z "$iommu" ] || machine=q35,kernel-irqchip=split
	fi
	# What this boot is, for vm.env (the VM_* of VM_ENV_KEYS).
	VM_BACKING=$IVSHMEM_BACKING VM_BAR_MAP=$IVSHMEM_BAR_MAP VM_CPU_PM=$IVSHMEM_CPU_PM
	[ "$accel" = kvm ] || VM_CPU_PM="not applicable under ${accel^^}"
	[ "$IVSHMEM_MODE" = plain ] || [ "$IVSHMEM_BAR_MAP" = vfio ] || VM_BAR_MAP="uc (VFIO)"
	VM_QEMU_ARGS=(-name ivshmem-bench,debug-threads=on -machine "$machine" -accel "$accel"
		-cpu "$cpu" -m "$IVSHMEM_MEM" -smp "$IVSHMEM_VCPUS" -nodefaults -display none
		-no-reboot -chardev "file,id=con,path=$VM_CONSOLE" -serial chardev:con
		-pidfile "$VM_PIDFILE" -daemonize)
	[ "$accel" != kvm ] || [ "$IVSHMEM_CPU_PM" != on ] || VM_QEMU_ARGS+=(-overcommit cpu-pm=on)
	append="console=ttyS0 panic=-1 quiet ivb.mode=$IVSHMEM_MODE${IVSHMEM_APPEND:+ $IVSHMEM_APPEND}"
	[ "$IVSHMEM_MODE" != plain ] && [ "$IVSHMEM_BAR_MAP" != vfio ] || append+=" ivb.bar_map=$IVSHMEM_BAR_MAP"
	[ -z "$IVSHMEM_GUEST_ARGS" ] || append+=" ivb.args=${IVSHMEM_GUEST_ARGS// /,}"
	if [ -n "$iommu" ]; then
		VM_QEMU_ARGS+=(-device "intel-iommu,intremap=${IVSHMEM_INTREMAP:-on}")
		append+=" intel_iommu=on"
	fi
	if [ "$IVSHMEM_MODE" = doorbell ]; then
		VM_QEMU_ARGS+=(-chardev "socket,id=ivsock,path=$IVSHMEM_SERVER_SOCKET"
			-device "ivshmem-doorbell,chardev=ivsock,vectors=$IVSHMEM_VECTORS")
	else
		# shm: a file on /dev/shm; hugetlb: a file on the hugetlbfs mount
		# (settings_backing put IVSHMEM_SHM_PATH there). The host maps the
		# same file.
		VM_QEMU_ARGS+=(-object "memory-backend-file,id=ivshm,mem-path=$IVSHMEM_SHM_PATH,size=$(settings_bytes "$IVSHMEM_SHM_SIZE"),share=on"
			-device ivshmem-plain,memdev=ivshm)
	fi
	vm_transport_args "$VM_STATE_DIR" "$accel"
	if [ "$IVSHMEM_GUEST" != cloud ] && [ -n "$VM_TRANSPORTS" ]; then
		VM_QEMU_ARGS+=("${VM_TRANSPORT_ARGS[@]}")
		append+=" ivb.transports=$VM_TRANSPORTS"
		[ "$VM_NET" != tap ] || append+=" ivb.net=$VM_NET_GUEST/$VM_NET_BITS"
	fi
	if [ "$IVSHMEM_GUEST" = cloud ]; then
		# Direct kernel boot of the offline image: VFIO needs the IOMMU on.
		[ "$IVSHMEM_MODE" = doorbell ] && [ -n "$CLOUD_KERNEL" ] &&
			[[ $CLOUD_APPEND != *intel_iommu=on* ]] && CLOUD_APPEND+=" intel_iommu=on"
		cloud_qemu_args "$VM_STATE_DIR" || return 1
		VM_QEMU_ARGS+=("${CLOUD_QEMU_ARGS[@]}")
	else
		VM_QEMU_ARGS+=(-kernel "$kernel" -initrd "$VM_INITRAMFS" -append "$append")
	fi
	# shellcheck disable=SC2206 # split on purpose
	[ -z "$IVSHMEM_QEMU_ARGS" ] || VM_QEMU_ARGS+=($IVSHMEM_QEMU_ARGS)
}

# vm_transport_args DIR ACCEL : the devices of the other channels the micro
# guest serves transport_bench on (IVSHMEM_TRANSPORTS), into
# VM_TRANSPORT_ARGS, and what they are into VM_TRANSPORTS (those given),
# VM_TRANSPORT_SERIAL (the virtserialport's host socket, in DIR),
# VM_TRANSPORT_TCP_HOST and VM_TRANSPORT_TCP_PORT (where the host reaches
# the guest's port 7777: with IVSHMEM_NET=user a free 127.0.0.1 port
# forwarded by QEMU's user-mode network, which reaches nothing else:
# restrict=on; with tap the guest's own address in the network namespace,
# see vm_net_tap_args), VM_TRANSPORT_VSOCK_CID and VM_TRANSPORT_UNAVAILABLE
# ("NAME=why;..." for those this machine cannot give). Also VM_NET,
# VM_NETNS, VM_VHOST_NET and VM_QEMU_PREFIX (what QEMU is started under).
# vm-vm guests and the cloud guest get none.
vm_transport_args() {
	local dir=$1 accel=${2:-tcg} t
	VM_TRANSPORT_ARGS=() VM_TRANSPORTS="" VM_TRANSPORT_SERIAL="" VM_TRANSPORT_TCP_PORT=""
	VM_TRANSPORT_VSOCK_CID="" VM_TRANSPORT_UNAVAILABLE="" VM_TRANSPORT_TCP_HOST=""
	VM_NET="" VM_NETNS="" VM_VHOST_NET="" VM_QEMU_PREFIX=()
	[ "${IVSHMEM_TOPOLOGY:-host-vm}" = host-vm ] && [ "$IVSHMEM_GUEST" = micro ] || return 0
	[ "$IVSHMEM_TRANSPORTS" != none ] || return 0
	for t in ${IVSHMEM_TRANSPORTS//,/ }; do
		case $t in
		serial)
			VM_TRANSPORT_SERIAL=$dir/transport-serial.sock
			rm -f "$VM_TRANSPORT_SERIAL"
			VM_TRANSPORT_ARGS+=(-device virtio-serial-pci
				-chardev "socket,id=ivbserial,path=$VM_TRANSPORT_SERIAL,server=on,wait=off"
				-device virtserialport,chardev=ivbserial,name=ivb.transport)
			;;
		tcp)
			if [ "$IVSHMEM_NET" = tap ]; then
				vm_net_tap_args "$accel"
				VM_TRANSPORTS+=${VM_TRANSPORTS:+,}$t
				continue
			fi
			VM_NET=user VM_TRANSPORT_TCP_HOST=127.0.0.1
			VM_TRANSPORT_TCP_PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') ||
				{ VM_TRANSPORT_UNAVAILABLE+="tcp=no free port on 127.0.0.1;"; continue; }
			VM_TRANSPORT_ARGS+=(-netdev "user,id=ivbnet,restrict=on,hostfwd=tcp:127.0.0.1:$VM_TRANSPORT_TCP_PORT-:7777"
				-device virtio-net-pci,netdev=ivbnet)
			;;
		vsock)
			if [ ! -c /dev/vhost-vsock ]; then
				VM_TRANSPORT_UNAVAILABLE+="vsock=/dev/vhost-vsock missing;"
				continue
			fi
			VM_TRANSPORT_VSOCK_CID=$((1000 + $$ % 100000))
			VM_TRANSPORT_ARGS+=(-device "vhost-vsock-pci,guest-cid=$VM_TRANSPORT_VSOCK_CID")
			;;
		esac
		VM_TRANSPORTS+=${VM_TRANSPORTS:+,}$t
	done
}

# ---- the tap network ----------------------------------------------------
#
# IVSHMEM_NET=tap (host-vm, micro guest, root): the tcp channel goes through
# a tap device instead of QEMU's user-mode network. The tap lives in a
# network namespace of its own, made for this state directory and removed
# with the VM: the namespace holds lo and the tap, the host's end
# 10.213.0.1/30 and the guest's 10.213.0.2 (ivb.net= on the guest's command
# line), so no route leads out of it and no address of it is seen outside.
#
# QEMU runs inside the namespace (ip netns exec), and so does the host's
# transport_bench (run_test.sh). A tap is attached by name (TUNSETIFF on
# /dev/net/tun) in the namespace of whoever opens it, so QEMU would need a
# helper that enters the namespace, opens the tap and hands the descriptor
# over (-netdev tap,fd=N) to stay in the root namespace; nothing else QEMU
# uses depends on the network namespace (its sockets are UNIX sockets named
# by path, the shared memory, pidfile and console are files, vsock is not
# per namespace), so running it there costs nothing and needs no helper.

VM_NETNS_DIR=/run/netns  # where ip keeps the namespaces' names
VM_NET_TAP=ivbtap0       # the tap, inside the namespace
VM_NET_HOST=10.213.0.1   # its address: the host's end
VM_NET_GUEST=10.213.0.2  # the guest's virtio-net
VM_NET_BITS=30           # one /30: the two ends and nothing else

# vm_netns_name : the network namespace of this state directory, ivb- and
# a hash of its path: the same name at every boot, so the one a VM that
# died left behind is found and removed by the next setup or stop.
vm_netns_name() {
	printf 'ivb-%s\n' "$(realpath -m -- "$VM_STATE_DIR" | sha256sum | cut -c1-12)"
}

# vm_net_tap_args ACCEL : the tcp channel's part of vm_transport_args with
# IVSHMEM_NET=tap. vhost-net (the kernel moving the packets, not QEMU's
# thread) is used under KVM where /dev/vhost-net exists, and VM_VHOST_NET
# says whether, or why not.
vm_net_tap_args() {
	local vhost=off
	VM_NET=tap VM_NETNS=$(vm_netns_name) VM_TRANSPORT_TCP_HOST=$VM_NET_GUEST VM_TRANSPORT_TCP_PORT=7777
	if [ ! -c /dev/vhost-net ]; then
		VM_VHOST_NET="no: /dev/vhost-net is missing"
	elif [ "$1" != kvm ]; then
		VM_VHOST_NET="no: under $1 (vhost-net is used only with KVM)"
	else
		VM_VHOST_NET=yes vhost=on
	fi
	VM_QEMU_PREFIX=(ip netns exec "$VM_NETNS")
	VM_TRANSPORT_ARGS+=(-netdev "tap,id=ivbnet,ifname=$VM_NET_TAP,script=no,downscript=no,vhost=$vhost"
		-device virtio-net-pci,netdev=ivbnet)
}

# vm_net_up : with a tap (VM_NET=tap, from vm_transport_args), make its
# network namespace anew: lo up, the tap with the host's address, up. A
# namespace that cannot be made is what this machine cannot do: one line,
# exit 2 (the boot is undone by setup.sh's exit hook).
vm_net_up() {
	local err
	[ "$VM_NET" = tap ] || return 0
	vm_net_down >/dev/null
	if ! err=$({ ip netns add "$VM_NETNS" && ip -n "$VM_NETNS" link set lo up &&
		ip -n "$VM_NETNS" tuntap add dev "$VM_NET_TAP" mode tap &&
		ip -n "$VM_NETNS" addr add "$VM_NET_HOST/$VM_NET_BITS" dev "$VM_NET_TAP" &&
		ip -n "$VM_NETNS" link set "$VM_NET_TAP" up; } 2>&1); then
		ip netns delete "$VM_NETNS" 2>/dev/null || true
		printf '%s: IVSHMEM_NET=tap: cannot make the network namespace %s and its tap: %s\n' \
			"$VM_PROG" "$VM_NETNS" "${err//$'\n'/; }" >&2
		exit 2
	fi
}

# vm_net_down : remove this state directory's network namespace, if there
# is one (its tap goes with it). Whatever ran in it has been stopped.
vm_net_down() {
	local ns
	command -v ip >/dev/null || return 0
	ns=$(vm_netns_name)
	[ -e "$VM_NETNS_DIR/$ns" ] || return 0
	if ip netns delete "$ns" 2>/dev/null; then
		vm_log "Removed the network namespace $ns"
	else
		vm_warn "cannot remove the network namespace $ns (ip netns delete $ns)"
	fi
}

# vm_console_line TOKEN : the rest of the first console line that has TOKEN
# (after it and a space), or fail.
vm_console_line() {
	local line
	line=$(grep -a -m1 -o "$1 .*" "$VM_CONSOLE" 2>/dev/null) || return 1
	line=${line%$'\r'}
	printf '%s\n' "${line#"$1 "}"
}

# Wait until the console shows the readiness token (or guest_reader's word
# that it cannot attach, IVB-GUEST-FAILED), QEMU $2 exits, or $1 seconds
# pass. Returns 0 when either line came.
vm_wait_ready() {
	wait_line --pid "$2" "$VM_CONSOLE" "$VM_READY_TOKEN|$VM_FAILED_TOKEN" "$1"
}

# The cloud guest: deploy the static guest_reader over SSH (no compiler or
# network needed in the guest), bind the device to vfio-pci in doorbell
# mode, start it as root in the background and wait for its readiness line
# in its log. Also used before each run, so the guest runs the current
# binary.
vm_cloud_start_reader() {
	local remote=/usr/local/bin/guest_reader args=() word
	cloud_stop_program "$VM_STATE_DIR" 5 >/dev/null 2>&1 || true
	cloud_deploy "$VM_STATE_DIR" "$IVSHMEM_BUILD_DIR/guest_reader" "$remote" >/dev/null || return 1
	if [ "$IVSHMEM_MODE" = doorbell ]; then
		cloud_ssh "$VM_STATE_DIR" "sudo modprobe vfio-pci && { [ -e /sys/bus/pci/drivers/vfio-pci/new_id ] && echo '1af4 1110' | sudo tee /sys/bus/pci/drivers/vfio-pci/new_id >/dev/null 2>&1; true; }" </dev/null ||
			{ vm_warn "cannot load vfio-pci in the cloud guest"; return 1; }
		args+=(--doorbell)
	else
		args+=(--bar-map "$IVSHMEM_BAR_MAP")
	fi
	for word in $IVSHMEM_GUEST_ARGS; do args+=("$word"); done
	cloud_start_program "$VM_STATE_DIR" "$remote" "${args[@]}" >/dev/null || return 1
	# One SSH call that waits in the guest, bounded, for the readiness line.
	cloud_ssh "$VM_STATE_DIR" "for i in \$(seq 120); do grep -q $VM_READY_TOKEN $CLOUD_GUEST_LOG_DIR/guest_reader.log 2>/dev/null && exit 0; sleep 0.25; done; tail -n 5 $CLOUD_GUEST_LOG_DIR/guest_reader.log; exit 1" </dev/null
}

# Readiness of the guest: the micro guest's console line, or for the cloud
# guest SSH, cloud-init and a running guest_reader.
vm_guest_ready() {
	local deadline=$1 pid=$2
	if [ "$IVSHMEM_GUEST" = cloud ]; then
		cloud_wait_ready "$VM_STATE_DIR" "$deadline" "$pid" && vm_cloud_start_reader
	else
		vm_wait_ready "$deadline" "$pid"
	fi
}

# Stop QEMU $1: SIGTERM is a clean QEMU shutdown; SIGKILL after 10 s.
vm_kill() {
	kill -TERM "$1" 2>/dev/null || return 0
	wait_exit "$1" 10 || kill -KILL "$1" 2>/dev/null || true
}

# Pin QEMU's vCPU threads (named "CPU n/TCG" or "CPU n/KVM") to IVSHMEM_VCPU_CPU.
# Their thread ids go to VM_VCPU_TIDS (for the idle-CPU measurement).
vm_pin_vcpus() {
	local pid=$1 task comm
	VM_VCPU_TIDS=""
	for task in /proc/"$pid"/task/*; do
		comm=$(cat "$task/comm" 2>/dev/null) || continue
		if [[ $comm == CPU\ * ]]; then
			VM_VCPU_TIDS+="${VM_VCPU_TIDS:+ }${task##*/}"
			taskset -pc "$IVSHMEM_VCPU_CPU" "${task##*/}" >/dev/null ||
				vm_warn "cannot pin $comm to CPU $IVSHMEM_VCPU_CPU"
		fi
	done
}

# What QEMU is started under (vm_transport_args): nothing, or a tap's
# network namespace.
VM_QEMU_PREFIX=()

# Set while a boot is under way: what vm_boot_abandoned must undo.
VM_BOOTING=""

# setup.sh start's hook on every exit (vm/signals.bash's SIG_AT_EXIT): a
# boot cut short, by SIGINT, SIGTERM or SIGHUP or by an error, leaves
# nothing behind (its QEMU, its server, its shared memory); a VM that was
# already up is left alone.
vm_boot_abandoned() {
	[ -n "$VM_BOOTING" ] || return 0
	if sig_stopped; then
		vm_warn "interrupted (SIG$SIG_NAME): stopping the VM that was booting"
	fi
	vm_stop >/dev/null 2>&1 || true
}

# vm_remember_kvm_failure : KVM is present but a guest did not boot under
# it: say so in the cache, so later boots go straight to TCG.
vm_remember_kvm_failure() {
	if ! mkdir -p "$IVSHMEM_CACHE_DIR" ||
		! files_write "$IVSHMEM_CACHE_DIR/kvm-failed" <<<"$(date -u +%Y-%m-%dT%H:%M:%SZ) on kernel $(uname -r)"; then
		vm_warn "cannot record the KVM failure in $IVSHMEM_CACHE_DIR (the next boot tries KVM again)"
	fi
}

# vm_boot_files : this attempt's console log and QEMU error file, made
# empty (what a failure shows is this attempt's), and the pidfile's name
# cleared. QEMU follows links when it opens its console file and pidfile:
# the console is made here first. Exits if the state directory is not
# writable.
vm_boot_files() {
	if ! vm_state_new "$VM_CONSOLE" || ! vm_state_new "$VM_QEMU_ERR"; then
		vm_die "cannot write in $(dirname "$VM_CONSOLE")"
	fi
	rm -f "$VM_PIDFILE" "$VM_QEMU_ID"
}

# vm_launch : start QEMU with VM_QEMU_ARGS (daemonized, its errors into
# VM_QEMU_ERR, under VM_QEMU_PREFIX: the network namespace of a tap) and
# record it in VM_QEMU_ID. Sets VM_LAUNCHED_PID; on failure says why in
# VM_BOOT_FAILURE and returns 1, having stopped nothing.
vm_launch() {
	local pid=""
	VM_LAUNCHED_PID=""
	if ! vm_detached "${VM_QEMU_PREFIX[@]}" qemu-system-x86_64 "${VM_QEMU_ARGS[@]}" 2>>"$VM_QEMU_ERR"; then
		VM_BOOT_FAILURE="QEMU failed to start: $(grep -m1 . "$VM_QEMU_ERR")"
		return 1
	fi
	vm_state_file "$VM_PIDFILE" && vm_state_file "$VM_CONSOLE" && pid=$(cat "$VM_PIDFILE")
	if ! [[ $pid =~ ^[0-9]+$ ]] || ! vm_proc_record "$VM_QEMU_ID" "$pid"; then
		VM_BOOT_FAILURE="QEMU exited as soon as it started: $(grep -m1 . "$VM_QEMU_ERR")"
		return 1
	fi
	VM_LAUNCHED_PID=$pid
}

# Boot under accel $1 with deadline $2. Returns 0 when the guest is ready;
# otherwise stops QEMU (and what was made for it), says why in
# VM_BOOT_FAILURE and returns 1.
vm_boot_with() {
	local accel=$1 deadline=$2 kernel pid start guest_kernel ready failed
	if [ "$IVSHMEM_GUEST" = cloud ]; then
		kernel=${CLOUD_KERNEL:-$CLOUD_BASE}
	else
		kernel=$(vm_kernel)
	fi
	if ! vm_qemu_args "$accel" "$kernel"; then
		VM_BOOT_FAILURE="cannot assemble the QEMU command line"
		return 1
	fi
	VM_BOOTING=1
	vm_boot_files
	start=$(date +%s.%N)
	if [ "$IVSHMEM_MODE" = doorbell ]; then
		vm_start_server || return 1
	else
		vm_make_shm
	fi
	vm_net_up
	if ! vm_launch; then
		vm_boot_undo
		return 1
	fi
	pid=$VM_LAUNCHED_PID
	ready=0
	vm_guest_ready "$deadline" "$pid" && ready=1
	if [ $ready = 1 ] && [ "$IVSHMEM_GUEST" = micro ] && failed=$(vm_console_line "$VM_FAILED_TOKEN"); then
		# What guest_reader cannot attach to now it never will: one line,
		# exit 2, the boot undone (and no KVM failure to remember).
		vm_kill "$pid"
		rm -f "$VM_PIDFILE" "$VM_QEMU_ID"
		vm_boot_undo
		VM_BOOTING=""
		printf '%s: the guest cannot attach: %s\n' "$VM_PROG" "$failed" >&2
		exit 2
	fi
	if [ $ready = 0 ]; then
		if kill -0 "$pid" 2>/dev/null; then
			VM_BOOT_FAILURE="guest not ready within ${deadline}s"
		else
			VM_BOOT_FAILURE="QEMU exited before the guest was ready $(grep -m1 . "$VM_QEMU_ERR")"
		fi
		vm_kill "$pid"
		rm -f "$VM_PIDFILE" "$VM_QEMU_ID"
		vm_boot_undo
		return 1
	fi
	# How the guest mapped BAR2, as guest_reader says it did.
	if [ "$IVSHMEM_GUEST" = micro ] && ready=$(vm_console_line "$VM_READY_TOKEN") &&
		[[ $ready == *" bar_map "* ]]; then
		VM_BAR_MAP=${ready##* bar_map }
	fi
	vm_pin_vcpus "$pid"
	if [ "$IVSHMEM_GUEST" = cloud ]; then
		guest_kernel=$(cloud_ssh "$VM_STATE_DIR" uname -r </dev/null) || guest_kernel=unknown
	else
		guest_kernel=$(vm_kernel_version "$kernel")
	fi
	vm_write_env "$accel" "$pid" "$kernel" "$guest_kernel" \
		"$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
	VM_BOOTING=""
	return 0
}

# What vm_boot_with made for a QEMU that did not come up: its server, its
# shared memory, its network namespace.
vm_boot_undo() {
	vm_stop_server >/dev/null
	vm_remove_shm
	vm_net_down >/dev/null
}

# The accelerators to try, in order, into VM_ACCELS: KVM first when usable
# (and not known to hang here), then TCG; or the one IVSHMEM_ACCEL forces.
vm_accels() {
	local kvm_failed=$IVSHMEM_CACHE_DIR/kvm-failed
	case $IVSHMEM_ACCEL in
	kvm) VM_ACCELS=(kvm) ;;
	tcg) VM_ACCELS=(tcg) ;;
	auto)
		if [ "$IVSHMEM_CPU_PM" = on ]; then
			# cpu-pm is KVM's: no falling back to a TCG guest without it.
			vm_log "IVSHMEM_CPU_PM=on: KVM only, no TCG fallback"
			VM_ACCELS=(kvm)
		elif ! vm_kvm_usable; then
			vm_log "KVM: /dev/kvm missing or not accessible; using TCG (software emulation)"
			VM_ACCELS=(tcg)
		elif [ -f "$kvm_failed" ]; then
			vm_log "KVM: a KVM guest did not boot here before ($(cat "$kvm_failed")); using TCG. IVSHMEM_ACCEL=kvm tries KVM again"
			VM_ACCELS=(tcg)
		else
			VM_ACCELS=(kvm tcg)
		fi
		;;
	*) vm_die "IVSHMEM_ACCEL=$IVSHMEM_ACCEL: expected auto, kvm or tcg" ;;
	esac
}

# vm_boot_accels WHAT BOOT READY FAILED : boot WHAT ("the micro guest
# (plain mode)") under each accelerator of vm_accels in turn until one
# works: the one place that tries KVM and falls back to TCG, for one guest
# (vm_start) and for a pair (intervm_start). BOOT ACCEL DEADLINE boots and
# returns 0 once ready, having undone everything otherwise; READY ACCEL
# says it is up; FAILED ACCEL FALLBACK says why an attempt failed
# (FALLBACK is 1 when KVM failed and TCG follows, the failure then
# remembered in the cache). Returns 1 when every attempt failed, for the
# caller to show the consoles.
vm_boot_accels() {
	local what=$1 boot=$2 ready=$3 failed=$4 accel deadline fallback
	vm_accels
	for accel in "${VM_ACCELS[@]}"; do
		deadline=$IVSHMEM_BOOT_TIMEOUT fallback=""
		[ "$accel" = kvm ] && [ ${#VM_ACCELS[@]} -gt 1 ] && deadline=$IVSHMEM_KVM_TIMEOUT fallback=1
		vm_log "Booting $what under $accel, deadline ${deadline}s"
		if "$boot" "$accel" "$deadline"; then
			"$ready" "$accel"
			return 0
		fi
		[ -z "$fallback" ] || vm_remember_kvm_failure
		"$failed" "$accel" "$fallback"
	done
	return 1
}

# vm_start's hooks for vm_boot_accels.
vm__booted() {
	vm_load_env
	vm_log "Guest ready in ${VM_BOOT_SECONDS}s under $1: QEMU pid $VM_QEMU_PID, vCPU on host CPU $IVSHMEM_VCPU_CPU"
	vm_log "Console log: $VM_CONSOLE. Stop it with: ./setup.sh stop"
}

vm__boot_failed() {
	if [ -n "$2" ]; then
		vm_log "KVM: $VM_BOOT_FAILURE (KVM present but unusable here); stopped it, falling back to TCG"
	else
		vm_warn "$1: $VM_BOOT_FAILURE"
	fi
}

# vm_running_differs : how the running VM (vm.env loaded) differs from the
# IVSHMEM_BACKING, IVSHMEM_BAR_MAP and IVSHMEM_CPU_PM asked for, as
# "backing shm (you asked for memfd)", or nothing. A VM recorded without
# them was booted with what there was then: shm, uc, off.
vm_running_differs() {
	local out="" cpu_pm=${VM_CPU_PM:-off} bar=${VM_BAR_MAP:-uc}
	[ "${VM_BACKING:-shm}" = "$IVSHMEM_BACKING" ] ||
		out+="backing ${VM_BACKING:-shm} (you asked for $IVSHMEM_BACKING), "
	# Doorbell guests map through VFIO whatever IVSHMEM_BAR_MAP says (uc).
	[ "$VM_MODE" != plain ] || [ "$bar" = "$IVSHMEM_BAR_MAP" ] ||
		out+="BAR map $bar (you asked for $IVSHMEM_BAR_MAP), "
	[[ $cpu_pm == not\ applicable* ]] && cpu_pm=off
	[ "$cpu_pm" = "$IVSHMEM_CPU_PM" ] || out+="cpu-pm $cpu_pm (you asked for $IVSHMEM_CPU_PM), "
	printf '%s' "${out%, }"
}

# Start the VM unless one runs. KVM first when usable (and not known to
# hang here), TCG otherwise or when KVM misses its deadline.
vm_start() {
	local pid missing vm_settings_differ
	vm_state_open
	mkdir -p "$IVSHMEM_CACHE_DIR"
	vm_clear_stale
	intervm_refuse_running host-vm
	pid=$(vm_pid)
	if [ -n "$pid" ]; then
		vm_load_env || true
		if [ "$VM_MODE" != "$IVSHMEM_MODE" ] || [ "$VM_GUEST" != "$IVSHMEM_GUEST" ]; then
			vm_die "a VM is running in ${VM_MODE:-?} mode with the ${VM_GUEST:-?} guest (pid $pid); you asked for $IVSHMEM_MODE/$IVSHMEM_GUEST: ./setup.sh stop first"
		fi
		vm_settings_differ=$(vm_running_differs)
		[ -z "$vm_settings_differ" ] ||
			vm_die "a VM is running with $vm_settings_differ (pid $pid): ./setup.sh stop first"

		missing=$(vm_missing)
		if [ -z "$missing" ]; then
			vm_log "VM already running: pid $pid, $VM_MODE mode, $VM_GUEST guest, ${VM_ACCEL:-?}"
			return 0
		fi
		# The guest cannot be reached, and QEMU cannot be handed a new
		# server or file: the whole set starts again.
		vm_log "The running VM (QEMU pid $pid) is not usable: $missing. Restarting it"
		vm_stop
	fi
	# What a VM that died left behind: its server, its shared memory, its
	# network namespace.
	vm_stop_server
	vm_remove_shm
	vm_net_down
	vm_shm_free
	vm_hugepages_reserve
	vm_backing_available
	case $IVSHMEM_GUEST in
	micro) ;;
	cloud)
		cloud_prepare_base || vm_die "no base image for the cloud guest"
		cloud_prepare_instance "$VM_STATE_DIR" || vm_die "cannot prepare the cloud guest's instance"
		;;
	*) vm_die "IVSHMEM_GUEST=$IVSHMEM_GUEST: expected micro or cloud" ;;
	esac
	vm_boot_accels "the $IVSHMEM_GUEST guest ($IVSHMEM_MODE mode)" vm_boot_with vm__booted vm__boot_failed && return 0
	if [ -s "$VM_CONSOLE" ]; then
		vm_warn "the guest did not become ready; last lines of $VM_CONSOLE:"
		tail -n 20 "$VM_CONSOLE" | sed 's/^/    | /' >&2
	else
		vm_warn "the guest did not become ready (its console, $VM_CONSOLE, is empty)"
	fi
	[ -s "$VM_QEMU_ERR" ] && sed 's/^/    qemu: /' "$VM_QEMU_ERR" >&2
	return 1
}

vm_stop() {
	local pid
	vm_clear_stale
	pid=$(vm_pid)
	if [ -z "$pid" ]; then
		vm_log "No VM running (state in $VM_STATE_DIR)"
	else
		vm_load_env || true
		if [ "${VM_GUEST:-}" = cloud ] && cloud_shutdown "$VM_STATE_DIR" 2>/dev/null &&
			wait_exit "$pid" 60; then
			vm_log "The guest powered off; QEMU (pid $pid) exited"
		else
			vm_kill "$pid"
			vm_log "Stopped QEMU (pid $pid)"
		fi
	fi
	rm -f "$VM_PIDFILE" "$VM_QEMU_ID"
	vm_stop_server
	vm_remove_shm
	vm_net_down
}

vm_status() {
	local pid missing
	# Stale records are cleared only with the lock: while someone holds it,
	# a record may be half-made (a boot in progress), not stale.
	if [ -d "$VM_STATE_DIR" ]; then
		if vm_lock_try "setup.sh status"; then
			vm_clear_stale
		else
			vm_log "VM: $VM_BUSY"
		fi
	fi
	pid=$(vm_pid)
	if [ -z "$pid" ]; then
		vm_log "VM: not running (state in $VM_STATE_DIR)"
		return 3
	fi
	vm_load_env || true
	vm_log "VM: running, QEMU pid $pid"
	vm_log "  mode $VM_MODE, guest $VM_GUEST, accel $VM_ACCEL, ${VM_VCPUS} vCPU(s) pinned to CPU $VM_VCPU_CPU, memory $VM_MEM"
	vm_log "  kernel $VM_GUEST_KERNEL, $VM_QEMU_VERSION"
	vm_log "  shared memory $VM_SHM_PATH ($VM_SHM_SIZE); started $VM_STARTED, ready in ${VM_BOOT_SECONDS}s"
	vm_log "  backing ${VM_BACKING:-shm}, BAR2 mapped ${VM_BAR_MAP:-uc}, cpu-pm ${VM_CPU_PM:-off}"
	if [ "${VM_NET:-}" = tap ]; then
		vm_log "  virtio-net: tap $VM_NET_TAP in network namespace $VM_NETNS (host $VM_NET_HOST/$VM_NET_BITS, guest $VM_TRANSPORT_TCP_HOST), vhost-net: $VM_VHOST_NET"
	fi
	if [ "$VM_MODE" = doorbell ]; then
		local spid
		spid=$(vm_server_pid)
		if [ -n "$spid" ]; then
			vm_log "  ivshmem server: running, pid $spid, socket $VM_SERVER_SOCKET, log $VM_SERVER_LOG"
		else
			vm_log "  ivshmem server: NOT running"
		fi
	fi
	if [ "$VM_GUEST" = cloud ]; then
		vm_log "  ssh: ./setup.sh ssh   (or: ssh -i $VM_STATE_DIR/ssh/id_ed25519 -p $(cat "$VM_STATE_DIR/ssh-port" 2>/dev/null || echo "$IVSHMEM_SSH_PORT") $CLOUD_USER@127.0.0.1)"
	fi
	vm_log "  console log $VM_CONSOLE"
	missing=$(vm_missing)
	if [ -n "$missing" ]; then
		vm_log "VM: NOT usable: $missing; IVSHMEM_MODE=$VM_MODE ./setup.sh restarts it"
		return 1
	fi
}
