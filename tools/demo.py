"""Draw a model's predictions (boxes, masks or a label map) on an image."""
import argparse
import os.path as osp
import sys

import mmcv
from mmengine.config import Config

from mmevit.engine import load_model_checkpoint, task_of
from mmevit.errors import DataError
from mmevit.tools import check_model_channels, replace_sync_bn
from mmevit.tools.cli import (
    add_onnx_providers_argument,
    check_onnx_providers_arg,
    exit_on_user_error,
)
from mmevit.tools.precision import autocast_network, check_precision_args


def parse_args():
    parser = argparse.ArgumentParser(description='Draw predictions on an image')
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file, or an .onnx file '
                        'from tools/deploy.py')
    parser.add_argument('--out', required=True, help='output picture (.png/.jpg)')
    parser.add_argument('--device', default='cpu', help='e.g. cpu or cuda:0')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='detection: hide boxes scoring below this')
    parser.add_argument('--opacity', type=float, default=0.5,
                        help='segmentation: opacity of the label overlay')
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument('--bf16', dest='precision', action='store_const',
                           const='bf16', help='run the network under '
                           'bfloat16 autocast; post-processing stays float32')
    precision.add_argument('--fp16', dest='precision', action='store_const',
                           const='fp16', help='the same in float16 (CUDA)')
    add_onnx_providers_argument(parser)
    return parser.parse_args()


def build_model(cfg, args, init_model, datasets):
    """The task's ``init_*`` model with the checkpoint loaded strictly, on
    ``args.device``, its network in ``args.precision`` if set."""
    model = init_model(cfg, None, device='cpu')
    check_model_channels(model)
    meta = load_model_checkpoint(model, args.checkpoint).get('meta') or {}
    model.dataset_meta = dataset_meta(meta, cfg, datasets)
    model = model.to(args.device).eval()
    if args.precision:
        autocast_network(model, args.precision)
    return model


def dataset_meta(meta, cfg, datasets):
    """Class names and palette: from the checkpoint (mmengine, or mmdet/mmseg
    1.x/2.x ``CLASSES``), else from the config's test dataset."""
    if meta.get('dataset_meta'):
        return meta['dataset_meta']
    if meta.get('CLASSES'):
        return dict(classes=meta['CLASSES'], palette=meta.get('PALETTE'))
    dataset = cfg.test_dataloader.dataset
    while 'dataset' in dataset:  # dataset wrappers
        dataset = dataset.dataset
    if (dataset.get('metainfo') or {}).get('classes'):
        return dict(dataset.metainfo)
    return dict(datasets.get(dataset.type).METAINFO)


def draw_detection(cfg, args, image):
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import DATASETS, VISUALIZERS
    model = build_model(cfg, args, init_detector, DATASETS)
    result = inference_detector(model, image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample('prediction', mmcv.bgr2rgb(image), result,
                              draw_gt=False, pred_score_thr=args.score_thr,
                              out_file=args.out)
    return int((result.pred_instances.scores >= args.score_thr).sum())


def draw_segmentation(cfg, args, image):
    from mmseg.apis import inference_model, init_model, show_result_pyplot
    from mmseg.registry import DATASETS
    model = build_model(cfg, args, init_model, DATASETS)
    result = inference_model(model, image)
    show_result_pyplot(model, image, result, opacity=args.opacity,
                       show=False, out_file=args.out)
    return len(result.pred_sem_seg.data.unique())


def read_image(path):
    if not osp.isfile(path):
        raise FileNotFoundError(f'image not found: {path}')
    if osp.getsize(path) == 0:
        raise DataError(f'image file is empty (0 bytes): {path}')
    try:
        image = mmcv.imread(path)
    except Exception as err:  # cv2 raises its own error type on junk
        raise DataError(f'cannot decode the image file {path} ({err})'
                        ) from None
    if image is None or image.size == 0:
        raise DataError(f'cannot decode the image file {path}')
    return image


def draw_onnx(cfg, args, image):
    """Draw the predictions of an .onnx file from tools/deploy.py."""
    from mmevit.deploy import inference_onnx, init_onnx_model
    model = init_onnx_model(cfg, args.checkpoint, args.onnx_providers)
    result = inference_onnx(model, image)
    if task_of(cfg) == 'mmdet':
        from mmdet.registry import VISUALIZERS
        visualizer = VISUALIZERS.build(cfg.visualizer)
        visualizer.dataset_meta = model.dataset_meta
        visualizer.add_datasample('prediction', mmcv.bgr2rgb(image), result,
                                  draw_gt=False, pred_score_thr=args.score_thr,
                                  out_file=args.out)
        count = int((result.pred_instances.scores >= args.score_thr).sum())
        return f'{count} detections above {args.score_thr}'
    from mmseg.apis import show_result_pyplot
    show_result_pyplot(model, image, result, opacity=args.opacity,
                       show=False, out_file=args.out)
    return f'label map with {len(result.pred_sem_seg.data.unique())} classes'


def main():
    args = parse_args()
    with exit_on_user_error():
        if args.precision:
            check_precision_args(args.checkpoint, args.precision, args.device)
        check_onnx_providers_arg(args.checkpoint, args.onnx_providers)
        image = read_image(args.image)
        cfg = Config.fromfile(args.config)
        replace_sync_bn(cfg.model)
        if args.checkpoint.endswith('.onnx'):
            print(f'{draw_onnx(cfg, args, image)} drawn to {args.out}')
        elif task_of(cfg) == 'mmdet':
            count = draw_detection(cfg, args, image)
            print(f'{count} detections above {args.score_thr} drawn to {args.out}')
        else:
            count = draw_segmentation(cfg, args, image)
            print(f'label map with {count} classes drawn to {args.out}')


if __name__ == '__main__':
    sys.exit(main())
