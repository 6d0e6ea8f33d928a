"""Convert official / timm EfficientViT weights (or an official COCO detector
checkpoint) to mmevit's layout.

Backbone-only input gives a backbone checkpoint for
``init_cfg=dict(type='Pretrained', checkpoint=DST)``; a detector checkpoint
keeps its neck and heads and gets its ``backbone.*`` keys converted.
"""
import argparse
import os
import os.path as osp
import sys

import torch

from mmevit.checkpoint import CheckpointError, extract_backbone_state_dict, read_checkpoint
from mmevit.models.backbones import (
    EfficientViT,
    check_backbone_weights,
    convert_efficientvit_state_dict,
    guess_arch_name,
)
from mmevit.tools.cli import exit_on_user_error


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='source .pth/.safetensors file or URL')
    parser.add_argument('dst', help='destination .pth file')
    parser.add_argument('--arch', help='expected arch (m0..m5); by default '
                        'read from the weights')
    parser.add_argument('--window-sizes', type=int, nargs=3, default=[7, 7, 7],
                        help='attention window per stage (bias tables are '
                        'resized to fit)')
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing destination file')
    return parser.parse_args()


def convert(checkpoint, arch, window_sizes, source):
    """Return (converted checkpoint, arch name)."""
    weights = convert_efficientvit_state_dict(
        extract_backbone_state_dict(checkpoint), window_sizes)
    arch = arch or guess_arch_name(weights, EfficientViT.arch_zoo)
    if arch is None:
        raise CheckpointError(f'{source}: the weights match no arch of '
                              f'{sorted(EfficientViT.arch_zoo)}; pass --arch')
    check_backbone_weights(EfficientViT(arch=arch, window_sizes=window_sizes),
                           weights, source)
    state_dict = checkpoint.get('state_dict', checkpoint)
    if any(k.startswith('backbone.') for k in state_dict):  # whole detector
        rest = {k: v for k, v in state_dict.items()
                if not k.startswith('backbone.')}
        rest.update({f'backbone.{k}': v for k, v in weights.items()})
        return {'meta': checkpoint.get('meta', {}), 'state_dict': rest}, arch
    return {'state_dict': weights}, arch


def main():
    args = parse_args()
    with exit_on_user_error():
        if osp.exists(args.dst) and not args.force:
            raise FileExistsError(f'{args.dst} exists; pass --force to '
                                  'overwrite it')
        converted, arch = convert(read_checkpoint(args.src), args.arch,
                                  args.window_sizes, args.src)
        tmp = f'{args.dst}.tmp'
        torch.save(converted, tmp)
        os.replace(tmp, args.dst)  # never leaves a half-written file
        print(f'converted {args.src} (EfficientViT-{arch.upper()}, '
              f'{len(converted["state_dict"])} tensors) -> {args.dst}')


if __name__ == '__main__':
    sys.exit(main())
