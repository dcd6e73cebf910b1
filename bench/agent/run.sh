#!/usr/bin/env bash
# Agent figures at scale (issue 4 §4): a real bpfmesh-agent on a generated config of N Services
# and M endpoints (Pods, and Pods + EndpointSlices): its memory, the time of a full apply and of a
# recompile, the latency from one endpoint change on disk to the kernel maps, and a callgrind
# profile of the full apply. Writes bench/results/<stamp>/agent.md. Run as root.
set -uo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
AGENT=${BM_AGENT_BIN:-$ROOT/.output/bin/bpfmesh-agent}
HELPER=$ROOT/.output/bench/bm-agent-mapwait
N=1000 M=10000 K=100 R=20 MODES="pods slices" CALLGRIND=1 OUT=''
# DEBOUNCE_MS of user/agent/main.c: quiet time after an inotify event (read from the source).
DEBOUNCE_MS=$(awk '$1 == "#define" && $2 == "DEBOUNCE_MS" { print $3 }' "$(dirname "$0")/../../user/agent/main.c")
DEBOUNCE_MS=${DEBOUNCE_MS:-0}

usage() {
	cat <<'EOF'
usage: bench/agent/run.sh [--services N] [--endpoints M] [--modes "pods slices"]
                          [--changes K] [--recompiles R] [--no-callgrind] [--out DIR]
  N Services (1000) with M endpoints (10000); per mode a fresh agent: RSS after load, start to
  ready, the first apply, R recompiles (SIGHUP, 20), K single-endpoint changes (100) timed from
  the rename to the new backend in the maps; then callgrind of the full apply (--once).
  Results: DIR (default bench/results/<UTC stamp>)/agent.md and agent-*.txt.
  BM_AGENT_BIN: another agent binary. Targets: RSS <= 16 MiB, full apply <= 100 ms, one
  change <= 10 ms.
EOF
}

while (($#)); do
	case $1 in
	--services) N=$2 && shift 2 ;;
	--endpoints) M=$2 && shift 2 ;;
	--modes) MODES=$2 && shift 2 ;;
	--changes) K=$2 && shift 2 ;;
	--recompiles) R=$2 && shift 2 ;;
	--no-callgrind) CALLGRIND=0 && shift ;;
	--out) OUT=$2 && shift 2 ;;
	-h | --help) usage && exit 0 ;;
	*) usage >&2 && exit 2 ;;
	esac
done

log() { printf 'bench/agent: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
[[ $EUID == 0 ]] || die "needs root (bpf, cgroups)"
[[ $K =~ ^[0-9]+$ && $R =~ ^[0-9]+$ ]] && ((K >= 1 && K <= 10000 && R >= 1 && R <= 1000)) ||
	die "--changes 1..10000, --recompiles 1..1000"
((K <= N)) || die "--changes must be <= --services (one change per Service)"
for m in $MODES; do [[ $m == pods || $m == slices ]] || die "mode $m: pods or slices"; done
[[ -x $AGENT ]] || die "$AGENT is not built (run make)"
((CALLGRIND == 0)) || command -v valgrind >/dev/null || die "valgrind is missing (apt-get install valgrind, or --no-callgrind)"
command -v bpftool >/dev/null || die "bpftool is missing"

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/bench/results/$STAMP}
mkdir -p "$OUT" "$ROOT/.output/bench"
gcc -O2 -Wall -Wextra -Werror -std=gnu11 -I"$ROOT/include" "$ROOT/bench/agent/bm_mapwait.c" \
	-o "$HELPER" -lbpf || die "build $HELPER"

CGROOT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $CGROOT ]] || die "no cgroup2 mount in /proc/mounts"
grep -qs '^[^ ]* /sys/fs/bpf bpf ' /proc/mounts || mount -t bpf bpf /sys/fs/bpf || die "mount bpffs"
ID=bmab$$
WORK=/run/bpfmesh-bench-agent/$ID # tmpfs: the config and its temp files on one filesystem
CGB=$CGROOT/bpfmesh-bench-$ID     # node/ (programs attach here, empty), agent/ (the process)
NODES_MADE=()
AGENT_PID=''

