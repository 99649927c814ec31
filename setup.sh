#!/usr/bin/env bash
# setup.sh - prepare and boot the ivshmem-bench guest.
#
#   ./setup.sh [start]   install missing packages, build, boot the VM; returns
#                        when the guest is ready (or fails with its console);
#                        IVSHMEM_TOPOLOGY=vm-vm boots two guests on one device
#   ./setup.sh stop      stop the VM (or both guests of a vm-vm pair)
#   ./setup.sh status    what runs, in which mode and with which accelerator
#   ./setup.sh ssh [CMD] log in to the cloud guest (IVSHMEM_GUEST=cloud)
#   ./setup.sh deps      only install the Debian packages
#   ./setup.sh build     only build the programs and the guest initramfs
#
# Settings are IVSHMEM_* environment variables; see README.md.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=vm/vm.sh
. vm/vm.sh
# SIGINT, SIGTERM and SIGHUP end any command the same way: what it started
# (apt-get, make) is stopped and waited for, a boot cut short is undone,
# temporary files go, and the exit status is 128+N (vm/signals.bash).
sig_catch

cmd=${1:-start}
case $cmd in
start)
	settings_check_vm
	vm_state_open
	vm_lock "setup.sh start"
	intervm_refuse_running "$IVSHMEM_TOPOLOGY" # before the build: one line, at once
	vm_install_deps
	vm_build
	[ "$IVSHMEM_GUEST" = cloud ] || vm_build_initramfs
	if [ "$IVSHMEM_TOPOLOGY" = vm-vm ]; then
		SIG_AT_EXIT=(intervm_boot_abandoned)
		# Huge pages for a pair about to boot (vm_start does its own).
		intervm_running || { vm_hugepages_reserve && vm_backing_available; }
		intervm_start
	else
		SIG_AT_EXIT=(vm_boot_abandoned)
		vm_start
	fi
	;;
stop)
	settings_state_dir
	if [ -d "$VM_STATE_DIR" ]; then
		vm_lock "setup.sh stop"
		if intervm_recorded; then intervm_stop; else vm_stop; fi
	else
		vm_log "No VM running (no state in $VM_STATE_DIR)"
	fi
	;;
status)
	settings_state_dir
	if intervm_recorded; then intervm_status; else vm_status; fi
	;;
deps) vm_install_deps ;;
ssh)
	shift
	settings_state_dir
	if [ -z "$(vm_pid)" ] || ! vm_load_env; then vm_die "no VM running"; fi
	[ "$VM_GUEST" = cloud ] || vm_die "the $VM_GUEST guest has no SSH; IVSHMEM_GUEST=cloud ./setup.sh boots one that has"
	cloud__ssh_cmd "$VM_STATE_DIR" 10
	exec "${CLOUD__SSH_CMD[@]}" "$@"
	;;
build | initramfs)
	vm_install_deps
	vm_build
	vm_build_initramfs
	;;
-h | --help | help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' ;;
*)
	echo "setup.sh: unknown command '$cmd' (expected start, stop, status, ssh, deps, build)" >&2
	exit 2
	;;
esac
