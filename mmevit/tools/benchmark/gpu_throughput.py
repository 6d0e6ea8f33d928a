"""The paper's GPU throughput protocol for the ImageNet classifiers, with
the paper's V100 figures beside it.

Protocol (the official ``speed_test.py``): 224x224 input, BN folded into the
convolutions, the model traced, fp16 autocast, images/s over batches after
warm-up; the paper uses batch 2048. Here each arch runs at batch 2048 and at
the largest power-of-two batch (up to ``max_batch``) that fits; a batch's
time is the median of interleaved rounds (:func:`interleaved_latencies`).
"""
import torch

from mmevit.errors import ConfigError
from mmevit.tools.benchmark.flops import Classifier
from mmevit.tools.benchmark.timing import interleaved_latencies, summarize

#: images/s on one V100 at batch 2048 (official classification README).
PAPER_V100 = {'m0': 27644, 'm1': 20093, 'm2': 18218, 'm3': 16644,
              'm4': 15914, 'm5': 10621}
#: The paper's batch.
PAPER_BATCH = 2048


def traced_classifier(arch, size, batch):
    """The BN-folded classifier of ``arch`` traced under fp16 autocast on
    CUDA, and a random batch for it."""
    model = Classifier(arch, size).cuda()
    model.backbone.switch_to_deploy()
    example = torch.randn(batch, 3, size, size, device='cuda')
    with torch.no_grad(), torch.autocast('cuda', dtype=torch.float16):
        return torch.jit.trace(model, example), example


def throughput(arch, size, batch, warmup, repeats):
    """images/s of ``arch``'s classifier at ``batch``; None if it does not
    fit in GPU memory."""
    try:
        model, images = traced_classifier(arch, size, batch)
        with torch.no_grad(), torch.autocast('cuda', dtype=torch.float16):
            times = interleaved_latencies({arch: lambda: model(images)},
                                          'cuda', warmup, repeats)
    except torch.cuda.OutOfMemoryError:
        return None
    finally:
        torch.cuda.empty_cache()
    return summarize(times[arch], batch)['throughput']


def gpu_throughput_rows(archs, size=224, max_batch=16384, warmup=5,
                        repeats=10):
    """One row per arch: images/s at the paper's batch and at the largest
    batch that fits, with the paper's V100 figure.

    Args:
        archs (Sequence[str]): 'm0'..'m5'.
        size (int): Square input side. Defaults to 224.
        max_batch (int): Largest batch tried. Defaults to 16384.
        warmup (int): Discarded batches. Defaults to 5.
        repeats (int): Timed batches. Defaults to 10.

    Raises:
        ConfigError: No CUDA GPU, or an unknown arch.
    """
    if not torch.cuda.is_available():
        raise ConfigError('--gpu-throughput needs a CUDA GPU; '
                          'torch.cuda.is_available() is False')
    unknown = sorted(set(archs) - set(PAPER_V100))
    if unknown:
        raise ConfigError(f'unknown arch {unknown}; choose from '
                          f'{sorted(PAPER_V100)}')
    rows = []
    for arch in archs:
        row = dict(arch=arch, batch=PAPER_BATCH,
                   images_per_s=throughput(arch, size, PAPER_BATCH, warmup,
                                           repeats),
                   paper_v100_images_per_s=PAPER_V100[arch])
        if row['images_per_s']:
            row['ratio_to_paper'] = row['images_per_s'] / PAPER_V100[arch]
        batch = PAPER_BATCH * 2
        while batch <= max_batch:
            speed = throughput(arch, size, batch, warmup, repeats)
            if speed is None:
                break
            row['largest_batch'], row['images_per_s_largest'] = batch, speed
            batch *= 2
        rows.append(row)
    return rows