# ---- cleanup: only what this run made ----
agent_ours() { # pid: alive, not a zombie, in our agent cgroup
	local cg
	[[ -n $1 && -r /proc/$1/cgroup ]] || return 1
	cg=$(sed -n 's/^0:://p' "/proc/$1/cgroup" 2>/dev/null)
	[[ $cg == "${CGB#"$CGROOT"}/agent" ]] || return 1
	[[ $(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) != Z ]]
}
# The agent is our own child ($!), so its pid cannot be reused before we wait for it; the cgroup
# check is on top of that.
agent_stop() {
	local i
	if [[ -n $AGENT_PID ]] && kill -0 "$AGENT_PID" 2>/dev/null; then
		agent_ours "$AGENT_PID" || log "agent $AGENT_PID is not in $CGB/agent: stopping our child anyway"
		kill -TERM "$AGENT_PID" 2>/dev/null
		for ((i = 0; i < 100; i++)); do agent_ours "$AGENT_PID" || break; sleep 0.05; done
		agent_ours "$AGENT_PID" && kill -KILL "$AGENT_PID" 2>/dev/null
	fi
	[[ -n $AGENT_PID ]] && wait "$AGENT_PID" 2>/dev/null
	AGENT_PID=''
}
# Start CMD... as our child in the agent cgroup; wait (bounded) until it is there.
start_in_cgroup() {
	local i
	(
		echo "$BASHPID" >"$CGB/agent/cgroup.procs" || exit 111
		exec "$@"
	) </dev/null &
	AGENT_PID=$!
	for ((i = 0; i < 400; i++)); do
		agent_ours "$AGENT_PID" && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.005
	done
	return 1
}
cleanup() {
	local rc=$? n
	trap - EXIT INT TERM
	agent_stop
	for n in "${NODES_MADE[@]}"; do
		timeout 20 "$AGENT" --cleanup --node "$n" >/dev/null 2>&1 || log "cleanup of node $n failed"
		[[ -d /sys/fs/bpf/bpfmesh/$n ]] && rm -rf "/sys/fs/bpf/bpfmesh/$n"
	done
	if [[ -d $CGB ]]; then
		[[ -n $(cat "$CGB/agent/cgroup.procs" 2>/dev/null) ]] && echo 1 >"$CGB/agent/cgroup.kill"
		sleep 0.1
		rmdir "$CGB/agent" "$CGB/node" "$CGB" 2>/dev/null || log "cannot remove $CGB"
	fi
	rm -rf "$WORK"
	rmdir /run/bpfmesh-bench-agent 2>/dev/null
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$WORK" "$CGB/node" "$CGB/agent" || die "make $WORK and $CGB"

now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }
st_get() { sed -n "s/^$1=//p" "$2/status" 2>/dev/null; }
pct() { # p file: the p-th percentile (nearest rank) of the numbers in file
	sort -n "$2" | awk -v p="$1" '{ v[NR] = $1 } END { if (!NR) { print "-"; exit }
		i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; print v[i] }'
}
fmt_ms() { awk -v v="$1" 'BEGIN { if (v == "-" || v == "") print "-"; else printf "%.1f ms", v / 1000 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
verdict() { # value limit (same unit): PASS, or MISS by the factor
	awk -v v="$1" -v l="$2" 'BEGIN { if (v == "" || v == "-") print "?"; else if (v <= l) print "PASS";
		else printf "MISS (%.1fx)", v / l }'
}
# The first apply, from the log (ms stamps): from the line just before "applied generation 1"
# (the installer's "adopted ..." today) to that line. Prints "us<TAB>text of the line before".
first_apply() {
	awk '/ info: applied generation 1 / { split(prev, a, " "); split(a[1], t, "."); split($1, u, ".")
			sub(/^[0-9.]+ [a-z]+: /, "", prev)
			printf "%.0f\t%s\n", ((u[1] - t[1]) * 1000 + (u[2] - t[2])) * 1000, prev; exit }
		{ prev = $0 }' "$1"
}

