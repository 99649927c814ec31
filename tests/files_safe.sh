#!/usr/bin/env bash
# files_safe - the scripts never write through a link planted at a name
# they write (vm/files.bash, the one way setup.sh, run_test.sh, vm/ and
# tools/ make files): the helpers refuse a link with one line and leave its
# target alone (or, for the state directory's own files, replace it), write
# whole or not at all, and keep writing to their own file whatever happens
# to the name. Then the paths themselves: results files of a host-only run,
# build/apt.log, the initramfs and its stamp, the KVM failure record in the
# cache, a cloud image's partial download: each refused, one line, target
# untouched, nothing started.
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
tmp=$(mktemp -d)
full_mounted=''
cleanup() {
	[ -z "$full_mounted" ] || umount "$tmp/full" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
export TMPDIR=$tmp/tmpdir
mkdir "$TMPDIR"
echo precious >"$tmp/precious"
untouched() { [ "$(cat "$tmp/precious")" = precious ]; }
# refused WHAT NAME PATH : the last run (lib.bash's run) exited 1 with one
# line refusing PATH, a link, and left its target alone.
refused() {
	check "$1: exit 1 ($rc), one line" test "$rc" = 1 -a "$(grep -c . "$tmp/$2.out")" = 1
	check "$1: the line names the link" grep -qF "$3 is a symbolic link (to $tmp/precious): refusing to write through it" "$tmp/$2.out"
	check "$1: the target is untouched" untouched
}
# in_vm_sh NAME CODE : CODE in a bash that sourced vm/vm.sh, as lib.bash's run.
in_vm_sh() { run "$1" bash -c "set -euo pipefail; VM_PROG=test; . vm/vm.sh; $2"; }

# 1. The helpers.
mkdir "$tmp/d"
ln -s "$tmp/precious" "$tmp/d/a"
in_vm_sh write "echo new | files_write '$tmp/d/a'"
refused "files_write over a link" write "$tmp/d/a"
check "files_write over a link: the link stays, nothing staged" test -L "$tmp/d/a" -a "$(ls -A "$tmp/d")" = a
in_vm_sh replace "echo new | files_write --replace '$tmp/d/a'"
check "files_write --replace: exit 0 ($rc), the link replaced by the file" test "$rc" = 0 -a ! -L "$tmp/d/a" -a "$(cat "$tmp/d/a")" = new
check "files_write --replace: the target is untouched" untouched
check "files_write: mode from the umask, not mktemp's" [ "$(umask 022 && bash -c ". vm/vm.sh; echo x | files_write '$tmp/d/m'" && stat -c %a "$tmp/d/m")" = 644 ]
in_vm_sh open "files_open fd '$tmp/d/log'; mv '$tmp/d/log' '$tmp/d/moved'; ln -s '$tmp/precious' '$tmp/d/log'; echo line >&\$fd"
check "files_open: writes reach its own file, not a link put at the name later" test "$rc" = 0 -a "$(cat "$tmp/d/moved")" = line
check "files_open: ... the target is untouched" untouched
mkdir "$tmp/full"
if mount -t tmpfs -o size=64k tmpfs "$tmp/full" 2>/dev/null; then
	full_mounted=1
	echo old >"$tmp/full/f"
	in_vm_sh full "head -c 200000 /dev/zero | files_write '$tmp/full/f'"
	check "a full disk: exit 1 ($rc), one line" test "$rc" = 1 -a "$(grep -c . "$tmp/full.out")" = 1
	check "a full disk: the line says so" grep -q "test: $tmp/full/f: cannot write it: No space left on device" "$tmp/full.out"
	check "a full disk: the old file whole, nothing staged left" test "$(cat "$tmp/full/f")" = old -a "$(ls -A "$tmp/full")" = f
	umount "$tmp/full" && full_mounted=''
else
	echo "note: cannot mount a small tmpfs (not root?); full-disk case not run"
fi

# 2. A host-only run: a link at a results file is refused before anything
#    starts (the C side would replace it; the scripts refuse it first).
if [ -x build/host_writer ] && [ -x build/guest_reader ]; then
	for name in run.json latency_results.csv; do
		mkdir -p "$tmp/res"
		ln -s "$tmp/precious" "$tmp/res/$name"
		run "host-$name" env IVSHMEM_RESULTS="$tmp/res" ./run_test.sh --host-only -t latency -n 100 -q
		refused "host-only, a link at $name" "host-$name" "$tmp/res/$name"
		check "host-only, a link at $name: nothing else written, no temporary file left" test "$(ls -A "$tmp/res")" = "$name" -a -z "$(ls -A "$TMPDIR")"
		rm -rf "$tmp/res"
	done
else
	echo "note: build/host_writer not built; the host-only case not run"
fi

# 3. setup.sh's files: build/apt.log (before apt-get runs: a package that
#    cannot be installed is asked for), the initramfs and its stamp, the
#    KVM failure record.
mkdir -p "$tmp/build/guest"
ln -s "$tmp/precious" "$tmp/build/apt.log"
in_vm_sh apt "IVSHMEM_BUILD_DIR='$tmp/build'; VM_PACKAGES=(ivb-no-such-package); vm_install_deps"
refused "setup: a link at build/apt.log" apt "$tmp/build/apt.log"
if [ -x build/guest_reader ] && [ -x build/guest/host_writer ] && [ -x build/guest/transport_bench ] && ls /boot/vmlinuz-* >/dev/null 2>&1; then
	cp build/guest_reader "$tmp/build/"
	cp build/guest/host_writer build/guest/transport_bench "$tmp/build/guest/"
	for name in initramfs.cpio.gz initramfs.cpio.gz.stamp; do
		ln -s "$tmp/precious" "$tmp/build/guest/$name"
		in_vm_sh "initramfs-$name" "IVSHMEM_BUILD_DIR='$tmp/build' VM_INITRAMFS='$tmp/build/guest/initramfs.cpio.gz'; vm_build_initramfs"
		refused "setup: a link at build/guest/$name" "initramfs-$name" "$tmp/build/guest/$name"
		rm "$tmp/build/guest/$name"
	done
else
	echo "note: no guest programs or kernel; the initramfs case not run"
fi
mkdir "$tmp/cache"
ln -s "$tmp/precious" "$tmp/cache/kvm-failed"
in_vm_sh kvm "IVSHMEM_CACHE_DIR='$tmp/cache'; vm_remember_kvm_failure"
check "setup: a link at the KVM failure record: refused, with a warning" test "$rc" = 0 -a "$(grep -c 'refusing to write through it' "$tmp/kvm.out")" = 1
check "setup: ... the target is untouched" untouched

# 4. A cloud image's partial download (resumed by name): refused before
#    anything is fetched.
mkdir "$tmp/dl"
ln -s "$tmp/precious" "$tmp/dl/image.qcow2.part"
in_vm_sh part "cloud_download http://127.0.0.1:9/image.qcow2 '$tmp/dl/image.qcow2' http://127.0.0.1:9/SHA512SUMS"
refused "cloud: a link at the partial download" part "$tmp/dl/image.qcow2.part"
exit $fail
