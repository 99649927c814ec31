# shellcheck shell=bash
# vm/cloud.sh - the Debian 12 "cloud" guest: base image, instance, SSH.
#
# A library for bash, sourced by setup.sh and the tests under
# `set -euo pipefail`. It defines functions named cloud_* (cloud__* are
# internal) and the globals listed below; sourcing it runs nothing but the
# defaults of the settings.
#
# The guest is a full Debian 12 system reached over SSH through QEMU's user
# network (a port on 127.0.0.1 only). Its disk is a thin qcow2 overlay in the
# VM state directory on top of a base image kept in a cache directory, so the
# base stays pristine and a reset only deletes the overlay. The base comes,
# in this order, from: the user (IVSHMEM_CLOUD_IMAGE), the cache, Debian's
# official generic cloud image (downloaded, resumable, checked against the
# published SHA512SUMS), or an equivalent image built offline from Debian's
# packages with mmdebstrap and booted with its own kernel (direct kernel
# boot). cloud-init provisions the guest from a NoCloud seed ISO built from
# the templates in cloud-init-config/.
#
# Settings (environment, defaults applied when this file is sourced):
#   IVSHMEM_CLOUD_URL        official image URL
#   IVSHMEM_CLOUD_SUMS_URL   its SHA512SUMS (default: beside the image)
#   IVSHMEM_CLOUD_IMAGE      a bootable disk image of your own (optional)
#   IVSHMEM_CLOUD_KERNEL, IVSHMEM_CLOUD_INITRD, IVSHMEM_CLOUD_APPEND
#                            direct kernel boot for IVSHMEM_CLOUD_IMAGE (optional)
#   IVSHMEM_CLOUD_SOURCE     auto | official | offline: which base to use (auto)
#   IVSHMEM_CLOUD_MIRROR     Debian mirror for the offline build (empty:
#                            mmdebstrap's default, deb.debian.org with updates
#                            and security)
#   IVSHMEM_CACHE_DIR        cache (${XDG_CACHE_HOME:-$HOME/.cache}/ivshmem-bench)
#   IVSHMEM_SSH_PORT         host port forwarded to the guest's sshd (2222)
#   IVSHMEM_CLOUD_DISK_SIZE  virtual size of the overlay (20G)
#   IVSHMEM_CLOUD_HOSTNAME   guest hostname (ivshmem-guest)
#
# Globals set by the functions:
#   CLOUD_BASE CLOUD_BASE_FORMAT CLOUD_SOURCE (user|official|offline)
#   CLOUD_KERNEL CLOUD_INITRD CLOUD_APPEND (direct boot only, else empty)
#   CLOUD_QEMU_ARGS (array)
#
# Files in a state directory: overlay.qcow2, base-id, instance-id,
# ssh/id_ed25519{,.pub}, seed/{user-data,meta-data}, seed.iso, ssh-port;
# console.log is where the caller points QEMU's serial port. Every file is
# made through vm/files.bash (staged in a private directory, renamed onto
# its name): a link planted at its name is replaced, not followed (the
# directory is made 0700); one planted in the cache or at a results file
# is refused. Files that a tool makes itself (qemu-img, ssh-keygen,
# genisoimage) have their name cleared first.
#
# Messages go to stderr, prefixed "cloud: "; stdout carries only data
# (command output from the guest, a PID). Functions return non-zero on
# failure after printing why; they do not rely on `set -e`, which bash
# turns off inside a function called from `if` or `||`.

# shellcheck source=vm/files.bash
. "$(dirname "${BASH_SOURCE[0]}")/files.bash"

: "${IVSHMEM_CLOUD_URL:=https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-generic-amd64.qcow2}"
: "${IVSHMEM_CLOUD_SUMS_URL:=${IVSHMEM_CLOUD_URL%/*}/SHA512SUMS}"
: "${IVSHMEM_CLOUD_IMAGE:=}"
: "${IVSHMEM_CLOUD_KERNEL:=}"
: "${IVSHMEM_CLOUD_INITRD:=}"
: "${IVSHMEM_CLOUD_APPEND:=root=/dev/vda1 rw console=ttyS0}"
: "${IVSHMEM_CLOUD_SOURCE:=auto}"
: "${IVSHMEM_CLOUD_MIRROR:=}"
: "${IVSHMEM_CACHE_DIR:=${XDG_CACHE_HOME:-$HOME/.cache}/ivshmem-bench}"
: "${IVSHMEM_SSH_PORT:=2222}"
: "${IVSHMEM_CLOUD_DISK_SIZE:=20G}"
: "${IVSHMEM_CLOUD_HOSTNAME:=ivshmem-guest}"

CLOUD_BASE=""
CLOUD_BASE_FORMAT=""
CLOUD_SOURCE=""
CLOUD_KERNEL=""
CLOUD_INITRD=""
CLOUD_APPEND=""
CLOUD_QEMU_ARGS=()
CLOUD__SSH_CMD=()

# The guest user cloud-init creates (see cloud-init-config/user-data.tmpl).
CLOUD_USER=debian
# Where the templates live: cloud-init-config/ at the top of the tree.
CLOUD_TEMPLATE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/cloud-init-config