trim_vg_log() {
	local n
	n=$(grep -c 'unhandled eBPF command' "$1")
	grep -v 'unhandled eBPF command' "$1" >"$1.tmp" && mv "$1.tmp" "$1"
	echo "($n \"WARNING: unhandled eBPF command\" lines from valgrind removed)" >>"$1"
}

# ---- one mode: generate, start, measure, stop ----
run_mode() {
	local mode=$1
	local node=$ID-$mode dir=$WORK/$mode cfg sd lg t0 t_ready i j pid
	local gen st_t rec_f chg_f line kind file vip port proto ip tport new old out vis ren ap
	cfg=$dir/config sd=$dir/state lg=$OUT/agent-$mode.log
	rec_f=$OUT/agent-$mode-recompile.txt chg_f=$OUT/agent-$mode-changes.txt
	mkdir -p "$dir/tmp" "$sd"
	NODES_MADE+=("$node")
	log "$mode: generating $N Services, $M endpoints"
	"$ROOT/bench/agent/gen-config.sh" --services "$N" --endpoints "$M" --mode "$mode" \
		--targets "$dir/targets" "$cfg" 2>>"$OUT/agent-gen.txt" || die "gen-config.sh failed"
	R_FILES[$mode]=$(find "$cfg" -name '*.yaml' | wc -l)
	R_BYTES[$mode]=$(cat "$cfg"/*.yaml | wc -c)

	log "$mode: starting the agent (node $node)"
	t0=$(now_us)
	start_in_cgroup "$AGENT" --config-dir "$cfg" --node "$node" --cgroup "$CGB/node" \
		--state-dir "$sd" >"$lg" 2>&1 || die "$mode: the agent did not start (log: $lg)"
	for ((i = 0; i < 24000; i++)); do # 120 s
		[[ -f $sd/ready ]] && break
		agent_ours "$AGENT_PID" || die "$mode: the agent exited before ready (log: $lg)"
		sleep 0.005
	done
	t_ready=$(now_us)
	[[ -f $sd/ready ]] || die "$mode: the agent is not ready after 120 s (log: $lg)"
	pid=$AGENT_PID
	R_READY[$mode]=$((t_ready - t0))
	R_RSS[$mode]=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	R_HWM[$mode]=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
	R_ANON[$mode]=$(awk '/^Anonymous:/ { print $2 }' "/proc/$pid/smaps_rollup")
	R_FIRST[$mode]=$(first_apply "$lg" | cut -f1)
	R_FIRST_FROM[$mode]=$(first_apply "$lg" | cut -f2 | cut -c1-60)
	R_FIRST_INSTALL[$mode]=$(st_get apply_us "$sd")
	R_SVCPORTS[$mode]=$(st_get service_ports "$sd")
	R_APPLIED_LINE[$mode]=$(grep -m1 'applied generation 1 ' "$lg" | sed 's/^[0-9.]* info: //')
	R_COUNT[$mode]=$("$HELPER" --pin-dir "/sys/fs/bpf/bpfmesh/$node" --count | tr '\n' ' ')

	log "$mode: $R recompiles (SIGHUP)"
	# The agent blocks SIGHUP only after its first apply (ready is written inside that apply):
	# wait for its event loop, or a SIGHUP would kill it.
	for ((i = 0; i < 1000; i++)); do
		grep -q ' info: watching ' "$lg" && break
		sleep 0.01
	done
	: >"$rec_f"
	for ((i = 0; i < R; i++)); do
		gen=$(st_get generation "$sd")
		agent_ours "$pid" || die "$mode: the agent died (log: $lg)"
		t0=$(now_us)
		kill -HUP "$pid"
		for ((j = 0; j < 30000; j++)); do # 60 s at most
			[[ $(st_get generation "$sd") != "$gen" ]] && break
			sleep 0.002
		done
		[[ $(st_get generation "$sd") != "$gen" ]] || die "$mode: no apply 60 s after a SIGHUP"
		st_t=$(st_get time_unix_ns "$sd")
		[[ $(st_get result "$sd") == ok ]] || die "$mode: a recompile was rejected: $(st_get error "$sd")"
		# status is written after the install: its time ends the apply; 1 ms is the SIGHUP timer
		echo "$((st_t / 1000 - t0 - 1000)) $(st_get apply_us "$sd")" >>"$rec_f"
		sleep 0.05
	done

	log "$mode: $K single-endpoint changes"
	: >"$chg_f"
	for ((i = 0; i < K; i++)); do
		line=$(sed -n "$((1 + i * N / K))p" "$dir/targets")
		read -r kind file vip port proto ip tport <<<"$line"
		new=10.$((220 + i / 65536)).$((i / 256 % 256)).$((i % 256 + 1))
		old=${ip//./\\.}
		sed "s/ $old\$/ $new/" "$file" >"$dir/tmp/change.yaml"
		cmp -s "$file" "$dir/tmp/change.yaml" && die "$mode: $file has no address $ip to change"
		gen=$(st_get generation "$sd")
		out=$("$HELPER" --pin-dir "/sys/fs/bpf/bpfmesh/$node" --svc "$vip:$port/$proto" \
			--want "$new:$tport" --gone "$ip:$tport" --rename "$dir/tmp/change.yaml" "$file" \
			--timeout-ms 60000)
		vis=$(sed -n 's/^visible_us=//p' <<<"$out")
		ren=$(sed -n 's/^rename_unix_ns=//p' <<<"$out")
		[[ $vis =~ ^[0-9]+$ ]] || die "$mode: change $i ($kind $file: $ip -> $new) not in the maps after 60 s"
		for ((j = 0; j < 30000; j++)); do # 60 s at most
			[[ $(st_get generation "$sd") != "$gen" ]] && break
			sleep 0.002
		done
		ap=$(st_get apply_us "$sd")
		st_t=$(st_get time_unix_ns "$sd")
		# visible_us, install us, rename -> status written (us), generations the change took
		echo "$vis $ap $(((st_t - ren) / 1000)) $(($(st_get generation "$sd") - gen)) $kind $file" >>"$chg_f"
		sed -i "s|^$kind $file .*|$kind $file $vip $port $proto $new $tport|" "$dir/targets"
		sleep 0.1
	done
	R_DONE[$mode]=1
	R_RSS2[$mode]=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	R_HWM2[$mode]=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
	# How much of that is live: glibc keeps freed heap; give it back (gdb calls malloc_trim(0)
	# in the agent, our own child), then read VmRSS again.
	R_TRIM[$mode]=-
	if command -v gdb >/dev/null &&
		timeout 60 gdb -p "$pid" -batch -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1; then
		R_TRIM[$mode]=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	fi
	agent_stop
	timeout 20 "$AGENT" --cleanup --node "$node" >>"$lg" 2>&1 || log "$mode: cleanup of $node failed"

	if ((CALLGRIND)); then
		log "$mode: callgrind of the full apply (--once, fresh pins: node $node-cg)"
		NODES_MADE+=("$node-cg")
		mkdir -p "$dir/state-cg"
		start_in_cgroup timeout 1200 valgrind --tool=callgrind \
			--callgrind-out-file="$OUT/agent-$mode.callgrind" "$AGENT" --once --config-dir "$cfg" \
			--node "$node-cg" --cgroup "$CGB/node" --state-dir "$dir/state-cg" \
			>"$OUT/agent-$mode-callgrind.log" 2>&1
		wait "$AGENT_PID" || log "$mode: callgrind run failed (see agent-$mode-callgrind.log)"
		AGENT_PID=''
		timeout 20 "$AGENT" --cleanup --node "$node-cg" >/dev/null 2>&1
		# The listings are cut to their head (the raw .callgrind file has everything); valgrind's
		# "unhandled eBPF command" warnings (batch map updates, prog_bind_map: the syscalls still
		# run) are counted, not kept.
		callgrind_annotate --threshold=100 --inclusive=no "$OUT/agent-$mode.callgrind" 2>&1 |
			head -n 300 >"$OUT/agent-$mode-callgrind-self.txt"
		callgrind_annotate --threshold=100 --inclusive=yes "$OUT/agent-$mode.callgrind" 2>&1 |
			head -n 300 >"$OUT/agent-$mode-callgrind-incl.txt"
		trim_vg_log "$OUT/agent-$mode-callgrind.log"
	fi
}

declare -A R_FILES R_BYTES R_READY R_RSS R_HWM R_FIRST R_FIRST_INSTALL R_SVCPORTS R_APPLIED_LINE
declare -A R_COUNT R_RSS2 R_HWM2 R_DONE R_FIRST_FROM R_ANON R_TRIM
# The fixed part: the same agent on an empty config dir (libraries, BPF objects, id pools).
baseline() {
	local node=$ID-empty i
	mkdir -p "$WORK/empty/config" "$WORK/empty/state"
	NODES_MADE+=("$node")
	start_in_cgroup "$AGENT" --config-dir "$WORK/empty/config" --node "$node" --cgroup "$CGB/node" \
		--state-dir "$WORK/empty/state" >"$OUT/agent-empty.log" 2>&1 || die "empty: the agent did not start"
	for ((i = 0; i < 6000; i++)); do
		[[ -f $WORK/empty/state/ready ]] && break
		agent_ours "$AGENT_PID" || die "empty: the agent exited (log: $OUT/agent-empty.log)"
		sleep 0.005
	done
	[[ -f $WORK/empty/state/ready ]] || die "empty: the agent is not ready after 30 s"
	BASE_RSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/$AGENT_PID/status")
	BASE_ANON=$(awk '/^Anonymous:/ { print $2 }' "/proc/$AGENT_PID/smaps_rollup")
	agent_stop
	timeout 20 "$AGENT" --cleanup --node "$node" >>"$OUT/agent-empty.log" 2>&1
}
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
log "baseline: the agent on an empty config"
baseline
for mode in $MODES; do
	run_mode "$mode"
	[[ -n ${R_DONE[$mode]:-} ]] || die "$mode: the measurement did not finish"
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- the report ----
col() { # a row: label target then one cell per mode from a function
	local label=$1 target=$2 fn=$3 m row
	row="| $label | $target |"
	for m in $MODES; do row+=" $($fn "$m") |"; done
	echo "$row"
}
c_cfg() { echo "${R_FILES[$1]} files, $((${R_BYTES[$1]} / 1024)) KiB"; }
c_count() { echo "${R_SVCPORTS[$1]} service ports; maps: ${R_COUNT[$1]}"; }
c_rss() { echo "$(mib "${R_RSS[$1]}") $(verdict "${R_RSS[$1]}" 16384)"; }
c_anon() { echo "$(mib "${R_ANON[$1]}") (empty config: $(mib "$BASE_ANON"))"; }
c_base() { mib "$BASE_RSS"; }
c_trim() { [[ ${R_TRIM[$1]} == - ]] && echo "- (no gdb)" || echo "$(mib "${R_TRIM[$1]}") $(verdict "${R_TRIM[$1]}" 16384)"; }
c_hwm() { mib "${R_HWM[$1]}"; }
c_rss2() { echo "$(mib "${R_RSS2[$1]}") (HWM $(mib "${R_HWM2[$1]}"))"; }
c_ready() { fmt_ms "${R_READY[$1]}"; }
c_first() { echo "$(fmt_ms "${R_FIRST[$1]}") $(verdict "${R_FIRST[$1]}" 100000)"; }
c_first_inst() { fmt_ms "${R_FIRST_INSTALL[$1]}"; }
c_rec() {
	local f=$OUT/agent-$1-recompile.txt p
	p=$(pct 50 <(cut -d' ' -f1 "$f"))
	echo "$(fmt_ms "$p") / $(fmt_ms "$(pct 100 <(cut -d' ' -f1 "$f"))") $(verdict "$p" 100000)"
}
c_rec_inst() { fmt_ms "$(pct 50 <(cut -d' ' -f2 "$OUT/agent-$1-recompile.txt"))"; }
c_chg() {
	local f=$OUT/agent-$1-changes.txt p50 p99
	p50=$(pct 50 <(cut -d' ' -f1 "$f"))
	p99=$(pct 99 <(cut -d' ' -f1 "$f"))
	echo "$(fmt_ms "$p50") / $(fmt_ms "$p99") / $(fmt_ms "$(pct 100 <(cut -d' ' -f1 "$f"))") $(verdict "$p99" 10000)"
}
c_chg_inst() {
	local f=$OUT/agent-$1-changes.txt
	echo "$(fmt_ms "$(pct 50 <(cut -d' ' -f2 "$f"))") / $(fmt_ms "$(pct 99 <(cut -d' ' -f2 "$f"))")"
}
c_chg_compile() { # visible - debounce - install, per change
	fmt_ms "$(pct 50 <(awk -v d=$((DEBOUNCE_MS * 1000)) '{ print $1 - d - $2 }' "$OUT/agent-$1-changes.txt"))"
}
c_debounce() { echo "$DEBOUNCE_MS ms, fixed"; }
c_chg_gens() { awk '{ n += $4; if ($4 != 1) odd++ } END { printf "%d applies for %d changes", n, NR }' "$OUT/agent-$1-changes.txt"; }
# The top 12 functions of a callgrind_annotate listing (self or inclusive), one per name.
top_fns() { # mode self|incl
	awk 'match($0, /^ *[0-9,]+ +\( *[0-9.]+%\) +/) {
			ir = $1; pc = $0; sub(/^ *[0-9,]+ +\( */, "", pc); sub(/%.*/, "%", pc)
			fn = substr($0, RLENGTH + 1); sub(/ \[[^]]*\]$/, "", fn); sub(/^.*\//, "", fn)
			if (pc == "100.0%" || fn ~ /below main|libc_start|:main$/ || seen[fn]++) next
			if (++n > 12) exit
			printf "| %s | %s | `%s` |\n", ir, pc, fn }' "$OUT/agent-$1-callgrind-$2.txt"
}
# Inclusive share of the full apply's phases, from the callgrind listing.
phase() { # mode function
	awk -v f="$2" 'index($0, ":" f " [") && match($0, /\( *[0-9.]+%\)/) {
			print substr($0, RSTART + 1, RLENGTH - 2); exit }' "$OUT/agent-$1-callgrind-incl.txt" | tr -d ' '
}
strcmp_callers() { # mode: the top 3 callers of strcmp, with their share of all instructions
	callgrind_annotate --tree=caller --inclusive=no "$OUT/agent-$1.callgrind" 2>/dev/null |
		awk '/^ *$/ { blk = ""; next } { blk = blk "\n" $0 } /\* .*strcmp/ { print blk; exit }' |
		awk '/ < / { v = $1; gsub(",", "", v); fn = $0; sub(/^.* < /, "", fn); sub(/ \[.*$/, "", fn)
			sub(/^.*\//, "", fn); pc = $0; sub(/^[^(]*\( */, "", pc); sub(/%.*/, "%", pc); print v, pc, fn }' |
		sort -rn | head -3 | awk '{ $1 = ""; sub(/^ /, ""); printf "%s`%s`", (NR > 1 ? ", " : ""), $0 }'
}
{
	echo "# Agent at scale: $N Services, $M endpoints"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, load average $LOAD0 at start, $LOAD1 at the end"
	echo "(other jobs share this machine: times are one run's, not a controlled benchmark)."
	echo "Agent: \`${AGENT#"$ROOT"/}\` ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'))."
	echo
	echo "| figure | target |$(for m in $MODES; do printf ' %s |' "$m"; done)"
	echo "|---|---|$(for m in $MODES; do printf -- '---|'; done)"
	col "config" "" c_cfg
	col "loaded" "" c_count
	col "VmRSS after load" "≤ 16 MiB" c_rss
	col "&nbsp;&nbsp;of which anonymous (heap)" "" c_anon
	col "&nbsp;&nbsp;VmRSS of the agent on an empty config" "" c_base
	col "VmHWM after load (peak)" "" c_hwm
	col "VmRSS after the changes" "" c_rss2
	col "&nbsp;&nbsp;after \`malloc_trim(0)\` (gdb): live memory" "" c_trim
	col "start → ready (wall: BPF load, attach, first apply)" "" c_ready
	col "first apply into empty maps (log stamps, ms)" "≤ 100 ms" c_first
	col "&nbsp;&nbsp;of which install (\`apply_us\`)" "" c_first_inst
	col "full recompile, unchanged config (SIGHUP → status), p50 / max of $R" "≤ 100 ms" c_rec
	col "&nbsp;&nbsp;of which install, p50" "" c_rec_inst
	col "one endpoint change → maps, p50 / p99 / max of $K" "≤ 10 ms" c_chg
	col "&nbsp;&nbsp;debounce (\`DEBOUNCE_MS\`)" "" c_debounce
	col "&nbsp;&nbsp;read + parse + compile (rest), p50" "" c_chg_compile
	col "&nbsp;&nbsp;install (\`apply_us\`), p50 / p99" "" c_chg_inst
	col "&nbsp;&nbsp;applies" "" c_chg_gens
	echo
	echo "A change is one file (a Pod's IP, or one EndpointSlice address) written to a temp file on the"
	echo "same filesystem and renamed over the old one; the time runs from just before \`rename()\` to the"
	echo "first poll (every 200 µs, \`bm-agent-mapwait\`) that finds the new address among the backends"
	echo "reachable from the Service's \`bm_svc\` entry (route → sets → slots → backends) and the old one"
	echo "gone. Each change is to another Service; the agent parses again only the file inotify named, then
compiles and installs the whole config."
	echo
	echo "The first apply is timed on the agent's log, from the line just before \"applied generation 1\""
	echo "to that line:"
	for m in $MODES; do
		echo "- $m: from \`${R_FIRST_FROM[$m]}...\` to \`${R_APPLIED_LINE[$m]}\`"
	done
	if ((CALLGRIND)); then
		for m in $MODES; do
			echo
			echo "## callgrind: full apply, $m (\`--once\` into fresh pins)"
			echo
			echo "Total: $(awk '/PROGRAM TOTALS/ { print $1; exit }' "$OUT/agent-$m-callgrind-self.txt") instructions."
			echo
			echo "| phase (inclusive) | share |"
			echo "|---|---|"
			for f in bm_config_load_dir bm_yaml_parse bm_px_push bm_catalog_build host_rank \
				bm_catalog_find bm_cat_collect_endpoints select_workloads find_pod bm_compile \
				bm_install_apply write_services; do
				v=$(phase "$m" "$f")
				[[ -n $v ]] && echo "| \`$f\` | $v |"
			done
			echo
			echo "strcmp's top callers (self instructions in strcmp): $(strcmp_callers "$m")."
			echo
			echo "| Ir (self) | % | function |"
			echo "|---|---|---|"
			top_fns "$m" self
			echo
			echo "| Ir (inclusive) | % | function |"
			echo "|---|---|---|"
			top_fns "$m" incl
		done
	fi
	echo
	echo "## Commands"
	echo
	echo '```sh'
	echo "bench/agent/run.sh --services $N --endpoints $M --modes \"$MODES\" --changes $K --recompiles $R$( ((CALLGRIND)) || echo ' --no-callgrind')"
	echo "# which does, per mode:"
	echo "bench/agent/gen-config.sh --services $N --endpoints $M --mode MODE --targets T CONFIG"
	echo "bpfmesh-agent --config-dir CONFIG --node $ID-MODE --cgroup $CGROOT/bpfmesh-bench-$ID/node --state-dir STATE"
	echo "gcc -O2 -Wall -Wextra -Werror -std=gnu11 -Iinclude bench/agent/bm_mapwait.c -o .output/bench/bm-agent-mapwait -lbpf"
	echo "bm-agent-mapwait --pin-dir /sys/fs/bpf/bpfmesh/NODE --svc VIP:80/tcp --want NEW:8080 --gone OLD:8080 --rename TMP FILE"
	echo "valgrind --tool=callgrind bpfmesh-agent --once --config-dir CONFIG --node NODE-cg --cgroup ... --state-dir ..."
	echo "callgrind_annotate --inclusive=no|yes agent-MODE.callgrind"
	echo '```'
	echo
	echo "Raw data next to this file: \`agent-MODE-changes.txt\` (visible µs, install µs, rename → status µs,"
	echo "applies, file), \`agent-MODE-recompile.txt\` (µs, install µs), the agents' logs, callgrind files."
} >"$OUT/agent.md"
log "wrote $OUT/agent.md"
cat "$OUT/agent.md"
