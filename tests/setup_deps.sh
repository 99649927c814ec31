#!/usr/bin/env bash
# setup_deps - the README's first command, ./setup.sh, in a fresh clone (no
# build/) on a machine that lacks packages: it installs the missing ones with
# apt-get (through sudo when not root) and goes on to the build; with every
# package installed it calls no apt-get at all; a failed install is one line
# with apt's own error. apt-get, dpkg-query, sudo and make are stubs first on
# PATH that record their arguments (make stops setup.sh at the build step).
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp" # the non-root case below runs as nobody

mapfile -t packages < <(bash -c '. vm/vm.sh && printf "%s\n" "${VM_PACKAGES[@]}"')
[ ${#packages[@]} -gt 5 ] || { echo "cannot read VM_PACKAGES from vm/vm.sh"; exit 1; }

# The stubs; they log to $IVB_STUB_LOG/NAME.calls, one line a call.
stubs=$tmp/stubs
mkdir "$stubs"
cat >"$stubs/dpkg-query" <<'EOF'
#!/bin/sh
# dpkg-query -W -f='${Status}' PKG: installed when PKG is in $IVB_STUB_LOG/installed.
for pkg; do :; done
grep -qx -- "$pkg" "$IVB_STUB_LOG/installed" || exit 1
printf 'install ok installed'
EOF
cat >"$stubs/apt-get" <<'EOF'
#!/bin/sh
echo "uid=$(id -u) $*" >>"$IVB_STUB_LOG/apt-get.calls"
case " $* " in
*" install "*" no-such-package"*) echo "E: Unable to locate package no-such-package"; exit 100 ;;
esac
echo "apt-get stub: $*"
EOF
cat >"$stubs/sudo" <<'EOF'
#!/bin/sh
echo "$*" >>"$IVB_STUB_LOG/sudo.calls"
exec "$@"
EOF
cat >"$stubs/make" <<'EOF'
#!/bin/sh
echo "$*" >>"$IVB_STUB_LOG/make.calls"
echo "make stub: stopping here" >&2
exit 1
EOF
chmod 0755 "$stubs"/*

# fresh_clone NAME OWNER : the project's launcher files in $tmp/NAME, no
# build/ (what setup.sh needs up to the build: make is a stub).
fresh_clone() {
	clone=$tmp/$1
	mkdir "$clone"
	cp -r setup.sh run_test.sh Makefile vm cloud-init-config "$clone/"
	mkdir "$clone/log"
	chown -R "$2" "$clone"
}

# run_setup WHO : ./setup.sh in the clone as WHO (root or nobody), stubs
# first on PATH; its output in $clone/out, its status in rc.
run_setup() {
	local as=()
	[ "$1" = root ] || as=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
	rc=0
	(cd "$clone" && "${as[@]}" env PATH="$path" HOME="$clone" IVB_STUB_LOG="$clone/log" \
		IVSHMEM_STATE_DIR="$clone/.vm" IVSHMEM_SHM_PATH="/dev/shm/ivb-test-deps-$$" ./setup.sh) \
		>"$clone/out" 2>&1 || rc=$?
	sed 's/^/    | /' "$clone/out"
}
path=$stubs:$PATH

# 1. As root, two packages missing.
fresh_clone missing root
printf '%s\n' "${packages[@]}" | grep -vx -e qemu-system-x86 -e linux-image-amd64 >"$clone/log/installed"
run_setup root
check "missing: exit 1 at the build step" [ "$rc" = 1 ]
check "missing: no 'No such file' error" bash -c "! grep -q 'No such file' '$clone/out'"
check "missing: says what it installs" grep -q 'Installing qemu-system-x86 linux-image-amd64' "$clone/out"
check "missing: apt-get update, then install of exactly the missing packages" \
	diff <(printf 'uid=0 -q -o DPkg::Lock::Timeout=600 update\nuid=0 -q -o DPkg::Lock::Timeout=600 install -y --no-install-recommends qemu-system-x86 linux-image-amd64\n') "$clone/log/apt-get.calls"
check "missing: apt's output in build/apt.log" grep -q 'apt-get stub: .*install' "$clone/build/apt.log"
check "missing: reached the build" grep -q 'all' "$clone/log/make.calls"
check "missing: setup.sh says the build failed" grep -q 'setup: build failed' "$clone/out"
check "missing: no sudo as root" [ ! -e "$clone/log/sudo.calls" ]

# 2. As root, everything installed: no apt-get at all.
fresh_clone complete root
printf '%s\n' "${packages[@]}" >"$clone/log/installed"
run_setup root
check "complete: apt-get never called" [ ! -e "$clone/log/apt-get.calls" ]
check "complete: reached the build" grep -q 'all' "$clone/log/make.calls"
check "complete: no apt.log" [ ! -e "$clone/build/apt.log" ]

# 3. A failed install: one line with apt's error, exit 1, no build.
fresh_clone failing root
printf '%s\n' "${packages[@]}" >"$clone/log/installed"
rc=0
(cd "$clone" && env PATH="$path" IVB_STUB_LOG="$clone/log" IVSHMEM_STATE_DIR="$clone/.vm" \
	bash -c '. vm/vm.sh && VM_PACKAGES+=(no-such-package) && vm_install_deps') >"$clone/out" 2>&1 || rc=$?
sed 's/^/    | /' "$clone/out"
check "failed install: exit 1" [ "$rc" = 1 ]
check "failed install: apt's error in one line" grep -qx "setup: apt-get install failed: E: Unable to locate package no-such-package; see $clone/build/apt.log" "$clone/out"

# 4. Not root: through sudo; without sudo, a clear line.
if ! id nobody >/dev/null 2>&1 || ! command -v setpriv >/dev/null; then
	echo "note: no user nobody or no setpriv: the non-root cases are not run"
	exit $fail
fi
fresh_clone user 65534:65534
printf '%s\n' "${packages[@]}" | grep -vx qemu-utils >"$clone/log/installed"
run_setup nobody
check "not root: apt-get through sudo" grep -q '^env DEBIAN_FRONTEND=noninteractive apt-get .* install -y --no-install-recommends qemu-utils$' "$clone/log/sudo.calls"
check "not root: reached the build" grep -q 'all' "$clone/log/make.calls"
if command -v sudo >/dev/null; then
	echo "note: this machine has sudo, so the no-sudo case is not run"
else
	fresh_clone nosudo 65534:65534
	printf '%s\n' "${packages[@]}" | grep -vx qemu-utils >"$clone/log/installed"
	path=$tmp/nosudo-stubs:$PATH
	mkdir "$tmp/nosudo-stubs"
	cp -p "$stubs/dpkg-query" "$stubs/apt-get" "$stubs/make" "$tmp/nosudo-stubs/"
	run_setup nobody
	check "no sudo: exit 1, one line naming the packages" bash -c "[ $rc = 1 ] && grep -q 'missing packages (qemu-utils) and no sudo' '$clone/out'"
	check "no sudo: apt-get not called" [ ! -e "$clone/log/apt-get.calls" ]
fi
exit $fail
