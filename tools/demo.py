"""Draw a model's predictions (boxes, masks or a label map) on an image."""
import argparse
import os.path as osp
import sys

import mmcv
from mmengine.config import Config

from mmevit.engine import replace_sync_bn, task_of
from mmevit.engine.cli import exit_on_user_error


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
    return parser.parse_args()


def draw_detection(cfg, args, image):
    from mmdet.apis import inference_detector, init_detector
    from mmdet.registry import VISUALIZERS
    model = init_detector(cfg, args.checkpoint, device=args.device)
    result = inference_detector(model, image)
    visualizer = VISUALIZERS.build(model.cfg.visualizer)
    visualizer.dataset_meta = model.dataset_meta
    visualizer.add_datasample('prediction', mmcv.bgr2rgb(image), result,
                              draw_gt=False, pred_score_thr=args.score_thr,
                              out_file=args.out)
    return len(result.pred_instances.scores >= args.score_thr)


def draw_segmentation(cfg, args, image):
    from mmseg.apis import inference_model, init_model, show_result_pyplot
    model = init_model(cfg, args.checkpoint, device=args.device)
    result = inference_model(model, image)
    show_result_pyplot(model, image, result, opacity=args.opacity,
                       show=False, out_file=args.out)
    return len(result.pred_sem_seg.data.unique())


def draw_onnx(cfg, args, image):
    """Draw the predictions of an .onnx file from tools/deploy.py."""
    from mmevit.deploy import inference_onnx, init_onnx_model
    model = init_onnx_model(cfg, args.checkpoint)
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
        if not osp.isfile(args.image):
            raise FileNotFoundError(f'image not found: {args.image}')
        image = mmcv.imread(args.image)
        if image is None or image.size == 0:
            raise ValueError(f'{args.image} is not a readable image')
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
