#!/usr/bin/env bash
# lint_shell - every shell script of the project is shellcheck-clean
# (settings in .shellcheckrc).
# timeout: 60
set -euo pipefail
cd "$(dirname "$0")/.."
command -v shellcheck >/dev/null || { echo "skip: shellcheck not installed (apt-get install shellcheck)"; exit 77; }
mapfile -t scripts < <(git ls-files '*.sh' '*.bash' .ci/run initramfs/init 2>/dev/null || ls ./*.sh common/*.sh tests/*.sh)
echo "checking ${#scripts[@]} scripts"
shellcheck -x "${scripts[@]}"
