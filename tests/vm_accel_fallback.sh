#!/usr/bin/env bash
# vm_accel_fallback - with IVSHMEM_ACCEL=auto, setup.sh tries KVM when
# /dev/kvm is usable and, when the KVM guest fails or misses its deadline
# (as on hosts where /dev/kvm exists but cannot run a guest), stops it and
# boots under TCG with a line saying so; the next boot remembers and goes
# straight to TCG. Skips where /dev/kvm is absent.
# timeout: 240
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-system-x86_64 >/dev/null || { echo "skip: qemu-system-x86_64 not installed"; exit 77; }
if ! [ -c /dev/kvm ] || ! [ -w /dev/kvm ]; then
	echo "skip: no usable /dev/kvm, so nothing to fall back from"
	exit 77
fi
tmp=$(mktemp -d)
export IVSHMEM_STATE_DIR=$tmp/vm IVSHMEM_CACHE_DIR=$tmp/cache IVSHMEM_SHM_PATH=/dev/shm/ivb-test-accel-$$ IVSHMEM_ACCEL=auto IVSHMEM_KVM_TIMEOUT=15
cleanup() {
	./setup.sh stop >/dev/null 2>&1 || true
	rm -rf "$tmp" "$IVSHMEM_SHM_PATH"
}
trap cleanup EXIT

./setup.sh >"$tmp/first.out" 2>&1 || { cat "$tmp/first.out"; exit 1; }
cat "$tmp/first.out"
if grep -q 'under kvm: QEMU pid' "$tmp/first.out"; then
	echo "KVM works on this host: no fallback needed"
	grep -q 'accel kvm' <<<"$(./setup.sh status)" || { echo "FAIL status does not say kvm"; exit 1; }
	exit 0
fi
grep -q 'falling back to TCG' "$tmp/first.out" || { echo "FAIL no fallback line"; exit 1; }
grep -q 'accel tcg' <<<"$(./setup.sh status)" || { echo "FAIL status does not say tcg"; exit 1; }
./setup.sh stop >/dev/null
./setup.sh >"$tmp/second.out" 2>&1 || { cat "$tmp/second.out"; exit 1; }
cat "$tmp/second.out"
grep -q 'did not boot here before' "$tmp/second.out" || { echo "FAIL KVM failure not remembered"; exit 1; }
grep -q 'under kvm' "$tmp/second.out" && { echo "FAIL tried KVM again"; exit 1; }
echo "ok: fell back to TCG and remembered it"
