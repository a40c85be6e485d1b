#!/usr/bin/env bash
# Create (or reuse) a virtual environment and install the project into it.
#
#   bash setup.sh            # .venv with the dev extras (tests, minigrid yardstick, plots)
#   EXTRAS=dev,ray bash setup.sh
#
# PyTorch: a torch that the calling python already has is kept (the venv then sees the
# system site-packages, so a GPU user's CUDA build stays). Otherwise a machine with an
# NVIDIA GPU gets the default torch wheel and a machine without one gets the CPU build
# (TORCH_SPEC, default torch==2.13.0; TORCH_PIP_ARGS adds pip options, e.g. an index URL).
set -euo pipefail
cd "$(dirname "$0")"
python_bin=${PYTHON:-python3}
venv_dir=${VENV:-.venv}
extras=${EXTRAS:-dev}

if [ ! -x "$venv_dir/bin/python" ]; then
    if "$python_bin" -c "import torch" 2>/dev/null; then
        echo "setup: using the torch already installed for $python_bin"
        "$python_bin" -m venv --system-site-packages "$venv_dir"
    else
        "$python_bin" -m venv "$venv_dir"
    fi
fi
pip=("$venv_dir/bin/python" -m pip)

if ! "$venv_dir/bin/python" -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        echo "setup: NVIDIA GPU found, installing the default (CUDA) torch build"
        "${pip[@]}" install ${TORCH_PIP_ARGS:-} torch
    else
        echo "setup: no GPU found, installing the CPU torch build (${TORCH_SPEC:-torch==2.13.0})"
        "${pip[@]}" install ${TORCH_PIP_ARGS:-} "${TORCH_SPEC:-torch==2.13.0}"
    fi
fi
"${pip[@]}" install --quiet -e ".[$extras]"
echo "setup: done ($("$venv_dir/bin/python" -c 'import torch; print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")'))"
