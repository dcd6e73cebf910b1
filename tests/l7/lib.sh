# shellcheck shell=bash
# Shared by the engine's test scripts (tests/l7/*.sh): the build to test (OUTDIR, PROXY: the
# harness, ECHO: bm-echo), the counters and cleanup traps, the harness and bm-echo started in
# the script's namespace, their stats and their clean exit. Sourced with NS set; sources
# tests/lib/tap.sh.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ "${BM_SAN:-0}" = 1 ]; then
	OUTDIR=$ROOT/.output/san
else
	OUTDIR=$ROOT/.output
fi
PROXY=${BM_H1PROXY:-$OUTDIR/tests/tools/h1proxy}
ECHO=${BM_ECHO:-$OUTDIR/bin/bm-echo}
WORK=
PASS=0
FAIL=0
declare -A LIVE=()	# PIDs this script started and has not reaped yet
. "$ROOT/tests/lib/tap.sh"

PAT=ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_

# A plain command prefix (not a function): started with &, $! is then the process itself
# (env and ip netns exec both exec), so signals and reaping reach it, not a subshell.
SAN_ENV=(env ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)

code() { # curl args...: the status code
	cli curl -sS -o /dev/null -w '%{http_code}' "$@"
}

pattern_bytes() { # N: the first N bytes of bm-echo's /size/N body
	awk -v n="$1" -v p="$PAT" 'BEGIN { s = p; while (length(s) < n) s = s s; printf "%s", substr(s, 1, n) }'
}

json() { # FILE FILTER
	jq -r "$2" "$1" 2>/dev/null || echo '!invalid'
}

wait_port() { # PORT PID: until something listens on PORT in the namespace
	local i

	for ((i = 0; i < 200; i++)); do
		ip netns exec "$NS" ss -Htln "sport = :$1" 2>/dev/null | grep -q . && return 0
		alive "$2" || return 1
		sleep 0.05
	done
	return 1
}

wait_log() { # FILE PATTERN: until FILE has a line matching PATTERN (5 s at most)
	local i

	for ((i = 0; i < 100; i++)); do
		grep -q "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# start_echo NAME PORT [ARGS...]: bm-echo as pod NAME; its access log is $WORK/NAME.out
start_echo() {
	local name=$1 port=$2 i pid

	shift 2
	"${SAN_ENV[@]}" ip netns exec "$NS" "$ECHO" --pod "$name" --namespace ns --node node \
		--ready-file "$WORK/$name.ready" --tcp "$port" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	pid=$!
	LIVE[$pid]=1
	for ((i = 0; i < 200; i++)); do
		[ -e "$WORK/$name.ready" ] && return 0
		alive "$pid" || return 1
		sleep 0.05
	done
	return 1
}

# px_start NAME ADDR PORT ARGS...: the harness on ADDR:PORT; sets PX_PID and PX_NAME.
# Stats go to $WORK/NAME.stats (SIGUSR1 or exit), stderr to $WORK/NAME.err.
px_start() {
	local name=$1 addr=$2 port=$3

	shift 3
	"${SAN_ENV[@]}" ip netns exec "$NS" "$PROXY" --listen "$addr:$port" --stats "$WORK/$name.stats" \
		"$@" >"$WORK/$name.log" 2>"$WORK/$name.err" &
	PX_PID=$!
	PX_NAME=$name
	LIVE[$PX_PID]=1
	wait_port "$port" "$PX_PID"
}

stat_of() { # NAME COUNTER: from the last stats dump
	awk -v k="$2" '$1 == k { print $2 }' "$WORK/$1.stats" 2>/dev/null
}

dump_stats() { # PID NAME
	local i

	rm -f "$WORK/$2.stats"
	kill -USR1 "$1"
	for ((i = 0; i < 100; i++)); do
		[ -s "$WORK/$2.stats" ] && return 0
		sleep 0.02
	done
}

no_san_report() { # NAME: its stderr holds no sanitizer report
	if grep -qE 'Sanitizer|runtime error|ERROR:' "$WORK/$1.err"; then
		fail "$1: no sanitizer report (leaks, UB, memory errors)"
		sed 's/^/#   /' "$WORK/$1.err" | head -40
	else
		pass "$1: no sanitizer report (leaks, UB, memory errors)"
	fi
}

# stop_proxy PID NAME: SIGTERM; it must exit 0 with no sanitizer report.
stop_proxy() {
	local rc

	kill -TERM "$1"
	reap "$1" 20
	rc=$?
	expect_eq "$rc" 0 "$2: exits 0 on SIGTERM"
	no_san_report "$2"
}

hwm_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

trap netns_cleanup EXIT
trap 'echo "interrupted"; exit 130' INT TERM HUP
