#!/usr/bin/env bash
# The benchmark's smoke test: bench/run.sh --smoke (about a second per measurement) must carry
# traffic in every scenario, so the benchmark never rots. A scenario this build of the agent
# does not support yet is reported as SKIP with the agent's reason; any other failure fails.
# Results: .output/bench-smoke/ (replaced on each run).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD

if [[ $(id -u) -ne 0 ]]; then
	echo "SKIP: the bench needs root (network namespaces, cgroups, BPF)"
	exit 0
fi
[[ -x $ROOT/.output/bin/bpfmesh-agent ]] || { echo "not ok - bpfmesh-agent is not built (run make)"; exit 1; }

RESULTS=$ROOT/.output/bench-smoke
rm -rf "$RESULTS"
# A full bench running at the same time holds the lock: wait for it rather than fail.
RESULTS=$RESULTS LOCK_WAIT=${LOCK_WAIT:-900} timeout -k 10 1200 "$ROOT/bench/run.sh" --smoke "$@"
rc=$?
echo
if [[ ! -f $RESULTS/status.txt ]]; then
	echo "not ok - bench/run.sh --smoke exited with $rc and wrote no status (see above)"
	exit 1
fi
while read -r name status reason; do
	case $status in
	ok) echo "ok - $name carried traffic in every measurement" ;;
	unsupported) echo "# $name: unsupported by this build: $reason" ;;
	*) echo "not ok - $name: $reason" ;;
	esac
done <"$RESULTS/status.txt"
if [[ $rc -ne 0 ]]; then
	echo "not ok - bench/run.sh --smoke exited with $rc (results: $RESULTS)"
	exit 1
fi
unsup=$(awk '$2 == "unsupported" { printf "%s%s", sep, $1; sep = ", " }' "$RESULTS/status.txt")
if [[ -n $unsup ]]; then
	echo "SKIP: not run, unsupported by this agent: $unsup (the other scenarios carried traffic)"
fi
exit 0
