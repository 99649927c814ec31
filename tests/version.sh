#!/usr/bin/env bash
# version - every program reports the version of the tree it was built from
# (git describe, as run.json records it), rebuilt when a commit changes it.
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
want=$(git describe --always --dirty --tags 2>/dev/null || echo unknown)
fail=0
for prog in host_writer guest_reader transport_bench; do
	got=$("$BUILD/$prog" --version 2>&1 | head -n 1)
	case $got in
	*" $want"*) echo "ok   $prog --version says $want" ;;
	*) echo "FAIL $prog --version says '$got', the tree is $want"; fail=1 ;;
	esac
done
exit $fail
