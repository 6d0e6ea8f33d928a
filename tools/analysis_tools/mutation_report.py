"""Share of mutants killed per package, from mutmut's results in mutants/.

Run by scripts/mutation_score.sh with the mutmut venv's python (the status
names are mutmut's own). A mutant counts as killed when a test failed, timed
out or crashed on it; one that no fast test executes ("no tests") counts as
survived. Mutants mutmut has not run yet are left out and counted apart.

``--draw N`` picks N mutants of each package at random (seeded) and writes
their names to mutants/drawn.txt; the report then counts only those, an
unbiased estimate of each package's score when running every mutant takes
too long.

    python tools/analysis_tools/mutation_report.py --draw N [--seed S]
    python tools/analysis_tools/mutation_report.py [--survivors PACKAGE]
"""
import argparse
import collections
import glob
import json
import math
import os.path as osp
import random

#: Report groups: the issue's three packages (checkpoint reading and
#: whole-model loading are one concern split over two packages).
GROUPS = {
    'models': ('mmevit/models/', ),
    'checkpoint': ('mmevit/checkpoint/', 'mmevit/engine/model_loading.py'),
    'deploy': ('mmevit/deploy/', ),
}
KILLED = {'killed', 'timeout', 'segfault'}
DRAWN = osp.join('mutants', 'drawn.txt')


def group_of(source):
    return next((g for g, prefixes in GROUPS.items()
                 if source.startswith(prefixes)), None)


def read_results(root='mutants'):
    """``{group: [(mutant name, status), ...]}`` of every mutant mutmut made."""
    from mutmut.stats import status_by_exit_code  # the mutmut venv's
    results = collections.defaultdict(list)
    for meta in glob.glob(osp.join(root, 'mmevit', '**', '*.py.meta'),
                          recursive=True):
        group = group_of(osp.relpath(meta, root)[:-len('.meta')])
        if group is None:
            continue
        with open(meta) as f:
            codes = json.load(f)['exit_code_by_key']
        results[group] += [(name, status_by_exit_code[code])
                           for name, code in codes.items()]
    return results


def draw(results, per_package, seed):
    """Names of ``per_package`` mutants of each group, drawn at random."""
    rng = random.Random(seed)
    names = []
    for group in GROUPS:
        members = sorted(name for name, _ in results.get(group, []))
        names += rng.sample(members, min(per_package, len(members)))
    return names


def only_drawn(results):
    """``results`` restricted to the names in mutants/drawn.txt, if any."""
    if not osp.exists(DRAWN):
        return results
    with open(DRAWN) as f:
        drawn = set(f.read().split())
    return {g: [(n, s) for n, s in rows if n in drawn]
            for g, rows in results.items()}


def interval(killed, run, z=1.96):
    """Wilson 95 % interval of a killed share from a sample."""
    if not run:
        return None
    p, z2 = killed / run, z * z
    centre = (p + z2 / (2 * run)) / (1 + z2 / run)
    half = z * math.sqrt(p * (1 - p) / run + z2 / (4 * run * run)) / (
        1 + z2 / run)
    return centre - half, centre + half


def summary_rows(results, counted):
    """One row per group: its mutants, and what became of those ``counted``
    (all of them, or the drawn ones)."""
    rows = []
    for group in GROUPS:
        statuses = collections.Counter(s for _, s in counted.get(group, []))
        pending = statuses.pop('not checked', 0)
        run = sum(statuses.values())
        killed = sum(statuses[s] for s in KILLED)
        rows.append(dict(package=group, mutants=len(results.get(group, [])),
                         counted=run + pending, run=run,
                         killed=killed, score=killed / run if run else None,
                         not_run=pending,
                         survived=statuses['survived'],
                         no_tests=statuses['no tests'],
                         other=run - killed - statuses['survived']
                         - statuses['no tests']))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--survivors', choices=sorted(GROUPS),
                        help='also list the mutants of this package that '
                        'no test killed')
    parser.add_argument('--draw', type=int, metavar='N',
                        help='draw N mutants per package into '
                        'mutants/drawn.txt and print their names')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    results = read_results()
    if args.draw:
        names = draw(results, args.draw, args.seed)
        with open(DRAWN, 'w') as f:
            f.write('\n'.join(names) + '\n')
        print(' '.join(names))
        return
    counted = only_drawn(results)
    print('| package | mutants | drawn | run | killed | score (95 % interval) '
          '| survived | no tests | other | not run |')
    print('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for row in summary_rows(results, counted):
        score = '-'
        if row['score'] is not None:
            low, high = interval(row['killed'], row['run'])
            score = f"{row['score']:.1%} ({low:.0%}-{high:.0%})"
        print(f"| {row['package']} | {row['mutants']} | {row['counted']} | "
              f"{row['run']} | "
              f"{row['killed']} | {score} | {row['survived']} | "
              f"{row['no_tests']} | {row['other']} | {row['not_run']} |")
    if args.survivors:
        for name, status in sorted(counted[args.survivors]):
            if status in ('survived', 'no tests'):
                print(status, name)


if __name__ == '__main__':
    main()
