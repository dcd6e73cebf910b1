# shellcheck shell=bash
# One bpfmesh-agent per node: started in the node's netns and in a cgroup outside the node's
# subtree, waited for (ready, then each config generation), stopped and cleaned up.

agent_cgroup() { printf '%s/agents/%s\n' "$CGBASE" "$1"; }
agent_dir() { printf '%s/agents/%s\n' "$STATE" "$1"; }

agent_find_bin() {
	AGENT_BIN=${BM_LAB_AGENT_BIN:-$(lab_bin_dir)/bpfmesh-agent}
	[[ -x $AGENT_BIN ]] ||
		die "bpfmesh-agent is not built: $AGENT_BIN is missing (run make$([[ ${BM_SAN:-0} == 1 ]] && echo ' SAN=1'), or use lab up --no-agent)"
}

agent_start() {
	local node=$1 cg sd
	cg=$(agent_cgroup "$node")
	sd=$(agent_dir "$node")
	mkdir -p "$cg" "$sd"
	rm -f "$sd/ready" "$sd.pid"
	# shellcheck disable=SC2016
	setsid -f /bin/sh -c 'pidf=$1 cg=$2 nsf=$3; shift 3
		echo $$ >"$cg/cgroup.procs" || exit 111
		echo $$ >"$pidf"
		exec nsenter --net="$nsf" -- "$@"' \
		sh "$sd.pid" "$cg" "/run/netns/$node" \
		"$AGENT_BIN" --config-dir "$STATE/config" --node "$node" --cgroup "$CGBASE/$node" \
		--state-dir "$sd" </dev/null >>"$sd.log" 2>&1 9<&-
}

agent_alive() {
	local pid
	pid=$(cat "$(agent_dir "$1").pid" 2>/dev/null) || return 1
	pid_in_cgroup "$pid" "$(agent_cgroup "$1")"
}

agent_ready_or_dead() {
	[[ -f $(agent_dir "$1")/ready ]] && return 0
	[[ -f $(agent_dir "$1").pid ]] && ! agent_alive "$1"
}

agent_show_log() {
	log "agent $1's log ($(agent_dir "$1").log):"
	tail -n 30 "$(agent_dir "$1").log" >&2 || true
}

agents_start_all() {
	local i node
	for ((i = 1; i <= NODES; i++)); do
		agent_start "$(node_name "$i")"
	done
	for ((i = 1; i <= NODES; i++)); do
		node=$(node_name "$i")
		if ! wait_until "$LAB_TIMEOUT" agent_ready_or_dead "$node" ||
			[[ ! -f $(agent_dir "$node")/ready ]]; then
			agent_show_log "$node"
			die "agent of $node not ready within ${LAB_TIMEOUT}s"
		fi
	done
}

# status_get NODE KEY: a value from the agent's key=value status file.
status_get() {
	local k v
	[[ -f $(agent_dir "$1")/status ]] || return 0
	while IFS='=' read -r k v; do
		if [[ $k == "$2" ]]; then
			printf '%s\n' "$v"
			return 0
		fi
	done <"$(agent_dir "$1")/status"
}

agent_saw_gen() {
	local src
	src=$(status_get "$1" source_generation)
	[[ ${src//[[:space:]]/} == "$2" ]] && return 0
	! agent_alive "$1"
}

# Wait until every agent has tried generation GEN; fail when one rejected it.
agents_wait_gen() {
	local gen=$1 i node bad=0
	for ((i = 1; i <= NODES; i++)); do
		node=$(node_name "$i")
		if ! wait_until "$LAB_TIMEOUT" agent_saw_gen "$node" "$gen" || ! agent_alive "$node"; then
			agent_show_log "$node"
			die "agent of $node did not apply config generation $gen within ${LAB_TIMEOUT}s"
		fi
		if [[ $(status_get "$node" result) != ok ]]; then
			printf '%s: result=%s\n%s: error=%s\n' "$node" "$(status_get "$node" result)" \
				"$node" "$(status_get "$node" error)" >&2
			bad=1
		fi
	done
	((bad == 0)) || die "config generation $gen was rejected"
}

# Stop every agent by its recorded pid, then let the agent remove what it attached and
# pinned; the bpffs dir of each of our nodes goes last, if it is still there.
agents_down() {
	local i node
	for ((i = 1; i <= NODES; i++)); do
		node=$(node_name "$i")
		stop_recorded "$(agent_dir "$node").pid" "$(agent_cgroup "$node")" 5
	done
	for ((i = 1; i <= NODES; i++)); do
		node=$(node_name "$i")
		if [[ $AGENT == 1 && -x $AGENT_BIN ]]; then
			mkdir -p "$STATE/agents"
			timeout 10 "$AGENT_BIN" --cleanup --node "$node" --cgroup "$CGBASE/$node" \
				</dev/null >>"$(agent_dir "$node").log" 2>&1 9<&- ||
				log "bpfmesh-agent --cleanup for $node failed (see $(agent_dir "$node").log)"
		fi
		if [[ -d /sys/fs/bpf/bpfmesh/$node ]]; then
			rm -rf "/sys/fs/bpf/bpfmesh/$node" || log "cannot remove /sys/fs/bpf/bpfmesh/$node"
		fi
	done
}
