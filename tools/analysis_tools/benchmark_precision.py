"""Eager fp32, eager bf16, onnxruntime fp32 and onnxruntime int8 of the same
models, timed in one run, interleaved, at each thread count.

A model is a config's whole detector or segmentor (image to predictions,
post-processing included, as ``predict`` runs it; the ONNX files through
mmevit's ``OnnxDetector``/``OnnxSegmentor``) or an arch's bare backbone
(``--arch``). Weights are random (seeded, mmdet/mmseg's initialisation)
with BN statistics gathered on random images, so activations have
realistic ranges. The fp32 file is exported as ``tools/deploy.py`` does
(dynamic batch and size) and quantized as ``--quantize int8`` does,
calibrated on random inputs (speed only: the accuracy of an int8 file is
measured with ``tools/test.py``). bf16 runs the network under
``torch.autocast`` (``tools/test.py --bf16``).

``--candidates K`` gives every dense detector the same post-processing load
(see fair_load.py); ``--reference`` adds each path's speed-up over the
reference model (a real-time comparison). ``network`` and ``network bf16``
are the eager network alone (tensor mode, no post-processing).

Examples::

    python tools/analysis_tools/benchmark_precision.py \\
        configs/retinanet_efficientvit_m4_coco.py --shape 800x1344 --threads 1 2
    python tools/analysis_tools/benchmark_precision.py --arch m4 --shape 800x1344
    python tools/analysis_tools/benchmark_precision.py \\
        mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py \\
        configs/rtmdet_efficientvit_m0_coco.py --shape 640 --candidates 1000 \\
        --reference 0
"""
import argparse
import copy
import os.path as osp
import statistics
import sys
import tempfile

import torch
from mmengine.config import DictAction

from mmevit.errors import ConfigError
from mmevit.tools import build_model, data_samples, image_shape, interleaved_latencies
from mmevit.tools.cli import exit_on_user_error
from mmevit.tools.precision import autocast_network
from mmevit.tools.benchmark.fair_load import has_dense_head, set_candidate_count
from mmevit.tools.benchmark.input_checks import positive_int
from mmevit.tools.benchmark.models import build_backbone
from mmevit.tools.benchmark.table import machine_info, write_json

PATHS = ('eager fp32', 'eager bf16', 'ort fp32', 'ort int8')
#: The eager network alone (tensor mode: no post-processing), detectors and
#: segmentors only.
NETWORK_PATHS = ('network', 'network bf16')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('configs', nargs='*',
                        help='mmdet/mmseg configs (paths or mmdet::...)')
    parser.add_argument('--arch', nargs='+', default=[],
                        help='EfficientViT archs whose bare backbone to time')
    parser.add_argument('--shape', type=image_shape, default=(800, 1344),
                        help='input size, HxW or S (default 800x1344)')
    parser.add_argument('--threads', type=positive_int, nargs='+',
                        default=[1, 2], help='thread counts (default 1 2)')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=positive_int, default=10)
    parser.add_argument('--calib-images', type=positive_int, default=2,
                        help='random calibration inputs of the int8 file')
    parser.add_argument('--candidates', type=positive_int, metavar='K',
                        help='set each dense detector\'s score_thr so that '
                        'K scores pass it on the timed image')
    parser.add_argument('--reference', type=int,
                        help='index of the model the speed-ups across '
                        'models refer to')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--json', help='also write the rows to this file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides merged into every config')
    args = parser.parse_args(argv)
    if not args.configs and not args.arch:
        parser.error('give a config or --arch')
    count = len(args.arch) + len(args.configs)
    if args.reference is not None and not 0 <= args.reference < count:
        parser.error(f'--reference {args.reference}: choose 0..{count - 1} '
                     '(the positions of --arch, then the configs)')
    return args


