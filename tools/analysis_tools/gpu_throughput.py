"""The paper's GPU throughput protocol for the ImageNet classifiers, with
the paper's V100 figures beside it.

Protocol (the official ``speed_test.py``): 224x224 input, BN folded into the
convolutions, the model traced, fp16 autocast, images/s over timed batches
after warm-up; the paper uses batch 2048. Here each arch runs at batch 2048
and at the largest power-of-two batch (up to ``--max-batch``) that fits.

Example::

    python tools/analysis_tools/gpu_throughput.py --arch m0 m1 m2 m3 m4 m5
"""
import argparse
import sys
import time

import torch

from mmevit.errors import ConfigError
from mmevit.tools.cli import exit_on_user_error
from mmevit.tools.benchmark.flops import Classifier
from mmevit.tools.benchmark.table import format_table

#: images/s on one V100 at batch 2048 (official classification README).
PAPER_V100 = {'m0': 27644, 'm1': 20093, 'm2': 18218, 'm3': 16644,
              'm4': 15914, 'm5': 10621}
COLUMNS = ['arch', 'batch', 'images_per_s', 'paper_v100_images_per_s',
           'ratio_to_paper', 'largest_batch', 'images_per_s_largest']


def traced_classifier(arch, size, batch):
    model = Classifier(arch, size).cuda()
    model.backbone.switch_to_deploy()
    example = torch.randn(batch, 3, size, size, device='cuda')
    with torch.no_grad(), torch.autocast('cuda', dtype=torch.float16):
        return torch.jit.trace(model, example), example


def throughput(arch, size, batch, seconds):
    """images/s of ``arch``'s classifier at ``batch``; None if it does not
    fit in GPU memory."""
    try:
        model, images = traced_classifier(arch, size, batch)
        with torch.no_grad(), torch.autocast('cuda', dtype=torch.float16):
            for _ in range(5):
                model(images)
            torch.cuda.synchronize()
            runs, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                model(images)
                runs += 1
            torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
    except torch.cuda.OutOfMemoryError:
        return None
    finally:
        torch.cuda.empty_cache()
    return runs * batch / elapsed


def arch_row(arch, size, max_batch, seconds):
    row = dict(arch=arch, batch=2048,
               images_per_s=throughput(arch, size, 2048, seconds),
               paper_v100_images_per_s=PAPER_V100[arch])
    if row['images_per_s']:
        row['ratio_to_paper'] = row['images_per_s'] / PAPER_V100[arch]
    batch = 4096
    while batch <= max_batch:
        speed = throughput(arch, size, batch, seconds)
        if speed is None:
            break
        row['largest_batch'], row['images_per_s_largest'] = batch, speed
        batch *= 2
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', nargs='+', default=sorted(PAPER_V100))
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--max-batch', type=int, default=16384)
    parser.add_argument('--seconds', type=float, default=3.0,
                        help='timed seconds per arch and batch')
    args = parser.parse_args(argv)
    with exit_on_user_error():
        if not torch.cuda.is_available():
            raise ConfigError('gpu_throughput.py needs a CUDA GPU; '
                              'torch.cuda.is_available() is False')
        unknown = sorted(set(args.arch) - set(PAPER_V100))
        if unknown:
            raise ConfigError(f'unknown arch {unknown}; choose from '
                              f'{sorted(PAPER_V100)}')
        rows = [arch_row(a, args.size, args.max_batch, args.seconds)
                for a in args.arch]
        print(f'GPU: {torch.cuda.get_device_name()}, torch '
              f'{torch.__version__}, {args.size}x{args.size}, fp16 '
              'autocast, BN folded, traced')
        print(format_table(rows, COLUMNS))


if __name__ == '__main__':
    sys.exit(main())
