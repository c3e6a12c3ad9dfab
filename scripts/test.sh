#!/usr/bin/env bash
# Set up (idempotent), then run the default test suite (tests marked slow are excluded;
# run them with: bash scripts/test.sh -m slow). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
if [ "$#" -eq 0 ]; then
  set -- -m "not slow"
fi
exec .venv/bin/python -m pytest -q --durations=15 "$@"
