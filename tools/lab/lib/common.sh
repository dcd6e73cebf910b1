# shellcheck shell=bash
# The lab CLI's shared helpers: messages, names and paths of one run, its state on disk,
# the lock, bounded waits, and the cgroup v2 operations every part uses.

LAB_RUN_ROOT=/run/bpfmesh-lab
LAB_TIMEOUT=${BM_LAB_TIMEOUT:-10}
LAB_LOCK_FD=9

log() { printf 'lab: %s\n' "$*" >&2; }
die() {
	printf 'lab: error: %s\n' "$*" >&2
	exit 1
}

# Binaries: the normal build, or the ASan+UBSan build when BM_SAN=1.
lab_bin_dir() {
	if [[ ${BM_SAN:-0} == 1 ]]; then
		printf '%s\n' "$LAB_ROOT/.output/san/bin"
	else
		printf '%s\n' "$LAB_ROOT/.output/bin"
	fi
}

# Names of one run. The prefix has no '-', so no run's names can be another run's.
lab_set_prefix() {
	PREFIX=$1
	[[ $PREFIX =~ ^[a-z0-9]{1,12}$ ]] ||
		die "prefix '$PREFIX' must be 1-12 characters of [a-z0-9] (it starts every name of the run)"
	STATE=$LAB_RUN_ROOT/$PREFIX
	UL_NS=$PREFIX-ul
}

node_name() { printf '%s-node%d\n' "$PREFIX" "$1"; }
pod_netns() { printf '%s-%s\n' "$PREFIX" "$1"; }

# The cgroup2 mount, from /proc/mounts (never assumed).
lab_find_cgroot() {
	local dev mnt fstype rest
	while read -r dev mnt fstype rest; do
		if [[ $fstype == cgroup2 ]]; then
			printf '%s\n' "$mnt"
			return 0
		fi
	done </proc/mounts
	return 1
}

# <state>/meta: key=value lines written by `lab up`, read by every later command.
lab_meta_write() {
	{
		printf 'prefix=%s\nnodes=%s\ncgroot=%s\nagent=%s\nagent_bin=%s\n' \
			"$PREFIX" "$NODES" "$CGROOT" "$AGENT" "$AGENT_BIN"
	} >"$STATE/.meta.tmp" && mv "$STATE/.meta.tmp" "$STATE/meta"
}

lab_meta_load() {
	local k v
	[[ -f $STATE/meta ]] || return 1
	NODES='' CGROOT='' AGENT=0 AGENT_BIN=''
	while IFS='=' read -r k v; do
		case $k in
		nodes) NODES=$v ;;
		cgroot) CGROOT=$v ;;
		agent) AGENT=$v ;;
		agent_bin) AGENT_BIN=$v ;;
		esac
	done <"$STATE/meta"
	[[ $NODES =~ ^[0-9]+$ && -n $CGROOT ]] || die "$STATE/meta is damaged"
	CGBASE=$CGROOT/bpfmesh-$PREFIX
	return 0
}

lab_need_up() {
	lab_meta_load || die "lab '$PREFIX' is not up (no $STATE/meta)"
}

# One lock for every lab on the machine: mutations and the shared routes are serialized.
# Processes the lab starts must not inherit it (they are started with ${LAB_LOCK_FD}<&-).
lab_lock() {
	mkdir -p "$LAB_RUN_ROOT"
	eval "exec $LAB_LOCK_FD<\"\$LAB_RUN_ROOT\""
	flock -w 120 "$LAB_LOCK_FD" || die "another lab command holds $LAB_RUN_ROOT for more than 120 s"
}

# wait_until SECONDS CMD...: poll CMD every 50 ms; 0 as soon as it succeeds, 1 at the deadline.
wait_until() {
	local deadline=$((${EPOCHREALTIME//[!0-9]/} + $1 * 1000000))
	shift
	while :; do
		"$@" && return 0
		((${EPOCHREALTIME//[!0-9]/} > deadline)) && return 1
		sleep 0.05
	done
}

# ---- processes and cgroups ----

# The cgroup a pid is in, relative to the cgroup2 mount ("" when the pid is gone).
pid_cgroup() {
	local line
	[[ -r /proc/$1/cgroup ]] || return 0
	while IFS= read -r line; do
		if [[ $line == 0::* ]]; then
			printf '%s\n' "${line#0::}"
			return 0
		fi
	done <"/proc/$1/cgroup" 2>/dev/null
}

# True when pid is alive and in cgroup directory dir: the only pids the lab signals.
pid_in_cgroup() {
	local pid=$1 dir=$2
	local stat
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[[ $(pid_cgroup "$pid") == "${dir#"$CGROOT"}" ]] || return 1
	# A zombie still shows its cgroup until it is reaped: it does not count as alive.
	stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[[ ${stat%% *} != Z ]]
}

pid_not_in_cgroup() { ! pid_in_cgroup "$@"; }

cgroup_has_procs() {
	local f
	[[ -d $1 ]] || return 1
	while IFS= read -r f; do
		[[ -n $(cat "$f" 2>/dev/null) ]] && return 0 # pseudo-files have size 0: read them
	done < <(find "$1" -name cgroup.procs 2>/dev/null)
	return 1
}

cgroup_empty() { ! cgroup_has_procs "$1"; }

# Stop the recorded pid of a cgroup (TERM, then KILL after grace seconds), checking first that
# the pid still is in that cgroup; then kill whatever else is left in the cgroup's subtree.
stop_recorded() {
	local pidfile=$1 dir=$2 grace=${3:-3} pid=''
	[[ -f $pidfile ]] && pid=$(<"$pidfile")
	if [[ -n $pid ]] && pid_in_cgroup "$pid" "$dir"; then
		kill -TERM "$pid" 2>/dev/null || true
		wait_until "$grace" pid_not_in_cgroup "$pid" "$dir" || true
	fi
	cgroup_kill_tree "$dir"
}

# Kill every process in a cgroup subtree the lab owns (cgroup.kill, else each listed pid).
cgroup_kill_tree() {
	local dir=$1 f pid
	[[ -d $dir ]] || return 0
	cgroup_has_procs "$dir" || return 0
	if [[ -e $dir/cgroup.kill ]]; then
		echo 1 >"$dir/cgroup.kill" 2>/dev/null || true
	else
		while IFS= read -r f; do
			while IFS= read -r pid; do
				kill -KILL "$pid" 2>/dev/null || true
			done <"$f"
		done < <(find "$dir" -name cgroup.procs)
	fi
	wait_until 5 cgroup_empty "$dir" || log "processes are still in $dir after 5 s"
}

# Remove a cgroup subtree, deepest first (its processes must be gone).
cgroup_rm_tree() {
	local dir=$1 d
	[[ -d $dir ]] || return 0
	while IFS= read -r d; do
		rmdir "$d" 2>/dev/null || log "cannot remove cgroup $d"
	done < <(find "$dir" -depth -type d)
}
