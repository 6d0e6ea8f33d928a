"""Comparing a checkpoint's keys and shapes with a model's, for the strict
loaders of backbones and whole models."""


def accept_unfused(expected, weights, prefix=''):
    """Let a backbone built fused (``deploy=True``) under ``prefix`` take
    unfused weights, which it folds on load: drop the checkpoint's BN entries
    and the fused conv biases it does not have (both dicts, in place)."""
    for key in [k for k in weights if k.startswith(prefix) and '.bn.' in k]:
        del weights[key]
    for key in [k for k in expected if k.startswith(prefix)
                and k.endswith('.conv.bias') and k not in weights]:
        del expected[key]


def _short(keys, limit):
    keys = sorted(keys)
    more = f' ... (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def key_problems(expected, weights):
    """The missing, unexpected and mis-shaped keys of ``weights`` against
    ``expected`` (both state dicts), as message parts; empty if they fit."""
    missing = expected.keys() - weights.keys()
    unexpected = weights.keys() - expected.keys()
    mismatched = [
        f'{k} {tuple(weights[k].shape)} vs {tuple(expected[k].shape)}'
        for k in expected.keys() & weights.keys()
        if weights[k].shape != expected[k].shape
    ]
    problems = []
    if missing:
        problems.append(f'{len(missing)} missing keys: {_short(missing, 5)}')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected keys: '
                        f'{_short(unexpected, 5)}')
    if mismatched:
        problems.append(f'{len(mismatched)} shape mismatches (checkpoint vs '
                        f'model): {_short(mismatched, 3)}')
    return problems
