#!/usr/bin/env bash
# Installs the mmevit stack into .venv, idempotently:
# torch (only if missing), mmcv 2.1.0 with compiled ops (built once, cached),
# mmengine, mmdet, mmsegmentation, test tools, then mmevit itself (editable).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON_BIN="${PYTHON_BIN:-python3.11}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
MMCV_VERSION="2.1.0"
WHEEL_CACHE="${MMEVIT_WHEEL_CACHE:-$HOME/.cache/mmevit/wheels}"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nmake install FAILED at step: %s\n' "$*" >&2; exit 1; }

step "virtual environment $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON_BIN" -m venv "$VENV" || fail "create venv with $PYTHON_BIN"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --quiet)

step "torch"
if "$PY" -c "import torch" 2>/dev/null; then
    echo "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed; keeping it"
else
    echo "installing torch==$TORCH_VERSION"
    "${PIP[@]}" "torch==$TORCH_VERSION" || fail "pip install torch==$TORCH_VERSION"
fi
TORCH_INSTALLED="$("$PY" -c 'import torch; print(torch.__version__)')"
PY_TAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
# Every later install is pinned to the installed torch so nothing replaces it.
CONSTRAINTS="$VENV/mmevit-constraints.txt"
echo "torch==$TORCH_INSTALLED" > "$CONSTRAINTS"

step "build tools (setuptools<81 keeps pkg_resources for mmcv's setup.py)"
"${PIP[@]}" -c "$CONSTRAINTS" "setuptools<81" wheel ninja numpy || fail "install build tools"

step "mmcv $MMCV_VERSION with compiled ops"
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
    echo "mmcv $MMCV_VERSION with ops already installed"
else
    CACHE_DIR="$WHEEL_CACHE/mmcv-$MMCV_VERSION-torch-$TORCH_INSTALLED-$PY_TAG"
    mkdir -p "$CACHE_DIR"
    if ! ls "$CACHE_DIR"/mmcv-*.whl >/dev/null 2>&1; then
        LOG="$CACHE_DIR/build.log"
        echo "no cached wheel in $CACHE_DIR"
        echo "building mmcv $MMCV_VERSION from source against torch $TORCH_INSTALLED:"
        echo "this takes about 11 minutes on 2 cores (log: $LOG)"
        BUILD_DIR="$(mktemp -d)"
        if ! MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" "$PY" -m pip wheel --no-build-isolation \
                --no-deps "mmcv==$MMCV_VERSION" -w "$BUILD_DIR" >"$LOG" 2>&1; then
            tail -n 20 "$LOG" >&2
            fail "build mmcv $MMCV_VERSION wheel (full log: $LOG)"
        fi
        mv "$BUILD_DIR"/mmcv-*.whl "$CACHE_DIR"/
        rm -rf "$BUILD_DIR"
    fi
    "${PIP[@]}" -c "$CONSTRAINTS" "$CACHE_DIR"/mmcv-*.whl || fail "install cached mmcv wheel from $CACHE_DIR"
fi

step "mmengine, mmdet, mmsegmentation, pycocotools, test and deploy tools"
"${PIP[@]}" -c "$CONSTRAINTS" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
    -r "$ROOT/requirements/deploy.txt" -r "$ROOT/requirements/analysis.txt" \
    || fail "install requirements/{runtime,tests,deploy,analysis}.txt"

step "mmevit (editable)"
"${PIP[@]}" -c "$CONSTRAINTS" --no-build-isolation --no-deps -e "$ROOT" || fail "pip install -e $ROOT"

step "proving the stack: mmcv.ops nms, RoIAlign, sigmoid_focal_loss"
"$PY" "$ROOT/scripts/check_stack.py" || fail "check compiled mmcv ops (scripts/check_stack.py)"
echo
echo "mmevit stack ready in $VENV"
