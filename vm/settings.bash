# shellcheck shell=bash
# vm/settings.bash - the IVSHMEM_* settings checked before anything starts.
# Sourced by vm/vm.sh; defines functions prefixed settings_ and runs nothing.
#
# A bad setting is one line on stderr, "PROG: NAME=VALUE: what is wrong
# (what is accepted)", and exit 2, in well under a second and before a file
# is written or a process started: setup.sh and run_test.sh call
# settings_check_vm / settings_check_run first. The value parsers below are
# the shell's counterparts of the C ones (ivb_parse_size, ivb_parse_duration,
# host_writer's parse_count): same units, same ranges.
#
#   settings_bytes VALUE      a size (65536, 64K, 64M, 1G, 1T; binary) in bytes
#   settings_ns VALUE         a duration (ns, us, ms, s, m, h; bare: seconds) in ns
#   settings_cpus             the CPUs this process may run on, one per line
#   settings_last_cpu         the highest of them (the vCPU's default)
#   settings_first_cpu        the lowest (the default of guest A's vCPU, vm-vm)

# Program name for messages; run_test.sh sets its own.
: "${VM_PROG:=setup}"

settings_fail() { # NAME REASON: the one line, exit 2
	printf '%s: %s=%s: %s\n' "$VM_PROG" "$1" "${!1-}" "$2" >&2
	exit 2
}

settings_bytes() {
	local n unit shift=0
	[[ $1 =~ ^([0-9]{1,15})([KkMmGgTt]?)$ ]] || return 1
	n=$((10#${BASH_REMATCH[1]})) unit=${BASH_REMATCH[2]}
	case $unit in
	K | k) shift=10 ;;
	M | m) shift=20 ;;
	G | g) shift=30 ;;
	T | t) shift=40 ;;
	esac
	echo $((n << shift))
}

settings_ns() {
	local num unit scale
	[[ $1 =~ ^([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|ms|s|m|h)?$ ]] || return 1
	num=${BASH_REMATCH[1]} unit=${BASH_REMATCH[3]:-s}
	case $unit in
	ns) scale=1 ;;
	us) scale=1000 ;;
	ms) scale=1000000 ;;
	s) scale=1000000000 ;;
	m) scale=60000000000 ;;
	h) scale=3600000000000 ;;
	esac
	awk -v n="$num" -v s="$scale" 'BEGIN { v = n * s; if (v > 1e18) exit 1; printf "%.0f\n", v }'
}

