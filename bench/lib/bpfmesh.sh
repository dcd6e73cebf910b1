# shellcheck shell=bash
# bpfmesh in a scenario: one Service (the VIP, ports 80 and 5201) with the server pod as its
# endpoint, one bpfmesh-agent in the node netns attached to the pods' parent cgroup, its CPU
# counted as mesh CPU; the datapath's own counters as evidence of which path carried the load.
# A scenario may add manifests of its own to $BM_DIR/config/ before bpfmesh_up (bpfmesh-l7's
# VirtualService); they are copied to the round's conf/ with the Service.

BM_NODE=$BENCH_PREFIX                    # pins: /sys/fs/bpf/bpfmesh/$BM_NODE
BM_DIR="$STATE/bpfmesh"
AGENT_READY_TIMEOUT=${AGENT_READY_TIMEOUT:-20}

bpfmesh_config() {
	mkdir -p "$BM_DIR/config"
	cat >"$BM_DIR/config/bench-server.yaml" <<EOF2
apiVersion: v1
kind: Service
metadata: {name: bench-server, namespace: default}
spec:
  clusterIP: ${VIP}
  ports:
  - {name: http, port: ${HTTP_PORT}, targetPort: ${HTTP_PORT}}
  - {name: tcp-iperf, port: ${IPERF_PORT}, targetPort: ${IPERF_PORT}}
---
apiVersion: v1
kind: Endpoints
metadata: {name: bench-server, namespace: default}
subsets:
- addresses: [{ip: ${SRV_IP}}]
  ports:
  - {name: http, port: ${HTTP_PORT}}
  - {name: tcp-iperf, port: ${IPERF_PORT}}
EOF2
}

agent_knows() { "$AGENT_BIN" --help 2>&1 | grep -q -- "$1"; }
agent_ready() { [[ -f $BM_DIR/state/ready ]] || ! pid_is_ours "$(pid_of bpfmesh-agent)"; }

# The agent's reason for exiting: its `unsupported:` line (or getopt's complaint about a flag
# it does not know) makes the scenario UNSUPPORTED; anything else FAILED.
agent_exited() {
	local logf="$STATE/log/bpfmesh-agent.log" why rc=0
	wait "$(pid_of bpfmesh-agent)" 2>/dev/null || rc=$?
	why=$(grep -m1 -E 'unsupported|unrecognized option|invalid option' "$logf" 2>/dev/null || true)
	[[ -z $why ]] || unsupported "bpfmesh-agent ${*:-(no flags)}: $why"
	die "bpfmesh-agent ${*:-(no flags)} exited with status $rc before it was ready: $(tail -n 5 "$logf" 2>/dev/null | tr '\n' ' ')"
}

# bpfmesh_up FLAGS...: start the agent with FLAGS and wait until it has applied the config.
bpfmesh_up() {
	local cmd
	[[ -x $AGENT_BIN ]] || die "bpfmesh-agent is not built: $AGENT_BIN is missing (run make)"
	grep -q ' /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf
	[[ ! -e /sys/fs/bpf/bpfmesh/$BM_NODE ]] || die "pins of node $BM_NODE already exist"
	bpfmesh_config
	echo "$BM_NODE" >"$STATE/bpfmesh-node" # topology.sh down cleans up after us if we die
	cmd=("$AGENT_BIN" --config-dir "$BM_DIR/config" --node "$BM_NODE" --cgroup "$CG_PODS"
		--state-dir "$BM_DIR/state" "$@")
	echo "nsenter --net=/run/netns/$NS_NODE -- ${cmd[*]}" >"$STATE/conf/bpfmesh-agent.cmd"
	cp "$BM_DIR"/config/*.yaml "$STATE/conf/"
	start_bg bpfmesh-agent "$NS_NODE" "$CG_MESH/bpfmesh-agent" "${cmd[@]}"
	wait_for "$AGENT_READY_TIMEOUT" agent_ready || die "bpfmesh-agent not ready within ${AGENT_READY_TIMEOUT}s"
	pid_is_ours "$(pid_of bpfmesh-agent)" || agent_exited "$*"
	grep -q '^result=ok' "$BM_DIR/state/status" ||
		die "bpfmesh-agent rejected the config: $(cat "$BM_DIR/state/status")"
	bpfmesh_stats >"$STATE/conf/bpfmesh-stats.before"
}

bpfmesh_down() {
	stop_bg bpfmesh-agent
	timeout 10 "$AGENT_BIN" --cleanup --node "$BM_NODE" >>"$STATE/log/bpfmesh-agent.log" 2>&1 ||
		log "bpfmesh-agent --cleanup --node $BM_NODE failed (see its log)"
	[[ ! -d /sys/fs/bpf/bpfmesh/$BM_NODE ]] || rm -rf "/sys/fs/bpf/bpfmesh/$BM_NODE"
	rm -f "$STATE/bpfmesh-node"
}

# The datapath's counters ("name value" lines), summed over CPUs.
bpfmesh_stats() { timeout 10 "$CTL_BIN" --node "$BM_NODE" bpf stats 2>/dev/null || true; }

# stat_delta NAME: how much counter NAME grew during the load; empty if this build has no NAME.
stat_delta() {
	local before after
	after=$(awk -v k="$1" '$1 == k { print $2 }' "$STATE/conf/bpfmesh-stats.after")
	[[ -n $after ]] || return 0
	before=$(awk -v k="$1" '$1 == k { print $2 }' "$STATE/conf/bpfmesh-stats.before")
	echo $((after - ${before:-0}))
}

# After the load: save what the datapath saw, for the evidence checks of each scenario.
bpfmesh_after() {
	bpfmesh_stats >"$STATE/conf/bpfmesh-stats.after"
	timeout 10 "$CTL_BIN" --node "$BM_NODE" --state-dir "$BM_DIR/state" bpf services \
		>"$STATE/conf/bpfmesh-services.txt" 2>&1 || true
	in_ns "$NS_NODE" bpftool net show >"$STATE/conf/bpftool-net-node.txt" 2>&1 || true
	cp "$BM_DIR/state/status" "$STATE/conf/bpfmesh-status" 2>/dev/null || true
	log "  datapath: $(for k in connect bypass_msg tc_nat l7_redirect l7_noagent; do printf '%s +%s ' "$k" "$(stat_delta "$k")"; done)"
}
