# shellcheck shell=bash
# vm/matrix.bash - run_test.sh --matrix: one run per cell of a grid of
# settings, each a results directory of its own, and one table of them.
# Sourced by run_test.sh (after vm/vm.sh, which it uses, and before its
# runners, which it calls); defines functions prefixed matrix_ and runs
# nothing.
#
#   ./run_test.sh [--host-only] --matrix 'AXIS=V1,V2 AXIS=V1,V2,V3 ...' [options]
#   ./run_test.sh ... --matrix SPEC ... --resume OUT
#
# An axis is a host_writer long option (batch, slots, sizes, wait, verify,
# duration, ...: each cell passes --NAME VALUE; a flag such as rate-sweep
# takes on or off) or one of the VM-level settings of MATRIX_VM_AXES,
# which a cell passes to ./setup.sh through its IVSHMEM_* variable. The run
# visits the cross product of the axes, VM-level axes varying slowest (in
# the order given, then the workload axes in the order given, the last the
# fastest), so the guest is booted again only when a VM-level value
# changes: ./setup.sh stop, then ./setup.sh with the cell's settings over
# those of the guest that ran before (its vm.env; without one, the
# environment's). A cell is measured only if vm.env then records the value
# asked for: a setting this setup.sh does not know, or QEMU refuses, fails
# the cell (and the others of its boot) with the reason, and the run goes
# on. At the end a guest that ran before the matrix is booted again with its
# own settings; one that did not is stopped. (After a signal the guest is
# not booted again: one that ran before is left with the last cell's
# settings, and the message says so; one the matrix started is stopped.)
#
# Into OUT (IVSHMEM_RESULTS, or --resume's directory), all written with
# files_write:
#   cell-NNN-AXIS=VALUE,.../   each cell's results directory, as run_vm,
#                              run_host_only or run_intervm write it (with
#                              --repeat, its rep-K/ merged), and cell.log,
#                              what the cell said on stderr
#   boot-K.log                 ./setup.sh's output for the K-th boot
#   matrix_results.csv         one row per cell and headline figure (the
#                              figures analysis/repeated.py names: medians
#                              over a cell's repetitions), a row with the
#                              reason for a cell that failed
#   matrix.json                the axes (values, defaults), the cells in the
#                              order run, each one's status and reason, the
#                              boots, what became of the guest
#   run.json                   the matrix's provenance and status, and the
#                              rows of matrix_results.csv
# (analysis/kinds/matrix.py's main() writes the last three; analyze_results.py
# OUT reads them: analysis/kinds/matrix.py.)
#
# Before anything runs, a bad matrix is one line and exit 2: an axis
# without values, a value repeated, an unknown axis (neither an option in
# `host_writer --help` nor a VM-level setting), an axis also given as an
# option, a VM-level axis with --host-only (except backing), a VM-level
# value settings_check_vm (host-only: settings_backing) refuses, and any
# cell whose options host_writer
# refuses: each distinct set of options is given to host_writer with a
# shared-memory file that does not exist, and host_writer checks its
# options (exit 2, its own line) before it opens anything (exit 1). A
# VM-level value this machine cannot give (the settings' "not available:
# ...", e.g. hugetlb without a hugetlbfs mount) is no bad matrix: its cells
# fail with that reason, without a boot, and the run goes on.
#
# --resume OUT: the same command again (the same axes, options and
# repetitions, else exit 2); a cell whose directory has a run.json whose
# status is "complete" is kept, the others run again from scratch, and
# matrix_results.csv is written again from every cell.
#
# Signals (vm/signals.bash): a cell runs through sig_run, so a Ctrl-C ends
# it the way it ends any run; then the cells finished are kept, the cell cut
# short is a row "interrupted", matrix_results.csv and run.json are written
# with what finished, status "interrupted by SIGINT", and the exit status is
# 128+N. Exit status otherwise: 0 when every cell ran and measured, 1 when
# one failed (after all were visited).

# The VM-level axes: the variable setup.sh reads, the key vm.env records.
MATRIX_VM_AXES=(backing bar-map vcpus pin accel mode cpu-pm)
declare -A MATRIX_VM_VAR=([backing]=IVSHMEM_BACKING [bar-map]=IVSHMEM_BAR_MAP [vcpus]=IVSHMEM_VCPUS
	[pin]=IVSHMEM_VCPU_CPU [accel]=IVSHMEM_ACCEL [mode]=IVSHMEM_MODE [cpu-pm]=IVSHMEM_CPU_PM)
