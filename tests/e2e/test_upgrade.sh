#!/usr/bin/env bash
# End to end, in a two-node lab: the client node's agent is replaced, while wrk loads the VIP,
# by builds whose maps have another layout. Required (issue 4 §3): a changed layout is detected
# and migrated or refused with a clear message, never silently.
#  1. bm_svc with max_entries 8192: either (a) migrated (bm_svc re-pinned with 8192 entries, the
#     agent ready, no request lost; then the rollback to the normal build migrates back), or
#     (b) refused: the agent exits non-zero naming the map and the mismatch, the old datapath
#     keeps serving.
#  2. bm_revnat (live UDP reverse translations) with max_entries 32768: refused as in (b).
# Then bpfmesh-agent --cleanup removes every program, link and pin of the node.
. "$(dirname "$0")/lib.sh"

EX=$E2E_ROOT/examples
TMP=$E2E_TMP
WRK_MAX=30   # wrk's own bound; the test stops it (SIGINT: it reports) 2.5 s after the last event
MIN_AFTER=100 # responses after the upgrade attempt, at least (a loaded machine does ~10^4)
RUN=/run/bpfmesh-lab/$BM_LAB_PREFIX
VARIANT_SVC=8192
VARIANT_REVNAT_N=32768

# The variants: the same tree with other map sizes (the Makefile's OUT and DEFS).
AGENT_NORMAL=$E2E_BIN/bpfmesh-agent
build_variant() { # out-dir defs: prints the binary
	local sub='' bin
	[ "${BM_SAN:-0}" = 1 ] && sub=/san
	bin=.output/$1$sub/bin/bpfmesh-agent
	local cmd=(make -C "$E2E_ROOT" -s OUT=".output/$1" "DEFS=$2" "$bin")
	[ "${BM_SAN:-0}" = 1 ] && cmd=(make -C "$E2E_ROOT" -s SAN=1 OUT=".output/$1" "DEFS=$2" "$bin")
	if ! "${cmd[@]}" >"$E2E_TMP/$1-build.log" 2>&1; then
		echo "not ok - build a variant agent: ${cmd[*]}" >&2
		tail -20 "$E2E_TMP/$1-build.log" >&2
		return 1
	fi
	echo "# built: ${cmd[*]}" >&2
	echo "$E2E_ROOT/$bin"
}
VARIANT=$(build_variant variant "-DBM_MAX_SVC=$VARIANT_SVC") || exit 1
VARIANT_REVNAT=$(build_variant variant-revnat "-DBM_MAX_REVNAT=$VARIANT_REVNAT_N") || exit 1
ok "variant agents built: bm_svc $VARIANT_SVC ($VARIANT), bm_revnat $VARIANT_REVNAT_N ($VARIANT_REVNAT)"

# wrk reporter: non-2xx responses (response()), and responses per 100 ms of wall clock
# (CLOCK_REALTIME, the clock of the test's event times), summed over the threads in done().
cat >"$TMP/count.lua" <<'LUA'
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bm_timespec;
int clock_gettime(int clk, bm_timespec *ts);
]]
local ts = ffi.new("bm_timespec")
local threads = {}
non2xx = 0
buckets = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
  ffi.C.clock_gettime(0, ts)
  local b = tonumber(ts.tv_sec) * 10 + math.floor(tonumber(ts.tv_nsec) / 100000000)
  buckets[b] = (buckets[b] or 0) + 1
end
function done(summary, latency, requests)
  local e, n, all, keys = summary.errors, 0, {}, {}
  for _, t in ipairs(threads) do
    n = n + t:get("non2xx")
    for b, c in pairs(t:get("buckets")) do all[b] = (all[b] or 0) + c end
  end
  io.write(string.format("BM requests %d\nBM non2xx %d\nBM err_connect %d\nBM err_read %d\n" ..
    "BM err_write %d\nBM err_timeout %d\nBM err_status %d\n", summary.requests, n, e.connect,
    e.read, e.write, e.timeout, e.status))
  for b in pairs(all) do table.insert(keys, b) end
  table.sort(keys)
  for _, b in ipairs(keys) do io.write(string.format("BM bucket %d %d\n", b * 100, all[b])) end
end
LUA

cat >"$TMP/only-v2.yaml" <<'YAML'
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: backend-only-v2
spec:
  hosts: [backend]
  tcp:
  - route:
    - destination: {host: backend, subset: v2}
YAML

e2e_start "$EX/demo/backend.yaml" "$EX/demo/client.yaml" "$EX/seed/03-destinationrule.yaml"

