# Shared by the end-to-end tests: assertions that name what they check, and a lab of this
# run's own that is torn down on every exit (failure and Ctrl-C included).
# shellcheck shell=bash
set -uo pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB="$E2E_ROOT/tools/lab/lab"
# The binaries under test: the ASan+UBSan build when BM_SAN=1 (the lab follows the same switch).
E2E_BIN=$E2E_ROOT/.output/bin
[ "${BM_SAN:-0}" = 1 ] && E2E_BIN=$E2E_ROOT/.output/san/bin
export BM_LAB_PREFIX=${BM_LAB_PREFIX:-bme$$}
E2E_FAILED=0
E2E_COUNT=0

ok() { E2E_COUNT=$((E2E_COUNT + 1)); echo "ok - $*"; }
not_ok() { E2E_COUNT=$((E2E_COUNT + 1)); E2E_FAILED=1; echo "not ok - $*"; }
check() { # description, command...
	local what=$1; shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
lab() { "$LAB" "$@"; }
# Run in the first pod of a Deployment.
in_pod() { local d=$1; shift; "$LAB" exec "deploy/$d" -- "$@"; }
# The sum of the named Tcp counters (InSegs, OutSegs, ActiveOpens, ...) of /proc/net/snmp text
# on stdin; read it in the namespace to count (`in_pod x cat /proc/net/snmp | tcp_snmp ...`).
tcp_snmp() {
	awk -v want="$*" '$1 == "Tcp:" { if (!n) { for (i = 2; i <= NF; i++) f[$i] = i; n = 1; next }
		k = split(want, w, " "); for (j = 1; j <= k; j++) s += $f[w[j]]; print s }'
}

E2E_TMP=$(mktemp -d /tmp/bme2e.XXXXXX)

e2e_cleanup() {
	local rc=$?
	BM_LAB_LOGS=$E2E_TMP/logs "$LAB" down >/dev/null 2>&1 || echo "warning: lab down failed for $BM_LAB_PREFIX"
	# An agent that crashed, leaked or hit undefined behaviour fails the test, even when the
	# pinned datapath kept the traffic flowing without it.
	if grep -l 'Sanitizer\|runtime error:' "$E2E_TMP"/logs/*.log 2>/dev/null; then
		echo "not ok - sanitizer report in the logs above:"
		grep -h -A12 'Sanitizer\|runtime error:' "$E2E_TMP"/logs/*.log | head -60
		rc=1
	fi
	[ -n "${E2E_KEEP_LOGS:-}" ] && cp -r "$E2E_TMP/logs" "$E2E_KEEP_LOGS" 2>/dev/null
	rm -rf "$E2E_TMP"
	exit $rc
}

e2e_start() { # manifests...
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
	if ! "$LAB" up --nodes 2 "$@"; then
		echo "not ok - lab up"
		exit 1
	fi
}

e2e_finish() {
	echo "# $E2E_COUNT checks, $([ $E2E_FAILED = 0 ] && echo all passed || echo FAILURES)"
	exit $E2E_FAILED
}

# Services' cluster IPs, from the lab (columns: name ns ip4 ip6).
svc_ip() { "$LAB" services | awk -v n="$1" -v f="${2:-4}" '$1 == n { print (f == 6 ? $4 : $3); exit }'; }
