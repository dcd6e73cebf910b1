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

# agent_start NODE [BIN]: start the node's agent (the lab's binary, or BIN), its HTTP listener on
# the node's cni0 addresses (the pods' gateway, port 15001). A small shell stays
# in the agent's cgroup as its parent, only to record its exit status in <node>.exit; the pid
# recorded in <node>.pid is the agent's own (nsenter execs it).
agent_start() {
	local node=$1 bin=${2:-$AGENT_BIN} cg sd idx=${1##*-node} hx
	hx=$(printf '%x' "$idx")
	cg=$(agent_cgroup "$node")
	sd=$(agent_dir "$node")
	mkdir -p "$cg" "$sd"
	rm -f "$sd/ready" "$sd.pid" "$sd.exit"
	printf '%s\n' "$bin" >"$sd.bin"
	# shellcheck disable=SC2016
	local inner='echo $$ >"$1" || exit 111; shift; exec nsenter "$@"'
	# shellcheck disable=SC2016
	setsid -f /bin/sh -c 'pidf=$1 cg=$2 exitf=$3 inner=$4; shift 4
		echo $$ >"$cg/cgroup.procs" || { echo 111 >"$exitf"; exit 111; }
		/bin/sh -c "$inner" sh "$pidf" "$@"
		echo $? >"$exitf"' \
		sh "$sd.pid" "$cg" "$sd.exit" "$inner" --net="/run/netns/$node" -- \
		"$bin" --config-dir "$STATE/config" --node "$node" --cgroup "$CGBASE/$node" \
		--state-dir "$sd" --l7-addr "10.244.$idx.1,fd00:10:244:$hx::1" \
		</dev/null >>"$sd.log" 2>&1 9<&-
}

agent_alive() {
	local pid
	pid=$(cat "$(agent_dir "$1").pid" 2>/dev/null) || return 1
	pid_in_cgroup "$pid" "$(agent_cgroup "$1")"
}

agent_ready_or_dead() {
	[[ -f $(agent_dir "$1")/ready || -f $(agent_dir "$1").exit ]] && return 0
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

# ---- lab agent: one node's agent killed, stopped, started again (restart and upgrade) ----

# The node must be one of this run's, with agents on.
agent_need_node() {
	local i
	[[ $AGENT == 1 ]] || die "agents are off in lab $PREFIX (it was made with lab up --no-agent)"
	for ((i = 1; i <= NODES; i++)); do
		[[ $1 == "$(node_name "$i")" ]] && return 0
	done
	die "no node $1 in lab $PREFIX (see: lab nodes)"
}

agent_exit_recorded() { [[ -f $(agent_dir "$1").exit ]]; }
agent_not_alive() { ! agent_alive "$1"; }

# SIGKILL the recorded pid, only while it is in the node's agent cgroup; wait until it is gone
# and its exit status is recorded. The agent's parent shell is left to record it.
agent_kill() {
	local node=$1 pid
	agent_alive "$node" || die "the agent of $node is not running"
	pid=$(<"$(agent_dir "$node").pid")
	kill -KILL "$pid" 2>/dev/null || true
	wait_until 5 agent_not_alive "$node" || die "agent of $node (pid $pid) still alive 5 s after SIGKILL"
	wait_until 2 agent_exit_recorded "$node" || true
	log "agent of $node killed (pid $pid, SIGKILL)"
}

# SIGTERM (the agent exits and leaves the datapath pinned), SIGKILL after 5 s.
agent_stop() {
	local node=$1 pid
	agent_alive "$node" || die "the agent of $node is not running"
	pid=$(<"$(agent_dir "$node").pid")
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_until 5 agent_not_alive "$node"; then
		log "agent of $node (pid $pid) still alive 5 s after SIGTERM: SIGKILL"
		agent_alive "$node" && kill -KILL "$pid" 2>/dev/null
		wait_until 5 agent_not_alive "$node" || die "agent of $node (pid $pid) does not exit"
	fi
	wait_until 2 agent_exit_recorded "$node" || true
	log "agent of $node stopped (pid $pid, exit status $(cat "$(agent_dir "$node").exit" 2>/dev/null || echo '?'))"
}

# Start the node's agent (BIN or the lab's binary) and wait for its ready, bounded. Fails,
# with the new agent's log, when it exits first or is not ready in time.
agent_start_one() {
	local node=$1 bin=${2:-$AGENT_BIN} sd logsz=0 rc line
	sd=$(agent_dir "$node")
	agent_alive "$node" &&
		die "the agent of $node is running (pid $(<"$sd.pid")): lab agent restart $node, or kill/stop it first"
	[[ -x $bin ]] || die "agent binary $bin is not executable"
	[[ -f $sd.log ]] && logsz=$(stat -c %s "$sd.log")
	agent_start "$node" "$bin"
	if ! wait_until "$LAB_TIMEOUT" agent_ready_or_dead "$node"; then
		log "agent of $node (pid $(cat "$sd.pid" 2>/dev/null || echo '?')) not ready within ${LAB_TIMEOUT}s; its log:"
		tail -c +$((logsz + 1)) "$sd.log" | tail -n 30 >&2
		die "agent of $node not ready within ${LAB_TIMEOUT}s (it is left running)"
	fi
	if [[ ! -f $sd/ready ]]; then
		wait_until 2 agent_exit_recorded "$node" || true
		rc=$(cat "$sd.exit" 2>/dev/null || echo '?')
		log "agent of $node ($bin) exited with status $rc before it was ready; its log:"
		tail -c +$((logsz + 1)) "$sd.log" | tail -n 30 >&2
		die "agent of $node exited with status $rc"
	fi
	line=$(tail -c +$((logsz + 1)) "$sd.log" | grep -m1 ' datapath ' || true)
	log "agent of $node ready: pid $(<"$sd.pid"), config generation $(status_get "$node" source_generation) $(status_get "$node" result)${line:+; ${line#* info: }}"
}

# key=value lines; 0 while the agent runs, 3 when it does not.
agent_status_print() {
	local node=$1 sd st k
	sd=$(agent_dir "$node")
	if agent_alive "$node"; then
		st=running
	elif [[ -f $sd.exit ]]; then
		st=exited
	else
		st=dead
	fi
	printf 'node=%s\nstate=%s\npid=%s\nbin=%s\n' "$node" "$st" "$(cat "$sd.pid" 2>/dev/null)" \
		"$(cat "$sd.bin" 2>/dev/null || printf '%s' "$AGENT_BIN")"
	[[ $st == exited ]] && printf 'exit=%s\n' "$(<"$sd.exit")"
	printf 'ready=%s\n' "$([[ -f $sd/ready ]] && echo yes || echo no)"
	for k in generation source_generation applied_generation result error apply_us; do
		printf '%s=%s\n' "$k" "$(status_get "$node" "$k")"
	done
	[[ $st == running ]] || return 3
}