VIP=$(svc_ip backend)
NODE=$(lab pods --no-headers | awk '$1 ~ /^client-/ { print $3; exit }')
OTHER=$(lab nodes | awk -v n="$NODE" 'NR > 1 && $1 != n { print $1; exit }')
PINS=/sys/fs/bpf/bpfmesh/$NODE
AGLOG=$RUN/agents/$NODE.log
check "backend has a ClusterIP ($VIP); client on $NODE, other node $OTHER" \
	test -n "$VIP" -a -n "$NODE" -a -n "$OTHER"
lab exec deploy/client -- sh -c 'sysctl -qw net.ipv4.ip_local_port_range="1024 65535" &&
	sysctl -qw net.ipv4.tcp_tw_reuse=1' || echo "# could not widen the client pod's port range"

# wrk in the client pod, our own child: `lab exec` execs through sh and `ip netns exec` into wrk,
# so $! is wrk's pid, and it cannot be reused before we wait for it.
wrk_start() { # out, wrk args...
	local out=$1
	shift
	"$LAB" exec deploy/client -- wrk -t2 -c16 -d${WRK_MAX}s --timeout 5s "$@" -s "$TMP/count.lua" \
		"http://$VIP/" >"$out" 2>&1 &
	WPID=$!
}
wrk_stop() { # the exit status of wrk
	sleep 2.5
	[ "$(cat "/proc/$WPID/comm" 2>/dev/null)" = wrk ] && kill -INT "$WPID"
	wait "$WPID"
}
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
wrk_val() { awk -v k="$1" '$1 == "BM" && $2 == k { print $3; f = 1 } END { if (!f) print "missing" }' "$2"; }
wrk_between() { # responses inside [from, to) ms, whole 100 ms buckets only
	awk -v a="$1" -v b="$2" '$1 == "BM" && $2 == "bucket" && $3 >= a && $3 + 100 <= b { n += $4 }
		END { print n + 0 }' "$3"
}
map_max() { bpftool -j map show pinned "$PINS/$1" 2>/dev/null | jq -r '.max_entries // empty'; }
svc_max() { map_max bm_svc; }
# "attach_type:link id:prog id" of every pinned link of the node, sorted.
links_of() {
	local f
	for f in "$PINS"/link_*; do
		[ -e "$f" ] || continue
		bpftool -j link show pinned "$f" | jq -r '"\(.attach_type // .type):\(.id):\(.prog_id)"'
	done | sort
}
log_size() { stat -c %s "$AGLOG" 2>/dev/null || echo 0; }
log_since() { tail -c +$(($1 + 1)) "$AGLOG"; }
st_val() { sed -n "s/^$1=//p" <<<"$2"; }
v2_of_50() {
	lab exec deploy/client -- sh -c 'for i in $(seq 50); do
		curl -s -m 2 -H "Connection: close" http://backend/; echo; done' | grep -c '"version":"v2"'
}

MAX0=$(svc_max)
REVNAT0=$(map_max bm_revnat)
LINKS0=$(links_of)
check "before: bm_svc of $NODE has max_entries $MAX0 (the normal build), not $VARIANT_SVC" \
	test -n "$MAX0" -a "$MAX0" != "$VARIANT_SVC"
check "before: $NODE's programs are in pinned links ($(wc -l <<<"$LINKS0") links)" \
	test "$(grep -c cgroup_inet4_connect <<<"$LINKS0")" = 1

# One replacement of the node's agent under load: wrk runs (about 6 s); at 1.5 s the agent gets
# SIGTERM (as a DaemonSet rollout does) and BIN is started on the same pins. Sets START_RC,
# STATE, XS (its exit status once exited) and NEWLOG (its log), then checks the traffic.
replace_under_load() { # name bin
	local name=$1 bin=$2 out=$TMP/$1.wrk sz t_up t_upd t_end st v k after during
	echo "# $name: wrk -t2 -c16 -H 'Connection: close' against http://$VIP/ from the client pod"
	wrk_start "$out" -H 'Connection: close'
	sleep 1.5
	check "$name: lab agent stop $NODE (SIGTERM: the agent exits, the datapath stays)" \
		bash -c "$(printf '%q ' "$LAB") agent stop $NODE >$TMP/$name.stop 2>&1"
	sz=$(log_size)
	t_up=$(now_ms)
	lab agent start "$NODE" --bin "$bin" >"$TMP/$name.start" 2>&1
	START_RC=$?
	t_upd=$(now_ms)
	st=$(lab agent status "$NODE")
	STATE=$(st_val state "$st")
	XS=$(st_val exit "$st")
	NEWLOG=$(log_since "$sz")
	echo "# $name: lab agent start $NODE --bin $bin: exit $START_RC after $((t_upd - t_up)) ms; agent $STATE${XS:+ (exit $XS)}"
	sed 's/^/#   agent: /' <<<"$NEWLOG" | head -20

	wrk_stop
	v=$?
	t_end=$(now_ms)
	check "$name: wrk ran across it and reported (exit $v)" \
		test "$v" = 0 -a "$(wrk_val requests "$out")" != missing
	grep -E '^(  [0-9]+ requests|Requests/sec)' "$out" | sed 's/^ */# /'
	for k in err_connect err_read err_write err_timeout; do
		v=$(wrk_val "$k" "$out")
		check "$name: no socket error: $k = $v" test "$v" = 0
	done
	v=$(wrk_val non2xx "$out")
	check "$name: every response is 2xx (non-2xx: $v)" test "$v" = 0
	after=$(wrk_between "$t_upd" "$t_end" "$out")
	during=$(wrk_between "$t_up" "$t_upd" "$out")
	echo "# $name: responses (whole 100 ms buckets) while the new agent started: $during in $((t_upd - t_up)) ms; after: $after in $((t_end - t_upd)) ms"
	check "$name: traffic kept flowing after it ($after responses, >= $MIN_AFTER)" \
		test "$after" -ge "$MIN_AFTER"
}
staged_empty() { [ -z "$(ls -A "$PINS/staging" 2>/dev/null)" ]; }
refused() { [ "$STATE" = exited ] && [ -n "$XS" ] && [ "$XS" != 0 ]; }
restore_normal() { # name: the normal agent again, on the pins the refusal left untouched
	local sz
	sz=$(log_size)
	check "$1: the normal agent starts again on the untouched pins" \
		bash -c "$(printf '%q ' "$LAB") agent start $NODE >$TMP/$1.restore 2>&1"
	check "$1: ... and adopts them (maps adopted, programs replaced in their links)" \
		grep -q 'maps adopted, programs replaced in their links' <(log_since "$sz")
}

