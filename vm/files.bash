# shellcheck shell=bash
# vm/files.bash - the one way the scripts (setup.sh, run_test.sh, vm/,
# tools/) create a file: never through a link planted at its name, never
# half-written. Sourced by vm/vm.sh and vm/cloud.sh; defines functions
# prefixed files_ and runs nothing.
#
# The shell's own `>`, `>>` and `tee -a` follow a symbolic link at the name
# (and noclobber follows one to a device or a FIFO), so nothing here opens a
# path that someone else could have made. A file is made in a private
# directory beside its final name (mktemp -d: mode 0700, a name nobody can
# guess, on the same file system), filled there, and renamed onto the name:
# rename(2) replaces whatever stands at the name and never follows it. The
# C side does the same (common/results.c: O_EXCL|O_NOFOLLOW, then rename).
#
# A link already at the name is refused with one line naming it, and its
# target is left alone; with --replace (for the state directory, which is
# ours alone: settings_state_dir) it is replaced instead, never followed.
#
#   files_write [--replace] PATH    standard input into PATH, whole or not at all
#   files_new [--replace] PATH      PATH made anew, empty
#   files_open [--replace] VAR PATH PATH made anew, and VAR set to a descriptor
#                                   appending to that very file, whatever
#                                   happens to the name later
#   files_stage PATH                a new empty file to fill, in FILES_STAGED,
#                                   in a private directory beside PATH
#   files_place [--replace] FILE PATH
#                                   rename FILE (staged beside PATH) onto PATH
#   files_discard FILE              remove a staged FILE instead
#   files_refuse_link PATH          fail, with the line, if PATH is a link
#
# Each returns non-zero after one line on stderr ("PROG: PATH: why") and
# leaves nothing behind on failure. Directories are not links' business
# here: a results directory that is a link to a directory of the user's is
# used, as host_writer uses it.

# The line of a failure, prefixed with the program's name.
files__warn() { printf '%s: %s\n' "${VM_PROG:-ivshmem-bench}" "$*" >&2; }

files_refuse_link() {
	[ -L "$1" ] || return 0
	files__warn "$1 is a symbolic link (to $(readlink -- "$1")): refusing to write through it; remove it if it is yours"
	return 1
}

# files_stage PATH : FILES_STAGED is a new empty file, ours alone, in a new
# private directory in PATH's directory (same file system: the rename onto
# PATH is atomic). files_place moves it and removes that directory.
files_stage() {
	local dir base
	dir=$(dirname -- "$1") base=$(basename -- "$1")
	FILES_STAGED=""
	# Removed on every exit where vm/signals.bash is in use.
	if declare -F sig_mktemp >/dev/null; then
		sig_mktemp dir -d -- "$dir/.$base.XXXXXX" 2>/dev/null || dir=""
	else
		dir=$(mktemp -d -- "$dir/.$base.XXXXXX" 2>/dev/null) || dir=""
	fi
	if [ -z "$dir" ]; then
		files__warn "$1: cannot create a file in $(dirname -- "$1")"
		return 1
	fi
	# Inside a directory only we can enter, nothing can stand at the name;
	# the file gets the usual mode (the umask's), the directory is mktemp's.
	if ! : >"$dir/$base" 2>/dev/null; then
		files__rmdir "$dir"
		files__warn "$1: cannot create a file in $(dirname -- "$1")"
		return 1
	fi
	FILES_STAGED=$dir/$base
}

# files_place [--replace] FILE PATH : FILE, staged by files_stage (or any
# file in a private directory on PATH's file system), renamed onto PATH; a
# link at PATH is refused (replaced with --replace). FILE's directory is
# removed if that leaves it empty. On failure FILE and its directory go.
files_place() {
	local replace="" src path err
	[ "$1" != --replace ] || { replace=1; shift; }
	src=$1 path=$2
	if [ -z "$replace" ] && ! files_refuse_link "$path"; then
		files_discard "$src"
		return 1
	fi
	# -T: PATH is the name to replace, even if it is a link to a directory.
	if ! err=$(mv -Tf -- "$src" "$path" 2>&1); then
		files_discard "$src"
		files__warn "$path: cannot write it: ${err##*: }"
		return 1
	fi
	files__rmdir "$(dirname -- "$src")"
}

# files_discard FILE : remove a staged FILE and, if empty then, its directory.
files_discard() {
	rm -f -- "$1"
	files__rmdir "$(dirname -- "$1")"
}

# files__rmdir DIR : remove a staging directory if it is empty now.
files__rmdir() {
	rmdir -- "$1" 2>/dev/null || return 0
	! declare -F sig_forget >/dev/null || sig_forget "$1"
}

files_write() {
	local replace=() path err
	[ "$1" != --replace ] || { replace=(--replace); shift; }
	path=$1
	[ ${#replace[@]} -gt 0 ] || files_refuse_link "$path" || return 1
	files_stage "$path" || return 1
	if ! err=$(cat 2>&1 >>"$FILES_STAGED"); then
		files_discard "$FILES_STAGED"
		files__warn "$path: cannot write it: ${err##*: }"
		return 1
	fi
	files_place "${replace[@]}" "$FILES_STAGED" "$path"
}

files_new() { files_write "$@" </dev/null; }

files_open() {
	# Prefixed locals: the caller's VAR must not be one of them.
	local files__replace=() files__var files__path files__fd
	[ "$1" != --replace ] || { files__replace=(--replace); shift; }
	files__var=$1 files__path=$2
	[ ${#files__replace[@]} -gt 0 ] || files_refuse_link "$files__path" || return 1
	files_stage "$files__path" || return 1
	# Opened while it is still in the private directory: the descriptor is
	# on our file, wherever its name goes.
	exec {files__fd}>>"$FILES_STAGED"
	if ! files_place "${files__replace[@]}" "$FILES_STAGED" "$files__path"; then
		exec {files__fd}>&-
		return 1
	fi
	printf -v "$files__var" '%s' "$files__fd"
}
