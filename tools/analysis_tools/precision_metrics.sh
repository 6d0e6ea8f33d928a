#!/usr/bin/env bash
# The test metrics of one trained checkpoint in each precision, through the
# user's tools: tools/test.py (eager fp32, eager --bf16), tools/deploy.py
# (fp32 export, then --quantize int8 calibrated on a folder of training
# images) and tools/test.py on both .onnx files.
#
#   bash tools/analysis_tools/precision_metrics.sh CONFIG CKPT WORK_DIR \
#       CALIB_DIR [SHAPE]
#
# CALIB_DIR: images the int8 file is calibrated on (16 of them; use training
# images, not the evaluated ones). SHAPE: the export's trace size (default
# 320x320; the files keep dynamic sizes). Prints one line per precision with
# its main metrics; every run's log stays in WORK_DIR.
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,13p' "$0" | cut -c3-
    exit 2
fi
CONFIG=$1 CKPT=$2 WORK=$3 CALIB=$4 SHAPE=${5:-320x320}
PY=${PYTHON:-python}
mkdir -p "$WORK"
ONNX=$WORK/fp32.onnx INT8=$WORK/int8.onnx

evaluate() {  # NAME CHECKPOINT [test.py options]
    local name=$1 checkpoint=$2
    shift 2
    "$PY" tools/test.py "$CONFIG" "$checkpoint" --work-dir "$WORK/$name" "$@" \
        > "$WORK/$name.log" 2>&1 || { tail -20 "$WORK/$name.log"; exit 1; }
}

evaluate eager_fp32 "$CKPT"
evaluate eager_bf16 "$CKPT" --bf16
"$PY" tools/deploy.py "$CONFIG" "$CKPT" --out "$ONNX" --force --shape "$SHAPE" \
    > "$WORK/export.log" 2>&1 || { tail -20 "$WORK/export.log"; exit 1; }
evaluate ort_fp32 "$ONNX"
"$PY" tools/deploy.py "$CONFIG" "$ONNX" --out "$INT8" --force --quantize int8 \
    --calib-dir "$CALIB" --calib-images 16 > "$WORK/quantize.log" 2>&1 \
    || { tail -20 "$WORK/quantize.log"; exit 1; }
evaluate ort_int8 "$INT8"

# the last value of each main metric in a log (mmengine's "key: value" line)
metrics() {
    grep -oE "(coco/bbox_mAP|coco/segm_mAP|mIoU): [0-9.]+" "$1" \
        | awk -F': ' '{last[$1] = $2} END {for (k in last) printf "%s %s  ", k, last[k]}'
}
for name in eager_fp32 eager_bf16 ort_fp32 ort_int8; do
    echo "$name  $(metrics "$WORK/$name.log")"
done
