#!/usr/bin/env bash
# lint_shell - every shell script of the project is shellcheck-clean
# (settings in .shellcheckrc).
# timeout: 180
set -euo pipefail
cd "$(dirname "$0")/.."
command -v shellcheck >/dev/null || { echo "skip: shellcheck not installed (apt-get install shellcheck)"; exit 77; }
# Tracked files and new ones not yet added (but not ignored ones).
mapfile -t scripts < <(git ls-files --cached --others --exclude-standard '*.sh' '*.bash' .ci/run vm/initramfs/init 2>/dev/null ||
	ls ./*.sh vm/*.sh vm/*.bash tests/*.sh tests/*.bash .ci/run vm/initramfs/init)
echo "checking ${#scripts[@]} scripts"
shellcheck -x "${scripts[@]}"