def gather_bn_statistics(model, forward, inputs):
    """BN running statistics of ``model`` from one train-mode ``forward``
    of ``inputs`` (cumulative average), then eval mode."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    model.train()
    with torch.no_grad():
        forward(inputs)
    return model.eval()


class Subject:
    """One model to time: its eager callables and its ONNX files.

    Args:
        name (str): Row label.
        model (nn.Module): Backbone, detector or segmentor (eval).
        task (str | None): ``'mmdet'``, ``'mmseg'`` or None (backbone).
        cfg (Config | None): The config of a detector or segmentor.
    """

    def __init__(self, name, model, task, cfg=None):
        self.name, self.model, self.task, self.cfg = name, model, task, cfg
        self.files = {}

    def eager(self, x):
        """Callables of the eager paths (and the bare network) on ``x``."""
        bf16 = autocast_network(copy.deepcopy(self.model), 'bf16') \
            if self.task else _autocast_backbone(self.model)
        if self.task is None:
            return {'eager fp32': lambda: self.model(x),
                    'eager bf16': lambda: bf16(x)}
        samples = data_samples(self.task, *x.shape[2:], len(x))
        return {'network': lambda: self.model(x, samples, mode='tensor'),
                'network bf16': lambda: bf16(x, samples, mode='tensor'),
                'eager fp32': lambda: self.model.predict(x, samples),
                'eager bf16': lambda: bf16.predict(x, samples)}

    def export(self, x, work_dir, calib_images, seed):
        """Write the fp32 and int8 files."""
        from mmevit.deploy.quantize import quantize_int8
        fp32 = osp.join(work_dir, f'{self.name}.onnx')
        if self.task is None:
            from mmevit.tools.backbone_onnx import export_backbone_onnx
            export_backbone_onnx(self.model, fp32, *x.shape[2:])
            metadata = {}
        else:
            from mmevit.deploy import export_onnx, export_wrapper
            export_onnx(export_wrapper(self.task, copy.deepcopy(self.model)),
                        fp32, self.task, tuple(x.shape[2:]))
            metadata = _metadata(fp32)
        gen = torch.Generator().manual_seed(seed + 1)
        feeds = _feeds(fp32, self.task, [torch.randn(
            x.shape, generator=gen) for _ in range(calib_images)])
        int8 = osp.join(work_dir, f'{self.name}_int8.onnx')
        quantize_int8(fp32, int8, feeds, metadata)
        self.files = {'ort fp32': fp32, 'ort int8': int8}

    def onnxruntime(self, x, threads):
        """Callables running each file with ``threads`` threads."""
        from mmevit.deploy.session import load_session
        fns = {}
        for path_name, path in self.files.items():
            if self.task is None:
                session = load_session(path, threads)
                feed = {'input': x.numpy()}
                fns[path_name] = (lambda session=session, feed=feed:
                                  session.run(None, feed))
                continue
            from mmevit.deploy.runtime import OnnxSession, init_onnx_model
            onnx_model = init_onnx_model(self.cfg, path)
            onnx_model.session = OnnxSession(path, self.task, threads)
            samples = data_samples(self.task, *x.shape[2:], len(x))
            fns[path_name] = (lambda onnx_model=onnx_model, samples=samples:
                              onnx_model.predict(x, samples))
        return fns


def _autocast_backbone(backbone):

    def run(x):
        with torch.autocast('cpu', dtype=torch.bfloat16):
            return backbone(x)

    return run


def _metadata(path):
    import onnx
    model = onnx.load(path, load_external_data=False)
    return {prop.key: prop.value for prop in model.metadata_props}


def _feeds(path, task, batches):
    """The file's input feeds of each batch (one session for all)."""
    if task is None:
        return [{'input': x.numpy()} for x in batches]
    from mmevit.deploy.runtime import OnnxSession
    session = OnnxSession(path, task)
    return [session.feeds(x) for x in batches]