# The CPUs of this process's affinity mask (a subset of the online ones).
settings_cpus() {
	local list part lo hi
	list=$(sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' /proc/self/status)
	[ -n "$list" ] || list=$(cat /sys/devices/system/cpu/online)
	for part in ${list//,/ }; do
		lo=${part%-*} hi=${part#*-}
		seq "$lo" "$hi"
	done
}

settings_last_cpu() { settings_cpus | tail -n 1; }
settings_first_cpu() { settings_cpus | head -n 1; }

# settings_choice NAME WORD... : the value is one of the words.
settings_choice() {
	local name=$1 w
	shift
	for w; do [ "${!name}" = "$w" ] && return 0; done
	local words="$*"
	settings_fail "$name" "expected ${words// /, }"
}

# settings_count NAME LO HI : a whole number in LO..HI.
settings_count() {
	local v=${!1}
	if ! [[ $v =~ ^[0-9]{1,12}$ ]] || [ $((10#$v)) -lt "$2" ] || [ $((10#$v)) -gt "$3" ]; then
		settings_fail "$1" "not a whole number in $2..$3"
	fi
}

# settings_duration NAME MIN_NS MAX_NS RANGE_TEXT : a duration in range.
settings_duration() {
	local ns
	ns=$(settings_ns "${!1}") || settings_fail "$1" "not a duration in $4 (e.g. 10s, 500ms, 10us)"
	if [ "$ns" -lt "$2" ] || [ "$ns" -gt "$3" ]; then
		settings_fail "$1" "not a duration in $4 (e.g. 10s, 500ms, 10us)"
	fi
}

# settings_cpu NAME [none] : one CPU this process may use (or "none").
settings_cpu() {
	local v=${!1} cpus
	[ $# -gt 1 ] && [ "$v" = none ] && return 0
	cpus=$(settings_cpus | paste -sd, -)
	if ! [[ $v =~ ^[0-9]{1,6}$ ]] || ! grep -qx -- "$((10#$v))" < <(settings_cpus); then
		settings_fail "$1" "not a CPU this machine has online for us (${cpus}${2:+, or none})"
	fi
}

# settings_frames NAME : a comma-separated list of 1080p, 1440p, 4k or WxH.
settings_frames() {
	local f
	[ -n "${!1}" ] || settings_fail "$1" "empty (expected 1080p, 1440p, 4k or WxH, comma-separated)"
	for f in ${!1//,/ }; do
		[[ $f =~ ^(1080p|1440p|4k|[1-9][0-9]{0,4}x[1-9][0-9]{0,4})$ ]] ||
			settings_fail "$1" "'$f' is not 1080p, 1440p, 4k or WxH"
	done
}

# Free bytes on the file system that holds directory $1.
settings_free_bytes() { df -B1 --output=avail "$1" 2>/dev/null | awk 'NR == 2 { print $1 }'; }

# The host's memory in bytes (MemTotal).
settings_mem_bytes() { awk '$1 == "MemTotal:" { printf "%.0f\n", $2 * 1024 }' /proc/meminfo; }

# settings_human BYTES : e.g. 23.5 GiB.
settings_human() {
	awk -v b="$1" 'BEGIN { if (b >= 2^30) printf "%.1f GiB\n", b / 2^30; else printf "%.1f MiB\n", b / 2^20 }'
}

# settings_shm_size DIR : IVSHMEM_SHM_SIZE is a power of two from 1M, no
# more than the free space in DIR (where the file goes) nor the host's memory.
settings_shm_size() {
	local bytes free mem
	bytes=$(settings_bytes "$IVSHMEM_SHM_SIZE") ||
		settings_fail IVSHMEM_SHM_SIZE "not a size (e.g. 64M)"
	if [ "$bytes" -lt 1048576 ] || [ $((bytes & (bytes - 1))) -ne 0 ]; then
		settings_fail IVSHMEM_SHM_SIZE "not a power of two of at least 1M (QEMU requires a power-of-two BAR)"
	fi
	# hugetlbfs has its pool of huge pages instead (vm_backing_available).
	free=""
	[ "$(stat -f -c %T "$1" 2>/dev/null)" = hugetlbfs ] || free=$(settings_free_bytes "$1")
	if [[ $free =~ ^[0-9]+$ ]] && [ "$bytes" -gt "$free" ]; then
		settings_fail IVSHMEM_SHM_SIZE "more than the free space in $1 ($(settings_human "$free"))"
	fi
	mem=$(settings_mem_bytes)
	[ "$bytes" -le "$mem" ] || settings_fail IVSHMEM_SHM_SIZE "more than the host's memory ($(settings_human "$mem"))"
}

# settings_shm_path : IVSHMEM_SHM_PATH is an absolute path in a directory
# we can write to; a file already there must be ours (it is replaced).
settings_shm_path() {
	local dir owner
	[[ $IVSHMEM_SHM_PATH == /* ]] || settings_fail IVSHMEM_SHM_PATH "not an absolute path (e.g. /dev/shm/ivshmem)"
	dir=$(dirname "$IVSHMEM_SHM_PATH")
	if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then
		settings_fail IVSHMEM_SHM_PATH "$dir is not a directory we can write to"
	fi
	if [ -e "$IVSHMEM_SHM_PATH" ] || [ -L "$IVSHMEM_SHM_PATH" ]; then
		[ -d "$IVSHMEM_SHM_PATH" ] && settings_fail IVSHMEM_SHM_PATH "is a directory"
		owner=$(stat -c %u "$IVSHMEM_SHM_PATH")
		[ "$owner" = "$(id -u)" ] ||
			settings_fail IVSHMEM_SHM_PATH "exists and belongs to uid $owner, not to you: choose another path"
	fi
}

# settings_state_dir : IVSHMEM_STATE_DIR, if it exists, is a directory of
# ours that nobody else can write to (so no one can plant a link in it), and
# not itself a link.
settings_state_dir() {
	local dir=$IVSHMEM_STATE_DIR owner mode
	[ -n "$dir" ] || settings_fail IVSHMEM_STATE_DIR "empty"
	if [ -L "$dir" ]; then
		settings_fail IVSHMEM_STATE_DIR "is a symbolic link: refusing to use it (give the real directory)"
	fi
	[ -e "$dir" ] || return 0
	[ -d "$dir" ] || settings_fail IVSHMEM_STATE_DIR "not a directory"
	read -r owner mode < <(stat -c '%u %a' "$dir")
	[ "$owner" = "$(id -u)" ] ||
		settings_fail IVSHMEM_STATE_DIR "owned by uid $owner, not by you: refusing to use it"
	if (((8#$mode) & 8#022)); then
		settings_fail IVSHMEM_STATE_DIR "writable by others (mode $mode): refusing to use it (chmod 700 it)"
	fi
}

# settings_topology : IVSHMEM_TOPOLOGY is host-vm, vm-vm or chain (host-vm
# running the forwarding chain by default: vm/vm.sh), and a vm-vm pair
# is made of micro guests (the cloud guest's run goes over SSH, and no
# second cloud instance is prepared).
settings_topology() {
	settings_choice IVSHMEM_TOPOLOGY host-vm vm-vm chain
	if [ "$IVSHMEM_TOPOLOGY" = vm-vm ] && [ "${IVSHMEM_GUEST:-micro}" != micro ]; then
		settings_fail IVSHMEM_GUEST "does not combine with IVSHMEM_TOPOLOGY=vm-vm, whose two guests are micro guests (unset IVSHMEM_GUEST)"
	fi
}

# ---- the VM-level settings a configuration matrix sweeps -------------------
#
# IVSHMEM_BACKING (shm | memfd | hugetlb), IVSHMEM_BAR_MAP (uc | wc),
# IVSHMEM_CPU_PM (off | on), IVSHMEM_HUGEPAGES (empty, or huge pages to
# reserve) and IVSHMEM_HUGETLB_DIR (empty: the first hugetlbfs mount). A
# combination that cannot work is one line and exit 2; so is one this
# machine cannot give ("not available: ..."). Nothing here changes the
# machine: huge pages are reserved only by vm_hugepages_reserve, and only
# when IVSHMEM_HUGEPAGES asks.

# settings_hugetlb_mount : the hugetlbfs directory (IVSHMEM_HUGETLB_DIR, or
# the first hugetlbfs mount) into SETTINGS_HUGETLB_DIR, and its page size in
# kB into SETTINGS_HUGETLB_KB; fails (one line, exit 2) when there is none.
settings_hugetlb_mount() {
	local dir opts size kb
	dir=$IVSHMEM_HUGETLB_DIR
	if [ -z "$dir" ]; then
		read -r dir opts < <(awk '$3 == "hugetlbfs" { print $2, $4; exit }' /proc/mounts) || true
		[ -n "$dir" ] || settings_fail IVSHMEM_BACKING "not available: no hugetlbfs is mounted (mount -t hugetlbfs none /dev/hugepages, or set IVSHMEM_HUGETLB_DIR)"
	else
		opts=$(awk -v d="$dir" '$3 == "hugetlbfs" && $2 == d { print $4; exit }' /proc/mounts)
		[ -n "$opts" ] || settings_fail IVSHMEM_HUGETLB_DIR "not a hugetlbfs mount point (see /proc/mounts)"
	fi
	[ -w "$dir" ] || settings_fail IVSHMEM_BACKING "not available: the hugetlbfs mount $dir is not writable by uid $(id -u)"
	size=$(tr ',' '\n' <<<"$opts" | sed -n 's/^pagesize=//p')
	if [ -n "$size" ]; then
		kb=$(($(settings_bytes "$size") / 1024))
	else
		kb=$(awk '$1 == "Hugepagesize:" { print $2 }' /proc/meminfo)
	fi
	if ! [[ $kb =~ ^[0-9]+$ ]] || [ ! -d "/sys/kernel/mm/hugepages/hugepages-${kb}kB" ]; then
		settings_fail IVSHMEM_BACKING "not available: cannot tell the huge page size of $dir"
	fi
	SETTINGS_HUGETLB_DIR=$dir SETTINGS_HUGETLB_KB=$kb
}

# settings_hugepages_free : free huge pages of the mount's size.
settings_hugepages_free() { cat "/sys/kernel/mm/hugepages/hugepages-${SETTINGS_HUGETLB_KB}kB/free_hugepages"; }

# settings_backing host-only|vm : IVSHMEM_BACKING and IVSHMEM_HUGEPAGES make
# sense together and in this mode. With hugetlb, IVSHMEM_SHM_PATH becomes
# the file of that name on the hugetlbfs mount (a VM's; host-only runs make
# their own there), and its size must be whole huge pages. Whether there
# are enough free huge pages is vm_backing_available's question, asked
# after IVSHMEM_HUGEPAGES has been applied.
settings_backing() {
	local bytes
	settings_choice IVSHMEM_BACKING shm memfd hugetlb
	if [ -n "$IVSHMEM_HUGEPAGES" ]; then
		settings_count IVSHMEM_HUGEPAGES 0 10000000
		[ "$IVSHMEM_BACKING" = hugetlb ] ||
			settings_fail IVSHMEM_HUGEPAGES "reserves huge pages for IVSHMEM_BACKING=hugetlb, not for $IVSHMEM_BACKING (unset it)"
	fi
	case $IVSHMEM_BACKING in
	memfd)
		# The host side of plain mode maps the memory by path; QEMU's
		# memory-backend-memfd has none and hands its descriptor to nobody.
		if [ "$1" = vm ] && [ "$IVSHMEM_MODE" = plain ]; then
			settings_fail IVSHMEM_BACKING "not available in plain mode: QEMU's memory-backend-memfd shares its memory with no other process, and the host side maps it by path (IVSHMEM_MODE=doorbell takes a memfd from the ivshmem server, over its socket)"
		fi
		command -v python3 >/dev/null ||
			settings_fail IVSHMEM_BACKING "needs python3 to make the memfd"
		;;
	hugetlb)
		settings_hugetlb_mount
		if [ -n "$IVSHMEM_HUGEPAGES" ] && [ ! -w "/sys/kernel/mm/hugepages/hugepages-${SETTINGS_HUGETLB_KB}kB/nr_hugepages" ]; then
			settings_fail IVSHMEM_HUGEPAGES "cannot reserve huge pages as uid $(id -u): /sys/kernel/mm/hugepages/hugepages-${SETTINGS_HUGETLB_KB}kB/nr_hugepages is not writable (run as root, or reserve them yourself)"
		fi
		bytes=$(settings_bytes "$IVSHMEM_SHM_SIZE") || settings_fail IVSHMEM_SHM_SIZE "not a size (e.g. 64M)"
		[ $((bytes % (SETTINGS_HUGETLB_KB * 1024))) = 0 ] ||
			settings_fail IVSHMEM_SHM_SIZE "not a whole number of $((SETTINGS_HUGETLB_KB / 1024)) MiB huge pages (IVSHMEM_BACKING=hugetlb)"
		[ "$1" = host-only ] || IVSHMEM_SHM_PATH=$SETTINGS_HUGETLB_DIR/$(basename "$IVSHMEM_SHM_PATH")
		;;
	esac
}

# settings_bar_map : IVSHMEM_BAR_MAP is uc, wc or vfio; wc only where the
# guest maps BAR2 through sysfs (plain mode: VFIO's mappings are uncached);
# vfio (VFIO's region 2, the device bound to vfio-pci as in doorbell mode)
# in the micro guest, whose initramfs binds it.
settings_bar_map() {
	settings_choice IVSHMEM_BAR_MAP uc wc vfio
	if [ "$IVSHMEM_BAR_MAP" = wc ] && [ "$IVSHMEM_MODE" = doorbell ]; then
		settings_fail IVSHMEM_BAR_MAP "not available in doorbell mode: the guest maps BAR2 through VFIO, whose mappings are uncached (resource2_wc is sysfs's, for plain mode)"
	fi
	if [ "$IVSHMEM_BAR_MAP" = vfio ] && [ "${IVSHMEM_GUEST:-micro}" != micro ]; then
		settings_fail IVSHMEM_BAR_MAP "micro guest only (its initramfs binds the device to vfio-pci); the cloud guest maps BAR2 through sysfs (uc or wc)"
	fi
}

# settings_cpu_pm : IVSHMEM_CPU_PM is off or on; on is KVM's
# (-overcommit cpu-pm=on: no exits on PAUSE, HLT, MWAIT), so it refuses an
# accelerator that cannot be KVM, and makes KVM the only one tried.
settings_cpu_pm() {
	settings_choice IVSHMEM_CPU_PM off on
	[ "$IVSHMEM_CPU_PM" = on ] || return 0
	[ "$IVSHMEM_ACCEL" != tcg ] ||
		settings_fail IVSHMEM_CPU_PM "needs KVM (it lets a KVM vCPU run PAUSE, HLT and MWAIT without exits; TCG has no exits to remove): not with IVSHMEM_ACCEL=tcg"
	if [ ! -c /dev/kvm ] || [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
		settings_fail IVSHMEM_CPU_PM "not available: needs KVM, and /dev/kvm is missing or not accessible"
	fi
	# A KVM that failed to boot a guest here before (vm_remember_kvm_failure)
	# is tried again only when asked for by name.
	local failed=${IVSHMEM_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ivshmem-bench}/kvm-failed
	if [ "$IVSHMEM_ACCEL" != kvm ] && [ -f "$failed" ]; then
		settings_fail IVSHMEM_CPU_PM "not available: needs KVM, and a KVM guest did not boot here ($(head -c 200 "$failed"), $failed); IVSHMEM_ACCEL=kvm tries KVM again"
	fi
}

# Everything setup.sh start needs, in the order a user would fix them.
# settings_transports : IVSHMEM_TRANSPORTS is none, or a list of serial, tcp
# and vsock without repeats.
settings_transports() {
	local t seen=","
	[ "$IVSHMEM_TRANSPORTS" = none ] && return 0
	[ -n "$IVSHMEM_TRANSPORTS" ] || settings_fail IVSHMEM_TRANSPORTS "empty (none, or a list of serial, tcp, vsock)"
	for t in ${IVSHMEM_TRANSPORTS//,/ }; do
		case $t in
		serial | tcp | vsock) ;;
		*) settings_fail IVSHMEM_TRANSPORTS "'$t' is not serial, tcp or vsock (or the whole value none)" ;;
		esac
		[[ $seen != *",$t,"* ]] || settings_fail IVSHMEM_TRANSPORTS "'$t' given twice"
		seen+="$t,"
	done
}

# settings_net : IVSHMEM_NET is user or tap; tap only where it has a use
# (the tcp channel of a host-vm micro guest) and where this machine allows
# it (root, ip, /dev/net/tun): the user asked for a tap, so there is no
# falling back to the user-mode network.
settings_net() {
	settings_choice IVSHMEM_NET user tap
	[ "$IVSHMEM_NET" = tap ] || return 0
	[ "$IVSHMEM_TOPOLOGY" = host-vm ] ||
		settings_fail IVSHMEM_NET "only for IVSHMEM_TOPOLOGY=host-vm (the vm-vm guests have no network)"
	[ "$IVSHMEM_GUEST" = micro ] ||
		settings_fail IVSHMEM_NET "only for the micro guest's tcp channel (the cloud guest's network is user-mode)"
	[[ ,$IVSHMEM_TRANSPORTS, == *,tcp,* ]] ||
		settings_fail IVSHMEM_NET "carries the tcp channel, which IVSHMEM_TRANSPORTS=$IVSHMEM_TRANSPORTS leaves out"
	[ "$(id -u)" = 0 ] ||
		settings_fail IVSHMEM_NET "needs root to make a network namespace and a tap device (running as uid $(id -u)); IVSHMEM_NET=user needs nothing"
	command -v ip >/dev/null ||
		settings_fail IVSHMEM_NET "no ip command (iproute2) to make the network namespace"
	[ -c /dev/net/tun ] ||
		settings_fail IVSHMEM_NET "/dev/net/tun is missing: this machine cannot give a tap device"
}

settings_check_vm() {
	local mem
	settings_choice IVSHMEM_MODE plain doorbell
	settings_choice IVSHMEM_GUEST micro cloud
	settings_topology
	settings_choice IVSHMEM_ACCEL auto kvm tcg
	settings_state_dir
	settings_backing vm
	settings_bar_map
	settings_cpu_pm
	settings_shm_path
	settings_shm_size "$(dirname "$IVSHMEM_SHM_PATH")"
	# A bare number would be MiB to QEMU but bytes here: ask for the unit.
	if ! mem=$(settings_bytes "$IVSHMEM_MEM") || ! [[ $IVSHMEM_MEM =~ [A-Za-z]$ ]]; then
		settings_fail IVSHMEM_MEM "not a size with a unit (e.g. 512M, 2G)"
	fi
	[ "$mem" -ge $((128 << 20)) ] || settings_fail IVSHMEM_MEM "less than the 128M a guest needs"
	[ "$mem" -le "$(settings_mem_bytes)" ] ||
		settings_fail IVSHMEM_MEM "more than the host's memory ($(settings_human "$(settings_mem_bytes)"))"
	settings_count IVSHMEM_VCPUS 1 64
	settings_cpu IVSHMEM_VCPU_CPU
	if [ "$IVSHMEM_TOPOLOGY" = vm-vm ]; then
		settings_cpu IVSHMEM_VCPU_CPU_A
		settings_cpu IVSHMEM_VCPU_CPU_B
	fi
	settings_count IVSHMEM_BOOT_TIMEOUT 1 86400
	settings_count IVSHMEM_KVM_TIMEOUT 1 86400
	settings_count IVSHMEM_VECTORS 1 64
	settings_transports
	settings_net
	# sun_path holds 107 bytes and a terminating zero.
	[ ${#IVSHMEM_SERVER_SOCKET} -le 107 ] ||
		settings_fail IVSHMEM_SERVER_SOCKET "longer than the 107 bytes a socket path can have"
	if [ -n "$IVSHMEM_KERNEL" ] && { [ ! -f "$IVSHMEM_KERNEL" ] || [ ! -r "$IVSHMEM_KERNEL" ]; }; then
		settings_fail IVSHMEM_KERNEL "not readable"
	fi
	if [ "$IVSHMEM_GUEST" = cloud ]; then
		settings_count IVSHMEM_SSH_PORT 1 65535
		settings_choice IVSHMEM_CLOUD_SOURCE auto official offline
	fi
}

# What run_test.sh passes to host_writer (and, host-only, to guest_reader).
settings_check_run() {
	settings_topology
	settings_count IVSHMEM_ITERATIONS 1 100000000
	settings_count IVSHMEM_WARMUP 0 100000000
	settings_count IVSHMEM_FRAME_ITERATIONS 1 1000000
	settings_count IVSHMEM_BENCH_ITERATIONS 1 100000000
	settings_frames IVSHMEM_FRAMES
	settings_duration IVSHMEM_GAP 0 60000000000 0..60s
	settings_duration IVSHMEM_TIMEOUT 1000000 3600000000000 1ms..1h
	settings_cpu IVSHMEM_WRITER_CPU none
	local w='(default|all|latency|frames|bandwidth|stream|sizelat|rate|limits|chain)'
	[[ $IVSHMEM_TESTS =~ ^$w(,$w)*$ ]] ||
		settings_fail IVSHMEM_TESTS "is not a comma-separated list of latency, frames, stream, sizelat, rate, limits, chain, default or all"
	[ ! -e "$IVSHMEM_RESULTS" ] || [ -d "$IVSHMEM_RESULTS" ] ||
		settings_fail IVSHMEM_RESULTS "exists and is not a directory"
}
