"""Plot training loss and validation mAP/mIoU from a work dir's logs."""
import argparse
import glob
import json
import os.path as osp
import sys

from mmevit.engine.cli import exit_on_user_error

METRIC_KEYS = ('coco/bbox_mAP', 'coco/segm_mAP', 'mIoU', 'aAcc', 'mAcc')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('work_dir', help='work dir of tools/train.py')
    parser.add_argument('--out', required=True, help='output PNG')
    return parser.parse_args()


def read_scalars(work_dir):
    """Train and val records of every run in ``work_dir``, oldest first
    (a resumed run continues the curves)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir}; '
                                'is it a tools/train.py work dir?')
    train, val = {}, {}
    for path in files:
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                target = train if 'loss' in record else val
                target[record['step']] = record
    return [train[k] for k in sorted(train)], [val[k] for k in sorted(val)]


def plot(train, val, out):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    metrics = [k for k in METRIC_KEYS if any(k in r for r in val)]
    fig, axes = plt.subplots(1, 1 + bool(metrics), figsize=(11 if metrics else 6, 4))
    axes = axes if metrics else [axes]
    axes[0].plot([r['step'] for r in train], [r['loss'] for r in train])
    axes[0].set(xlabel='iteration', ylabel='loss', title='training loss')
    for key in metrics:
        points = [(r['step'], r[key]) for r in val if key in r]
        axes[1].plot(*zip(*points), marker='o', label=key)
    if metrics:
        axes[1].set(xlabel='epoch or iteration of validation', title='validation')
        axes[1].legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main():
    args = parse_args()
    with exit_on_user_error():
        train, val = read_scalars(args.work_dir)
        if not train:
            raise ValueError(f'{args.work_dir} has no training loss records yet')
        plot(train, val, args.out)
        print(f'{len(train)} loss and {len(val)} validation records -> {args.out}')


if __name__ == '__main__':
    sys.exit(main())
