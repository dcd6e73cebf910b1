#!/usr/bin/env bash
# run.sh: bpfmesh's benchmark. Measures every scenario side by side in one run, each on a fresh
# topology, and writes a table with ratios to `direct`, a chart, the raw outputs and the exact
# commands to bench/results/<stamp>/. See docs/bench.md.
#
#   bench/run.sh                         the default scenarios, about 7 minutes
#   bench/run.sh --smoke                 about 1 s per measurement: does every scenario carry traffic?
#   bench/run.sh direct bpfmesh-l4       a subset (`default` stands for the default set)
#   bench/run.sh direct sidecar-l7 bpfmesh-l7   the L7 comparison alone
#   ROUNDS=3 bench/run.sh                rounds interleaved, medians reported
#   DURATION=5 bench/run.sh              shorter keepalive runs (see the settings below)
#
# Exit status: 0 when every scenario was measured or is unsupported by this build of the agent
# (shown as such in the table); 1 when a scenario failed or, with --smoke, carried no traffic.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
export BENCH_DIR
export BENCH_PREFIX=${BENCH_PREFIX:-bmb$$}
. "$BENCH_DIR/lib/common.sh"

DEFAULT_SCENARIOS="direct vip-dnat sidecar-l4 bpfmesh-l4 bpfmesh-l4-bypass bpfmesh-tc sidecar-l7 bpfmesh-l7"
SMOKE=0
args=()
for a in "$@"; do
	case $a in
	--smoke) SMOKE=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
		echo "scenarios: $(cd "$BENCH_DIR/scenarios" && ls ./*.sh | sed 's|^\./||; s|\.sh$||' | tr '\n' ' ')"
		echo "default: $DEFAULT_SCENARIOS"
		echo "settings (environment, default):"
		grep -E '^(export )?[A-Z_]+=\$\{[A-Z_]+:-' "$0" | sed 's/^export //; s/^/  /'
		exit 0
		;;
	-*) die "unknown option $a (see --help)" ;;
	default) read -ra d <<<"$DEFAULT_SCENARIOS" && args+=("${d[@]}") ;;
	*) args+=("$a") ;;
	esac
done
SCENARIOS=${args[*]:-${SCENARIOS:-$DEFAULT_SCENARIOS}}

# Settings (environment). --smoke shortens every measurement to about a second.
if [[ $SMOKE == 1 ]]; then
	: "${DURATION:=1}" "${CONN_DURATION:=1}" "${IPERF_DURATION:=1}" "${IPERF_OMIT:=0}"
	: "${WARMUP:=0}" "${SETTLE:=0}" "${ROUNDS:=1}" "${RETRY_DISTURBED:=0}" "${RSS_DURATION:=2}"
fi
export DURATION=${DURATION:-10}              # wrk keepalive runs (s)
export CONNS=${CONNS:-"16 64"}               # keepalive connection counts
export THREADS=${THREADS:-2}                 # wrk threads
export WARMUP=${WARMUP:-2}                   # wrk warm-up before the measured runs (s)
export CONN_DURATION=${CONN_DURATION:-8}     # wrk with Connection: close (s)
export CONN_CONNS=${CONN_CONNS:-16}
export IPERF_DURATION=${IPERF_DURATION:-5}   # iperf3 single stream (s), after IPERF_OMIT s
export IPERF_OMIT=${IPERF_OMIT:-1}
export RSS_CONNS=${RSS_CONNS:-1000}          # bpfmesh-l7: the agent's memory with this many connections open
export RSS_DURATION=${RSS_DURATION:-5}       # ... held open by wrk for this long (s)
export SETTLE=${SETTLE:-1}                   # pause before each measurement (s)
export NGINX_WORKERS=${NGINX_WORKERS:-2} SIDECAR_THREADS=${SIDECAR_THREADS:-2}
export RETRY_DISTURBED=${RETRY_DISTURBED:-1} # measure again when something else used the CPUs
export DISTURBED_CORES=${DISTURBED_CORES:-0.15} # ... more than this many cores during a test
ROUNDS=${ROUNDS:-1}                    # rounds, interleaved; medians reported
QUIET_WAIT=${QUIET_WAIT:-0}            # wait up to this long (s) for a quiet machine first
MAX_RUNTIME=${MAX_RUNTIME:-$(((SMOKE ? 180 : 900) * ROUNDS))} # watchdog for the whole run (s)

for s in $SCENARIOS; do
	[[ -f $BENCH_DIR/scenarios/$s.sh ]] || die "no scenario $s (bench/scenarios/$s.sh)"
done
[[ $(id -u) -eq 0 ]] || die "run as root (network namespaces, iptables, cgroups, BPF)"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"

# Debian packages, installed only when missing. A server package may start its system service
# on install: stop that one, ours run in the bench's namespaces.
need=()
for pair in nginx:nginx-light haproxy:haproxy wrk:wrk iperf3:iperf3 iptables:iptables \
	curl:curl ping:iputils-ping nsenter:util-linux ss:iproute2 bpftool:bpftool \
	python3:python3 gnuplot:gnuplot-nox; do
	command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
