#!/usr/bin/env bash
# The README's first command: installs the system packages the build needs (see
# system-deps.sh), then runs the demo district. Extra arguments go to `serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh
exec cargo run --release -- serve --demo "$@"
