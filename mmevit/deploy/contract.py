"""The inputs, outputs and metadata of an exported file, shared by the
exporter and the runtime without importing either.

Inputs: ``input`` (N, 3, H, W), the normalised (and padded) batch. A
detector also takes ``image_size`` (N, 2) int64, each image's height and
width without the padding (mmdet's ``img_shape``), to which boxes are
clipped; a dense detector exported with ``test_cfg.min_bbox_size > 0``
also ``scale_factor`` (N, 2) float64, each image's width and height resize
factor, and drops the boxes not larger than that in the original image, as
mmdet's ``_bbox_post_process`` (``rescale=True``) does.

Detector outputs, K = ``max_per_img`` rows per image: ``dets`` (N, K, 5)
``x1, y1, x2, y2, score`` in input pixels by decreasing score, padding
rows zeros; ``labels`` (N, K) int64, padding -1; with masks ``masks``,
padding zeros: Mask R-CNN's (N, K, M, M) probability maps of each
detection's class inside its box, pasted into the image after the graph;
RTMDet-Ins's (N, K, H / s, W / s) logits over the whole input at the
stride s of the head's finest level (metadata ``mask_stride``), upsampled,
resized and thresholded after the graph. A segmentor gives ``seg_logits``.
"""
INPUT_NAME = 'input'
IMAGE_SIZE_NAME = 'image_size'
SCALE_FACTOR_NAME = 'scale_factor'
#: The input names an exported file of each task may have.
TASK_INPUTS = {'mmdet': ((INPUT_NAME, IMAGE_SIZE_NAME),
                         (INPUT_NAME, IMAGE_SIZE_NAME, SCALE_FACTOR_NAME)),
               'mmseg': ((INPUT_NAME, ), )}
#: The output names an exported file of each task may have.
TASK_OUTPUTS = {'mmdet': (('dets', 'labels'), ('dets', 'labels', 'masks')),
                'mmseg': (('seg_logits', ), )}
#: Metadata keys of an exported file: the task (``'mmdet'``/``'mmseg'``),
#: the model's number of classes, the dataset's classes and palette
#: (JSON), the arithmetic of its network (one of :data:`PRECISIONS`) and
#: RTMDet-Ins's mask stride.
METADATA_KEYS = {'task': 'mmevit_task', 'num_classes': 'num_classes',
                 'dataset_meta': 'dataset_meta', 'precision': 'precision',
                 'mask_stride': 'mask_stride'}
#: Precisions of a file: ``fp32`` as exported (also a file without the
#: key), ``int8`` after ``tools/deploy.py --quantize int8``.
PRECISIONS = ('fp32', 'int8')
