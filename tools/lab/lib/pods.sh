# shellcheck shell=bash
# Pods of the lab: made to match the renderer's plan (netns, cgroup, echo server process),
# removed when the plan drops them, and their resolver files (/etc/netns/<pod netns>/).

# pod_fields LINE: split a plan line "pod <name> <ns> <uid> <node> <ip4> <ip6> <sa> <labels>
# <tcp> <udp> <owner>" into P_* variables.
pod_fields() {
	local _kind
	read -r _kind P_NAME P_NS P_UID P_NODE P_IP4 P_IP6 P_SA P_LABELS P_TCP P_UDP P_OWNER <<<"$1"
}

pod_cgroup() { printf '%s/%s/kubepods/pod%s\n' "$CGBASE" "$2" "$1"; } # uid node

pod_file() { printf '%s/pods/%s.%s\n' "$STATE" "$1" "$2"; } # name ext

plan_pods() { [[ -f $STATE/plan ]] && grep '^pod ' "$STATE/plan" || true; }
plan_svcs() { [[ -f $STATE/plan ]] && grep '^svc ' "$STATE/plan" || true; }

need_echo() {
	[[ -n ${ECHO_CHECKED:-} ]] && return 0
	ECHO_BIN=${BM_LAB_ECHO:-$(lab_bin_dir)/bm-echo}
	[[ -x $ECHO_BIN ]] ||
		die "the pods' echo server is not built: $ECHO_BIN is missing (run make$([[ ${BM_SAN:-0} == 1 ]] && echo ' SAN=1'), or set BM_LAB_ECHO to a server with bm-echo's command line)"
	ECHO_CHECKED=1
}

# Healthy: its process is alive in its cgroup, it said it is ready, its netns is there.
pod_healthy() {
	local pid=''
	pod_fields "$1"
	[[ -e /run/netns/$(pod_netns "$P_NAME") && -f $(pod_file "$P_NAME" ready) ]] || return 1
	pid=$(cat "$(pod_file "$P_NAME" pid)" 2>/dev/null) || return 1
	pid_in_cgroup "$pid" "$(pod_cgroup "$P_UID" "$P_NODE")"
}

# Start the pod's echo server in the pod's cgroup (joined before exec) and netns; a pod with
# no port runs `sleep infinity` instead.
pod_start_proc() {
	local args=() kvs=() kv cg log
	pod_fields "$1"
	cg=$(pod_cgroup "$P_UID" "$P_NODE")
	log=$(pod_file "$P_NAME" log)
	args=(--pod "$P_NAME" --namespace "$P_NS" --node "$P_NODE")
	if [[ $P_LABELS != - ]]; then
		IFS=, read -ra kvs <<<"$P_LABELS"
		for kv in "${kvs[@]}"; do
			[[ $kv == version=* ]] && args+=(--version "${kv#version=}")
		done
		for kv in "${kvs[@]}"; do
			args+=(--label "$kv")
		done
	fi
	[[ $P_TCP != - ]] && args+=(--tcp "$P_TCP")
	[[ $P_UDP != - ]] && args+=(--udp "$P_UDP")
	args+=(--ready-file "$(pod_file "$P_NAME" ready)")
	rm -f "$(pod_file "$P_NAME" pid)" "$(pod_file "$P_NAME" ready)"
	if [[ $P_TCP == - && $P_UDP == - ]]; then
		# No port to serve (a client pod): a process still holds the pod, as a container would.
		# shellcheck disable=SC2016
		args=(/bin/sh -c ': >"$1" && exec sleep infinity' sh "$(pod_file "$P_NAME" ready)")
	else
		need_echo
		args=("$ECHO_BIN" "${args[@]}")
	fi
	printf '%s lab: start %s\n' "$(date +%T)" "${args[*]}" >>"$log"
	# The shell joins the cgroup, records its pid, and becomes the server: one pid throughout.
	# shellcheck disable=SC2016
	setsid -f /bin/sh -c 'pidf=$1 cg=$2 nsf=$3; shift 3
		echo $$ >"$cg/cgroup.procs" || exit 111
		echo $$ >"$pidf"
		exec nsenter --net="$nsf" -- "$@"' \
		sh "$(pod_file "$P_NAME" pid)" "$cg" "/run/netns/$(pod_netns "$P_NAME")" \
		"${args[@]}" </dev/null >>"$log" 2>&1 9<&-
}

pod_ready_or_dead() {
	local name=$1 cg=$2 pid
	[[ -f $(pod_file "$name" ready) ]] && return 0
	pid=$(cat "$(pod_file "$name" pid)" 2>/dev/null) || return 1
	! pid_in_cgroup "$pid" "$cg"
}

# Wait (bounded, all together) until each started pod wrote its ready file; PODS_FAILED=1
# when one did not.
pods_wait_ready() {
	local name line
	for name in "$@"; do
		line=$(<"$(pod_file "$name" plan)")
		pod_fields "$line"
		if ! wait_until "$LAB_TIMEOUT" pod_ready_or_dead "$name" "$(pod_cgroup "$P_UID" "$P_NODE")" ||
			[[ ! -f $(pod_file "$name" ready) ]]; then
			log "pod $name did not become ready within ${LAB_TIMEOUT}s; its log ($(pod_file "$name" log)):"
			tail -n 20 "$(pod_file "$name" log)" >&2 || true
			PODS_FAILED=1
		fi
	done
}

