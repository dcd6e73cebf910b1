#!/usr/bin/env bash
# Runs every test layer against the built tree and prints one summary; exit non-zero on any
# failure. Layers: unit, bpf (both also under ASan+UBSan), echo, l7, lab, e2e, bench (smoke), fuzz.
# Usage: tests/run.sh [layer ...]   (default: all)
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/.output
LOGDIR=${BM_TEST_LOGS:-$OUT/test-logs}
mkdir -p "$LOGDIR"
layers=("$@")
[ ${#layers[@]} -gt 0 ] || layers=(unit bpf echo l7 lab e2e bench fuzz)

declare -a results=()
failed=0

run() { # name, command...
	local name=$1; shift
	local log="$LOGDIR/${name//\//_}.log" start=$SECONDS rc
	printf '%-34s ' "$name"
	"$@" >"$log" 2>&1
	rc=$?
	local took=$((SECONDS - start))
	if [ $rc -eq 0 ] || [ $rc -eq 77 ]; then
		if [ $rc -eq 77 ] || grep -q '^SKIP' "$log"; then
			printf 'SKIP (%ss): %s\n' "$took" "$(grep -m1 '^SKIP' "$log" || echo 'exit 77')"
			results+=("SKIP $name")
		else
			printf 'PASS (%ss)\n' "$took"
			results+=("PASS $name")
		fi
	else
		printf 'FAIL (%ss, rc %s) log: %s\n' "$took" "$rc" "$log"
		tail -n 25 "$log" | sed 's/^/    | /'
		results+=("FAIL $name")
		failed=1
	fi
}

for layer in "${layers[@]}"; do
	case $layer in
	unit)
		for t in "$OUT"/tests/unit/test_* "$OUT"/san/tests/unit/test_*; do
			[ -x "$t" ] && run "unit/${t#$OUT/}" "$t"
		done ;;
	bpf)
		for t in "$OUT"/tests/bpf/test_* "$OUT"/san/tests/bpf/test_*; do
			[ -x "$t" ] && run "bpf/${t#$OUT/}" timeout 600 "$t"
		done ;;
	echo)
		[ -x tests/echo/run.sh ] && run echo/bm-echo timeout 300 tests/echo/run.sh "$OUT/bin/bm-echo"
		[ -x tests/echo/run.sh ] && run echo/bm-echo-san timeout 300 tests/echo/run.sh "$OUT/san/bin/bm-echo" ;;
	l7)
		# The HTTP/1.1 engine alone, behind its test harness, with real clients and servers.
		[ -x tests/l7/run.sh ] && run l7/engine timeout 600 tests/l7/run.sh
		[ -x tests/l7/run.sh ] && run l7/engine-san env BM_SAN=1 timeout 900 tests/l7/run.sh
		# HTTP/2: the front (HTTP/2 clients into the engine) and the back (the engine's
		# requests to HTTP/2 endpoints), behind the same harness.
		for t in h2_front h2_back; do
			[ -x tests/l7/$t.sh ] || continue
			run l7/$t timeout 600 tests/l7/$t.sh
			run l7/$t-san env BM_SAN=1 timeout 900 tests/l7/$t.sh
		done ;;
	lab)
		[ -x tests/lab/run.sh ] && run lab/lab env BM_LAB_AGENT=1 timeout 600 tests/lab/run.sh ;;
	e2e)
		# Each end-to-end test twice: the agent as shipped, and built with ASan+UBSan.
		for t in tests/e2e/test_*.sh; do
			[ -x "$t" ] || continue
			run "e2e/$(basename "$t" .sh)" timeout 900 "$t"
			run "e2e/$(basename "$t" .sh)-san" env BM_SAN=1 timeout 900 "$t"
		done ;;
	bench)
		# The benchmark's smoke run: every scenario must carry traffic (no figures judged).
		[ -x tests/bench/run.sh ] && run bench/smoke timeout 1300 tests/bench/run.sh ;;
	fuzz)
		for f in "$OUT"/fuzz/fuzz_*; do
			[ -x "$f" ] || continue
			name=$(basename "$f")
			corpus=tests/fuzz/corpus/${name#fuzz_}
			work=$(mktemp -d)
			[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/
			run "fuzz/$name" timeout 300 "$f" -max_total_time="${BM_FUZZ_SECONDS:-30}" \
				-rss_limit_mb=2048 -timeout=10 -artifact_prefix="$LOGDIR/$name-" "$work"
			rm -rf "$work"
		done ;;
	*) echo "unknown layer $layer" >&2; exit 2 ;;
	esac
done

echo
pass=$(printf '%s\n' "${results[@]}" | grep -c '^PASS')
skip=$(printf '%s\n' "${results[@]}" | grep -c '^SKIP')
fail=$(printf '%s\n' "${results[@]}" | grep -c '^FAIL')
echo "tests: $pass passed, $skip skipped, $fail failed (logs in $LOGDIR)"
exit $failed