# The offline image: Debian 12 with what a guest program and cloud-init need.
# Bump CLOUD_OFFLINE_RECIPE when the build changes in a way the package list
# and the customize script below do not show; the cache stamp includes both.
CLOUD_OFFLINE_RECIPE=1
CLOUD_OFFLINE_SUITE=bookworm
CLOUD_OFFLINE_PACKAGES=systemd-sysv,udev,dbus,cloud-init,openssh-server,sudo,linux-image-cloud-amd64,ca-certificates,pciutils,iproute2,netbase,procps,kmod,e2fsprogs
# Size of the root file system as built; cloud-init grows it to the overlay's
# virtual size on first boot (the overlay stays thin: zero writes unmap).
CLOUD_OFFLINE_FS_SIZE=2G
CLOUD_OFFLINE_LABEL=ivb-root
CLOUD_OFFLINE_APPEND="root=/dev/vda rw console=ttyS0"

# Where a guest program started by cloud_start_program keeps its state.
CLOUD_GUEST_RUN_DIR=/run/ivshmem-bench
CLOUD_GUEST_LOG_DIR=/var/log/ivshmem-bench

# ---------------------------------------------------------------- helpers --

cloud__log() { printf 'cloud: %s\n' "$*" >&2; }
cloud__err() {
	printf 'cloud: error: %s\n' "$*" >&2
	return 1
}

# cloud__need CMD... : fail naming the first command that is not installed.
cloud__need() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || {
			cloud__err "'$c' is not installed (./setup.sh deps installs it)"
			return 1
		}
	done
}

# cloud__qemu_path PATH : PATH with commas doubled, for QEMU option values.
cloud__qemu_path() { printf '%s' "${1//,/,,}"; }

# cloud__cache : the cache directory for images (created).
cloud__cache() {
	mkdir -p "$IVSHMEM_CACHE_DIR/cloud" || return 1
	printf '%s\n' "$IVSHMEM_CACHE_DIR/cloud"
}

# cloud__console_tail STATE_DIR [LINES] : the end of the guest's serial
# console log on stderr, without terminal escapes, indented.
cloud__console_tail() {
	local log=$1/console.log n=${2:-40}
	if [ ! -s "$log" ]; then
		cloud__log "console log $log is empty or missing"
		return 0
	fi
	cloud__log "last $n lines of $log:"
	tail -n "$n" "$log" | sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\r//g' -e 's/^/    | /' >&2
}

# cloud__sha512 FILE : the SHA512 of FILE in hex.
cloud__sha512() {
	local sum
	sum=$(sha512sum <"$1") || return 1
	printf '%s\n' "${sum%% *}"
}

# ------------------------------------------------------------- download --

# cloud__curl_progress : curl's progress options: a bar on a terminal,
# silence (errors still shown) otherwise.
cloud__curl_progress() {
	if [ -t 2 ]; then printf '%s\n' --progress-bar; else printf '%s\n' -sS; fi
}

