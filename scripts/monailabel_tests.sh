#!/usr/bin/env bash
# Run tests/monailabel (MONAI Label 0.8.5 itself, headless, CPU) in MONAI Label's own environment,
# created or reused by scripts/monailabel_env.sh. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(bash scripts/monailabel_env.sh | tail -n 1)"
# monai_ag from this checkout; MONAI Label starts "torchrun" from PATH for multi-GPU training
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest -q -rs tests/monailabel "$@"
