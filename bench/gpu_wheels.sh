#!/usr/bin/env bash
# Wheels that bench/gpu_pipeline.py needs on the lent GPU machine, which has PyTorch (2.11, CUDA) but not
# diffusers, PyAV or pydantic and cannot download: fetched here into .whl/ (git-ignored), carried with the
# device tool's `carry: [".whl"]`. Versions are pyproject.toml's pins;
# the GPU machine runs Python 3.12. See bench/gpu-speed-notes.md for the command to run there.
set -euo pipefail
cd "$(dirname "$0")/.."
pin() { grep -oE "\"$1==[^\"]+\"" pyproject.toml | tr -d '"'; }
download() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$@"
}
download "$(pin diffusers)" "$(pin transformers)" "$(pin av)" "$(pin pydantic)" annotated-types typing-inspection
# pydantic pins the exact pydantic-core it was built against.
download "$(unzip -p .whl/pydantic-*.whl '*/METADATA' | grep -oE 'pydantic-core==[0-9.]+')"
du -sh .whl
