"""Tables and JSON files of benchmark rows, with the machine they ran on."""
import datetime
import json
import platform
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


def write_json(path, rows, meta):
    """Write ``{'meta': meta, 'rows': rows}`` to ``path``."""
    with open(path, 'w') as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=2)
