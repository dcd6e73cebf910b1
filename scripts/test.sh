#!/usr/bin/env bash
# The README's second command: install what is missing, build everything (normal, ASan+UBSan,
# fuzzers) and run every test layer. Needs root. Exit status is the suite's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
jobs=$(nproc)
make -j"$jobs" all tests
make -j"$jobs" SAN=1 all tests
make -j"$jobs" fuzz
exec tests/run.sh "$@"