declare -A MATRIX_VM_KEY=([backing]=VM_BACKING [bar-map]=VM_BAR_MAP [vcpus]=VM_VCPUS
	[pin]=VM_VCPU_CPU [accel]=VM_ACCEL [mode]=VM_MODE [cpu-pm]=VM_CPU_PM)
# What a guest that ran before was started with: vm.env's key, setup.sh's variable.
MATRIX_VM_BASE=(VM_MODE:IVSHMEM_MODE VM_GUEST:IVSHMEM_GUEST VM_ACCEL:IVSHMEM_ACCEL
	VM_VCPUS:IVSHMEM_VCPUS VM_VCPU_CPU:IVSHMEM_VCPU_CPU VM_MEM:IVSHMEM_MEM
	VM_SHM_SIZE:IVSHMEM_SHM_SIZE VM_SHM_PATH:IVSHMEM_SHM_PATH VM_KERNEL:IVSHMEM_KERNEL
	VM_SERVER_SOCKET:IVSHMEM_SERVER_SOCKET VM_VECTORS:IVSHMEM_VECTORS
	VM_TRANSPORTS:IVSHMEM_TRANSPORTS VM_NET:IVSHMEM_NET
	VM_BACKING:IVSHMEM_BACKING VM_BAR_MAP:IVSHMEM_BAR_MAP)
# host_writer options that run_test.sh sets itself: not axes.
MATRIX_RESERVED=" shm shm-any-fs shm-fd doorbell vectors device vfio sysfs output meta watch-thread schema help version quiet "
MATRIX_MAX_CELLS=10000

# The matrix (filled by matrix_parse and matrix_plan).
MATRIX_AXES=()             # axis names, in run order (VM-level first)
declare -A MATRIX_KIND=()  # axis -> vm | option | flag
declare -A MATRIX_VALUES=() # axis -> its values, space-separated
declare -A MATRIX_DEFAULT=() # axis -> the value a run without the axis has ("" if not one value)
MATRIX_CELLS=0
CELL_LABEL=() CELL_DIR=() CELL_OPTS=() CELL_VM=() CELL_STATUS=() CELL_REASON=() CELL_SECONDS=() CELL_BOOT=()
MATRIX_BOOTS=()            # "label<TAB>status<TAB>seconds<TAB>reason<TAB>log" per boot
MATRIX_OUT=""              # set once cells may start: the at-exit hook writes it up
MATRIX_CURRENT=""          # the cell running now
MATRIX_DONE=""             # run.json and the table written for the end
MATRIX_STARTED=""
MATRIX_HOST_ONLY=""
MATRIX_SPEC=""
MATRIX_RUNNER=""
MATRIX_VM_BEFORE=""        # a guest ran here before the matrix
MATRIX_VM_NOW=""           # the VM-level settings of the guest the matrix booted last
MATRIX_ARGS=()             # the options every cell gets
declare -A MATRIX_BASE=()  # IVSHMEM_* a boot starts from
declare -A MATRIX_UNAVAILABLE=() # VM-level settings -> why this machine cannot give them

matrix_fail() { # the one line, exit 2
	echo "run_test: --matrix: $*" >&2
	exit 2
}

# matrix_wanted ARG... : whether the run is a matrix (--matrix or --resume
# anywhere in the arguments).
matrix_wanted() {
	local a
	for a; do
		case $a in
		--matrix | --matrix=* | --resume | --resume=*) return 0 ;;
		esac
	done
	return 1
}

# matrix_help_options : host_writer's options from its --help, one a line:
# "LONG SHORT ARG DEFAULT" (SHORT, ARG and DEFAULT "-" when none).
matrix_help_options() {
	local line help re='^ {2,}(-([A-Za-z]), )?--([a-z0-9-]+)( ([^ ]+))?( {2,}(.*))?$' def
	help=$("$BIN/host_writer" --help) || return 1
	while IFS= read -r line; do
		[[ $line =~ $re ]] || continue
		local long=${BASH_REMATCH[3]} short=${BASH_REMATCH[2]:--} arg=${BASH_REMATCH[5]:--} rest=${BASH_REMATCH[7]}
		def=-
		if [[ $rest =~ \(default:?\ ([^\)]*)\) ]]; then
			def=${BASH_REMATCH[1]}
			[[ $def != *[\ ,]* ]] || def=-
		fi
		echo "$long $short $arg $def"
	done <<<"$help"
}

