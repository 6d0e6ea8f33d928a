"""A backbone (or backbone+neck) as an ONNX file with dynamic batch, height
and width, and its check against PyTorch in onnxruntime: shared by
``tools/analysis_tools/export_onnx.py`` and the benchmark's onnxruntime paths.

Uses torch's ``torch.export``-based exporter (``dynamo=True``), which needs
the ``onnx`` and ``onnxscript`` packages and torch >= 2.6.
"""
import torch
from torch import nn

from mmevit.stack import require_export_torch
from mmevit.tools.benchmark.official_baseline import relative_difference


class BackboneWithNeck(nn.Module):
    """``neck(backbone(x))`` as one module (what ``extract_feat`` computes).

    Args:
        backbone (nn.Module): The backbone.
        neck (nn.Module): The neck.
    """

    def __init__(self, backbone, neck):
        super().__init__()
        self.backbone = backbone
        self.neck = neck

    def forward(self, x):
        return tuple(self.neck(self.backbone(x)))


def export_backbone_onnx(module, path, height, width, opset=18):
    """Export ``module`` (image batch -> tuple of maps) to ONNX.

    Args:
        module (nn.Module): Backbone or :class:`BackboneWithNeck`, on CPU.
        path (str): Output ``.onnx`` file.
        height, width (int): Size of the example input used for tracing;
            the graph accepts any size.
        opset (int): ONNX opset. Defaults to 18.

    Returns:
        list[str]: The output names, ``out0``, ``out1``, ...
    """
    require_export_torch()
    module = module.eval()
    x = torch.randn(1, 3, height, width)
    with torch.no_grad():
        num_outputs = len(module(x))
    names = [f'out{i}' for i in range(num_outputs)]
    dynamic = torch.export.Dim.DYNAMIC
    torch.onnx.export(
        module, (x, ), path, input_names=['input'], output_names=names,
        opset_version=opset, dynamo=True,
        dynamic_shapes=({0: dynamic, 2: dynamic, 3: dynamic}, ),
        verbose=False)
    return names


def check_onnx(module, path, shapes, seed=0):
    """Compare the ONNX file in onnxruntime with ``module`` in PyTorch.

    Args:
        module (nn.Module): The exported module.
        path (str): The ``.onnx`` file.
        shapes (Sequence[tuple[int, int, int]]): (batch, height, width) of
            each check.
        seed (int): Seed of the random inputs. Defaults to 0.

    Returns:
        list[dict]: Per shape: ``shape``, ``max_abs_diff`` and
        ``max_rel_diff`` (the worst output).
    """
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    gen = torch.Generator().manual_seed(seed)
    results = []
    for batch, height, width in shapes:
        x = torch.randn(batch, 3, height, width, generator=gen)
        with torch.no_grad():
            expected = module.eval()(x)
        actual = session.run(None, {'input': x.numpy()})
        results.append(dict(
            shape=[batch, 3, height, width],
            max_abs_diff=max(
                (e - torch.from_numpy(a)).abs().max().item()
                for e, a in zip(expected, actual)),
            max_rel_diff=max(
                relative_difference(e, a) for e, a in zip(expected, actual))))
    return results
