# shellcheck shell=bash
# Shared by the shell test scripts (tests/echo, tests/l7): TAP-like result lines and the
# processes a script started. The caller defines PASS=0, FAIL=0 and declare -A LIVE=() (the
# PIDs it started and has not reaped yet) before sourcing this.

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
