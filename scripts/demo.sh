#!/usr/bin/env bash
# make demo: synthetic COCO-format data -> short CPU training of the toy
# EfficientViT-M0 RetinaNet -> COCO evaluation -> pictures -> whole-model ONNX
# export -> the same evaluation in onnxruntime -> the file quantized to int8
# and evaluated -> eager, onnxruntime fp32 and int8 timed side by side; then
# the toy EfficientViT-M0 Semantic FPN on ADE20K-layout shapes -> mIoU ->
# its label-map picture.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PY=.venv/bin/python
DATA=data/toy_coco
WORK=${DEMO_WORK_DIR:-work_dirs/demo}
EPOCHS=${DEMO_EPOCHS:-14}
CONFIG=configs/toy/retinanet_efficientvit_m0_toy.py
# The demo's recipe, on top of the toy config (its tests and benchmarks keep
# 320x256 and batch 8): images resized to fit 224x176, batch 4 (twice the
# updates per epoch), 50 warm-up iterations, 14 epochs; measured results in
# docs/get_started.md.
SCALE='(224,176)'
SHAPE=176x224
RECIPE=(train_dataloader.batch_size=4 auto_scale_lr.base_batch_size=4
        param_scheduler.0.end=50
        "train_dataloader.dataset.pipeline.2.scale=$SCALE"
        "val_dataloader.dataset.pipeline.1.scale=$SCALE"
        "test_dataloader.dataset.pipeline.1.scale=$SCALE")

if [ ! -f "$DATA/annotations/instances_val.json" ]; then
    echo "==> synthetic COCO-format shapes in $DATA"
    "$PY" tools/data/make_toy_data.py coco "$DATA" --num-train 400 --num-val 100
fi

echo "==> training $CONFIG for $EPOCHS epochs on CPU at $SCALE (about 30 s each on 2 cores)"
"$PY" tools/train.py "$CONFIG" --work-dir "$WORK" --cfg-options \
    train_cfg.max_epochs="$EPOCHS" train_cfg.val_interval="$EPOCHS" \
    param_scheduler.1.T_max="$EPOCHS" param_scheduler.1.end="$EPOCHS" "${RECIPE[@]}"
CKPT="$WORK/epoch_$EPOCHS.pth"
# tools/train.py wrote the config it trained with (the recipe included) into
# the work dir: every later step tests, draws and exports with it.
CONFIG="$WORK/$(basename "$CONFIG")"

echo "==> evaluating $CKPT with tools/test.py"
"$PY" tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK" 2>&1 | tee "$WORK/test.log" \
    | grep -E "bbox_mAP_copypaste|coco/bbox_mAP:" || true

echo "==> pictures"
"$PY" tools/demo.py "$DATA/val/000002.jpg" "$CONFIG" "$CKPT" --out "$WORK/demo.png"
"$PY" tools/analysis_tools/plot_logs.py "$WORK" --out "$WORK/curves.png"

ONNX="$WORK/retinanet_toy.onnx"
echo "==> exporting $CKPT to $ONNX (whole model: NMS and top-k in the graph)"
"$PY" tools/deploy.py "$CONFIG" "$CKPT" --out "$ONNX" --force --shape "$SHAPE"

echo "==> evaluating $ONNX in onnxruntime with tools/test.py"
"$PY" tools/test.py "$CONFIG" "$ONNX" --work-dir "$WORK/onnx" \
    --show-dir onnx_vis > "$WORK/test_onnx.log" 2>&1
bbox_map() { grep -oE "coco/bbox_mAP: [0-9.]+" "$1" | tail -1 | cut -d' ' -f2; }
echo "bbox mAP on the 100 validation images: PyTorch $(bbox_map "$WORK/test.log")," \
    "onnxruntime $(bbox_map "$WORK/test_onnx.log")"

INT8="$WORK/retinanet_toy_int8.onnx"
echo "==> quantizing $ONNX to $INT8 (int8 convolutions, calibrated on 16 training images)"
"$PY" tools/deploy.py "$CONFIG" "$ONNX" --out "$INT8" --force --quantize int8 \
    --calib-dir "$DATA/train" --calib-images 16 --shape "$SHAPE"
"$PY" tools/test.py "$CONFIG" "$INT8" --work-dir "$WORK/onnx_int8" \
    > "$WORK/test_onnx_int8.log" 2>&1
echo "bbox mAP on the 100 validation images: onnxruntime fp32" \
    "$(bbox_map "$WORK/test_onnx.log"), int8 $(bbox_map "$WORK/test_onnx_int8.log")"

echo "==> latency at $SHAPE, one thread: eager PyTorch, onnxruntime fp32 and int8"
"$PY" tools/analysis_tools/benchmark.py "$CONFIG" --paths eager-fp32 ort-fp32 ort-int8 \
    --shape "$SHAPE" --threads 1 --candidates 100 --warmup 1 --repeats 10

echo "==> ONNX pictures"
"$PY" tools/demo.py "$DATA/val/000002.jpg" "$CONFIG" "$ONNX" --out "$WORK/demo_onnx.png"
VIS=$(ls -d "$WORK"/onnx/*/onnx_vis | tail -1)

SEG_DATA=data/toy_ade20k
SEG_CONFIG=configs/toy/fpn_efficientvit_m0_toy_ade20k.py
SEG_ITERS=${DEMO_SEG_ITERS:-80}
if [ ! -f "$SEG_DATA/images/validation/ADE_val_00000002.jpg" ]; then
    echo "==> synthetic ADE20K-layout shapes in $SEG_DATA"
    "$PY" tools/data/make_toy_data.py ade20k "$SEG_DATA"
fi
echo "==> training $SEG_CONFIG for $SEG_ITERS iterations, then its mIoU"
"$PY" tools/train.py "$SEG_CONFIG" --work-dir "$WORK/seg" --cfg-options \
    train_cfg.max_iters="$SEG_ITERS" train_cfg.val_interval="$SEG_ITERS" \
    param_scheduler.1.end="$SEG_ITERS" > "$WORK/seg_train.log" 2>&1
grep -oE "mIoU: [0-9.]+" "$WORK/seg_train.log" | tail -1
"$PY" tools/demo.py "$SEG_DATA/images/validation/ADE_val_00000002.jpg" "$SEG_CONFIG" \
    "$WORK/seg/iter_$SEG_ITERS.pth" --out "$WORK/demo_segmentation.png"

echo
echo "demo done: predictions $WORK/demo.png (PyTorch), $WORK/demo_onnx.png (ONNX)," \
    "ground truth | ONNX prediction in $VIS, curves $WORK/curves.png," \
    "label map $WORK/demo_segmentation.png," \
    "logs $WORK/test.log $WORK/test_onnx.log $WORK/test_onnx_int8.log $WORK/seg_train.log"
