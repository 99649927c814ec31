#!/usr/bin/env bash
# cloud_guest - the Debian 12 cloud guest end to end under TCG, the way a
# user runs it: IVSHMEM_GUEST=cloud ./setup.sh builds (or reuses from the
# cache) the offline image, boots it with its overlay and seed ISO, waits
# for SSH and cloud-init, deploys the static guest_reader over SSH; then
# run_test.sh runs a short test with every frame verified. Also checks the
# SSH forward listens on 127.0.0.1 only, password logins are off, sudo needs
# no password, the key is private, and stop powers the guest off.
# timeout: 900
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/lib.bash
. tests/lib.bash
for tool in qemu-img genisoimage mmdebstrap mkfs.ext4 ssh ssh-keygen ss; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done
vm_test_begin cloud
port=$((20000 + $$ % 20000))
export IVSHMEM_GUEST=cloud IVSHMEM_CLOUD_SOURCE=offline IVSHMEM_SSH_PORT=$port
export IVSHMEM_ITERATIONS=1000 IVSHMEM_FRAME_ITERATIONS=1

if ! ./setup.sh >"$tmp/setup.out" 2>&1; then
	cat "$tmp/setup.out"
	grep -q 'no base image' "$tmp/setup.out" && skip "no cloud image could be built here (see above)"
	exit 1
fi
cat "$tmp/setup.out"
check "offline image used and said so" grep -q 'offline build from Debian packages' "$tmp/setup.out"
check "SSH forward on 127.0.0.1 only" bash -c "[ \"\$(ss -Htln 'sport = :$port' | awk '{print \$4}')\" = 127.0.0.1:$port ]"
check "private key mode 0600" [ "$(stat -c %a "$tmp/vm/ssh/id_ed25519")" = 600 ]
check "overlay over a pristine base" bash -c "qemu-img info -U '$tmp/vm/overlay.qcow2' | grep -q 'backing file:'"
check "password logins off" bash -c "./setup.sh ssh sudo sshd -T </dev/null | grep -qx 'passwordauthentication no'"
check "passwordless sudo" bash -c "[ \"\$(./setup.sh ssh sudo -n id -u </dev/null)\" = 0 ]"
check "guest_reader runs in the guest" bash -c "./setup.sh ssh pgrep -x guest_reader </dev/null >/dev/null"

./run_test.sh >"$tmp/run.out" 2>&1 || { cat "$tmp/run.out"; fail=1; }
grep 'RTT us' "$tmp/run.out" || true
check "3 frames verified in the cloud guest" [ "$(awk -F, 'NR > 1 && $6 == 1' "$IVSHMEM_RESULTS/bandwidth_results.csv" | wc -l)" = 3 ]
check "run.json says cloud" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "complete" and r["guest"] == "cloud", r
assert r["guest_kernel"].endswith("cloud-amd64"), r["guest_kernel"]
' "$IVSHMEM_RESULTS/run.json"
check "guest log collected" grep -q IVB-GUEST-READY "$IVSHMEM_RESULTS/guest_reader.log"

pid=$(cat "$tmp/vm/qemu.pid")
./setup.sh stop >"$tmp/stop.out" 2>&1
check "stop powers the guest off" bash -c "grep -q 'The guest powered off' '$tmp/stop.out' && ! kill -0 $pid 2>/dev/null"
exit $fail
