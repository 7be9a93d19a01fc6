#!/usr/bin/env bash
# Create (or reuse) a separate virtual environment with MONAI Label 0.8.5 and this package's
# dependencies, outside the checkout. MONAI Label replaces torch and numpy and pulls ~180
# packages, so it never goes into the main environment.
#
# Usage: scripts/monailabel_env.sh [VENV_DIR]
#   VENV_DIR defaults to ${MONAI_AG_CACHE:-$HOME/.cache/monai-ag}/venv-monailabel-0.8.5-<hash>,
#   where <hash> is taken from the pins below and setup.cfg's install_requires, so a change of either makes a new
#   environment. A complete environment (marker file written last) is reused as it is.
#   The last line printed on stdout is the environment's directory.
#
# monai_ag itself is not installed into the environment (it is shared by every checkout that
# has the same pins): run with PYTHONPATH=<checkout>, e.g.
#   VENV=$(scripts/monailabel_env.sh | tail -n 1)
#   PYTHONPATH=$PWD "$VENV/bin/python" -m pytest -q tests/monailabel
# or, for an environment of your own, add it: "$VENV/bin/python" -m pip install --no-deps -e .
set -euo pipefail
checkout="$(cd "$(dirname "$0")/.." && pwd)"

# The pins: the versions tested. MONAI Label imports torchvision, whose wheels need the torch
# build they were made for (torchvision 0.28/0.29 from PyPI do not load with a CPU-only torch
# 2.13.0+cpu: "operator torchvision::nms does not exist"), so torch is the PyPI build that goes
# with torchvision 0.29.1, as MONAI Label's own resolution picks it.
# pydicom<3: MONAI Label 0.8.5 asks for pydicom>=2.4.4 and pydicom-seg>=0.4.1, and pip picks pydicom 3,
# but pydicom-seg 0.4.1 imports pydicom._storage_sopclass_uids, gone in pydicom 3: the server dies at
# start-up ("monailabel start_server"; the task objects alone do not import it). Downgrading pydicom
# afterwards breaks dicomweb-client 0.61 (it needs pydicom 3), so the cap goes into the one resolution,
# where pip then picks the dicomweb-client and pynetdicom releases that work with pydicom 2 (seen:
# pydicom 2.4.5, dicomweb-client 0.60.1, pynetdicom 2.1.1; the server starts and serves /info/).
PINS="monailabel==0.8.5
monai==1.6.1
torch==2.14.1
torchvision==0.29.1
numpy==1.26.4
pydicom<3
pytest"

# the key: the pins and this package's install_requires (not the rest of setup.cfg)
requires="$(awk '/^install_requires *=/{on=1; next} on && /^[^ \t]/{on=0} on' "$checkout/setup.cfg")"
hash="$( { printf '%s\n' "$PINS"; printf '%s\n' "$requires"; } | sha256sum | cut -c1-12)"
venv="${1:-${MONAI_AG_CACHE:-$HOME/.cache/monai-ag}/venv-monailabel-0.8.5-$hash}"
marker="$venv/.monai-ag-complete"

mkdir -p "$(dirname "$venv")"
# one creator at a time (two CI jobs on one machine share the cache)
exec 9>"$venv.lock"
flock 9 2>/dev/null || true

if [[ -f "$marker" ]]; then
    echo "reusing $venv" >&2
    echo "$venv"
    exit 0
fi

echo "creating $venv (a few minutes, several GB)" >&2
rm -rf "$venv"
python3 -m venv "$venv"
pins_file="$venv/monai-ag-pins.txt"
printf '%s\n' "$PINS" > "$pins_file"
"$venv/bin/python" -m pip install -q --upgrade pip >&2
# this package's dependencies resolved together with MONAI Label's, then the package removed
# again (it is used from the checkout through PYTHONPATH)
"$venv/bin/python" -m pip install -q -r "$pins_file" "$checkout" >&2
"$venv/bin/python" -m pip uninstall -q -y monai-ag >&2
"$venv/bin/python" -c "import monailabel, monai, torch, numpy; print('monailabel', monailabel.__version__, 'monai', monai.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)" >&2
date -u +%FT%TZ > "$marker"
echo "$venv"
