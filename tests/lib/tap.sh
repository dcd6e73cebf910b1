# shellcheck shell=bash
# Shared by the shell test scripts (tests/echo, tests/l7): TAP-like result lines and checks,
# the processes a script started, clients in its namespace, and the cleanup. The caller
# defines PASS=0, FAIL=0 and declare -A LIVE=() (the PIDs it started and has not reaped yet),
# and NS and WORK (its namespace and work directory) before sourcing this.

skip() {
	echo "SKIP - $*"
	exit 77
}

pass() {
	PASS=$((PASS + 1))
	echo "ok - $*"
}

fail() {
	FAIL=$((FAIL + 1))
	echo "not ok - $*"
}

alive() {
	local stat

	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# reap PID SECONDS: waits for PID (KILL after SECONDS); returns its exit status.
reap() {
	local pid=$1 i rc

	for ((i = 0; i < $2 * 20; i++)); do
		alive "$pid" || break
		sleep 0.05
	done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null
	wait "$pid"
	rc=$?
	unset "LIVE[$pid]"
	return $rc
}

# expect_eq GOT WANT NAME: passes when GOT is WANT
expect_eq() {
	if [ "$1" == "$2" ]; then
		pass "$3"
	else
		fail "$3 (got '${1:0:300}', want '${2:0:300}')"
	fi
}

# expect NAME COMMAND...: passes when the command succeeds
expect() {
	local name=$1

	shift
	if "$@"; then
		pass "$name"
	else
		fail "$name"
	fi
}

# Every client runs in the test namespace, bounded in time (CLI_TIMEOUT seconds, 120).
cli() {
	timeout "${CLI_TIMEOUT:-120}" ip netns exec "$NS" "$@"
}

fge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }
fle() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
sha() { sha256sum | cut -d' ' -f1; }

# On any exit: every PID started here (TERM, then KILL after 5 s), the namespace, the work dir.
netns_cleanup() {
	local pid

	# TERM first: a sanitized server killed during its exit-time leak scan would orphan
	# LeakSanitizer's tracer task. reap() KILLs whatever is still there after 5 s.
	for pid in "${!LIVE[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${!LIVE[@]}"; do
		reap "$pid" 5 2>/dev/null
	done
	LIVE=()
	ip netns del "$NS" 2>/dev/null
	[ -n "$WORK" ] && rm -rf "$WORK"
}
