"""The one table writer of the measuring tools, and JSON files and plots
of their rows, with the machine they ran on."""
import datetime
import json
import platform
import re
import sys

import torch


def machine_info(device):
    """Facts that make a timing reproducible: CPU/GPU, threads, versions.

    Args:
        device (torch.device): The device the rows were measured on.
    """
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    info = dict(date=datetime.date.today().isoformat(), cpu=cpu,
                threads=torch.get_num_threads(), device=str(device),
                torch=torch.__version__, python=platform.python_version(),
                command=' '.join(sys.argv))
    if device.type == 'cuda':
        info['gpu'] = torch.cuda.get_device_name(device)
    return info


def _cell(value):
    if isinstance(value, float):
        return f'{value:.3g}' if abs(value) < 1e-2 and value else f'{value:.2f}'
    if isinstance(value, list):
        return 'x'.join(str(v) for v in value)
    return str(value)


def format_table(rows, columns):
    """A Markdown table of ``rows`` (dicts) restricted to ``columns``.

    Args:
        rows (list[dict]): Benchmark rows.
        columns (Sequence[str]): Keys to show, in order.

    Returns:
        str: The table, one line per row.
    """
    cells = [[_cell(row.get(c, '')) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells))
              for i, c in enumerate(columns)]

    def line(values):
        return '| ' + ' | '.join(v.ljust(w)
                                 for v, w in zip(values, widths)) + ' |'

    return '\n'.join([line(columns),
                      line(['-' * w for w in widths])] +
                     [line(r) for r in cells])


def present_columns(rows, columns):
    """The ``columns`` that at least one row has, in order."""
    return [c for c in columns if any(c in row for row in rows)]


def write_json(path, rows, meta):
    """Write ``{'meta': meta, 'rows': rows}`` to ``path``."""
    with open(path, 'w') as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=2)


def row_label(row):
    """A plot label of a benchmark row: model, part, path and threads."""
    return ', '.join(str(row[key]) for key in ('model', 'part', 'path')
                     if key in row) + f" ({row['threads']} threads)"


def _new_plot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt.subplots(figsize=(8, 5))


def _save_plot(fig, ax, path, title, xlabel, ylabel):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    import matplotlib.pyplot as plt
    plt.close(fig)


def plot_latency_vs_size(rows, path, title):
    """One line per model, part, path and thread count: median latency (ms)
    against input pixels.

    Args:
        rows (list[dict]): Benchmark rows (``model``, ``part``, ``path``,
            ``threads``, ``shape``, ``latency_ms``).
        path (str): Output image (``.png``).
        title (str): Figure title (say the machine).
    """
    fig, ax = _new_plot()
    sizes = {}
    for label in dict.fromkeys(map(row_label, rows)):
        points = sorted((r['shape'][2] * r['shape'][3] / 1e6, r['latency_ms'])
                        for r in rows if row_label(r) == label)
        ax.plot(*zip(*points), marker='o', label=label)
    for r in rows:
        sizes[r['shape'][2] * r['shape'][3] / 1e6] = \
            f"{r['shape'][2]}x{r['shape'][3]}"
    ax.set_xticks(list(sizes), list(sizes.values()), rotation=45,
                  fontsize=8)
    _save_plot(fig, ax, path, title, 'input size H x W (axis linear in pixels)',
               'median latency (ms)')


#: An EfficientViT variant in a model's name (config or arch).
VARIANT = re.compile(r'(?i)(efficientvit[_-])(m\d)')


def model_family(model):
    """The models one line joins: the EfficientViT variants of one config
    family (``rtmdet_efficientvit_m*_coco``); any other model alone."""
    return VARIANT.sub(lambda m: m.group(1) + m.group(2)[0] + '*', model)


def short_name(model):
    """A point's label: the variant (``M0``) or the config without its
    schedule (``rtmdet_tiny``)."""
    variant = VARIANT.search(model)
    return variant.group(2).upper() if variant else re.sub(r'_\d+xb\d+.*$', '', model)


def plot_latency_vs_gflop(rows, path, title):
    """Median latency (ms) against the model's GFLOP at one input size: one
    line per model family (:func:`model_family`), path and thread count,
    single models as points, each point named (:func:`short_name`).

    Args:
        rows (list[dict]): Benchmark rows (``model``, ``path``, ``threads``,
            ``gflop``, ``latency_ms``) of one input size.
        path (str): Output image (``.png``).
        title (str): Figure title (say the machine and the size).
    """
    fig, ax = _new_plot()
    series = dict.fromkeys((model_family(r['model']), r['path'], r['threads']) for r in rows)
    for family, path_name, threads in series:
        points = sorted((r['gflop'], r['latency_ms'], r['model']) for r in rows
                        if (model_family(r['model']), r['path'], r['threads'])
                        == (family, path_name, threads))
        ax.plot([p[0] for p in points], [p[1] for p in points], marker='o',
                linestyle='-' if len(points) > 1 else 'none',
                label=f'{family}, {path_name}, {threads} thread(s)')
        for gflop, ms, model in points:
            ax.annotate(short_name(model), (gflop, ms), fontsize=8, xytext=(4, 4),
                        textcoords='offset points')
    _save_plot(fig, ax, path, title, 'GFLOP of the network (multiply-add = 2)',
               'median latency, whole model (ms)')
