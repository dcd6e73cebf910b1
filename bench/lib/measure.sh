#!/usr/bin/env bash
# measure.sh SCENARIO_FILE OUTDIR: in a topology that is up, start the server, bring the
# scenario up, check that the path works, run the bounded loads, check the scenario's evidence
# that its own path carried them, and bring everything down again.
# Exit 0: measured; 3: the scenario is unsupported (reason in OUTDIR/UNSUPPORTED); else failed.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")/.." && pwd)
. "$BENCH_DIR/lib/common.sh"
. "$BENCH_DIR/lib/server.sh"
. "$BENCH_DIR/lib/sidecar.sh"
. "$BENCH_DIR/lib/bpfmesh.sh"

SCN_FILE=$1
OUT=$2
mkdir -p "$OUT"

: "${DURATION:=10}" "${CONNS:=16 64}" "${THREADS:=2}" "${WARMUP:=2}" "${SETTLE:=1}"
: "${CONN_DURATION:=8}" "${CONN_CONNS:=16}" "${IPERF_DURATION:=5}" "${IPERF_OMIT:=1}"
: "${RETRY_DISTURBED:=1}" "${DISTURBED_CORES:=0.15}"

unsupported() { echo "$*" >"$OUT/UNSUPPORTED"; log "UNSUPPORTED: $*"; exit 3; }
note() { echo "$*" >>"$OUT/notes"; log "note: $*"; }

# A client command runs in the client pod: its netns and the scenario's client cgroup (the
# pod's, below the mesh's cgroup, unless the scenario puts it outside). Always time-bounded.
client() {
	local limit=$1
	shift
	(echo "$BASHPID" >"$SCN_CLIENT_CG/cgroup.procs" &&
		exec timeout -k 5 "$limit" nsenter --net="/run/netns/$NS_CLI" -- "$@")
}

# Cores busy outside the run's cgroups between two CPU snapshots: kernel threads, and anything
# else running on the machine (lib/report.py computes the same).
elsewhere_cores() {
	awk -v hz="$(getconf CLK_TCK)" '
		FNR == NR { a[$1] = $2; next }
		{ b[$1] = $2 }
		END {
			busy = (b["sys_busy_ticks"] - a["sys_busy_ticks"]) / hz
			for (k in b) if (k ~ /^cg:/) busy -= (b[k] - a[k]) / 1e6
			wall = (b["wall_ns"] - a["wall_ns"]) / 1e9
			printf "%.2f", (wall > 0 && busy > 0) ? busy / wall : 0
		}' "$1" "$2"
}

# run_test NAME LIMIT cmd...: CPU counters before and after, output in OUT/NAME.out, the
# command as run in OUT/NAME.cmd. A run during which something else used more than
# DISTURBED_CORES is kept as NAME.disturbed<N>.* and done again, up to RETRY_DISTURBED times.
run_test() {
	local name=$1 limit=$2 rc try el f
	shift 2
	{
		echo "# in cgroup $SCN_CLIENT_CG"
		printf '%q ' timeout -k 5 "$limit" nsenter --net="/run/netns/$NS_CLI" -- "$@" | sed "s|$BENCH_DIR|bench|g"
		echo
	} >"$OUT/$name.cmd"
	for ((try = 1; ; try++)); do
		rc=0
		sleep "$SETTLE"
		cpu_snapshot >"$OUT/$name.cpu0"
		client "$limit" "$@" >"$OUT/$name.out" 2>&1 || rc=$?
		cpu_snapshot >"$OUT/$name.cpu1"
		el=$(elsewhere_cores "$OUT/$name.cpu0" "$OUT/$name.cpu1")
		if [[ $name == warmup ]] || ((try > RETRY_DISTURBED)) ||
			awk -v e="$el" -v m="$DISTURBED_CORES" 'BEGIN { exit (e > m) }'; then
			break
		fi
		log "  $name: disturbed ($el cores busy outside the bench), once more"
		for f in out cpu0 cpu1; do mv "$OUT/$name.$f" "$OUT/$name.disturbed$try.$f"; done
	done
	[[ $rc -eq 0 ]] || log "  $name: exit $rc (see $OUT/$name.out)"
}

wrk_test() { # NAME CONNS SECONDS [wrk args]
	local name=$1 c=$2 d=$3
	shift 3
	run_test "$name" $((d + 20)) wrk -t"$THREADS" -c"$c" -d"${d}s" --latency \
		-s "$BENCH_DIR/wrk/report.lua" "$@" "http://$SCN_TARGET/100b"
	log "  $name: $(grep -m1 '^Requests/sec' "$OUT/$name.out" || echo 'Requests/sec: none')"
}

save_outputs() {
	local ns
	for ns in "$NS_CLI" "$NS_SRV" "$NS_NODE"; do
		echo "== $ns"
		in_ns "$ns" iptables-save -c -t nat 2>/dev/null | grep -E '^\[' || true
	done >"$OUT/iptables-counters.txt"
	mkdir -p "$OUT/conf" "$OUT/logs"
	cp -r "$STATE/conf/." "$OUT/conf/" 2>/dev/null || true
}

finish() {
	local rc=$?
	set +e
	[[ $rc -eq 0 ]] || save_outputs
	scn_down
	server_down
	cp "$STATE"/log/*.log "$OUT/logs/" 2>/dev/null
	exit $rc
}

# shellcheck source=/dev/null
. "$SCN_FILE"
[[ -n ${SCN_TARGET:-} ]] || die "$SCN_FILE sets no SCN_TARGET"
SCN_CLIENT_CG=${SCN_CLIENT_CG:-$CG_CLI}
echo "${SCN_DESC:-}" >"$OUT/desc"
echo "$SCN_TARGET" >"$OUT/target"
mkdir -p "$OUT/logs" "$SCN_CLIENT_CG"

trap finish EXIT
server_up
scn_up

# The path must work before it is measured.
got=$(client 10 curl -sS --max-time 5 -o /dev/null -w '%{http_code} %{size_download}' \
	"http://$SCN_TARGET/1m" 2>&1) || die "curl http://$SCN_TARGET/1m from the client failed: $got"
[[ $got == "200 1048576" ]] || die "curl http://$SCN_TARGET/1m from the client: got '$got'"

[[ $WARMUP -le 0 ]] || wrk_test warmup 16 "$WARMUP"
for c in $CONNS; do
	wrk_test "rr$c" "$c" "$DURATION"
done
wrk_test conn "$CONN_CONNS" "$CONN_DURATION" -H "Connection: close"
run_test iperf3 $((IPERF_DURATION + IPERF_OMIT + 25)) \
	iperf3 -c "$SCN_TARGET" -p "$IPERF_PORT" -t "$IPERF_DURATION" -O "$IPERF_OMIT" -J
log "  iperf3: $(python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print("%.2f Gbit/s" % (d["end"]["sum_received"]["bits_per_second"] / 1e9))' "$OUT/iperf3.out" 2>/dev/null || echo none)"

# Every process of the scenario must have lived through the load.
for f in "$STATE"/pids/*.pid; do
	[[ -e $f ]] || continue
	pid_is_ours "$(cat "$f")" || die "$(basename "$f" .pid) died during the load (see $OUT/logs)"
done
if declare -F scn_after >/dev/null; then scn_after; fi
save_outputs
