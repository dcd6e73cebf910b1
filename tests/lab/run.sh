#!/usr/bin/env bash
# Tests of the lab itself (tools/lab/lab) with real namespaces, cgroups and processes: root only.
# Agents off by default (lab up --no-agent); BM_LAB_AGENT=1 runs the same checks with agents on.
set -uo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
LAB=$ROOT/tools/lab/lab
EXAMPLES=${BM_EXAMPLES:-$ROOT/examples}
SAMPLES=$EXAMPLES/istio-samples
BIN=$ROOT/.output/bin
[[ ${BM_SAN:-0} == 1 ]] && BIN=$ROOT/.output/san/bin
WITH_AGENT=${BM_LAB_AGENT:-0}
P=lt$$               # this run's lab
P_FAIL=lf$$          # a lab whose `up` must fail and leave nothing
P_STUB=ls$$          # a lab with a stand-in agent, to test the agent protocol
TMP=$(mktemp -d /tmp/bm-lab-test.XXXXXX)
FAILS=0
RUNS=0

ok() { RUNS=$((RUNS + 1)) && echo "ok - $*"; }
not_ok() { RUNS=$((RUNS + 1)) && FAILS=$((FAILS + 1)) && echo "not ok - $*"; }
skip() { echo "ok - # SKIP $*"; }
skip_all() { echo "SKIP: $*"; } # the whole file (tests/run.sh reports it as SKIP)
# check "what" CMD...: one test line from a command's status.
check() {
	local what=$1
	shift
	local out
	out=$("$@" 2>&1)
	local rc=$?
	printf '%s\n' "$out" >>"$TMP/check.log"
	if [ $rc -eq 0 ]; then
		ok "$what"
	else
		not_ok "$what"
		printf '%s\n' "$out" | tail -n 15 | sed 's/^/#   /'
	fi
}
lab() { "$LAB" --prefix "$P" "$@"; }

cleanup() {
	local p
	for p in "$P" "$P_FAIL" "$P_STUB"; do
		"$LAB" --prefix "$p" down >/dev/null 2>&1
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- preconditions: a test that cannot run says SKIP, never ok ----
if [[ $EUID != 0 ]]; then
	skip_all "the lab needs root"
	exit 0
fi
if [[ ! -x ${BM_LAB_RENDER:-$BIN/bm-lab-render} ]]; then
	skip_all "bm-lab-render is not built (make .output/bin/bm-lab-render)"
	exit 0
fi
if [[ ! -d $SAMPLES ]]; then
	not_ok "no Istio samples at $SAMPLES (they are in the repo's examples/; BM_EXAMPLES overrides)"
	exit 1
fi
if [[ $WITH_AGENT == 1 && ! -x $BIN/bpfmesh-agent ]]; then
	not_ok "BM_LAB_AGENT=1 but $BIN/bpfmesh-agent is not built"
	exit 1
fi
AGENT_FLAG=--no-agent
[[ $WITH_AGENT == 1 ]] && AGENT_FLAG=
CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)

# bm-echo is written in parallel: until it is built, pods run a socat stand-in with its
# command line (HTTP answer naming the pod), given explicitly through BM_LAB_ECHO.
if [[ -z ${BM_LAB_ECHO:-} && ! -x $BIN/bm-echo ]]; then
	command -v socat >/dev/null || {
		skip_all "neither bm-echo nor socat to stand in for it"
		exit 0
	}
	cat >"$TMP/echo-handler" <<'EOF'
#!/bin/bash
while IFS= read -r l; do l=${l%$'\r'}; [[ -z $l ]] && break; done
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\npod=%s\n' "$POD"
EOF
	cat >"$TMP/echo" <<'EOF'
#!/bin/bash
tcp='' ready=''
while (($#)); do
	case $1 in
	--pod) export POD=$2 ;;
	--tcp) tcp=$2 ;;
	--ready-file) ready=$2 ;;
	esac
	shift 2
done
IFS=, read -ra ports <<<"$tcp"
for p in "${ports[@]}"; do
	socat "TCP6-LISTEN:$p,ipv6only=0,fork,reuseaddr" EXEC:"$(dirname "$0")/echo-handler" &
done
for p in "${ports[@]}"; do
	for _ in $(seq 100); do ss -Hltn "sport = :$p" | grep -q . && break; sleep 0.05; done
done
[[ -z $ready ]] || : >"$ready"
wait
EOF
	chmod +x "$TMP/echo" "$TMP/echo-handler"
	export BM_LAB_ECHO=$TMP/echo
	echo "# bm-echo is not built: pods run a socat stand-in ($BM_LAB_ECHO)"
