# bpfmesh-l7: HTTP routing by the node's agent. The connect hook sends the client's connection
# to VIP:80 to the agent's HTTP listener (--l7-addr, the bridge's address, port 15001), because
# the Service's VirtualService has http rules; the agent parses each request, runs it through
# the rules (one header match, then the default route, both to the Service) and forwards it over
# its pooled keep-alive upstream connections to nginx. The same-node bypass stays on (the
# agent's default, what a node runs), so both hops (pod to agent, agent to nginx: nginx is on
# the subnet of the agent's listener address) may move socket to socket.
# Port 5201 (tcp-iperf) has no http rules: iperf3 goes at L4, through the connect hook.
#
# After the loads: the evidence (below), then the agent's memory with RSS_CONNS (1000)
# concurrent keep-alive connections open through the VIP, read from /proc/<agent>/status.
SCN_DESC="client -> VIP:80 -> connect hook -> the agent's HTTP listener ($NODE_IP:15001, --l7-addr): each request parsed and matched (header rule x-bench: a, then the default route), x-request-id added, forwarded over pooled keep-alive connections to nginx; same-node bypass on (the agent's default) for both hops; port 5201 at L4"
SCN_TARGET=$VIP
BM_L7_PORT=15001 # the agent's default --l7-port
: "${RSS_CONNS:=1000}" "${RSS_DURATION:=5}"

scn_up() {
	local logf="$STATE/log/bpfmesh-agent.log" need
	agent_knows --l7-addr || unsupported "this bpfmesh-agent has no HTTP routing (its --help lists no --l7-addr)"
	mkdir -p "$BM_DIR/config"
	cat >"$BM_DIR/config/bench-server-vs.yaml" <<EOF2
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: bench-server, namespace: default}
spec:
  hosts: [bench-server]
  http:
  - match:
    - headers:
        x-bench: {exact: a}
    route:
    - destination: {host: bench-server, port: {number: ${HTTP_PORT}}}
  - route:
    - destination: {host: bench-server, port: {number: ${HTTP_PORT}}}
EOF2
	# The agent holds both sides of every request in flight: RSS_CONNS client connections and
	# up to as many upstream ones. A DaemonSet's containers get a high nofile limit; so does it.
	need=$((2 * RSS_CONNS + 256))
	if [[ $(ulimit -Sn) != unlimited && $(ulimit -Sn) -lt $need ]]; then
		ulimit -n "$need" || die "cannot raise the open files limit to $need for the agent"
	fi
	bpfmesh_up --l7-addr "$NODE_IP"
	# The agent must serve port 80 itself: its listener up and registered, the port routed by it.
	wait_for 5 grep -q "l7: HTTP listener on $NODE_IP port $BM_L7_PORT" "$logf" ||
		die "the agent started no HTTP listener on $NODE_IP:$BM_L7_PORT: $(grep -m3 -iE 'l7|http' "$logf" | tr '\n' ' ')"
	wait_for 5 grep -Eq 'HTTP routes: [1-9][0-9]* service ports' "$logf" ||
		die "the agent routes no service port over HTTP: $(grep -m3 -iE 'warn|http' "$logf" | tr '\n' ' ')"
	grep -m1 'HTTP routes:' "$logf" | sed 's/.*\(HTTP routes:\)/\1/' >"$STATE/conf/bpfmesh-http-routes.txt"
}

# The number of requests of a wrk test (its JSON line), 0 if none.
wrk_requests() { sed -n 's/^JSON {"requests":\([0-9]*\),.*/\1/p' "$OUT/$1.out" 2>/dev/null | grep . || echo 0; }