# matrix_parse SPEC ARG... : the axes of SPEC checked against host_writer's
# options (ARG...: the options every cell gets, which may not repeat one).
matrix_parse() {
	local spec=$1 part name values v seen opts short arg def a vmaxes=() optaxes=()
	shift
	declare -A help_arg=() help_def=() short_long=()
	opts=$(matrix_help_options) || matrix_fail "cannot read the options of $BIN/host_writer --help"
	while read -r name short arg def; do
		help_arg[$name]=$arg help_def[$name]=$def
		[ "$short" = - ] || short_long[$short]=$name
	done <<<"$opts"
	read -ra parts <<<"$spec"
	[ ${#parts[@]} -gt 0 ] || matrix_fail "no axes: expected 'AXIS=V1,V2 ...', e.g. 'batch=1,16 slots=64,256'"
	for part in "${parts[@]}"; do
		[[ $part == *=* ]] || matrix_fail "'$part' is not AXIS=V1,V2,... (e.g. batch=1,16)"
		name=${part%%=*} values=${part#*=}
		[[ $name =~ ^[a-z][a-z0-9-]*$ ]] || matrix_fail "'$name' is not an axis name (a host_writer long option without its dashes, or a VM-level setting)"
		[ -z "${MATRIX_KIND[$name]:-}" ] || matrix_fail "axis '$name' given twice"
		[ -n "$values" ] || matrix_fail "axis '$name' has no values (expected $name=V1,V2,...)"
		[[ ,$values, != *,,* ]] || matrix_fail "axis '$name': an empty value in '$values'"
		seen=" "
		for v in ${values//,/ }; do
			[[ $v =~ ^[A-Za-z0-9._:+-]+$ ]] ||
				matrix_fail "axis '$name': value '$v' has a character other than letters, digits and . _ : + -"
			[[ $seen != *" $v "* ]] || matrix_fail "axis '$name': value '$v' given twice"
			seen+="$v "
		done
		if [ -n "${MATRIX_VM_VAR[$name]:-}" ]; then
			MATRIX_KIND[$name]=vm
			vmaxes+=("$name")
		elif [ -n "${help_arg[$name]:-}" ]; then
			[[ $MATRIX_RESERVED != *" $name "* ]] || matrix_fail "axis '$name': --$name is set by run_test.sh itself, not an axis"
			if [ "${help_arg[$name]}" = - ]; then
				MATRIX_KIND[$name]=flag
				for v in ${values//,/ }; do
					[ "$v" = on ] || [ "$v" = off ] || matrix_fail "axis '$name': --$name takes no value: its values are on and off, not '$v'"
				done
			else
				MATRIX_KIND[$name]=option
			fi
			def=${help_def[$name]}
			[ "$def" != - ] || def=""
			[ "${MATRIX_KIND[$name]}" != flag ] || def=off
			MATRIX_DEFAULT[$name]=$def
			optaxes+=("$name")
		else
			matrix_fail "unknown axis '$name': not an option of host_writer (build/host_writer --help) nor a VM-level setting (${MATRIX_VM_AXES[*]})"
		fi
		MATRIX_VALUES[$name]=${values//,/ }
	done
	# An axis is the option's only source.
	for a; do
		case $a in
		--*=*) name=${a%%=*} name=${name#--} ;;
		--*) name=${a#--} ;;
		-?) name=${short_long[${a#-}]:-} ;;
		*) continue ;;
		esac
		case ${MATRIX_KIND[$name]:-} in
		option | flag) matrix_fail "axis '$name' is also given as an option ($a): give it one way" ;;
		esac
	done
	MATRIX_AXES=("${vmaxes[@]}" "${optaxes[@]}")
}

# matrix_base : the IVSHMEM_* a boot starts from, into MATRIX_BASE: those
# of the guest running here (its vm.env), or the environment's. Sets
# MATRIX_VM_BEFORE when a guest runs.
matrix_base() {
	local pair key var
	for pair in "${MATRIX_VM_BASE[@]}"; do
		var=${pair#*:}
		[ -z "${!var:-}" ] || MATRIX_BASE[$var]=${!var}
	done
	if [ -d "$VM_STATE_DIR" ] && [ -n "$(vm_pid)" ] && [ -f "$VM_ENV" ]; then
		MATRIX_VM_BEFORE=1
		for pair in "${MATRIX_VM_BASE[@]}"; do
			key=${pair%%:*} var=${pair#*:}
			local "$key"=""
			vm_state_read "$VM_ENV" "$key" || true
			[ -z "${!key}" ] || MATRIX_BASE[$var]=${!key}
		done
	fi
	local a
	for a in "${MATRIX_AXES[@]}"; do
		[ "${MATRIX_KIND[$a]}" = vm ] || continue
		var=${MATRIX_VM_VAR[$a]}
		MATRIX_DEFAULT[$a]=${MATRIX_BASE[$var]:-}
	done
}

# matrix_plan OUT : the cells, in run order, with their directories,
# options and VM-level settings.
matrix_plan() {
	local out=$1 n=1 a i k idx rest v label opts vm name
	for a in "${MATRIX_AXES[@]}"; do
		read -ra vals <<<"${MATRIX_VALUES[$a]}"
		n=$((n * ${#vals[@]}))
		[ "$n" -le "$MATRIX_MAX_CELLS" ] || matrix_fail "more than $MATRIX_MAX_CELLS cells"
	done
	MATRIX_CELLS=$n
	for ((i = 0; i < n; i++)); do
		rest=$i label="" opts="" vm=""
		# Mixed radix, the last axis fastest.
		declare -A pick=()
		for ((k = ${#MATRIX_AXES[@]} - 1; k >= 0; k--)); do
			a=${MATRIX_AXES[k]}
			read -ra vals <<<"${MATRIX_VALUES[$a]}"
			idx=$((rest % ${#vals[@]})) rest=$((rest / ${#vals[@]}))
			pick[$a]=${vals[idx]}
		done
		for a in "${MATRIX_AXES[@]}"; do
			v=${pick[$a]}
			label+="${label:+,}$a=$v"
			case ${MATRIX_KIND[$a]} in
			vm) vm+="${vm:+ }${MATRIX_VM_VAR[$a]}=$v" ;;
			option) opts+="${opts:+ }--$a $v" ;;
			flag) [ "$v" = off ] || opts+="${opts:+ }--$a" ;;
			esac
		done
		unset pick
		printf -v name 'cell-%03d-%s' $((i + 1)) "$label"
		CELL_LABEL[i]=$label CELL_DIR[i]=$out/$name CELL_OPTS[i]=$opts CELL_VM[i]=$vm
		CELL_STATUS[i]="not run" CELL_REASON[i]="" CELL_SECONDS[i]="" CELL_BOOT[i]=""
	done
}

# matrix_check : every cell's settings, before anything runs (one line,
# exit 2 on the first refused).
matrix_check() {
	local i a tmp rc err vm seen_vm=" " seen_opts=$'\n' assign
	for a in "${MATRIX_AXES[@]}"; do
		if [ "${MATRIX_KIND[$a]}" = vm ]; then
			[ -z "$MATRIX_HOST_ONLY" ] || [ "$a" = backing ] ||
				matrix_fail "axis '$a' is a VM-level setting: not with --host-only (of those, only backing applies there)"
			[ -n "$MATRIX_HOST_ONLY" ] || [ "$IVSHMEM_TOPOLOGY" = host-vm ] ||
				matrix_fail "axis '$a' reboots the guest: VM-level axes need IVSHMEM_TOPOLOGY=host-vm (a vm-vm pair is booted by IVSHMEM_TOPOLOGY=vm-vm ./setup.sh)"
		fi
	done
	sig_mktemp tmp -d "${TMPDIR:-/tmp}/ivshmem-bench-matrix.XXXXXX"
	writer_args
	for ((i = 0; i < MATRIX_CELLS; i++)); do
		vm=${CELL_VM[i]}
		if [ -n "$vm" ] && [[ $seen_vm != *" [$vm] "* ]]; then
			seen_vm+="[$vm] "
			# The boot's settings checked as setup.sh checks them (host-only:
			# settings_backing, as run_host_only does), in a subshell: its
			# one line names the variable and what it accepts.
			err=$(
				for assign in "${!MATRIX_BASE[@]}"; do export "$assign=${MATRIX_BASE[$assign]}"; done
				for assign in $vm; do export "${assign?}"; done
				if [ -z "$MATRIX_HOST_ONLY" ]; then
					settings_check_vm 2>&1
				elif declare -F settings_backing >/dev/null; then
					settings_backing host-only 2>&1
				fi
			) || {
				err=${err##*$'\n'} err=${err#run_test: }
				# What this machine cannot give fails the cells that ask
				# for it, with the reason; a value no machine takes, the run.
				[[ $err == *": not available"* ]] || matrix_fail "cell ${CELL_LABEL[i]}: $err"
				MATRIX_UNAVAILABLE[$vm]=$err
			}
		fi
		[[ $seen_opts != *$'\n'"${CELL_OPTS[i]}"$'\n'* ]] || continue
		seen_opts+="${CELL_OPTS[i]}"$'\n'
		rc=0
		# shellcheck disable=SC2086 # the cell's options: words without spaces
		err=$("$BIN/host_writer" --shm "$tmp/no-such-file" --output "$tmp/out" "${WRITER_ARGS[@]}" \
			"${MATRIX_ARGS[@]}" ${CELL_OPTS[i]} --quiet 2>&1 >/dev/null) || rc=$?
		[ "$rc" != 2 ] || matrix_fail "cell ${CELL_LABEL[i]}: ${err%%$'\n'*}"
	done
	rm -rf "$tmp"
	sig_forget "$tmp"
}

# matrix_py COMMAND ARG... : analysis/kinds/matrix.py's main().
matrix_py() {
	/usr/bin/python3 -c 'import sys; from analysis.kinds.matrix import main; sys.exit(main(sys.argv[1:]))' "$@"
}

# matrix__clean TEXT : TEXT without tabs or ends of line (a field of matrix_state).
matrix__clean() {
	local s=${1//$'\t'/ }
	printf '%s' "${s//$'\n'/ }"
}

# matrix_state : the plan and each cell's state, as matrix_py write reads
# it on standard input (tab-separated; no tab or end of line in a field).
matrix_state() {
	local a i b
	printf 'run\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(matrix__clean "$MATRIX_SPEC")" "$MATRIX_RUNNER" \
		"${MATRIX_HOST_ONLY:-0}" "$(matrix__clean "${MATRIX_ARGS[*]}")" "$(matrix__clean "${REPEAT_PLAN:-}")" \
		"$(matrix__clean "${REPEAT_CI:-}")" "${MATRIX_VM_BEFORE:-0}"
	for a in "${MATRIX_AXES[@]}"; do
		printf 'axis\t%s\t%s\t%s\t%s\t%s\n' "$a" "${MATRIX_KIND[$a]}" "${MATRIX_VM_VAR[$a]:-}" \
			"${MATRIX_VALUES[$a]}" "$(matrix__clean "${MATRIX_DEFAULT[$a]:-}")"
	done
	for ((i = 0; i < MATRIX_CELLS; i++)); do
		printf 'cell\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $((i + 1)) "${CELL_LABEL[i]}" \
			"$(basename -- "${CELL_DIR[i]}")" "${CELL_OPTS[i]}" "${CELL_VM[i]}" "${CELL_STATUS[i]}" \
			"$(matrix__clean "${CELL_REASON[i]}")" "${CELL_SECONDS[i]}" "${CELL_BOOT[i]}"
	done
	for b in "${MATRIX_BOOTS[@]}"; do
		printf 'boot\t%s\n' "$b"
	done
}

# matrix_save STATUS [table] : matrix.json and run.json (and with table, matrix_results.csv
# from every cell's results) written into OUT, whole or not at all.
matrix_save() {
	local status=$1 tmp ok=0 f files=(matrix.json run.json)
	[ "${2:-}" != table ] || files=(matrix_results.csv matrix.json run.json)
	sig_mktemp tmp -d "${TMPDIR:-/tmp}/ivshmem-bench-matrix.XXXXXX" || return 1
	matrix_state | matrix_py write "$MATRIX_OUT" "$tmp" --status "$status" --started "$MATRIX_STARTED" \
		${2:+--table} || ok=$?
	if [ "$ok" = 0 ]; then
		for f in "${files[@]}"; do
			files_write "$MATRIX_OUT/$f" <"$tmp/$f" || ok=1
		done
	fi
	rm -rf "$tmp"
	sig_forget "$tmp"
	return "$ok"
}

# matrix_reason LOG : the line that says why (the last line naming a
# program, else the last line), from a log.
matrix_reason() {
	local line
	line=$(grep -E '^[A-Za-z_.-]+: ' "$1" 2>/dev/null | grep -v ': warning: ' | tail -n 1) || true
	[ -n "$line" ] || line=$(grep . "$1" 2>/dev/null | tail -n 1) || true
	printf '%s' "$line"
}

# matrix_boot K VM : ./setup.sh stop, then ./setup.sh with the base
# settings and VM's (VAR=VALUE ...), its output into OUT/boot-K.log; the
# settings asked for checked against vm.env. Returns 1 with MATRIX_WHY.
matrix_boot() {
	local k=$1 vm=$2 log fd assign env=() rc=0 start var key want got a
	MATRIX_WHY=""
	log=$MATRIX_OUT/boot-$k.log
	files_open fd "$log" || { MATRIX_WHY="cannot write $log"; return 1; }
	for var in "${!MATRIX_BASE[@]}"; do env+=("$var=${MATRIX_BASE[$var]}"); done
	for assign in $vm; do env+=("$assign"); done
	echo "== boot $k: $vm"
	start=$(date +%s)
	sig_run ./setup.sh stop >&"$fd" 2>&1 || true
	MATRIX_VM_NOW=""
	sig_run env "${env[@]}" ./setup.sh >&"$fd" 2>&1 || rc=$?
	exec {fd}>&-
	sig_stopped && return 1
	if [ "$rc" != 0 ]; then
		MATRIX_WHY="the guest did not boot with $vm: $(matrix_reason "$log")"
	else
		MATRIX_VM_NOW=$vm
		# The guest has what the cell asked for only if setup.sh says so.
		for assign in $vm; do
			var=${assign%%=*} want=${assign#*=}
			for a in "${!MATRIX_VM_VAR[@]}"; do [ "${MATRIX_VM_VAR[$a]}" != "$var" ] || key=${MATRIX_VM_KEY[$a]}; done
			local "$key"=""
			vm_state_read "$VM_ENV" "$key" || true
			got=${!key}
			[ "$var" = IVSHMEM_ACCEL ] && [ "$want" = auto ] && continue
			if [ -z "$got" ]; then
				MATRIX_WHY="setup.sh booted the guest but its vm.env does not record $key: this setup.sh does not know $var, so $var=$want was not applied"
			elif [ "$got" != "$want" ]; then
				MATRIX_WHY="asked for $var=$want, the guest runs with $got (vm.env's $key)"
			fi
			[ -z "$MATRIX_WHY" ] || break
		done
	fi
	MATRIX_BOOTS+=("$k"$'\t'"${vm}"$'\t'"$([ -z "$MATRIX_WHY" ] && echo ok || echo failed)"$'\t'"$(($(date +%s) - start))"$'\t'"$(matrix__clean "$MATRIX_WHY")"$'\t'"$(basename -- "$log")")
	if [ -n "$MATRIX_WHY" ]; then
		vm_warn "boot $k: $MATRIX_WHY (see $log)"
		return 1
	fi
	return 0
}

# matrix_cell_run I : the cell's run (in a subshell of sig_run's): its
# VM-level settings in the environment (host-only: backing), then the
# runner, once or repeated.
matrix_cell_run() {
	local i=$1 assign
	for assign in ${CELL_VM[i]}; do export "${assign?}"; done
	# shellcheck disable=SC2086 # the cell's options: words without spaces
	run_maybe_repeated "$MATRIX_RUNNER" "${CELL_DIR[i]}" "${MATRIX_ARGS[@]}" ${CELL_OPTS[i]} \
		--meta matrix_cell="${CELL_LABEL[i]}"
}

# matrix_cell I : run cell I into its directory, its stderr also into
# cell.log there; its status and reason into CELL_*.
matrix_cell() {
	local i=$1 dir=${CELL_DIR[$1]} fd rc=0 start why
	why=$(vm_results_links "$MATRIX_OUT")
	[ -z "$why" ] || die "$why"
	# An earlier attempt's files are not this run's.
	[ ! -d "$dir" ] || [ -L "$dir" ] || rm -rf -- "$dir"
	mkdir -p "$dir"
	files_open fd "$dir/cell.log" || exit 1
	echo "== cell $((i + 1)) of $MATRIX_CELLS: ${CELL_LABEL[i]}"
	MATRIX_CURRENT=$i
	start=$(date +%s)
	sig_run matrix_cell_run "$i" 2>&"$fd" || rc=$?
	exec {fd}>&-
	CELL_SECONDS[i]=$(($(date +%s) - start))
	# What the cell said on stderr, now that it is over.
	[ ! -s "$dir/cell.log" ] || cat -- "$dir/cell.log" >&2
	if sig_stopped; then
		CELL_STATUS[i]=interrupted CELL_REASON[i]="interrupted by SIG$SIG_NAME"
	elif [ "$rc" = 0 ]; then
		CELL_STATUS[i]=ok CELL_REASON[i]=""
	else
		CELL_STATUS[i]=failed
		CELL_REASON[i]="exit $rc: $(matrix_reason "$dir/cell.log")"
	fi
	MATRIX_CURRENT=""
}

# The EXIT hook: after a signal (or an error of the shell), run.json and
# matrix_results.csv say what finished; a guest the matrix started is
# stopped; one that ran before is left as the last boot made it.
matrix_at_exit() {
	[ -n "$MATRIX_OUT" ] && [ -z "$MATRIX_DONE" ] || return 0
	local status="failed: run_test.sh stopped before the end of the matrix"
	! sig_stopped || status="interrupted by SIG$SIG_NAME"
	if [ -n "$MATRIX_CURRENT" ] && [ "${CELL_STATUS[MATRIX_CURRENT]}" = "not run" ]; then
		CELL_STATUS[MATRIX_CURRENT]=interrupted CELL_REASON[MATRIX_CURRENT]=$status
	fi
	MATRIX_DONE=1
	matrix_save "$status" table || true
	if matrix_has_vm_axes && [ -z "$MATRIX_VM_BEFORE" ]; then
		./setup.sh stop >/dev/null 2>&1 || true
	elif matrix_has_vm_axes && [ -n "$MATRIX_VM_NOW" ]; then
		vm_warn "the guest runs with the last cell's settings ($MATRIX_VM_NOW): ./setup.sh stop && ./setup.sh gives back your own"
	fi
	vm_warn "matrix $status: the cells that finished are in $MATRIX_OUT (--resume $MATRIX_OUT runs the rest)"
}

matrix_has_vm_axes() {
	local a
	for a in "${MATRIX_AXES[@]}"; do [ "${MATRIX_KIND[$a]}" != vm ] || return 0; done
	return 1
}

# matrix_main ARG... : run_test.sh's --matrix (the arguments as given,
# --repeat and its kin already taken out by repeat_options).
matrix_main() {
	local a out resume="" stream="" given="" i k=0 failed=0 finished="" reboot restore=() var
	MATRIX_ARGS=()
	[ "${1:-}" != --host-only ] || { MATRIX_HOST_ONLY=1; shift; }
	while [ $# -gt 0 ]; do
		a=$1
		shift
		case $a in
		--matrix | --resume)
			[ $# -gt 0 ] || matrix_fail "$a needs a value"
			[ "$a" = --matrix ] && MATRIX_SPEC=$1 given=1 || resume=$1
			shift
			;;
		--matrix=*) MATRIX_SPEC=${a#--matrix=} given=1 ;;
		--resume=*) resume=${a#--resume=} ;;
		--stream) stream=1 ;;
		--host-only) matrix_fail "--host-only comes first (./run_test.sh --host-only --matrix ...)" ;;
		--bench | --transports | --transports=*) matrix_fail "not with $a" ;;
		*) MATRIX_ARGS+=("$a") ;;
		esac
	done
	[ -n "$given" ] || matrix_fail "--resume needs the run's --matrix and options again (the same command, with --resume OUT)"
	[ -z "$stream" ] || MATRIX_ARGS=("${STREAM_SWEEP[@]}" "${MATRIX_ARGS[@]}")
	settings_check_run
	if [ -n "$MATRIX_HOST_ONLY" ]; then
		settings_cpu IVSHMEM_VCPU_CPU
		settings_shm_size /dev/shm
		[ -z "$REPEAT_REBOOT" ] || repeat_fail "--repeat-reboot: there is no guest to boot in --host-only"
		MATRIX_RUNNER=run_host_only
	else
		settings_state_dir
		if [ "$IVSHMEM_TOPOLOGY" = vm-vm ]; then
			MATRIX_RUNNER=run_intervm
		else
			[ ! -d "$VM_STATE_DIR" ] || intervm_refuse_running host-vm
			MATRIX_RUNNER=run_vm
		fi
	fi
	matrix_parse "$MATRIX_SPEC" "${MATRIX_ARGS[@]}"
	out=${resume:-$IVSHMEM_RESULTS}
	[ -z "$resume" ] || [ -d "$resume" ] || matrix_fail "--resume $resume: no such directory"
	[ -n "$MATRIX_HOST_ONLY" ] || matrix_base
	matrix_plan "$out"
	matrix_check
	if [ -z "$MATRIX_HOST_ONLY" ] && ! matrix_has_vm_axes && [ "$MATRIX_RUNNER" = run_vm ] &&
		{ [ ! -d "$VM_STATE_DIR" ] || [ -z "$(vm_pid)" ]; }; then
		die "no VM running: start it with ./setup.sh (or give the matrix a VM-level axis, which boots its own)"
	fi
	a=$(vm_results_links "$out")
	[ -z "$a" ] || die "$a"
	mkdir -p "$out"
	if [ -n "$resume" ]; then
		a=$(matrix_state | matrix_py same "$out") || matrix_fail "--resume $out: $a"
		finished=$(matrix_py finished "$out" "${CELL_DIR[@]##*/}") || matrix_fail "--resume $out: cannot read its cells"
	else
		# An earlier matrix's cells and table are not this one's.
		for a in "$out"/cell-[0-9]* "$out"/boot-[0-9]*.log "$out/matrix_results.csv"; do
			[ ! -e "$a" ] || [ -L "$a" ] || rm -rf -- "$a"
		done
	fi
	MATRIX_OUT=$out MATRIX_STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	SIG_AT_EXIT+=(matrix_at_exit)
	matrix_save running
	echo "== matrix: $MATRIX_CELLS cells (${MATRIX_AXES[*]}) into $out"
	reboot="-"
	for ((i = 0; i < MATRIX_CELLS; i++)); do
		if [[ $'\n'$finished$'\n' == *$'\n'"${CELL_DIR[i]##*/}"$'\n'* ]]; then
			CELL_STATUS[i]=ok CELL_REASON[i]="finished in an earlier run (--resume)"
			echo "== cell $((i + 1)) of $MATRIX_CELLS: ${CELL_LABEL[i]}: finished earlier, kept"
			continue
		fi
		if [ -n "${MATRIX_UNAVAILABLE[${CELL_VM[i]:-none}]:-}" ]; then
			CELL_STATUS[i]=failed CELL_REASON[i]=${MATRIX_UNAVAILABLE[${CELL_VM[i]}]}
			echo "== cell $((i + 1)) of $MATRIX_CELLS: ${CELL_LABEL[i]}: not run: ${CELL_REASON[i]}"
			failed=$((failed + 1))
			matrix_save running
			continue
		fi
		if [ -n "${CELL_VM[i]}" ] && [ -z "$MATRIX_HOST_ONLY" ] && [ "$reboot" != "${CELL_VM[i]}" ]; then
			reboot=${CELL_VM[i]} k=$((k + 1))
			matrix_boot "$k" "${CELL_VM[i]}" || true
			sig_exit_if_stopped
		fi
		if [ -n "${CELL_VM[i]}" ] && [ -z "$MATRIX_HOST_ONLY" ]; then
			CELL_BOOT[i]=$k
			if [ -n "$MATRIX_WHY" ]; then
				CELL_STATUS[i]=failed CELL_REASON[i]=$MATRIX_WHY
				failed=$((failed + 1))
				matrix_save running
				continue
			fi
		fi
		matrix_cell "$i"
		sig_exit_if_stopped
		[ "${CELL_STATUS[i]}" = ok ] || failed=$((failed + 1))
		matrix_save running
	done
	# The machine as it was: the guest that ran before, with its own settings.
	if matrix_has_vm_axes && [ -z "$MATRIX_HOST_ONLY" ] && [ "$k" -gt 0 ]; then
		if [ -n "$MATRIX_VM_BEFORE" ]; then
			for var in "${!MATRIX_BASE[@]}"; do restore+=("$var=${MATRIX_BASE[$var]}"); done
			echo "== the guest again, with its own settings"
			sig_run ./setup.sh stop >/dev/null 2>&1 || true
			sig_run env "${restore[@]}" ./setup.sh >/dev/null ||
				{ sig_exit_if_stopped; vm_warn "the guest did not boot again with its own settings: ./setup.sh says why"; }
		else
			sig_run ./setup.sh stop >/dev/null 2>&1 || true
		fi
		sig_exit_if_stopped
	fi
	MATRIX_DONE=1
	matrix_save complete table || die "cannot write the matrix's results into $out"
	echo "== matrix: $((MATRIX_CELLS - failed)) of $MATRIX_CELLS cells measured; $out/matrix_results.csv"
	[ "$failed" = 0 ] || { vm_warn "$failed of $MATRIX_CELLS cells failed: their rows in $out/matrix_results.csv say why"; return 1; }
	return 0
}