fi
echo "# lab prefix $P, agents $([[ $WITH_AGENT == 1 ]] && echo on || echo off)"

# ---- helpers over `lab` output ----
pod_line() { lab pods -o plan | awk -v n="$1" '$2 == n'; }
field() { cut -d' ' -f"$2" <<<"$1"; } # plan line, field number
svc_ip4() { lab services | awk -v n="$1" '$1 == n { print $3 }'; }
in_pod() { timeout 20 "$LAB" --prefix "$P" exec "$@"; }

routes_present() {
	local r
	for r in 10.96.0.0/16 10.244.0.0/16 10.250.0.0/24; do
		[[ -n $(ip -4 route show exact "$r" type unreachable) ]] || return 1
	done
	[[ -n $(ip -6 route show exact fd00:10::/32 type unreachable) ]]
}

# Every pod: address in its node's CIDRs, eth0 in its netns, veth on its node's cni0, process
# in its cgroup and netns.
pods_placed_right() {
	local line name uid node ip4 ip6 i hx host pid
	while IFS= read -r line; do
		name=$(field "$line" 2) uid=$(field "$line" 4) node=$(field "$line" 5)
		ip4=$(field "$line" 6) ip6=$(field "$line" 7)
		i=${node##*-node}
		hx=$(printf '%x' "$i")
		host=${ip4##*.}
		[[ $ip4 == 10.244.$i.* && $ip6 == fd00:10:244:$hx::* ]] || { echo "$name: $ip4 $ip6 not of $node"; return 1; }
		ip -n "$P-$name" -br addr show eth0 | grep -w "$ip4/24" >/dev/null || { echo "$name: eth0 lacks $ip4"; return 1; }
		ip -n "$node" -br link show master cni0 | grep "^vp$host@" >/dev/null || { echo "$name: vp$host not on $node cni0"; return 1; }
		[[ -d $CGROOT/bpfmesh-$P/$node/kubepods/pod$uid ]] || { echo "$name: no cgroup"; return 1; }
		pid=$(cat "/run/bpfmesh-lab/$P/pods/$name.pid") || return 1
		grep -qx "0::/bpfmesh-$P/$node/kubepods/pod$uid" "/proc/$pid/cgroup" || { echo "$name: pid $pid not in its cgroup"; return 1; }
		[[ $(ip netns identify "$pid") == "$P-$name" ]] || { echo "$name: pid $pid not in its netns"; return 1; }
	done < <(lab pods -o plan)
}

resolves_to() { # pod name ip
	local got
	got=$(in_pod "$1" -- getent hosts "$2" | awk '{ print $1; exit }')
	[[ $got == "$3" ]] || { echo "$2 -> '$got', want $3"; return 1; }
}

gone_pod() { # name uid node pid: nothing of the pod remains
	[[ ! -e /run/netns/$P-$1 && ! -d /etc/netns/$P-$1 && ! -d $CGROOT/bpfmesh-$P/$3/kubepods/pod$2 ]] || return 1
	if grep -qs "^0::/bpfmesh-$P/" "/proc/$4/cgroup"; then
		grep -q '^State:.*Z' "/proc/$4/status" || return 1 # a zombie waiting for its reaper
	fi
	[[ ! -e $(lab config-dir)/Pod-default-$1.yaml ]]
}

nothing_left() { # prefix, pids...
	local p=$1 pid
	shift
	[[ -z $(ip netns list | awk -v p="$p-" 'index($1, p) == 1') ]] || { echo "netns left"; return 1; }
	[[ ! -e $CGROOT/bpfmesh-$p ]] || { echo "cgroup left"; return 1; }
	[[ -z $(compgen -G "/etc/netns/$p-*") ]] || { echo "/etc/netns left"; return 1; }
	[[ ! -e /run/bpfmesh-lab/$p ]] || { echo "state left"; return 1; }
	[[ -z $(compgen -G "/sys/fs/bpf/bpfmesh/$p-node*") ]] || { echo "bpffs pins left"; return 1; }
	for pid in "$@"; do
		if grep -qs "^0::/bpfmesh-$p/" "/proc/$pid/cgroup"; then
			grep -q '^State:.*Z' "/proc/$pid/status" || { echo "pid $pid alive"; return 1; }
		fi
	done
}

other_labs_up() { compgen -G "/run/bpfmesh-lab/*/meta" >/dev/null; }

# ---- up ----
# shellcheck disable=SC2086
if ! lab up --nodes 2 $AGENT_FLAG "$SAMPLES/helloworld.yaml" "$SAMPLES/curl.yaml" >"$TMP/up.log" 2>&1; then
	not_ok "lab up --nodes 2 with helloworld and curl"
	cat "$TMP/up.log"
	exit 1
fi
ok "lab up --nodes 2 with helloworld and curl"
check "unreachable routes for the lab's CIDRs in the root namespace" routes_present
check "3 pods: helloworld-v1, helloworld-v2, curl" test "$(lab pods -o name | sed 's/-[0-9a-f]\{10\}-[a-z0-9]\{5\}$//' | sort | tr '\n' ' ')" = "curl helloworld-v1 helloworld-v2 "
check "pods: IPs of their node, eth0, veth on cni0, process in pod cgroup and netns" pods_placed_right
check "pods of one Deployment are named <deploy>-<10 hex>-<5 alnum>" \
	bash -c "[[ \$($LAB --prefix $P pods -l app=curl -o name) =~ ^curl-[0-9a-f]{10}-[a-z0-9]{5}\$ ]]"

CURL=$(lab pods -l app=curl -o name)
CURL_NODE=$(field "$(pod_line "$CURL")" 5)
FAR=$(lab pods -o plan | awk -v n="$CURL_NODE" '$2 ~ /^helloworld/ && $5 != n { print $2; exit }')
if [[ -z $FAR ]]; then
	not_ok "a helloworld pod on another node than curl"
else
	FAR_LINE=$(pod_line "$FAR")
	check "cross-node pod-to-pod by pod IPv4 ($CURL -> $FAR)" \
		bash -c "$LAB --prefix $P exec $CURL -- curl -sS --max-time 5 http://$(field "$FAR_LINE" 6):5000/ | grep -q $FAR"
	check "cross-node pod-to-pod by pod IPv6" \
		bash -c "$LAB --prefix $P exec $CURL -- curl -sS --max-time 5 'http://[$(field "$FAR_LINE" 7)]:5000/' | grep -q $FAR"
fi

HW_IP=$(svc_ip4 helloworld)
check "helloworld has a cluster IP in 10.96.0.0/16" test "${HW_IP%.*.*}" = 10.96
check "DNS in a pod: helloworld" resolves_to "$CURL" helloworld "$HW_IP"
check "DNS in a pod: helloworld.default" resolves_to "$CURL" helloworld.default "$HW_IP"
check "DNS in a pod: helloworld.default.svc.cluster.local" resolves_to "$CURL" helloworld.default.svc.cluster.local "$HW_IP"
check "resolv.conf in a pod has the cluster search path" \
	bash -c "$LAB --prefix $P exec $CURL -- cat /etc/resolv.conf | grep -qx 'search default.svc.cluster.local svc.cluster.local cluster.local'"
check "an unknown name fails fast in a pod" \
	bash -c "! timeout 3 $LAB --prefix $P exec $CURL -- getent hosts no-such-service"
check "lab exec returns the command's status" bash -c "$LAB --prefix $P exec $CURL -- sh -c 'exit 7'; [[ \$? == 7 ]]"
check "lab exec runs in the pod's cgroup" \
	bash -c "$LAB --prefix $P exec $CURL -- cat /proc/self/cgroup | grep -q '^0::/bpfmesh-$P/$CURL_NODE/kubepods/pod'"

CFG=$(lab config-dir)
check "config: Service with its cluster IP, rendered-from comment, no Deployment" bash -c "
	head -1 $CFG/Service-default-helloworld.yaml | grep -q '^# rendered by bpfmesh lab from .*helloworld.yaml:[0-9]' &&
	grep -q 'clusterIP: $HW_IP' $CFG/Service-default-helloworld.yaml &&
	! grep -l 'kind: Deployment' $CFG/*.yaml && [[ \$(ls $CFG/Pod-default-*.yaml | wc -l) == 3 ]]"
GEN=$(cat "$CFG/.generation")

if [[ $WITH_AGENT == 1 ]]; then
	check "agents applied the config generation" bash -c "lab_s=\$($LAB --prefix $P status); grep -c 'gen $GEN ok' <<<\"\$lab_s\" | grep -qx 2"
	check "through the mesh: curl http://helloworld:5000/ from a pod" \
		bash -c "$LAB --prefix $P exec $CURL -- curl -sS --max-time 5 http://helloworld:5000/ | grep -q helloworld-v"
fi

# ---- re-apply keeps everything ----
lab pods -o plan >"$TMP/pods.before"
lab services >"$TMP/svcs.before"
check "re-apply of the same manifests" lab apply "$SAMPLES/helloworld.yaml" "$SAMPLES/curl.yaml"
check "re-apply keeps pod names, uids, nodes and IPs" diff "$TMP/pods.before" <(lab pods -o plan)
check "re-apply keeps cluster IPs" diff "$TMP/svcs.before" <(lab services)
check "re-apply bumps .generation" test "$(cat "$CFG/.generation")" -gt "$GEN"

# ---- a Service change: DNS rewritten in place, pod ports follow the selecting Services ----
cat >"$TMP/extra.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: extra
spec:
  ipFamilyPolicy: PreferDualStack
  selector:
    app: helloworld
  ports:
  - port: 80
    targetPort: 5001
EOF
HOSTS=/etc/netns/$P-$CURL/hosts
INODE=$(stat -c %i "$HOSTS")
check "apply a dual-stack Service selecting helloworld" lab apply "$TMP/extra.yaml"
EXTRA6=$(lab services | awk '$1 == "extra" { print $4 }')
check "the Service got an IPv6 cluster IP in fd00:10:96::/112" bash -c "[[ $EXTRA6 == fd00:10:96::* ]]"
check "hosts rewritten in place (same inode)" test "$(stat -c %i "$HOSTS")" = "$INODE"
check "DNS in a pod: extra (IPv4) and extra.default (IPv6)" bash -c "
	$LAB --prefix $P exec $CURL -- getent ahostsv4 extra | grep -q '^$(svc_ip4 extra) ' &&
	$LAB --prefix $P exec $CURL -- getent ahostsv6 extra.default | grep -q '^$EXTRA6 '"
check "helloworld pods now also listen on the targetPort 5001" \
	bash -c "$LAB --prefix $P exec $CURL -- curl -sS --max-time 5 http://$(field "$(pod_line "$FAR")" 6):5001/ | grep -q $FAR"
check "lab delete of the Service" lab delete "$TMP/extra.yaml"
check "the deleted Service left hosts and the config dir" \
	bash -c "! grep -q extra $HOSTS && [[ ! -e $CFG/Service-default-extra.yaml ]]"

# ---- scaling ----
sed 's/replicas: 1/replicas: 3/' "$SAMPLES/helloworld.yaml" >"$TMP/hw3.yaml"
check "scale helloworld-v1 to 3" lab apply "$TMP/hw3.yaml"
check "3 helloworld-v1 pods on both nodes" \
	bash -c "[[ \$($LAB --prefix $P pods -l app=helloworld,version=v1 -o plan | cut -d' ' -f5 | sort -u | wc -l) == 2 ]] &&
	[[ \$($LAB --prefix $P pods -l version=v1 -o name | wc -l) == 3 ]]"
check "new pods placed right" pods_placed_right
mapfile -t V1 < <(lab pods -l version=v1 -o plan)
declare -A V1_PID=()
for line in "${V1[@]}"; do
	V1_PID[$(field "$line" 2)]=$(cat "/run/bpfmesh-lab/$P/pods/$(field "$line" 2).pid")
done
check "scale back to 1" lab apply "$SAMPLES/helloworld.yaml"
check "the oldest helloworld-v1 pod is kept" test "$(lab pods -l version=v1 -o plan)" = "${V1[0]}"
for line in "${V1[@]:1}"; do
	name=$(field "$line" 2)
	check "scaled-down pod $name: netns, cgroup, resolver files, process, config file gone" \
		gone_pod "$name" "$(field "$line" 4)" "$(field "$line" 5)" "${V1_PID[$name]}"
done

# ---- every Istio sample and seed example ----
# The seed's routes name its backend Service; the demo deploys it (v1 and v2).
check "lab apply of all Istio samples and seed examples (with the seed's backend)" \
	lab apply "$SAMPLES" "$EXAMPLES/demo/backend.yaml" "$EXAMPLES/seed"
check "all their pods run and are ready" bash -c "$LAB --prefix $P status | grep -q 'pods: 10 (10 running and ready)'"
check "kinds the agent does not read are passed through" bash -c "
	[[ -f $CFG/PeerAuthentication-istio-system-default.yaml && -f $CFG/Gateway-default-helloworld-gateway.yaml &&
	   -f $CFG/AuthorizationPolicy-default-backend-policy.yaml ]]"
echo 'apiVersion: v1
kind: Service
metadata: {name: broken}
spec: {ports: [{port: 99999}]}' >"$TMP/broken.yaml"
GEN=$(cat "$CFG/.generation")
lab pods -o plan >"$TMP/pods.before"
OUT=$(lab apply "$TMP/broken.yaml" 2>&1)
rc=$?
check "a bad manifest is refused with file:line" bash -c "[[ $rc != 0 ]] && grep -q 'broken.yaml:4: ' <<<'$OUT'"
check "... and changes nothing" bash -c "[[ \$(cat $CFG/.generation) == $GEN ]] && diff $TMP/pods.before <($LAB --prefix $P pods -o plan)"

# ---- down ----
mapfile -t PIDS < <(cat /run/bpfmesh-lab/"$P"/pods/*.pid /run/bpfmesh-lab/"$P"/agents/*.pid 2>/dev/null)
check "lab down" lab down
check "after down nothing of the run remains (netns, cgroups, /etc/netns, state, pins, processes)" \
	nothing_left "$P" "${PIDS[@]}"
if other_labs_up; then
	skip "routes removed at down: another lab is up on this machine"
else
	check "after down the unreachable routes are gone" bash -c "! ip route show type unreachable | grep -q '^unreachable 10.244.0.0/16'"
fi
check "lab down again is a no-op" lab down

# ---- up that fails half way leaves nothing ----
cp "$TMP/broken.yaml" "$TMP/zz-broken.yaml"
check "lab up with a bad manifest fails" bash -c "! $LAB --prefix $P_FAIL up --no-agent $SAMPLES/curl.yaml $TMP/zz-broken.yaml"
check "... and leaves nothing of its run" nothing_left "$P_FAIL"

# ---- the agent protocol, with a stand-in agent (the real one: BM_LAB_AGENT=1) ----
cat >"$TMP/agent" <<'EOF'
#!/bin/bash
# Stand-in bpfmesh-agent: status after each .generation change; rejects when reject.yaml exists.
cfg='' sd='' cleanup=0
while (($#)); do
	case $1 in
	--config-dir) cfg=$2 && shift ;;
	--state-dir) sd=$2 && shift ;;
	--cleanup) cleanup=1 ;;
	esac
	shift
done
if ((cleanup)); then echo cleanup >>"${BM_TEST_AGENT_LOG:?}"; exit 0; fi
n=0 seen=''
while :; do
	g=$(cat "$cfg/.generation" 2>/dev/null)
	if [[ $g != "$seen" ]]; then
		n=$((n + 1)) seen=$g res=ok err=
		[[ -e $cfg/reject.yaml ]] && res=rejected err="reject.yaml:1: rejected by the stand-in"
		printf 'generation=%s\nsource_generation=%s\nresult=%s\nerror=%s\n' "$n" "$g" "$res" "$err" >"$sd/.s"
		mv "$sd/.s" "$sd/status"
		[[ $res == ok ]] && : >"$sd/ready"
	fi
	sleep 0.05
done
EOF
chmod +x "$TMP/agent"
export BM_TEST_AGENT_LOG=$TMP/agent-calls
if BM_LAB_AGENT_BIN=$TMP/agent "$LAB" --prefix "$P_STUB" up --nodes 1 "$SAMPLES/curl.yaml" >"$TMP/stub.log" 2>&1; then
	ok "lab up waits for a (stand-in) agent's ready and config generation"
	echo 'x: 1' >"$("$LAB" --prefix "$P_STUB" config-dir)/reject.yaml"
	"$LAB" --prefix "$P_STUB" apply "$SAMPLES/curl.yaml" >"$TMP/rej.log" 2>&1
	rc=$?
	check "lab apply fails and shows result/error when an agent rejects" \
		bash -c "[[ $rc != 0 ]] && grep -q 'result=rejected' $TMP/rej.log && grep -q 'error=reject.yaml:1' $TMP/rej.log"
	STUB_PIDS=$(cat /run/bpfmesh-lab/"$P_STUB"/agents/*.pid)
	check "lab down (stand-in agent)" "$LAB" --prefix "$P_STUB" down
	check "down ran bpfmesh-agent --cleanup for the node" grep -qx cleanup "$TMP/agent-calls"
	# shellcheck disable=SC2086
	check "... and stopped the agent by its pid" nothing_left "$P_STUB" $STUB_PIDS
else
	not_ok "lab up with a stand-in agent"
	cat "$TMP/stub.log"
fi

echo "# $((RUNS - FAILS))/$RUNS passed"
((FAILS == 0))