if [[ ${#need[@]} -gt 0 ]]; then
	log "installing: ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "${need[@]}" >/dev/null ||
		die "apt-get install ${need[*]} failed (apt-get update first?)"
	for svc in nginx haproxy; do
		if systemctl is-active --quiet "$svc" 2>/dev/null; then
			log "stopping the $svc system service the package started"
			systemctl stop "$svc" || true
		fi
	done
fi

# One bench at a time: two would share the CPUs they measure.
exec 9>/run/bpfmesh-bench.lock
flock -w "${LOCK_WAIT:-0}" 9 || die "another bench run holds /run/bpfmesh-bench.lock (LOCK_WAIT=seconds to wait)"

# How busy the machine is without us (1 s of /proc/stat): anything else running skews the figures.
busy_pct() {
	local a b
	a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
	sleep 1
	b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
	echo "$a $b" | awk '{ t = ($3 - $1) + ($4 - $2); print t ? int(100 * ($3 - $1) / t) : 0 }'
}
BUSY_BEFORE=$(busy_pct)
for ((waited = 0; BUSY_BEFORE > 20 && waited < QUIET_WAIT; waited += 5)); do
	((waited > 0)) || log "the machine is ${BUSY_BEFORE}% busy: waiting up to ${QUIET_WAIT}s for it to calm down"
	sleep 4
	BUSY_BEFORE=$(busy_pct)
done

STAMP=$(date +%Y%m%d-%H%M%S)
[[ $SMOKE == 0 ]] || STAMP+=-smoke
RESULTS=${RESULTS:-$BENCH_DIR/results/$STAMP}
mkdir -p "$RESULTS"

WATCHDOG=""
cleanup() {
	local rc=$?
	set +e
	"$BENCH_DIR/topology.sh" down >/dev/null 2>&1
	[[ -z $WATCHDOG ]] || kill "$WATCHDOG" 2>/dev/null
	exit $rc
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
# A stuck step cannot keep load running: every client command has its own timeout, and the
# whole run is bounded too (the watchdog's sleep is stopped by its own PID).
(
	trap 'kill "$sp" 2>/dev/null; exit 0' TERM
	sleep "$MAX_RUNTIME" &
	sp=$!
	wait "$sp"
	echo "watchdog: the run exceeded ${MAX_RUNTIME}s; stopping after the current step" >&2
	kill -TERM $$
) 9>&- &
WATCHDOG=$!

{
	echo "date: $(date -Is)"
	echo "host: $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "cpu: $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
	# Others may rebuild the work tree during a run: the binary's digest says which agent ran.
	echo "bpfmesh: $(git -C "$REPO_DIR" describe --always --dirty 2>/dev/null || echo unknown), agent $AGENT_BIN (sha256 $(sha256sum "$AGENT_BIN" 2>/dev/null | cut -c1-16), built $(date -r "$AGENT_BIN" -Is 2>/dev/null))"
	echo "versions: $(nginx -v 2>&1 | sed 's/.*: //'), $(haproxy -v | awk 'NR == 1 { print "haproxy " $3 }'), $(wrk -v 2>&1 | awk 'NR == 1 { print "wrk " $2 }'), $(iperf3 -v | awk 'NR == 1 { print "iperf3 " $2 }')"
	echo "before the run: CPUs ${BUSY_BEFORE}% busy over 1 s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "command: bench/run.sh${*:+ $*}"
	for v in SMOKE SCENARIOS ROUNDS DURATION CONNS THREADS WARMUP CONN_DURATION CONN_CONNS \
		IPERF_DURATION IPERF_OMIT RSS_CONNS RSS_DURATION SETTLE NGINX_WORKERS SIDECAR_THREADS \
		RETRY_DISTURBED DISTURBED_CORES; do
		echo "$v=${!v}"
	done
} >"$RESULTS/meta.txt"
echo "$SCENARIOS" | tr ' ' '\n' | grep . >"$RESULTS/order"

log "results -> $RESULTS"
if [[ $BUSY_BEFORE -gt 20 ]]; then
	log "warning: the machine is ${BUSY_BEFORE}% busy before the run: the figures will be disturbed"
fi
T0=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
	for s in $SCENARIOS; do
		out="$RESULTS/$s/r$round"
		mkdir -p "$out"
		log "== $s (round $round/$ROUNDS)"
		"$BENCH_DIR/topology.sh" up 2>>"$out/topology.log" ||
			die "topology up failed: $(tail -n 3 "$out/topology.log")"
		set +e
		bash "$BENCH_DIR/lib/measure.sh" "$BENCH_DIR/scenarios/$s.sh" "$out" 2>&1 | tee "$out/measure.log" >&2
		rc=${PIPESTATUS[0]}
		set -e
		if [[ $rc -eq 3 ]]; then
			log "$s: UNSUPPORTED"
		elif [[ $rc -ne 0 ]]; then
			grep 'ERROR: ' "$out/measure.log" | tail -n 1 | sed 's/.*ERROR: //' >"$out/FAILED"
			[[ -s $out/FAILED ]] || echo "measure.sh exited with $rc" >"$out/FAILED"
			log "$s: FAILED: $(cat "$out/FAILED")"
		fi
		"$BENCH_DIR/topology.sh" down 2>>"$out/topology.log"
	done
done
log "all scenarios done in $(($(date +%s) - T0)) s"

rc=0
python3 "$BENCH_DIR/lib/report.py" "$RESULTS" || rc=$?
if [[ -s $RESULTS/chart.dat ]]; then
	gnuplot -e "datafile='$RESULTS/chart.dat'; outfile='$RESULTS/chart.png'; conns='$CONNS'" "$BENCH_DIR/lib/chart.gp" \
		2>"$RESULTS/chart.log" || log "gnuplot failed (see $RESULTS/chart.log)"
fi
cat "$RESULTS/table.md"
log "table: $RESULTS/table.md, chart: $RESULTS/chart.png"
exit $rc
