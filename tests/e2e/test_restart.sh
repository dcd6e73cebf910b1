#!/usr/bin/env bash
# End to end, in a two-node lab: the agent of the client's node is SIGKILLed and started again
# while wrk in the client pod loads the Service VIP (keepalive, then Connection: close). No
# request may fail, requests must keep flowing while no agent runs, and each new agent must
# adopt the pinned datapath (never detach it) and still apply a config change.
. "$(dirname "$0")/lib.sh"

EX=$E2E_ROOT/examples
TMP=$E2E_TMP
WRK_MAX=30   # wrk's own bound; the test stops it (SIGINT: it reports) 2.5 s after the last event
MIN_DEAD=100 # responses the 2 s with no agent must see at least (a loaded machine does ~10^4)
RUN=/run/bpfmesh-lab/$BM_LAB_PREFIX

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
AGLOG=$RUN/agents/$NODE.log
check "backend has a ClusterIP ($VIP) and the client pod a node ($NODE)" test -n "$VIP" -a -n "$NODE"
# Many short connections from one pod: let its netns (the lab's, this run's) reuse ports.
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
# Responses that completed inside [from, to) ms, whole 100 ms buckets only.
wrk_between() {
	awk -v a="$1" -v b="$2" '$1 == "BM" && $2 == "bucket" && $3 >= a && $3 + 100 <= b { n += $4 }
		END { print n + 0 }' "$3"
}
agent_pid() { cat "$RUN/agents/$NODE.pid" 2>/dev/null; }
log_size() { stat -c %s "$AGLOG" 2>/dev/null || echo 0; }
log_since() { tail -c +$(($1 + 1)) "$AGLOG"; }
adopted_since() { log_since "$1" | grep -q 'maps adopted, programs replaced in their links'; }

# One round: wrk (about 8 s): at 1.5 s the agent is killed and restarted at once, 1 s later it is
# killed again and left dead for 2 s before it is started; wrk stops 2.5 s after that start.
round() { # name, extra wrk args...
	local name=$1 out=$TMP/$1.wrk t_k1 t_r1 t_k2 t_s2 t_r2 t_end pid0 pid1 pid2 sz
	local rc1 rc2 rck st v dead adopt after
	shift
	echo "# round $name: wrk -t2 -c16 $* against http://$VIP/"
	wrk_start "$out" "$@"
	sleep 1.5

	pid0=$(agent_pid)
	sz=$(log_size)
	t_k1=$(now_ms)
	lab agent restart "$NODE" --kill >"$TMP/$name.restart" 2>&1
	rc1=$?
	t_r1=$(now_ms)
	pid1=$(agent_pid)
	check "$name: lab agent restart --kill: a new agent is ready ($pid0 -> $pid1, $((t_r1 - t_k1)) ms)" \
		test "$rc1" = 0 -a -n "$pid1" -a "$pid1" != "$pid0"
	check "$name: the restarted agent adopted the pins (maps adopted, programs replaced in their links)" \
		adopted_since "$sz"
	sleep 1

	lab agent kill "$NODE" >"$TMP/$name.kill" 2>&1
	rck=$?
	t_k2=$(now_ms)
	st=$(lab agent status "$NODE")
	v=$?
	check "$name: lab agent kill: the agent is gone, killed by SIGKILL (status $v: $(grep -E '^(state|exit)=' <<<"$st" | tr '\n' ' '))" \
		test "$rck" = 0 -a "$v" = 3 -a "$(sed -n 's/^exit=//p' <<<"$st")" = 137
	sleep 2
	sz=$(log_size)
	t_s2=$(now_ms)
	lab agent start "$NODE" >"$TMP/$name.start" 2>&1
	rc2=$?
	t_r2=$(now_ms)
	pid2=$(agent_pid)
	check "$name: lab agent start after 2 s with no agent: ready ($pid2, $((t_r2 - t_s2)) ms)" \
		test "$rc2" = 0 -a "$pid2" != "$pid1"
	check "$name: that agent adopted the pins too" adopted_since "$sz"

	wrk_stop
	v=$?
	t_end=$(now_ms)
	check "$name: wrk ran and reported (exit $v)" test "$v" = 0 -a "$(wrk_val requests "$out")" != missing
	grep -E '^(  [0-9]+ requests|Requests/sec)' "$out" | sed 's/^ */# /'
	for k in err_connect err_read err_write err_timeout; do
		v=$(wrk_val "$k" "$out")
		check "$name: no socket error: $k = $v" test "$v" = 0
	done
	v=$(wrk_val non2xx "$out")
	check "$name: every response is 2xx (non-2xx: $v)" test "$v" = 0
	dead=$(wrk_between "$t_k2" "$t_s2" "$out")
	adopt=$(wrk_between "$t_k1" "$t_r1" "$out")
	after=$(wrk_between "$t_r2" "$t_end" "$out")
	echo "# $name: responses (whole 100 ms buckets) while the agent restarted at once: $adopt in $((t_r1 - t_k1)) ms;" \
		"with no agent: $dead in $((t_s2 - t_k2)) ms; after the last start: $after"
	check "$name: requests flowed while no agent ran ($dead responses in $((t_s2 - t_k2)) ms, >= $MIN_DEAD)" \
		test "$dead" -ge "$MIN_DEAD"
	check "$name: requests flowed after the last start too ($after responses)" test "$after" -gt 0
}

round keepalive
round close -H 'Connection: close'

# The datapath counters: no connect failed closed because of a table the restarts left half-made.
stats=$("$E2E_BIN/bpfmeshctl" --node "$NODE" --state-dir "$RUN/agents/$NODE" bpf stats 2>&1)
lf=$(awk '$1 == "lookup_fail" || $1 == "lookup_fail:" { print $2 }' <<<"$stats")
echo "$stats" | sed 's/^/# /'
check "no connect failed closed on $NODE (lookup_fail = ${lf:-?})" test "${lf:-x}" = 0

# A config change still takes effect through the adopted datapath.
if lab apply "$TMP/only-v2.yaml" >"$TMP/apply.log" 2>&1; then
	ok "lab apply of a route to subset v2: the restarted agent applied it"
else
	not_ok "lab apply of a route to subset v2 ($(tail -3 "$TMP/apply.log" | tr '\n' ' '))"
fi
n=$(lab exec deploy/client -- sh -c 'for i in $(seq 50); do
	curl -s -m 2 -H "Connection: close" http://backend/; echo; done' | grep -c '"version":"v2"')
check "after the restarts, the new route holds: $n of 50 connections reach v2" test "$n" = 50
check "the agent of $NODE is still the one started last ($(agent_pid))" \
	bash -c "$(printf '%q ' "$LAB") agent status $NODE >/dev/null"

e2e_finish