# ---- 1. bm_svc with another max_entries: (a) migrated or (b) refused, never silent ----
replace_under_load upgrade "$VARIANT"
if [ "$START_RC" = 0 ] && [ "$STATE" = running ]; then
	OUTCOME=a
	ok "upgrade outcome (a): the variant agent is ready on the old pins"
	check "(a) the variant logs the migration of bm_svc" \
		grep -Eq 'migrat.*bm_svc|bm_svc.*migrat' <<<"$NEWLOG"
	m=$(svc_max)
	check "(a) bpftool map show pinned $PINS/bm_svc: max_entries $m = $VARIANT_SVC" test "$m" = "$VARIANT_SVC"
	LINKS1=$(links_of)
	check "(a) the programs were swapped inside the same links, never detached (link ids kept)" \
		test "$(cut -d: -f1,2 <<<"$LINKS1")" = "$(cut -d: -f1,2 <<<"$LINKS0")"
	check "(a) ... and the links now run the variant's programs (prog ids changed)" \
		test "$LINKS1" != "$LINKS0"
	check "(a) nothing is left staged in $PINS/staging" staged_empty
elif refused; then
	OUTCOME=b
	ok "upgrade outcome (b): the variant agent refused the pins and exited with status $XS"
	check "(b) lab agent start reported the failure (exit $START_RC)" test "$START_RC" != 0
	check "(b) the agent's message names the map bm_svc and the mismatch" \
		grep -Eiq 'bm_svc.*(mismatch|layout|max_entries|incompatib)|(mismatch|layout|max_entries|incompatib).*bm_svc' \
		<<<"$NEWLOG"
	check "(b) its error says what to do (another layout / --cleanup / migration)" \
		grep -Eiq 'error: .*(layout|cleanup|migrat|incompatib|mismatch|max_entries|differ)' <<<"$NEWLOG"
	m=$(svc_max)
	check "(b) the old bm_svc is untouched (max_entries $m = $MAX0)" test "$m" = "$MAX0"
	check "(b) the old programs are still in the same links (link and program ids unchanged)" \
		test "$(links_of)" = "$LINKS0"
	restore_normal "(b)"
else
	OUTCOME=none
	not_ok "upgrade: neither migrated and ready nor refused with a non-zero exit (start exit $START_RC, agent $STATE, exit ${XS:-none}) -- silent"
fi

# ---- 2. after a migration, the rollback to the normal build migrates back ----
if [ "$OUTCOME" = a ]; then
	LINKS1=$(links_of)
	replace_under_load rollback "$AGENT_NORMAL"
	check "rollback: the normal agent is ready (start exit $START_RC, agent $STATE)" \
		test "$START_RC" = 0 -a "$STATE" = running
	check "rollback: it logs the migration of bm_svc" grep -Eq 'migrat.*bm_svc|bm_svc.*migrat' <<<"$NEWLOG"
	m=$(svc_max)
	check "rollback: bm_svc has max_entries $MAX0 again ($m)" test "$m" = "$MAX0"
	check "rollback: same links (ids kept)" \
		test "$(links_of | cut -d: -f1,2)" = "$(cut -d: -f1,2 <<<"$LINKS1")"
fi