# cloud_download URL DEST SUMS_URL
#
# Downloads URL to DEST once, resumably, and verifies it against the entry
# for the URL's basename in the checksum list at SUMS_URL (sha512sum
# format). Data in flight lives in DEST.part and is resumed by the next call
# (curl -C -); DEST appears only once verified. An existing DEST is checked
# first and, if it does not match, treated as a partial download. On a
# checksum mismatch the data is deleted; if the mismatching data had been
# resumed, the download is tried once more from the start. Returns non-zero
# with a message on any failure.
cloud_download() {
	local url=$1 dest=$2 sums_url=$3
	local name part sums want got progress attempt resumed rc
	[ $# -eq 3 ] || { cloud__err "usage: cloud_download URL DEST SUMS_URL"; return 1; }
	cloud__need curl sha512sum || return 1
	name=${url##*/}
	name=${name%%\?*}
	part=$dest.part
	# curl appends to the partial file by name (it resumes it): nothing
	# may stand there but a file of ours.
	files_refuse_link "$dest" && files_refuse_link "$part" || return 1
	mkdir -p "$(dirname "$dest")" || return 1

	sums=$(curl -fsSL --connect-timeout 15 --max-time 120 "$sums_url") || {
		cloud__err "cannot fetch the checksum list $sums_url"
		return 1
	}
	want=$(awk -v n="$name" '{ f = $2; sub(/^\*/, "", f) } f == n { print tolower($1); exit }' <<<"$sums")
	if ! [[ $want =~ ^[0-9a-f]{128}$ ]]; then
		cloud__err "no SHA512 checksum for $name in $sums_url"
		return 1
	fi

	if [ -f "$dest" ]; then
		got=$(cloud__sha512 "$dest") || return 1
		if [ "$got" = "$want" ]; then
			cloud__log "$dest: present, checksum verified"
			return 0
		fi
		cloud__log "$dest does not match its checksum: resuming it as a partial download"
		mv -Tf -- "$dest" "$part" || return 1
	fi

	progress=$(cloud__curl_progress)
	for attempt in 1 2; do
		resumed=0
		[ -s "$part" ] && resumed=1
		if [ "$resumed" = 1 ]; then
			got=$(cloud__sha512 "$part") || return 1
			[ "$got" = "$want" ] && break
			cloud__log "resuming $name at byte $(stat -c %s "$part")"
		else
			cloud__log "downloading $url"
		fi
		rc=0
		files_refuse_link "$part" || return 1
		curl -fL -C - --connect-timeout 15 --retry 2 --speed-limit 1024 --speed-time 60 \
			"$progress" -o "$part" "$url" || rc=$?
		if [ "$rc" != 0 ]; then
			# 33: the server cannot resume; 22 on a resume: e.g. 416, the
			# partial data is longer than the file. Start over once.
			if [ "$resumed" = 1 ] && [ "$attempt" = 1 ] && { [ "$rc" = 33 ] || [ "$rc" = 22 ]; }; then
				cloud__log "cannot resume (curl exit $rc): starting over"
				rm -f "$part"
				continue
			fi
			cloud__err "download of $url failed (curl exit $rc); partial data kept in $part for the next try"
			return 1
		fi
		got=$(cloud__sha512 "$part") || return 1
		[ "$got" = "$want" ] && break
		rm -f "$part"
		if [ "$resumed" = 1 ] && [ "$attempt" = 1 ]; then
			cloud__log "checksum mismatch after resuming: starting over"
			continue
		fi
		cloud__err "SHA512 checksum mismatch for $name: got $got, expected $want (from $sums_url); the download was deleted"
		return 1
	done
	if [ "$got" != "$want" ]; then
		rm -f "$part"
		cloud__err "SHA512 checksum mismatch for $name (expected $want from $sums_url); the download was deleted"
		return 1
	fi
	files_refuse_link "$dest" && mv -Tf -- "$part" "$dest" || return 1
	cloud__log "$dest: downloaded, checksum verified"
}

# -------------------------------------------------------- offline build --

# cloud__offline_customize : the script mmdebstrap runs as a customize hook,
# with the root directory as $1 and, in the environment, IVB_OUT (output
# directory), IVB_FS_SIZE and IVB_LABEL. It configures the root for a
# NoCloud guest on systemd-networkd, copies the kernel and initrd out, and
# makes the ext4 file system image IVB_OUT/root.raw. It runs inside the
# build's namespace, so file ownership comes out right whether mmdebstrap
# runs as root or unprivileged. /proc, /sys and /dev are mounted in the root
# at that point, hence the copy on one file system before mkfs -d.
cloud__offline_customize() {
	cat <<'EOF'
set -eu
root=$1
printf 'LABEL=%s / ext4 rw,discard,errors=remount-ro 0 1\n' "$IVB_LABEL" >"$root/etc/fstab"
echo debian >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

# cloud-init: only the NoCloud seed (no probing for cloud metadata servers,
# which costs minutes without a network), and no network configuration of
# its own: systemd-networkd does DHCP on the first Ethernet link.
cat >"$root/etc/cloud/cloud.cfg.d/90_ivshmem_bench.cfg" <<'CFG'
datasource_list: [ NoCloud, None ]
network: {config: disabled}
# No boot loader here (direct kernel boot): nothing for grub-dpkg to do.
grub_dpkg: {enabled: false}
CFG
cat >"$root/etc/systemd/network/50-ivshmem-bench.network" <<'NET'
[Match]
Type=ether

[Network]
DHCP=ipv4
NET
chroot "$root" systemctl enable systemd-networkd.service

# Under TCG "-cpu max" offers SVM/VMX: loading KVM in the guest only costs
# boot time.
printf 'blacklist kvm_amd\nblacklist kvm_intel\n' >"$root/etc/modprobe.d/ivshmem-bench.conf"
# Periodic jobs would wake up in the middle of a benchmark.
chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer \
	e2scrub_all.timer fstrim.timer dpkg-db-backup.timer

# No baked-in host keys: cloud-init makes fresh ones per instance.
rm -f "$root"/etc/ssh/ssh_host_*
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb

cp -L "$root"/boot/vmlinuz-* "$IVB_OUT/vmlinuz"
cp -L "$root"/boot/initrd.img-* "$IVB_OUT/initrd.img"
chmod 0644 "$IVB_OUT/vmlinuz" "$IVB_OUT/initrd.img"

mkdir "$IVB_OUT/rootfs"
cp -ax "$root/." "$IVB_OUT/rootfs/"
truncate -s "$IVB_FS_SIZE" "$IVB_OUT/root.raw"
mkfs.ext4 -q -L "$IVB_LABEL" -d "$IVB_OUT/rootfs" "$IVB_OUT/root.raw"
rm -rf "$IVB_OUT/rootfs"
EOF
}

# cloud__offline_stamp : one line naming every input of the offline build.
cloud__offline_stamp() {
	local script_sum
	script_sum=$(cloud__offline_customize | sha256sum) || return 1
	printf 'recipe=%s suite=%s mirror=%s size=%s label=%s packages=%s customize=%s\n' \
		"$CLOUD_OFFLINE_RECIPE" "$CLOUD_OFFLINE_SUITE" "${IVSHMEM_CLOUD_MIRROR:-default}" \
		"$CLOUD_OFFLINE_FS_SIZE" "$CLOUD_OFFLINE_LABEL" "$CLOUD_OFFLINE_PACKAGES" "${script_sum%% *}"
}

# cloud__offline_cached DIR : true if DIR holds a complete offline build
# made from the current inputs.
cloud__offline_cached() {
	local dir=$1 stamp
	[ -s "$dir/base.qcow2" ] && [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ] && [ -f "$dir/stamp" ] || return 1
	stamp=$(cloud__offline_stamp) || return 1
	[ "$(cat "$dir/stamp")" = "$stamp" ]
}

# cloud__offline_build DIR : builds the offline image into DIR (replacing
# it only on success). Takes about a minute and ~650 MB of packages from the
# Debian archive; needs root or unprivileged user namespaces.
cloud__offline_build() {
	local dir=$1 tmp stamp rc start mirror_args=()
	cloud__need mmdebstrap mkfs.ext4 qemu-img || return 1
	stamp=$(cloud__offline_stamp) || return 1
	rm -rf "$dir".new.* # failed earlier builds (we hold the cache lock)
	tmp=$(mktemp -d "$dir.new.XXXXXX") || return 1
	cloud__offline_customize >"$tmp/customize.sh" || return 1
	[ -n "$IVSHMEM_CLOUD_MIRROR" ] && mirror_args=("$IVSHMEM_CLOUD_MIRROR")
	cloud__log "building the Debian 12 image offline with mmdebstrap (about a minute; log: $tmp/build.log)"
	start=$SECONDS
	rc=0
	# shellcheck disable=SC2016 # $1 and $IVB_OUT expand in the hook's shell
	IVB_OUT=$tmp IVB_FS_SIZE=$CLOUD_OFFLINE_FS_SIZE IVB_LABEL=$CLOUD_OFFLINE_LABEL \
		mmdebstrap --variant=apt --include="$CLOUD_OFFLINE_PACKAGES" \
		--customize-hook='sh "$IVB_OUT/customize.sh" "$1"' \
		"$CLOUD_OFFLINE_SUITE" /dev/null "${mirror_args[@]}" >"$tmp/build.log" 2>&1 || rc=$?
	if [ "$rc" = 0 ]; then
		qemu-img convert -O qcow2 "$tmp/root.raw" "$tmp/base.qcow2" >>"$tmp/build.log" 2>&1 || rc=$?
	fi
	if [ "$rc" != 0 ]; then
		cloud__log "mmdebstrap/qemu-img failed (exit $rc); last lines of $tmp/build.log:"
		tail -n 25 "$tmp/build.log" | sed 's/^/    | /' >&2
		rm -rf "$tmp/rootfs" "$tmp/root.raw"
		cloud__err "offline image build failed (it needs the Debian archive, and root or unprivileged user namespaces); log kept in $tmp/build.log"
		return 1
	fi
	rm -f "$tmp/root.raw" "$tmp/customize.sh"
	printf '%s\n' "$stamp" >"$tmp/stamp"
	rm -rf "$dir.old"
	if [ -e "$dir" ] || [ -L "$dir" ]; then mv -T -- "$dir" "$dir.old" || return 1; fi
	mv -T -- "$tmp" "$dir" || return 1
	rm -rf "$dir.old"
	cloud__log "offline image built in $((SECONDS - start)) s: $dir/base.qcow2 ($(du -h "$dir/base.qcow2" | cut -f1))"
}

# ------------------------------------------------------------ base image --

# cloud__use_offline DIR : point the globals at the offline build in DIR.
cloud__use_offline() {
	CLOUD_BASE=$1/base.qcow2
	CLOUD_BASE_FORMAT=qcow2
	CLOUD_SOURCE=offline
	CLOUD_KERNEL=$1/vmlinuz
	CLOUD_INITRD=$1/initrd.img
	CLOUD_APPEND=$CLOUD_OFFLINE_APPEND
}

# cloud__use_official FILE : point the globals at the official image FILE.
cloud__use_official() {
	CLOUD_BASE=$1
	CLOUD_BASE_FORMAT=qcow2
	CLOUD_SOURCE=official
	CLOUD_KERNEL="" CLOUD_INITRD="" CLOUD_APPEND=""
}

# cloud__prepare_base_locked CACHE : cloud_prepare_base's work, run while
# holding the cache lock.
cloud__prepare_base_locked() {
	local cache=$1 official offline
	official=$cache/official/${IVSHMEM_CLOUD_URL##*/}
	offline=$cache/offline
	# The cache first: a verified download only ever exists under its name.
	if [ "$IVSHMEM_CLOUD_SOURCE" != offline ] && [ -s "$official" ]; then
		cloud__use_official "$official"
		return 0
	fi
	if [ "$IVSHMEM_CLOUD_SOURCE" != official ] && cloud__offline_cached "$offline"; then
		cloud__use_offline "$offline"
		return 0
	fi
	if [ "$IVSHMEM_CLOUD_SOURCE" != offline ]; then
		if cloud_download "$IVSHMEM_CLOUD_URL" "$official" "$IVSHMEM_CLOUD_SUMS_URL"; then
			cloud__use_official "$official"
			return 0
		fi
		if [ "$IVSHMEM_CLOUD_SOURCE" = official ]; then
			cloud__err "IVSHMEM_CLOUD_SOURCE=official, but the official image could not be had"
			return 1
		fi
		cloud__log "no official image: building an equivalent one from Debian's packages instead"
	fi
	cloud__offline_build "$offline" || return 1
	cloud__use_offline "$offline"
}

# cloud_prepare_base
#
# Makes sure a base image exists and sets CLOUD_BASE, CLOUD_BASE_FORMAT,
# CLOUD_SOURCE (user|official|offline), and for direct kernel boot
# CLOUD_KERNEL, CLOUD_INITRD and CLOUD_APPEND (else empty). Order: the
# user's image, a cached image, a verified download, an offline build.
# IVSHMEM_CLOUD_SOURCE=official|offline restricts the choice. Holds a lock
# on the cache so that concurrent runs do not build twice. Prints one line
# naming the source used.
cloud_prepare_base() {
	local cache lockfd rc info
	CLOUD_BASE="" CLOUD_BASE_FORMAT="" CLOUD_SOURCE=""
	CLOUD_KERNEL="" CLOUD_INITRD="" CLOUD_APPEND=""
	case $IVSHMEM_CLOUD_SOURCE in
	auto | official | offline) ;;
	*)
		cloud__err "IVSHMEM_CLOUD_SOURCE=$IVSHMEM_CLOUD_SOURCE: expected auto, official or offline"
		return 1
		;;
	esac
	cloud__need qemu-img || return 1

	if [ -n "$IVSHMEM_CLOUD_IMAGE" ]; then
		[ -r "$IVSHMEM_CLOUD_IMAGE" ] || { cloud__err "IVSHMEM_CLOUD_IMAGE=$IVSHMEM_CLOUD_IMAGE: no such readable file"; return 1; }
		CLOUD_BASE=$(realpath "$IVSHMEM_CLOUD_IMAGE") || return 1
		info=$(qemu-img info "$CLOUD_BASE" 2>&1) || { cloud__err "qemu-img cannot read $CLOUD_BASE: $info"; return 1; }
		CLOUD_BASE_FORMAT=$(sed -n 's/^file format: //p' <<<"$info")
		CLOUD_SOURCE=user
		if [ -n "$IVSHMEM_CLOUD_KERNEL" ]; then
			CLOUD_KERNEL=$(realpath "$IVSHMEM_CLOUD_KERNEL") || return 1
			[ -n "$IVSHMEM_CLOUD_INITRD" ] && { CLOUD_INITRD=$(realpath "$IVSHMEM_CLOUD_INITRD") || return 1; }
			CLOUD_APPEND=$IVSHMEM_CLOUD_APPEND
		fi
	else
		cache=$(cloud__cache) || return 1
		# Made once through vm/files.bash, then locked in place.
		if [ ! -e "$cache/.lock" ]; then files_new "$cache/.lock" || return 1; fi
		files_refuse_link "$cache/.lock" || return 1
		exec {lockfd}>>"$cache/.lock" || return 1
		if ! flock -n "$lockfd"; then
			cloud__log "waiting for another process preparing the image in $cache"
			flock -w 1800 "$lockfd" || { exec {lockfd}>&-; cloud__err "timed out waiting for the lock on $cache"; return 1; }
		fi
		rc=0
		cloud__prepare_base_locked "$cache" || rc=$?
		exec {lockfd}>&-
		[ "$rc" = 0 ] || return "$rc"
	fi
	case $CLOUD_SOURCE in
	user) cloud__log "guest image: user-supplied $CLOUD_BASE ($CLOUD_BASE_FORMAT${CLOUD_KERNEL:+, kernel $CLOUD_KERNEL})" ;;
	official) cloud__log "guest image: official Debian 12 cloud image $CLOUD_BASE" ;;
	offline) cloud__log "guest image: offline build from Debian packages $CLOUD_BASE (direct kernel boot)" ;;
	esac
}

