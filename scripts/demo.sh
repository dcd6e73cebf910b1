#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run the demo (a two-node lab
# with the seed's backend v1/v2 and a client, the 90/10 canary as a TCP route). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
make -j"$(nproc)" all
exec tools/demo.sh "$@"