scn_after() {
	local red noag conns peer from_cli from_node bp
	bpfmesh_after
	# 1. The kernel sent the connections to the agent's listener: at least one per connection of
	#    the conn test (each of its requests had a connection of its own), and none fell back
	#    to L4 for want of a listener.
	red=$(stat_delta l7_redirect)
	[[ -n $red ]] || unsupported "this bpfmesh datapath has no l7_redirect counter: no HTTP path to prove"
	conns=$(wrk_requests conn)
	[[ $red -gt 0 ]] || die "no connection went to the agent's listener (counter l7_redirect did not grow): not L7 figures"
	[[ $red -ge $conns ]] ||
		die "l7_redirect grew by $red, fewer than the $conns connections of the conn test: some went around the agent"
	noag=$(stat_delta l7_noagent)
	[[ ${noag:-0} -eq 0 ]] || die "$noag connections found no agent listener and went at L4 (l7_noagent)"
	# 2. nginx was talked to by the agent (the node's address, an x-request-id the agent added,
	#    x-forwarded-for naming the client pod), never by the client pod itself on port 80: at
	#    L4 the peer would be $CLI_IP with no x-request-id.
	peer=$(client 10 curl -sS --max-time 5 "http://$SCN_TARGET/bench-peer" 2>&1) ||
		die "curl http://$SCN_TARGET/bench-peer failed: $peer"
	echo "$peer" >"$STATE/conf/bench-peer.txt"
	[[ $peer =~ ^peer=${NODE_IP//./\\.}\ x-request-id=[0-9a-f-]{36}\ x-forwarded-for=${CLI_IP//./\\.}$ ]] ||
		die "nginx did not see the agent's request (want peer=$NODE_IP, an x-request-id, x-forwarded-for=$CLI_IP): '$peer'"
	in_ns "$NS_SRV" ss -Htan "( sport = :$HTTP_PORT )" >"$STATE/conf/server-sockets.txt"
	from_cli=$(awk -v p="$CLI_IP:" 'index($5, p) == 1' "$STATE/conf/server-sockets.txt" | wc -l)
	from_node=$(awk -v p="$NODE_IP:" 'index($5, p) == 1' "$STATE/conf/server-sockets.txt" | wc -l)
	[[ $from_cli -eq 0 ]] || die "nginx has $from_cli sockets with the client pod ($CLI_IP): traffic went around the agent"
	[[ $from_node -gt 0 ]] || die "nginx has no socket with the agent ($NODE_IP)"
	log "  L7 path: l7_redirect +$red (conn test: $conns connections), nginx saw: $peer; nginx sockets: $from_node with the agent, 0 with the client pod"
	bp=$(stat_delta bypass_msg)
	[[ -z $bp ]] || note "same-node bypass on: bypass_msg +$bp during the loads"
	rss_test
}

# rss_sample PID SECONDS: every 0.2 s, "time VmRSS_kB VmHWM_kB fds conns_at_listener
# upstream_conns" of the agent, for at most SECONDS.
rss_sample() {
	local pid=$1 end=$((SECONDS + $2)) rss hwm fds est up
	while ((SECONDS < end)) && [[ -r /proc/$pid/status ]]; do
		read -r rss hwm < <(awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r, h }' "/proc/$pid/status")
		fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
		est=$(in_ns "$NS_NODE" ss -Htn state established "( sport = :$BM_L7_PORT )" | wc -l)
		up=$(in_ns "$NS_NODE" ss -Htn state established "( dport = :$HTTP_PORT )" | wc -l)
		echo "$(date +%s.%N) $rss $hwm $fds $est $up"
		sleep 0.2
	done
}

# The agent's memory under RSS_CONNS concurrent keep-alive connections: wrk holds them open
# through the VIP for RSS_DURATION s while a sampler (in a cgroup of the run, so its CPU is not
# "busy elsewhere") reads /proc/<agent>/status. rss.json: the figures; rss.samples: the samples.
rss_test() {
	local pid n=$RSS_CONNS d=$RSS_DURATION cg="$CG_ROOT/tools/rss-sampler" sampler rc=0 cmd
	pid=$(pid_of bpfmesh-agent)
	cmd=(bash -c 'ulimit -n "$1" && shift && exec "$@"' ulimit-n $((n + 256))
		wrk -t"$THREADS" -c"$n" -d"${d}s" --latency -s "$BENCH_DIR/wrk/report.lua" "http://$SCN_TARGET/100b")
	{
		echo "# in cgroup $SCN_CLIENT_CG; /proc/<agent pid>/status and ss in $NS_NODE sampled every 0.2 s meanwhile"
		printf '%q ' timeout -k 5 $((d + 20)) nsenter --net="/run/netns/$NS_CLI" -- "${cmd[@]}" | sed "s|$BENCH_DIR|bench|g"
		echo
	} >"$OUT/rss.cmd"
	mkdir -p "$cg"
	(echo "$BASHPID" >"$cg/cgroup.procs" && rss_sample "$pid" $((d + 30))) >"$OUT/rss.samples" 2>/dev/null 9>&- &
	sampler=$!
	sleep "$SETTLE"
	cpu_snapshot >"$OUT/rss.cpu0"
	client $((d + 20)) "${cmd[@]}" >"$OUT/rss.out" 2>&1 || rc=$?
	cpu_snapshot >"$OUT/rss.cpu1"
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null || true
	[[ $rc -eq 0 ]] || log "  rss: wrk exit $rc (see $OUT/rss.out)"
	pid_is_ours "$pid" || die "the agent died under $n concurrent connections (see $OUT/logs)"
	awk -v n="$n" '
		{ if ($5 > cmax) cmax = $5; if ($4 > fmax) fmax = $4; if ($6 > umax) umax = $6
		  if ($5 >= n) { full++; if ($2 > rss) rss = $2; hwm = $3 } }
		END { printf "{\"conns\":%d,\"conns_max\":%d,\"samples_full\":%d,\"vmrss_kib\":%d,\"vmhwm_kib\":%d,\"fds_max\":%d,\"upstream_max\":%d}\n",
			n, cmax, full, rss, hwm, fmax, umax }' "$OUT/rss.samples" >"$OUT/rss.json"
	log "  rss: $(cat "$OUT/rss.json"); $(grep -m1 '^Requests/sec' "$OUT/rss.out" || echo 'Requests/sec: none')"
	grep -q '"samples_full":[1-9]' "$OUT/rss.json" ||
		die "the agent never held $n connections at once (at most $(sed 's/.*"conns_max":\([0-9]*\).*/\1/' "$OUT/rss.json"); see $OUT/rss.out)"
}

scn_down() { bpfmesh_down; }