# -------------------------------------------------------------- instance --

# cloud__fill TEMPLATE OUT : copy TEMPLATE to OUT replacing @HOSTNAME@,
# @INSTANCE_ID@ and @SSH_PUBLIC_KEY@ with the values in the variables
# hostname, instance_id and pubkey of the caller.
cloud__fill() {
	local text
	text=$(<"$1") || return 1
	text=${text//@HOSTNAME@/$hostname}
	text=${text//@INSTANCE_ID@/$instance_id}
	text=${text//@SSH_PUBLIC_KEY@/$pubkey}
	files_write --replace "$2" <<<"$text"
}

# cloud_prepare_instance STATE_DIR
#
# Creates what one guest needs in STATE_DIR (made 0700): the overlay
# (IVSHMEM_CLOUD_DISK_SIZE virtual, thin, backed by CLOUD_BASE; kept across
# calls, recreated if the base changed), the project's SSH key pair
# (ed25519, kept; a new key means a new instance-id so cloud-init installs
# it), the filled templates and the NoCloud seed ISO. Calls
# cloud_prepare_base first if CLOUD_BASE is not set.
cloud_prepare_instance() {
	local state=$1 base_id key hostname instance_id pubkey new_key=0
	[ $# -eq 1 ] || { cloud__err "usage: cloud_prepare_instance STATE_DIR"; return 1; }
	cloud__need qemu-img ssh-keygen genisoimage || return 1
	if [ -z "$CLOUD_BASE" ]; then cloud_prepare_base || return 1; fi
	mkdir -p "$state" && chmod 0700 "$state" || return 1

	base_id="$CLOUD_SOURCE $CLOUD_BASE $(stat -c '%s %Y' "$CLOUD_BASE")" || return 1
	if [ ! -f "$state/overlay.qcow2" ] || [ "$(cat "$state/base-id" 2>/dev/null)" != "$base_id" ]; then
		[ -f "$state/overlay.qcow2" ] && cloud__log "the base image changed: new overlay (the guest disk starts afresh)"
		rm -f "$state/overlay.qcow2" "$state/instance-id"
		qemu-img create -q -f qcow2 -F "$CLOUD_BASE_FORMAT" -b "$CLOUD_BASE" \
			"$state/overlay.qcow2" "$IVSHMEM_CLOUD_DISK_SIZE" || {
			cloud__err "cannot create the overlay $state/overlay.qcow2"
			return 1
		}
		files_write --replace "$state/base-id" <<<"$base_id" || return 1
	fi

	key=$state/ssh/id_ed25519
	if [ ! -f "$key" ] || [ ! -f "$key.pub" ]; then
		mkdir -p "$state/ssh" && chmod 0700 "$state/ssh" || return 1
		rm -f "$key" "$key.pub"
		ssh-keygen -q -t ed25519 -N '' -C ivshmem-bench -f "$key" || { cloud__err "ssh-keygen failed"; return 1; }
		new_key=1
	fi
	chmod 0600 "$key" || return 1
	if [ "$new_key" = 1 ] || [ ! -s "$state/instance-id" ]; then
		files_write --replace "$state/instance-id" <<<"ivb-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" || return 1
	fi

	hostname=$IVSHMEM_CLOUD_HOSTNAME
	instance_id=$(<"$state/instance-id")
	pubkey=$(<"$key.pub")
	mkdir -p "$state/seed" || return 1
	cloud__fill "$CLOUD_TEMPLATE_DIR/user-data.tmpl" "$state/seed/user-data" || return 1
	cloud__fill "$CLOUD_TEMPLATE_DIR/meta-data.tmpl" "$state/seed/meta-data" || return 1
	rm -f "$state/seed.iso.new"
	genisoimage -quiet -output "$state/seed.iso.new" -volid cidata -joliet -rock \
		"$state/seed/user-data" "$state/seed/meta-data" || { cloud__err "genisoimage failed"; return 1; }
	mv -Tf -- "$state/seed.iso.new" "$state/seed.iso"
}

# cloud_qemu_args STATE_DIR
#
# Fills CLOUD_QEMU_ARGS with the guest-specific QEMU arguments: the overlay
# as the first virtio disk (/dev/vda), the seed ISO as a read-only virtio
# disk, user networking with the SSH port forward on 127.0.0.1 only, and
# for direct boot -kernel/-initrd/-append. Records the port in
# STATE_DIR/ssh-port for cloud_ssh. Fails if the port is already taken.
cloud_qemu_args() {
	local state=$1 port=$IVSHMEM_SSH_PORT
	[ $# -eq 1 ] || { cloud__err "usage: cloud_qemu_args STATE_DIR"; return 1; }
	if [ ! -f "$state/overlay.qcow2" ] || [ ! -f "$state/seed.iso" ]; then
		cloud__err "$state has no overlay or seed: run cloud_prepare_instance first"
		return 1
	fi
	if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
		cloud__err "IVSHMEM_SSH_PORT=$port: expected a TCP port, 1-65535"
		return 1
	fi
	if command -v ss >/dev/null 2>&1 && [ -n "$(ss -Htln "sport = :$port")" ]; then
		cloud__err "TCP port $port is in use on this host: set IVSHMEM_SSH_PORT to a free port"
		return 1
	fi
	files_write --replace "$state/ssh-port" <<<"$port" || return 1
	# shellcheck disable=SC2054 # commas are QEMU's option syntax
	CLOUD_QEMU_ARGS=(
		-drive "if=virtio,format=qcow2,file=$(cloud__qemu_path "$state/overlay.qcow2"),discard=unmap,detect-zeroes=unmap"
		-drive "if=virtio,format=raw,readonly=on,file=$(cloud__qemu_path "$state/seed.iso")"
		-netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22"
		-device virtio-net-pci,netdev=n0
	)
	if [ -n "$CLOUD_KERNEL" ]; then
		CLOUD_QEMU_ARGS+=(-kernel "$CLOUD_KERNEL")
		[ -n "$CLOUD_INITRD" ] && CLOUD_QEMU_ARGS+=(-initrd "$CLOUD_INITRD")
		CLOUD_QEMU_ARGS+=(-append "$CLOUD_APPEND")
	fi
	return 0
}

# ------------------------------------------------------------------- SSH --

# cloud__ssh_cmd STATE_DIR CONNECT_TIMEOUT : sets CLOUD__SSH_CMD to the ssh
# command line (without the remote command) that logs in to the guest as
# CLOUD_USER with the project key, ignoring the user's ssh configuration.
cloud__ssh_cmd() {
	local state=$1 timeout=$2 port
	port=$(cat "$state/ssh-port" 2>/dev/null) || port=$IVSHMEM_SSH_PORT
	CLOUD__SSH_CMD=(ssh -F /dev/null -p "$port" -i "$state/ssh/id_ed25519"
		-o BatchMode=yes -o IdentitiesOnly=yes -o PasswordAuthentication=no
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
		-o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR
		-o ConnectTimeout="$timeout" -o ServerAliveInterval=15 -o ServerAliveCountMax=4
		"$CLOUD_USER@127.0.0.1")
}

# cloud__ssh STATE_DIR CONNECT_TIMEOUT ARGS... : ssh to the guest.
cloud__ssh() {
	local state=$1 timeout=$2
	shift 2
	cloud__ssh_cmd "$state" "$timeout"
	"${CLOUD__SSH_CMD[@]}" "$@"
}

# cloud_ssh STATE_DIR CMD...
#
# Runs CMD in the guest as user debian and returns its exit status (255 if
# ssh itself failed). As with ssh, the words of CMD are joined by spaces and
# run by the guest's shell; stdin is passed on (use </dev/null in loops).
cloud_ssh() {
	local state=$1
	shift
	cloud__ssh "$state" 20 "$@"
}

# cloud_wait_ready STATE_DIR DEADLINE_SECONDS [QEMU_PID]
#
# Waits until the guest answers SSH and cloud-init has finished, at most
# DEADLINE_SECONDS in all. Between SSH attempts it waits for the next line
# on the serial console (the guest's own sign of progress) or 2 s, not a
# fixed sleep. Fails at once if QEMU_PID exits. On failure prints why and
# the tail of STATE_DIR/console.log (and of STATE_DIR/qemu.err or qemu.log,
# if the caller sends QEMU's output there).
cloud_wait_ready() {
	local state=$1 deadline=$2 qpid=${3:-} cfd tail_pid rc=0
	[ $# -ge 2 ] || { cloud__err "usage: cloud_wait_ready STATE_DIR DEADLINE_SECONDS [QEMU_PID]"; return 1; }
	[[ $deadline =~ ^[0-9]+$ ]] || { cloud__err "cloud_wait_ready: deadline '$deadline' is not a number of seconds"; return 1; }
	[ -e "$state/console.log" ] || files_new --replace "$state/console.log" 2>/dev/null || true
	exec {cfd}< <(exec tail -n 0 -F "$state/console.log" 2>/dev/null)
	tail_pid=$!
	cloud__wait_ready_loop "$state" "$deadline" "$qpid" "$cfd" || rc=$?
	kill "$tail_pid" 2>/dev/null || true
	exec {cfd}<&-
	return "$rc"
}

# cloud__wait_ready_loop STATE_DIR DEADLINE QEMU_PID CONSOLE_FD : the
# waiting part of cloud_wait_ready.
cloud__wait_ready_loop() {
	local state=$1 deadline=$2 qpid=$3 cfd=$4
	local start=$SECONDS end attempts=0 n left rc port f sfd
	end=$((SECONDS + deadline))
	port=$(cat "$state/ssh-port" 2>/dev/null) || port=$IVSHMEM_SSH_PORT
	cloud__log "waiting for SSH on 127.0.0.1:$port (deadline ${deadline} s)"
	while :; do
		if [ -n "$qpid" ] && ! kill -0 "$qpid" 2>/dev/null; then
			cloud__console_tail "$state"
			for f in "$state/qemu.err" "$state/qemu.log"; do
				[ -s "$f" ] || continue
				cloud__log "QEMU's own output ($f):"
				tail -n 10 "$f" | sed 's/^/    | /' >&2
			done
			cloud__err "QEMU (pid $qpid) exited before the guest answered SSH"
			return 1
		fi
		left=$((end - SECONDS))
		if [ "$left" -le 0 ]; then
			cloud__console_tail "$state"
			cloud__err "no SSH answer from the guest within $deadline s ($attempts attempts)"
			return 1
		fi
		attempts=$((attempts + 1))
		cloud__ssh "$state" "$((left < 5 ? left : 5))" true </dev/null >/dev/null 2>&1 && break
		# Wait for the console to move on; a burst of lines counts once.
		if IFS= read -r -t 2 -u "$cfd" _; then
			n=0
			while [ "$n" -lt 500 ] && IFS= read -r -t 0.2 -u "$cfd" _; do n=$((n + 1)); done
		fi
	done
	cloud__log "SSH answers after $((SECONDS - start)) s; waiting for cloud-init"
	left=$((end - SECONDS))
	[ "$left" -gt 0 ] || left=1
	rc=0
	files_open --replace sfd "$state/cloud-init-status" || return 1
	cloud__ssh_cmd "$state" 20
	timeout "$left" "${CLOUD__SSH_CMD[@]}" cloud-init status --wait \
		</dev/null 1>&"$sfd" 2>&1 || rc=$?
	exec {sfd}>&-
	if [ "$rc" != 0 ]; then
		cloud__log "cloud-init status --wait: exit $rc$([ "$rc" = 124 ] && echo ' (deadline reached)'):"
		sed 's/^/    | /' "$state/cloud-init-status" >&2
		cloud__ssh "$state" 10 'cloud-init status --long; sudo tail -n 15 /var/log/cloud-init-output.log' \
			</dev/null 2>&1 | sed 's/^/    | /' >&2 || true
		cloud__console_tail "$state" 25
		cloud__err "cloud-init did not finish cleanly within $deadline s"
		return 1
	fi
	cloud__log "guest ready after $((SECONDS - start)) s"
}

# --------------------------------------------------------- guest program --

# cloud_deploy STATE_DIR LOCAL_BINARY [REMOTE_PATH]
#
# Copies LOCAL_BINARY over SSH to REMOTE_PATH (default
# /usr/local/bin/BASENAME), mode 0755, owned by root, and checks its
# SHA256 on arrival. The guest needs no compiler and no network.
cloud_deploy() {
	local state=$1 local_bin=$2 remote=${3:-} sum q
	[ $# -ge 2 ] || { cloud__err "usage: cloud_deploy STATE_DIR LOCAL_BINARY [REMOTE_PATH]"; return 1; }
	if [ ! -f "$local_bin" ] || [ ! -r "$local_bin" ]; then
		cloud__err "$local_bin: no such readable file"
		return 1
	fi
	[ -n "$remote" ] || remote=/usr/local/bin/$(basename "$local_bin")
	sum=$(sha256sum <"$local_bin") || return 1
	sum=${sum%% *}
	q=$(printf '%q' "$remote")
	cloud_ssh "$state" "set -e; t=\$(mktemp); trap 'rm -f \"\$t\"' EXIT; cat >\"\$t\";
		echo '$sum  '\"\$t\" | sha256sum -c --quiet;
		sudo install -D -m 0755 -o root -g root \"\$t\" $q" <"$local_bin" || {
		cloud__err "cannot deploy $local_bin to the guest's $remote"
		return 1
	}
	cloud__log "deployed $local_bin to the guest's $remote"
}

# cloud_start_program STATE_DIR REMOTE_PATH [ARGS...]
#
# Starts REMOTE_PATH ARGS as root in the background in its own session,
# output (stdout and stderr) to /var/log/ivshmem-bench/BASENAME.log in the
# guest, and prints its guest PID on stdout. One program at a time: fails if
# the previous one still runs.
cloud_start_program() {
	local state=$1 remote=$2 name cmd log script pid
	[ $# -ge 2 ] || { cloud__err "usage: cloud_start_program STATE_DIR REMOTE_PATH [ARGS...]"; return 1; }
	shift 2
	name=$(basename "$remote")
	log=$CLOUD_GUEST_LOG_DIR/$name.log
	cmd=$(printf '%q ' "$remote" "$@")
	script="set -e; mkdir -p $CLOUD_GUEST_LOG_DIR $CLOUD_GUEST_RUN_DIR
		f=$CLOUD_GUEST_RUN_DIR/program.pid
		if [ -s \$f ] && kill -0 \$(cat \$f) 2>/dev/null; then
			echo \"a program already runs as pid \$(cat \$f)\" >&2; exit 3
		fi
		cd /
		nohup setsid $cmd >$(printf '%q' "$log") 2>&1 </dev/null &
		echo \$! >\$f
		printf '%s\n' $(printf '%q' "$log") >$CLOUD_GUEST_RUN_DIR/program.log
		echo \$!"
	pid=$(cloud_ssh "$state" "sudo bash -c $(printf '%q' "$script")" </dev/null) || {
		cloud__err "cannot start $remote in the guest"
		return 1
	}
	cloud__log "started $remote in the guest as pid $pid, log $log"
	printf '%s\n' "$pid"
}

# cloud_program_running STATE_DIR : true if the program started by
# cloud_start_program still runs.
cloud_program_running() {
	cloud_ssh "$1" "f=$CLOUD_GUEST_RUN_DIR/program.pid; [ -s \$f ] && sudo kill -0 \$(cat \$f) 2>/dev/null" </dev/null
}

# cloud_program_log STATE_DIR : prints the log of the last program started
# by cloud_start_program (running or not) on stdout.
cloud_program_log() {
	cloud_ssh "$1" "f=$CLOUD_GUEST_RUN_DIR/program.log; [ -s \$f ] || { echo 'no program was started' >&2; exit 1; }; sudo cat \"\$(cat \$f)\"" </dev/null
}

# cloud_fetch_log STATE_DIR DEST : copies that log to the host file DEST.
cloud_fetch_log() {
	local state=$1 dest=$2
	[ $# -eq 2 ] || { cloud__err "usage: cloud_fetch_log STATE_DIR DEST"; return 1; }
	files_refuse_link "$dest" && files_stage "$dest" || return 1
	if ! cloud_program_log "$state" >>"$FILES_STAGED"; then
		files_discard "$FILES_STAGED"
		cloud__err "cannot fetch the guest program's log"
		return 1
	fi
	files_place "$FILES_STAGED" "$dest"
}

# cloud_stop_program STATE_DIR [GRACE_SECONDS]
#
# Sends SIGTERM to the program's process group, waits up to GRACE_SECONDS
# (default 10) for it to exit, then sends SIGKILL. Succeeds if nothing was
# running. The log stays for cloud_program_log.
cloud_stop_program() {
	local state=$1 grace=${2:-10} script
	[[ $grace =~ ^[0-9]+$ ]] || { cloud__err "cloud_stop_program: grace '$grace' is not a number of seconds"; return 1; }
	script="f=$CLOUD_GUEST_RUN_DIR/program.pid
		[ -s \$f ] || exit 0
		p=\$(cat \$f)
		if kill -0 \$p 2>/dev/null; then
			kill -TERM -- -\$p 2>/dev/null || kill -TERM \$p
			if ! timeout $grace tail --pid=\$p -f /dev/null; then
				kill -KILL -- -\$p 2>/dev/null || kill -KILL \$p
				echo \"pid \$p ignored SIGTERM for $grace s: killed\" >&2
			fi
		fi
		rm -f \$f"
	cloud_ssh "$state" "sudo bash -c $(printf '%q' "$script")" </dev/null || {
		cloud__err "cannot stop the guest program"
		return 1
	}
}

# cloud_shutdown STATE_DIR
#
# Asks the guest to power off (sudo systemctl poweroff over SSH). Returns
# once the request is made; the caller waits for QEMU to exit (and kills it
# after its own deadline). An SSH connection cut by the shutdown counts as
# success.
cloud_shutdown() {
	local state=$1 rc=0
	cloud_ssh "$state" 'sudo systemctl poweroff' </dev/null >/dev/null 2>&1 || rc=$?
	case $rc in
	0 | 255) cloud__log "guest powering off" ;;
	*)
		cloud__err "poweroff request failed (exit $rc)"
		return 1
		;;
	esac
}
