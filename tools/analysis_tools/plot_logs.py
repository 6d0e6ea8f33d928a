"""Plot training loss and validation mAP/mIoU from work dirs' logs.

Several work dirs are drawn side by side; ``--x minutes`` puts wall-clock
minutes since the start of training on the x axis (read from the text logs),
so runs of different speed compare at equal time. ``--labels`` names the
runs in the legend and the table (default: the work dirs' names), ``--title``
says what the figure shows (the machine the runs shared, for one). The
validation metrics are also printed as a table.

Example::

    python tools/analysis_tools/plot_logs.py work_dirs/m0 work_dirs/r18 \
        --labels "RetinaNet M0" "RetinaNet R18" --x minutes --out curves.png
"""
import argparse
import datetime
import glob
import json
import os.path as osp
import re
import sys

from mmevit.errors import DataError
from mmevit.tools.cli import exit_on_user_error

METRIC_KEYS = ('coco/bbox_mAP', 'coco/segm_mAP', 'mIoU', 'aAcc', 'mAcc')
STAMP = re.compile(r'^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d')
RECORD = re.compile(r' - mmengine - INFO - (?:Epoch|Iter)\((train|val)\)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('work_dirs', nargs='+', help='work dirs of tools/train.py')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--x', choices=('steps', 'minutes'), default='steps',
                        help='x axis: iterations/epochs, or wall-clock minutes '
                        'since training started')
    parser.add_argument('--labels', nargs='+', metavar='LABEL',
                        help='one name per work dir for the legend and the '
                        'table (default: the work dirs\' names)')
    parser.add_argument('--title', help='figure title, e.g. the machine')
    args = parser.parse_args(argv)
    if args.labels and len(args.labels) != len(args.work_dirs):
        parser.error(f'--labels gives {len(args.labels)} names for '
                     f'{len(args.work_dirs)} work dirs; give one per work dir')
    return args


def log_minutes(log_path, num_train, num_val):
    """Minutes since the log's first line at which each train and val record
    was written (train: one per logged interval; val: the metrics line)."""
    times = {'train': [], 'val': []}
    start = None
    with open(log_path) as f:
        for line in f:
            stamp = STAMP.match(line)
            if not stamp:
                continue
            now = datetime.datetime.strptime(stamp[0], '%Y/%m/%d %H:%M:%S')
            start = start or now
            record = RECORD.match(line, stamp.end())
            if not record or (record[1] == 'val' and
                              not any(f'{key}:' in line for key in METRIC_KEYS)):
                continue
            times[record[1]].append((now - start).total_seconds() / 60)
    if (len(times['train']), len(times['val'])) != (num_train, num_val):
        raise DataError(
            f'{log_path} has {len(times["train"])} train and {len(times["val"])} '
            f'val lines but scalars.json has {num_train} and {num_val}; '
            'cannot time the records')
    return times['train'], times['val']


def read_scalars(work_dir, need_minutes=False):
    """Train and val records of every run in ``work_dir``, oldest first
    (a resumed run continues the curves). Where the text logs are there, each
    record gets 'minutes': wall-clock minutes of training up to it, counting
    on from the previous run's end; ``need_minutes`` makes a missing log an
    error."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {work_dir}; '
                                'is it a tools/train.py work dir?')
    train, val = {}, {}
    offset = 0.0
    for path in files:
        with open(path) as f:
            records = [json.loads(line) for line in f]
        run_train = [r for r in records if 'loss' in r]
        run_val = [r for r in records if 'loss' not in r]
        run_dir = osp.dirname(osp.dirname(path))
        log = osp.join(run_dir, osp.basename(run_dir) + '.log')
        if not osp.isfile(log) and need_minutes:
            raise DataError(f'--x minutes needs the text logs beside '
                             f'scalars.json; {log} is missing')
        if osp.isfile(log):
            minutes = sum(log_minutes(log, len(run_train), len(run_val)), [])
            for record, minute in zip(run_train + run_val, minutes):
                record['minutes'] = offset + minute
            offset += max(minutes, default=0.0)
        train.update((r['step'], r) for r in run_train)
        val.update((r['step'], r) for r in run_val)
    return [train[k] for k in sorted(train)], [val[k] for k in sorted(val)]


def x_values(records, x):
    return [r['step' if x == 'steps' else 'minutes'] for r in records]


def plot(runs, x, out, title=None):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    metrics = [k for k in METRIC_KEYS
               if any(k in r for _, _, val in runs for r in val)]
    fig, axes = plt.subplots(1, 1 + bool(metrics), figsize=(11 if metrics else 6, 4))
    axes = axes if metrics else [axes]
    xlabel = 'iteration' if x == 'steps' else 'minutes of training'
    for name, train, val in runs:
        label = f'{name}: ' if len(runs) > 1 else ''
        axes[0].plot(x_values(train, x), [r['loss'] for r in train],
                     label=label + 'loss')
        for key in metrics:
            points = [r for r in val if key in r]
            if points:
                axes[1].plot(x_values(points, x), [r[key] for r in points],
                             marker='o', label=label + key)
    axes[0].set(xlabel=xlabel, ylabel='loss', title='training loss')
    if len(runs) > 1:
        axes[0].legend()
    if metrics:
        axes[1].set(xlabel=xlabel if x == 'minutes' else 'epoch or iteration',
                    title='validation')
        axes[1].legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def print_table(runs):
    """Every validation record: run, step, minutes, metrics."""
    for name, _, val in runs:
        for record in val:
            minutes = record.get('minutes')
            when = f'{minutes:6.1f} min' if minutes is not None else '     - min'
            values = '  '.join(f'{k}={record[k]:.4g}' for k in METRIC_KEYS if k in record)
            print(f'{name}  step {record["step"]:>6}  {when}  {values}')


def main(argv=None):
    args = parse_args(argv)
    with exit_on_user_error():
        runs = []
        labels = args.labels or [osp.basename(osp.normpath(work_dir))
                                 for work_dir in args.work_dirs]
        for work_dir, label in zip(args.work_dirs, labels):
            train, val = read_scalars(work_dir, args.x == 'minutes')
            if not train:
                raise DataError(f'{work_dir} has no training loss records yet')
            runs.append((label, train, val))
        plot(runs, args.x, args.out, args.title)
        print_table(runs)
        counts = ', '.join(f'{name}: {len(train)} loss and {len(val)} validation'
                           for name, train, val in runs)
        print(f'{counts} records -> {args.out}')


if __name__ == '__main__':
    sys.exit(main())
