"""The input/output names and metadata keys of an exported file.

Shared by the exporter and the runtime without importing either: running
an existing file needs neither ``torch.onnx`` nor the exporter's custom ops.
"""
INPUT_NAME = 'input'
IMAGE_SIZE_NAME = 'image_size'
SCALE_FACTOR_NAME = 'scale_factor'
#: The input names an exported file of each task may have (a dense
#: detector exported with ``min_bbox_size > 0`` takes ``scale_factor``).
TASK_INPUTS = {'mmdet': ((INPUT_NAME, IMAGE_SIZE_NAME),
                         (INPUT_NAME, IMAGE_SIZE_NAME, SCALE_FACTOR_NAME)),
               'mmseg': ((INPUT_NAME, ), )}
#: The output names an exported file of each task may have.
TASK_OUTPUTS = {'mmdet': (('dets', 'labels'), ('dets', 'labels', 'masks')),
                'mmseg': (('seg_logits', ), )}
#: Metadata keys of an exported file: the task (``'mmdet'``/``'mmseg'``),
#: the model's number of classes, the dataset's classes and palette (JSON)
#: the arithmetic of its network (one of :data:`PRECISIONS`) and, in a file
#: whose ``masks`` are logits over the whole input (RTMDet-Ins), their
#: stride (without it, ``masks`` are probability maps inside each box, as
#: Mask R-CNN's).
METADATA_KEYS = {'task': 'mmevit_task', 'num_classes': 'num_classes',
                 'dataset_meta': 'dataset_meta', 'precision': 'precision',
                 'mask_stride': 'mask_stride'}
#: Precisions of a file: ``fp32`` as exported (also a file without the
#: key), ``int8`` after ``tools/deploy.py --quantize int8``.
PRECISIONS = ('fp32', 'int8')
