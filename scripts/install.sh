#!/usr/bin/env bash
# Installs one mmevit stack into a virtual environment, idempotently:
# torch (only if missing), mmcv 2.1.0 with compiled ops (built once per torch,
# cached), mmengine, mmdet, mmsegmentation, test tools, then mmevit itself
# (editable). The stack file pins the versions; an installed torch is kept.
#   VENV        the environment (default .venv)
#   STACK_FILE  the pins (default requirements/stacks/newest.txt)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
STACK_FILE="${STACK_FILE:-$ROOT/requirements/stacks/newest.txt}"
PYTHON_BIN="${PYTHON_BIN:-python3.11}"
MMCV_VERSION="2.1.0"
WHEEL_CACHE="${MMEVIT_WHEEL_CACHE:-$HOME/.cache/mmevit/wheels}"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nmake install FAILED at step: %s\n' "$*" >&2; exit 1; }

[ -f "$STACK_FILE" ] || fail "read the stack file $STACK_FILE (not found)"
TORCH_PIN="$(grep -E '^torch==' "$STACK_FILE" | cut -d= -f3)"
[ -n "$TORCH_PIN" ] || fail "find a torch==VERSION line in $STACK_FILE"

step "virtual environment $VENV (stack $STACK_FILE)"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON_BIN" -m venv "$VENV" || fail "create venv with $PYTHON_BIN"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --quiet)

step "torch"
if "$PY" -c "import torch" 2>/dev/null; then
    echo "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed; keeping it"
else
    echo "installing torch==$TORCH_PIN"
    "${PIP[@]}" -c "$STACK_FILE" "torch==$TORCH_PIN" || fail "pip install torch==$TORCH_PIN"
fi
TORCH_INSTALLED="$("$PY" -c 'import torch; print(torch.__version__)')"
PY_TAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
# Every later install is pinned to the stack and to the installed torch, so
# nothing replaces torch (or the stack's numpy).
CONSTRAINTS="$VENV/mmevit-constraints.txt"
{ grep -vE '^(torch==|#|$)' "$STACK_FILE" || true; echo "torch==$TORCH_INSTALLED"; } > "$CONSTRAINTS"

step "build tools (setuptools<81 keeps pkg_resources for mmcv's setup.py)"
"${PIP[@]}" -c "$CONSTRAINTS" "setuptools<81" wheel ninja numpy || fail "install build tools"

step "mmcv $MMCV_VERSION with compiled ops"
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
    echo "mmcv $MMCV_VERSION with ops already installed"
else
    # CPU ops, or CUDA ops where a GPU is usable and nvcc is found; a GPU
    # without nvcc stops here with one line saying what to install
    PLAN="$("$PY" "$ROOT/scripts/mmcv_build.py")" || exit 1
    MMCV_OPS="$(sed -n 's/^MMCV_OPS=//p' <<<"$PLAN")"
    BUILD_FORCE_CUDA="$(sed -n 's/^FORCE_CUDA=//p' <<<"$PLAN")"
    BUILD_CUDA_HOME="$(sed -n 's/^CUDA_HOME=//p' <<<"$PLAN")"
    CACHE_SUFFIX="$(sed -n 's/^CACHE_SUFFIX=//p' <<<"$PLAN")"
    CACHE_DIR="$WHEEL_CACHE/mmcv-$MMCV_VERSION-torch-$TORCH_INSTALLED-$PY_TAG$CACHE_SUFFIX"
    mkdir -p "$CACHE_DIR"
    if ! ls "$CACHE_DIR"/mmcv-*.whl >/dev/null 2>&1; then
        LOG="$CACHE_DIR/build.log"
        echo "no cached wheel in $CACHE_DIR"
        echo "building mmcv $MMCV_VERSION from source against torch $TORCH_INSTALLED ($MMCV_OPS ops):"
        echo "this takes 11-14 minutes on 2 cores for CPU ops, longer with CUDA ops (log: $LOG)"
        BUILD_DIR="$(mktemp -d)"
        # --no-cache-dir: pip's own wheel cache keys a built sdist by the
        # sdist alone, and would hand back a wheel built for another torch
        if ! env MMCV_WITH_OPS=1 FORCE_CUDA="$BUILD_FORCE_CUDA" ${BUILD_CUDA_HOME:+"CUDA_HOME=$BUILD_CUDA_HOME"} \
                MAX_JOBS="${MAX_JOBS:-2}" "$PY" -m pip wheel --no-cache-dir \
                --no-build-isolation --no-deps "mmcv==$MMCV_VERSION" -w "$BUILD_DIR" >"$LOG" 2>&1; then
            tail -n 20 "$LOG" >&2
            fail "build mmcv $MMCV_VERSION wheel (full log: $LOG)"
        fi
        mv "$BUILD_DIR"/mmcv-*.whl "$CACHE_DIR"/
        rm -rf "$BUILD_DIR"
    fi
    # an mmcv that failed the check above (e.g. built for another torch)
    # would make pip skip the wheel of the same version
    "$PY" -m pip uninstall --quiet --yes mmcv 2>/dev/null || true
    "${PIP[@]}" -c "$CONSTRAINTS" "$CACHE_DIR"/mmcv-*.whl || fail "install cached mmcv wheel from $CACHE_DIR"
fi

step "mmengine, mmdet, mmsegmentation, pycocotools, test and deploy tools"
"${PIP[@]}" -c "$CONSTRAINTS" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
    -r "$ROOT/requirements/deploy.txt" -r "$ROOT/requirements/analysis.txt" \
    || fail "install requirements/{runtime,tests,deploy,analysis}.txt"

step "openmim (without opendatalab, which only downloads data sets and pins setuptools 60)"
"${PIP[@]}" -c "$CONSTRAINTS" --no-deps "openmim==0.3.9" || fail "pip install openmim"

step "mmevit (editable)"
"${PIP[@]}" -c "$CONSTRAINTS" --no-build-isolation --no-deps -e "$ROOT" || fail "pip install -e $ROOT"
# pip's editable install keeps the metadata in site-packages, where mim looks
# for the model index and tools; with the metadata in the repository as well,
# `PYTHONPATH=$PWD mim ...` finds them there (docs/get_started.md).
(cd "$ROOT" && "$PY" setup.py --quiet egg_info) || fail "python setup.py egg_info (mim's metadata)"

step "proving the stack: mmcv.ops nms, RoIAlign, sigmoid_focal_loss"
"$PY" "$ROOT/scripts/check_stack.py" || fail "check compiled mmcv ops (scripts/check_stack.py)"
echo
echo "mmevit stack ready in $VENV"
