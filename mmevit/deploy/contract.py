"""The inputs and outputs of mmevit's exported ``.onnx`` files, shared by
the exporter and the runtime (which needs no exporter, so it runs on torch
versions the exporter does not support)."""
INPUT_NAME = 'input'
IMAGE_SIZE_NAME = 'image_size'
#: The input names of an exported file of each task.
TASK_INPUTS = {'mmdet': (INPUT_NAME, IMAGE_SIZE_NAME), 'mmseg': (INPUT_NAME, )}
#: The output names an exported file of each task may have: detectors
#: without and with masks, segmentors.
TASK_OUTPUTS = {'mmdet': (('dets', 'labels'), ('dets', 'labels', 'masks')),
                'mmseg': (('seg_logits', ), )}
