# shellcheck shell=bash
# Names, addresses and helpers shared by every bench script. Everything a run creates is named
# from BENCH_PREFIX, so two runs never collide and cleanup finds exactly what it made.

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
REPO_DIR=${REPO_DIR:-$(cd "$BENCH_DIR/.." && pwd)}
BENCH_PREFIX=${BENCH_PREFIX:-bmb}

# One node and two pods, each a network namespace (see topology.sh).
NS_NODE="${BENCH_PREFIX}-node"
NS_CLI="${BENCH_PREFIX}-cli"
NS_SRV="${BENCH_PREFIX}-srv"

# Addresses exist only inside those namespaces; while a topology is up the root namespace has
# unreachable routes for both CIDRs.
POD_CIDR=10.200.0.0/24
SVC_CIDR=10.201.0.0/24
NODE_IP=10.200.0.1      # br0 in the node, the pods' gateway
CLI_IP=10.200.0.10      # client pod
SRV_IP=10.200.0.20      # server pod
VIP=10.201.0.10         # the Service's cluster IP: assigned nowhere, routed to the node
PREFIX_LEN=24

HTTP_PORT=80
IPERF_PORT=5201
MESH_UID=1337           # Istio's proxy uid/gid; the sidecar iptables exclude them
MESH_GID=1337

STATE="/tmp/${BENCH_PREFIX}.state"   # configs, pid files, logs of one topology

# cgroup v2, found in /proc/mounts. CG_PODS is the node's "kubepods": both pods are below it
# and bpfmesh attaches its cgroup programs there. CG_MESH/<name> holds each mesh process
# (proxies, the agent): what "mesh CPU" sums. CG_EXT holds a client outside the mesh.
CG2_MNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG_ROOT="${CG2_MNT}/${BENCH_PREFIX}"
CG_PODS="${CG_ROOT}/pods"
CG_CLI="${CG_PODS}/cli"
CG_SRV="${CG_PODS}/srv"
CG_MESH="${CG_ROOT}/mesh"
CG_EXT="${CG_ROOT}/ext/cli"

AGENT_BIN=${AGENT_BIN:-$REPO_DIR/.output/bin/bpfmesh-agent}
CTL_BIN=${CTL_BIN:-$REPO_DIR/.output/bin/bpfmeshctl}

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Run in a namespace. nsenter, not `ip netns exec`: that remounts /sys, which hides bpffs and
# the cgroup2 mount from what runs inside.
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" -- "$@"; }

# start_bg NAME NETNS CGROUP cmd... : a long-running process in NETNS and CGROUP; its PID is
# recorded in $STATE/pids/NAME.pid, its output goes to $STATE/log/NAME.log.
start_bg() {
	local name=$1 ns=$2 cg=$3
	shift 3
	mkdir -p "$STATE/pids" "$STATE/log" "$cg"
	# The subshell moves itself into the cgroup and execs nsenter, which execs the command:
	# $! is the command's own PID.
	(echo "$BASHPID" >"$cg/cgroup.procs" && exec nsenter --net="/run/netns/$ns" -- "$@") \
		>"$STATE/log/$name.log" 2>&1 </dev/null 9>&- &
	echo $! >"$STATE/pids/$name.pid"
	# Return once it is in its cgroup (pid_is_ours true) or has already exited.
	wait_for 2 pid_in_cgroup_or_gone $! || true
}

pid_in_cgroup_or_gone() { pid_is_ours "$1" || [[ ! -e /proc/$1 ]]; }

pid_of() { cat "$STATE/pids/$1.pid" 2>/dev/null; }

# True if PID is alive and in one of this run's cgroups: we only ever signal what we started.
pid_is_ours() {
	local pid=$1
	[[ -n $pid && -r /proc/$pid/cgroup ]] || return 1
	grep -q "^0::/${BENCH_PREFIX}/" "/proc/$pid/cgroup" 2>/dev/null
}

# Stop a process started with start_bg, by its recorded PID only.
stop_bg() {
	local name=$1 pid i
	pid=$(pid_of "$name") || return 0
	if pid_is_ours "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for i in $(seq 1 30); do
			pid_is_ours "$pid" || break
			sleep 0.1
		done
		if pid_is_ours "$pid"; then kill -KILL "$pid" 2>/dev/null; sleep 0.1; fi
	fi
	rm -f "$STATE/pids/$name.pid"
}

# wait_for SECONDS cmd... : poll every 0.1 s until cmd succeeds.
wait_for() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

listening() { in_ns "$1" ss -Hltn "sport = :$2" | grep -q LISTEN; }
wait_listen() { wait_for 5 listening "$1" "$2"; }

# CPU counters: busy/idle ticks of the whole machine (/proc/stat) and usage_usec of every
# leaf cgroup of this run (cpu.stat), one "key value" per line.
cpu_snapshot() {
	awk '/^cpu / { print "sys_busy_ticks", $2 + $3 + $4 + $7 + $8 + $9; print "sys_idle_ticks", $5 + $6 }' /proc/stat
	local f rel
	for f in "$CG_ROOT"/*/*/cpu.stat; do
		[[ -r $f ]] || continue
		rel=${f#"$CG_ROOT"/}
		awk -v k="${rel%/cpu.stat}" '$1 == "usage_usec" { print "cg:" k, $2 }' "$f"
	done
	echo "wall_ns $(date +%s%N)"
}
