#!/usr/bin/env bash
# The device script on a GPU machine that has JAX with CUDA, Equinox, optax, chex,
# jaxtyping, flax, matplotlib, scipy and six, but no network and not the rest of what
# eqxppo needs (gymnax, gymnasium, ConfigSpace, beartype; brax and MuJoCo for the
# halfcheetah row).
#
#   bash benchmarks/gpu.sh fetch              # here, with PyPI: Python 3.12 wheels into .whl/
#   bash benchmarks/gpu.sh run [gpu.py flags]  # there: install .whl/ into /tmp/site, run
#
# `.whl/` is ignored by git; a device call carries it. The versions are those
# `eqxppo[envs]` installed for the development environment (2026-12-04).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(
  gymnax==1.0.1 gymnasium==1.3.0 farama-notifications==0.0.6
  configspace==1.2.2 more-itertools==11.2.1 beartype==0.23.1
  brax==0.14.2 mujoco==4.0.1 mujoco-mjx==3.17.0 jaxopt==0.8.5 ml-collections==1.1.0
  trimesh==5.2.0 tensorboardx==2.6.5 flask==3.1.3 flask-cors==6.0.2 itsdangerous==2.2.0
  blinker==1.9.0
)

case "${1:-}" in
  fetch)
    mkdir -p .whl
    uv run --no-project --with pip python -m pip download --no-deps --only-binary=:all: \
      --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
    # configspace and eqxppo itself come as source here: build their wheels.
    uv build --wheel --out-dir .whl .
    ;;
  run)
    shift
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
    PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py "$@"
    ;;
  *)
    sed -n '2,11p' "$0"
    exit 2
    ;;
esac