def build_subjects(args, x):
    """The models to time, in the order of ``--arch`` then the configs."""
    subjects = []
    for arch in args.arch:
        torch.manual_seed(args.seed)
        model = build_backbone(arch)
        model.init_weights()
        gather_bn_statistics(model, model, x)
        subjects.append(Subject(f'EfficientViT-{arch.upper()} backbone',
                                model, None))
    for config in args.configs:
        torch.manual_seed(args.seed)
        # random weights: no ImageNet checkpoint to download
        cfg, task, model = build_model(config, {
            'model.backbone.init_cfg': None, **(args.cfg_options or {})})
        model.init_weights()
        samples = data_samples(task, *x.shape[2:], len(x))
        gather_bn_statistics(
            model, lambda inputs: model(inputs, samples, mode='tensor'), x)
        name = osp.splitext(osp.basename(config.split('::')[-1]))[0]
        if args.candidates and has_dense_head(model):
            threshold, count = set_candidate_count(model, x, args.candidates)
            print(f'{name}: score_thr {threshold:.6g} leaves {count} '
                  'candidates')
        subjects.append(Subject(name, model, task, cfg))
    names = [subject.name for subject in subjects]
    if len(set(names)) != len(names):
        raise ConfigError(f'models with the same name: {names}')
    return subjects


def run(args):
    x = torch.randn(1, 3, *args.shape,
                    generator=torch.Generator().manual_seed(args.seed))
    subjects = build_subjects(args, x)
    rows = []
    with tempfile.TemporaryDirectory() as work_dir:
        for subject in subjects:
            subject.export(x, work_dir, args.calib_images, args.seed)
        for threads in args.threads:
            torch.set_num_threads(threads)
            fns = {}
            for subject in subjects:
                for path_name, fn in {**subject.eager(x), **subject.onnxruntime(
                        x, threads)}.items():
                    fns[(subject.name, path_name)] = fn
            with torch.no_grad():
                times = interleaved_latencies(fns, 'cpu', args.warmup,
                                              args.repeats)
            for subject in subjects:
                row = dict(model=subject.name, threads=threads)
                for (name, path_name), seconds in times.items():
                    if name == subject.name:
                        row[path_name] = statistics.median(seconds) * 1e3
                rows.append(row)
    return rows


def markdown_tables(rows, reference=None):
    """The latencies with speed-ups over eager fp32 and int8's over
    onnxruntime fp32; with ``reference`` (a model name) each path's
    speed-up over that model at the same thread count."""
    network = [path for path in NETWORK_PATHS
               if any(path in row for row in rows)]
    head = ['model', 'threads', *[f'{path} ms' for path in network],
            *[f'{path} ms' for path in PATHS],
            *(['network bf16 x'] if network else []), 'bf16 x',
            'ort fp32 x', 'ort int8 x', 'int8 / ort fp32']
    lines = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    for row in rows:
        eager = row['eager fp32']
        cells = [row['model'], str(row['threads'])]
        cells += [_ms(row.get(path)) for path in network]
        cells += [_ms(row[path]) for path in PATHS]
        if network:
            cells.append(_ratio(row.get('network'), row.get('network bf16')))
        cells += [f'{eager / row[path]:.2f}x' for path in PATHS[1:]]
        cells.append(f"{row['ort fp32'] / row['ort int8']:.2f}x")
        lines.append('| ' + ' | '.join(cells) + ' |')
    if reference is None:
        return '\n'.join(lines)
    paths = network + list(PATHS)
    lines += ['', f'speed-up over {reference} (same path and threads):', '',
              '| model | threads | ' + ' | '.join(paths) + ' |',
              '|---' * (len(paths) + 2) + '|']
    base = {row['threads']: row for row in rows if row['model'] == reference}
    for row in rows:
        ref = base[row['threads']]
        cells = [f'{ref[path] / row[path]:.2f}x' if row.get(path) else '-'
                 for path in paths]
        lines.append(f"| {row['model']} | {row['threads']} | "
                     + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def _ms(value):
    return '-' if value is None else f'{value:.1f}'


def _ratio(slow, fast):
    return '-' if slow is None or fast is None else f'{slow / fast:.2f}x'


def main(argv=None):
    args = parse_args(argv)
    with exit_on_user_error():
        rows = run(args)
        reference = None if args.reference is None else rows[
            args.reference]['model']
        meta = machine_info(torch.device('cpu'))
        print(f"{meta['date']}  {meta['cpu']}  torch {meta['torch']}  "
              f"{args.shape[0]}x{args.shape[1]}  median of {args.repeats} "
              'interleaved rounds')
        print(markdown_tables(rows, reference))
        if args.json:
            write_json(args.json, rows, meta)


if __name__ == '__main__':
    sys.exit(main())
