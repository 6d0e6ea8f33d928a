"""Latency-versus-input-size plot of benchmark rows."""


def plot_latency_vs_size(rows, path, title):
    """One line per row name: median latency (ms) against input pixels.

    Args:
        rows (list[dict]): Benchmark rows (``name``, ``shape``,
            ``latency_ms``).
        path (str): Output image (``.png``).
        title (str): Figure title (say the machine and thread count).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    sizes = {}
    for name in dict.fromkeys(row['name'] for row in rows):
        points = sorted((r['shape'][2] * r['shape'][3] / 1e6, r['latency_ms'])
                        for r in rows if r['name'] == name)
        ax.plot(*zip(*points), marker='o', label=name)
    for r in rows:
        sizes[r['shape'][2] * r['shape'][3] / 1e6] = \
            f"{r['shape'][2]}x{r['shape'][3]}"
    ax.set_xticks(list(sizes), list(sizes.values()), rotation=45,
                  fontsize=8)
    ax.set_xlabel('input size H x W (axis linear in pixels)')
    ax.set_ylabel('median latency (ms)')
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
