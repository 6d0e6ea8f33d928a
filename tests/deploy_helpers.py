"""Helpers of the deploy tests (test_deploy, test_quantize): seeded toy
models exported as tools/deploy.py does."""
import torch

from mmevit.tools import build_model
from tests.helpers import load_tool

# Traced at 160x192 (the stride-128 level 2x2: a size-1 level would be
# specialised by torch.export); none of the check sizes is the traced one,
# (131, 97) and (100, 150) need window padding in every stage, batch 2 is
# not the traced batch either.
TRACED = (160, 192)

DEPLOY = load_tool('deploy')


def save_checkpoint(model, path, cfg):
    meta = dict(cfg.test_dataloader.dataset.metainfo)
    torch.save({'state_dict': model.state_dict(),
                'meta': {'dataset_meta': meta}}, path)
    return str(path)


def deploy(config, checkpoint, out, *extra):
    DEPLOY.main([config, checkpoint, '--out', str(out), '--shape',
                 f'{TRACED[0]}x{TRACED[1]}', *extra])
    return str(out)


def exported_toy(config, options, work, adjust=None, export_options=None):
    """The toy model of ``config`` with seeded initial weights (changed by
    ``adjust``), its checkpoint in ``work`` and its export traced at
    TRACED: a dict of ``cfg``, ``model`` (eval), ``checkpoint``, ``onnx``
    and ``work``."""
    torch.manual_seed(0)
    cfg, _, model = build_model(config, options)
    model.init_weights()
    if adjust is not None:
        adjust(model)
    checkpoint = save_checkpoint(model, work / 'model.pth', cfg)
    extra = ['--cfg-options', *[f'{key}={value}' for key, value
                                in export_options.items()]] if export_options else []
    onnx_file = deploy(config, checkpoint, work / 'model.onnx', *extra)
    return dict(cfg=cfg, model=model.eval(), checkpoint=checkpoint,
                onnx=onnx_file, work=work)


def spread_logits(model, classifiers, std=2.):
    """Scale the ``classifiers`` (convolutions) of ``model`` so that their
    logits on random images have the standard deviation ``std`` around 0:
    scores spread over (0, 1), without the exact ties of saturated
    sigmoids, and whether an image has many detections above a high
    threshold or none depends on its content."""
    outputs = []
    hooks = [layer.register_forward_hook(
        lambda module, args, output: outputs.append(output))
        for layer in classifiers]
    with torch.no_grad():
        model.eval()._forward(torch.randn(2, 3, 128, 160,
                                          generator=torch.Generator(
                                          ).manual_seed(0)))
        for hook in hooks:
            hook.remove()
        scale = std / torch.cat([out.flatten() for out in outputs]).std()
        for layer in classifiers:
            layer.weight.mul_(scale)
            layer.bias.zero_()

