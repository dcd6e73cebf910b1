#!/usr/bin/env bash
# The demo: a two-node lab, the seed's backend v1/v2 and a client, the seed's DestinationRule
# and its 90/10 canary, first as a TCP route (the kernel splits connections), then as the seed's
# http rules (the agent splits requests, x-env: canary goes to v2). Sends traffic, prints the
# splits the client saw and what the kernel holds, then tears everything down (also on failure
# or Ctrl-C).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LAB=$ROOT/tools/lab/lab
BIN=$ROOT/.output/bin
EX=$ROOT/examples
export BM_LAB_PREFIX=${BM_LAB_PREFIX:-demo$$}
N=${DEMO_CONNECTIONS:-1000}

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() { "$LAB" down >/dev/null 2>&1 || true; rm -rf "$TMP"; }
TMP=$(mktemp -d /tmp/bmdemo.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM

bold "The seed's manifests as written: what bpfmesh honours today (bpfmesh-agent --check)"
for f in "$EX"/seed/0*.yaml; do
	rm -f "$TMP"/*.yaml
	cp "$EX/demo/backend.yaml" "$f" "$TMP/"
	echo "-- $(basename "$f")"
	"$BIN/bpfmesh-agent" --check "$TMP" | grep -v 'ignored: the mesh reads Pod\|has no spec.clusterIP' | sed 's|'"$TMP"'/||g' || true
done

bold "A two-node lab: backend v1 (2 pods), v2 (1 pod), a client; seed DestinationRule + canary as a TCP route"
"$LAB" up --nodes 2 "$EX/demo/backend.yaml" "$EX/demo/client.yaml" \
	"$EX/seed/03-destinationrule.yaml" "$EX/demo/canary-tcp.yaml"
"$LAB" pods
"$LAB" services

bold "$N new connections from the client pod to http://backend/ (curl, Connection: close)"
urls=()
for ((i = 0; i < N; i++)); do urls+=(http://backend/); done
"$LAB" exec deploy/client -- curl -s -m 120 -H 'Connection: close' -w '\n' "${urls[@]}" >"$TMP/answers"
v1=$(grep -c '"version":"v1"' "$TMP/answers" || true)
v2=$(grep -c '"version":"v2"' "$TMP/answers" || true)
printf 'v1: %4d (%s%%)   v2: %4d (%s%%)   routed by the canary 90/10\n' \
	"$v1" "$(awk -v a="$v1" -v n="$N" 'BEGIN { printf "%.1f", 100 * a / n }')" \
	"$v2" "$(awk -v a="$v2" -v n="$N" 'BEGIN { printf "%.1f", 100 * a / n }')"
echo "answering pods:"
grep -o '"pod":"[^"]*"' "$TMP/answers" | sort | uniq -c | sed 's/"pod"://; s/"//g'

node=$("$LAB" pods | awk '$1 ~ /^client-/ { print $3 }')
bold "What the kernel holds for the Service on $node (bpfmeshctl bpf services)"
"$BIN/bpfmeshctl" --node "$node" --state-dir "/run/bpfmesh-lab/$BM_LAB_PREFIX/agents/$node" \
	bpf services | awk -v RS= '/backend.default.svc.cluster.local:80\/TCP/'
echo
"$BIN/bpfmeshctl" --node "$node" bpf stats | grep -v ' 0$' || true

bold "The seed's canary as http rules (examples/demo/canary-http.yaml): routed per request by the agent"
"$LAB" delete "$EX/demo/canary-tcp.yaml" >/dev/null
"$LAB" apply "$EX/demo/canary-http.yaml"
split() { # label curl-args...: the versions that answered
	local label=$1
	shift
	"$LAB" exec deploy/client -- curl -s -m 120 -w '\n' "$@" >"$TMP/answers"
	printf '%-52s' "$label"
	grep -o '"pod":"backend-v[0-9]*' "$TMP/answers" | sed 's/.*backend-//' | sort | uniq -c |
		awk '{ printf "%s: %4d   ", $2, $1 } END { print "" }'
}
urls=()
for ((i = 0; i < N; i++)); do urls+=(http://backend/api/v2/items); done
split "$N requests to /api/v2 on ONE connection:" "${urls[@]}"
urls=()
for ((i = 0; i < 100; i++)); do urls+=(http://backend/); done
split "100 requests with x-env: canary:" -H 'x-env: canary' "${urls[@]}"
split "100 requests to /:" "${urls[@]}"
echo
"$BIN/bpfmeshctl" --node "$node" --state-dir "/run/bpfmesh-lab/$BM_LAB_PREFIX/agents/$node" \
	bpf services | awk -v RS= '/backend.default.svc.cluster.local:80\/TCP/'
"$BIN/bpfmeshctl" --node "$node" bpf stats | grep 'l7_' || true

bold "Tearing the lab down"