pod_stop_proc() {
	pod_fields "$1"
	stop_recorded "$(pod_file "$P_NAME" pid)" "$(pod_cgroup "$P_UID" "$P_NODE")" 3
	rm -f "$(pod_file "$P_NAME" pid)" "$(pod_file "$P_NAME" ready)"
}

# Remove a pod the lab made: processes, cgroup, netns, resolver files, records.
pod_remove() {
	local name=$1 line ns
	ns=$(pod_netns "$name")
	if [[ -f $(pod_file "$name" plan) ]]; then
		line=$(<"$(pod_file "$name" plan)")
		pod_fields "$line"
		pod_stop_proc "$line"
		cgroup_rm_tree "$(pod_cgroup "$P_UID" "$P_NODE")"
	fi
	netns_del "$ns"
	rm -rf "/etc/netns/$ns"
	rm -f "$STATE/pods/$name".{plan,pid,ready,log}
}

# Pods the lab has made that the plan no longer has.
pods_gone() {
	local f name
	declare -A want=()
	while read -r _ name _; do
		want[$name]=1
	done < <(plan_pods)
	for f in "$STATE"/pods/*.plan; do
		[[ -e $f ]] || continue
		name=${f##*/}
		name=${name%.plan}
		[[ -n ${want[$name]:-} ]] || printf '%s\n' "$name"
	done
}

# Make every pod of the plan: new ones from scratch, changed ones restarted (same netns when
# the identity and addresses are the same), healthy ones left alone. Then wait for them
# (PODS_FAILED=1 when one did not start).
pods_apply() {
	local line old f g started=() lines=() gone=()
	mkdir -p "$STATE/pods"
	mapfile -t lines < <(plan_pods)
	mapfile -t gone < <(pods_gone)
	for line in "${lines[@]}"; do
		pod_fields "$line"
		f=$(pod_file "$P_NAME" plan)
		old=''
		[[ -f $f ]] && old=$(<"$f")
		if [[ $old == "$line" ]] && pod_healthy "$line"; then
			continue
		fi
		pod_fields "$line"
		if [[ -n $old && $(cut -d' ' -f2-7 <<<"$old") == "$(cut -d' ' -f2-7 <<<"$line")" &&
			-e /run/netns/$(pod_netns "$P_NAME") ]]; then
			pod_stop_proc "$old"
			printf '%s\n' "$line" >"$f"
		else
			[[ -n $old ]] && pod_remove "$P_NAME"
			# A pod being removed that still holds this address goes first.
			for g in "${gone[@]}"; do
				[[ -f $(pod_file "$g" plan) ]] || continue
				if [[ $(cut -d' ' -f5-6 <<<"$(<"$(pod_file "$g" plan)")") == "$P_NODE $P_IP4" ]]; then
					pod_remove "$g"
				fi
			done
			pod_fields "$line"
			printf '%s\n' "$line" >"$f" # recorded before anything is made, for teardown
			mkdir -p "$(pod_cgroup "$P_UID" "$P_NODE")" "/etc/netns/$(pod_netns "$P_NAME")"
			pod_net_up "$P_NAME" "${P_NODE##*-node}" "$P_IP4" "$P_IP6"
		fi
		pod_start_proc "$line"
		started+=("$P_NAME")
	done
	((${#started[@]} == 0)) || pods_wait_ready "${started[@]}"
}

pods_remove_gone() {
	local name
	while IFS= read -r name; do
		pod_remove "$name"
	done < <(pods_gone)
}

# ---- resolver files ----

# Rewrite in place (same inode: processes inside `ip netns exec` keep the bind mount).
write_in_place() {
	local file=$1 content=$2
	if [[ -f $file && $(<"$file") == "$content" ]]; then
		return 0
	fi
	printf '%s\n' "$content" >"$file"
}

# hosts: every Service with a cluster IP under its DNS names (the bare name too in the pod's
# own namespace), both families; resolv.conf: the Kubernetes search path, and a nameserver
# where nothing listens so that names not in hosts fail at once.
dns_write_all() {
	local line svcs=() s n ns ip4 ip6 ip hosts dir
	mapfile -t svcs < <(plan_svcs)
	while IFS= read -r line; do
		pod_fields "$line"
		dir=/etc/netns/$(pod_netns "$P_NAME")
		[[ -d $dir ]] || continue
		hosts="# written by bpfmesh lab for pod $P_NS/$P_NAME
127.0.0.1 localhost
::1 localhost ip6-localhost ip6-loopback
$P_IP4 $P_NAME
$P_IP6 $P_NAME"
		for s in "${svcs[@]}"; do
			read -r _ n ns ip4 ip6 _ <<<"$s"
			for ip in "$ip4" "$ip6"; do
				[[ $ip == - ]] && continue
				hosts+=$'\n'"$ip $n.$ns.svc.cluster.local $n.$ns.svc $n.$ns"
				[[ $ns == "$P_NS" ]] && hosts+=" $n"
			done
		done
		write_in_place "$dir/hosts" "$hosts"
		write_in_place "$dir/resolv.conf" "search $P_NS.svc.cluster.local svc.cluster.local cluster.local
nameserver 127.0.0.1
options ndots:5 timeout:1 attempts:1"
	done < <(plan_pods)
}