# ---- 3. a map that holds connection state (bm_revnat) with another layout: refused ----
LINKS2=$(links_of)
replace_under_load stateful "$VARIANT_REVNAT"
if refused; then
	ok "stateful: the agent with bm_revnat of $VARIANT_REVNAT_N entries refused the pins (exit $XS)"
else
	not_ok "stateful: the agent with another bm_revnat must exit non-zero (start exit $START_RC, agent $STATE, exit ${XS:-none})"
fi
check "stateful: lab agent start reported the failure (exit $START_RC)" test "$START_RC" != 0
check "stateful: the message names bm_revnat and the difference" \
	grep -Eiq 'bm_revnat.*(mismatch|layout|max_entries|incompatib|differ)|(mismatch|layout|max_entries|incompatib|differ).*bm_revnat' \
	<<<"$NEWLOG"
m=$(map_max bm_revnat)
check "stateful: bm_revnat is untouched (max_entries $m = $REVNAT0)" test "$m" = "$REVNAT0"
check "stateful: the old programs are still in the same links (link and program ids unchanged)" \
	test "$(links_of)" = "$LINKS2"
check "stateful: nothing was left staged in $PINS/staging" staged_empty
refused && restore_normal stateful

# ---- the node's agent serves config changes again ----
if lab apply "$TMP/only-v2.yaml" >"$TMP/apply.log" 2>&1; then
	ok "lab apply of a route to subset v2 after the upgrades (outcome $OUTCOME)"
else
	not_ok "lab apply of a route to subset v2 after the upgrades ($(tail -3 "$TMP/apply.log" | tr '\n' ' '))"
fi
n=$(v2_of_50)
check "the new route holds on $NODE: $n of 50 connections reach v2" test "$n" = 50

# ---- bpfmesh-agent --cleanup --node N removes every program, link and pin of the node ----
CG=$(lab status | sed -n 's/^cgroup: //p')/$NODE
lab agent stop "$NODE" >/dev/null 2>&1
LINK_IDS=$(links_of | cut -d: -f2)
PROG_IDS=$(links_of | cut -d: -f3)
MAP_IDS=$(for f in "$PINS"/bm_*; do bpftool -j map show pinned "$f" | jq -r .id; done)
tree_progs() { bpftool cgroup tree "$CG" | awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1 }'; }
check "before cleanup: $NODE has $(wc -w <<<"$LINK_IDS") links, $(wc -w <<<"$MAP_IDS") pinned maps, $(tree_progs | wc -l) programs in bpftool cgroup tree $CG" \
	test -n "$LINK_IDS" -a -n "$MAP_IDS" -a -n "$(tree_progs)"
check "bpfmesh-agent --cleanup --node $NODE exits 0" \
	"$E2E_BIN/bpfmesh-agent" --cleanup --node "$NODE"
check "cleanup: $PINS is gone from bpffs" test ! -e "$PINS"
left=$(find /sys/fs/bpf/bpfmesh -maxdepth 1 \( -name "$NODE" -o -name "${NODE}[._-]*" -o -name ".$NODE*" \) 2>/dev/null)
check "cleanup: nothing of $NODE is left under /sys/fs/bpf/bpfmesh (staging or old pins: '${left//$'\n'/ }')" \
	test -z "$left"
check "cleanup: bpftool cgroup tree shows no program on $NODE's cgroup ($(tree_progs | wc -l))" \
	test -z "$(tree_progs)"
check "cleanup: bpftool cgroup show $CG lists nothing" \
	test -z "$(bpftool -j cgroup show "$CG" | jq -r '.[]?.id')"
gone() { # kind ids: true once no id is left (the kernel frees programs and maps asynchronously)
	local k=$1 id
	shift
	for id in "$@"; do bpftool "$k" show id "$id" >/dev/null 2>&1 && return 1; done
	return 0
}
wait_gone() { local i; for ((i = 0; i < 100; i++)); do gone "$@" && return 0; sleep 0.1; done; return 1; }
# shellcheck disable=SC2086
check "cleanup: the node's links are gone (ids ${LINK_IDS//$'\n'/ })" wait_gone link $LINK_IDS
# shellcheck disable=SC2086
check "cleanup: the node's programs are gone (ids ${PROG_IDS//$'\n'/ })" wait_gone prog $PROG_IDS
# shellcheck disable=SC2086
check "cleanup: the node's maps are gone (ids ${MAP_IDS//$'\n'/ })" wait_gone map $MAP_IDS
out=$(lab exec deploy/client -- curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$VIP/" 2>&1)
check "cleanup: the VIP is no longer translated on $NODE (curl from the client: '$out')" \
	test "$out" = 000
check "cleanup touched only $NODE: $OTHER keeps its pins" test -e "/sys/fs/bpf/bpfmesh/$OTHER/bm_svc"

e2e_finish
