#!/usr/bin/env bash
# Idempotent set-up: system libraries open3d needs (when root), .venv, Python requirements.
# Re-running it is cheap: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SYSTEM_LIBS="libusb-1.0-0 libgomp1 libvulkan1 mesa-vulkan-drivers"

missing_libs() {
  local missing=""
  for pkg in $SYSTEM_LIBS; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
  done
  echo "$missing"
}

if command -v dpkg-query >/dev/null 2>&1; then
  missing=$(missing_libs)
  if [ -n "$missing" ]; then
    if [ "$(id -u)" = "0" ]; then
      echo "[setup] installing system libraries:$missing"
      export DEBIAN_FRONTEND=noninteractive
      apt-get install -y -q $missing >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q $missing >/dev/null; }
    else
      echo "[setup] open3d needs these system libraries, which are missing:$missing"
      echo "[setup] ask an administrator to run: sudo apt-get install -y$missing"
      echo "[setup] (or use a conda environment that provides them); continuing without them."
    fi
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  $PYTHON -m venv .venv
fi

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing requirements.txt into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.txt 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import torch, torchvision, numpy, scipy, open3d, trimesh, mcubes, captum, yaml, tqdm, matplotlib, h5py, point_cloud_utils"
  echo "$want" > "$stamp"
fi
# the project itself, editable: `modules` imports from anywhere (benchmarks, tests) with no sys.path edits
here=$PWD
if [ "$(cd / && "$here/.venv/bin/python" -c 'import modules, os; print(os.path.dirname(os.path.dirname(modules.__file__)))' 2>/dev/null)" != "$here" ]; then
  echo "[setup] pip install -e . (the project, editable)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
fi
echo "[setup] ready: $(.venv/bin/python -c 'import torch; print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")')"
