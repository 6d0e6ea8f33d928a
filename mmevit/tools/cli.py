"""Shared command-line behaviour of the tools: errors as one line, argument
types, the arguments several tools take."""
import argparse
import contextlib
import os
import re
import sys

from mmengine.config import DictAction

from ..engine import PREEMPTED_EXIT_STATUS
from ..errors import ConfigError, MMEvitError

#: Errors caused by the user's input: mmevit's own error types (bad config
#: values, data, checkpoints) and missing or already existing files.
USER_ERRORS = (MMEvitError, FileNotFoundError, FileExistsError)


@contextlib.contextmanager
def exit_on_user_error():
    """Report errors caused by the user's input (:data:`USER_ERRORS`) as one
    ``error:`` line with exit status 2; ``MMEVIT_TRACEBACK=1`` shows their
    traceback instead. Every other exception keeps its traceback: it points
    at a bug."""
    try:
        yield
    except USER_ERRORS as err:
        if os.environ.get('MMEVIT_TRACEBACK') == '1':
            raise
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)


def exit_preempted(message):
    """End a run stopped by a preemption signal (its checkpoint saved, see
    :class:`~mmevit.engine.PreemptionHook`): ``message`` on stderr, exit
    status :data:`~mmevit.engine.PREEMPTED_EXIT_STATUS` (75)."""
    print(message, file=sys.stderr)
    sys.exit(PREEMPTED_EXIT_STATUS)


def image_shape(text):
    """argparse type: ``'800x1344'`` -> (800, 1344); ``'224'`` -> (224, 224)."""
    match = re.fullmatch(r'(\d+)(?:x(\d+))?', text)
    if not match or int(match.group(1)) < 1 or int(match.group(2) or 1) < 1:
        raise argparse.ArgumentTypeError(
            f'bad shape {text!r}; write HxW (800x1344) or S (224)')
    return int(match.group(1)), int(match.group(2) or match.group(1))


def add_runner_arguments(parser):
    """The arguments train.py and test.py share after their positional
    ones: ``--work-dir``, ``--cfg-options``, ``--launcher`` and
    ``--local_rank`` (also ``--local-rank``, as torch.distributed.launch
    passes it); read them with :func:`parse_runner_args`."""
    parser.add_argument('--work-dir', help='the dir to save logs, '
                        'checkpoints and evaluation results')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. model.backbone.arch=m5')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_runner_args(parser, argv=None):
    """``parser.parse_args(argv)``, with the ``LOCAL_RANK`` environment
    variable set from ``--local_rank`` unless a launcher set it."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def add_onnx_providers_argument(parser):
    """``--onnx-providers NAME [NAME ...]``: the onnxruntime execution
    providers that run an ``.onnx`` checkpoint (default CPU); see
    :func:`check_onnx_providers_arg`."""
    parser.add_argument(
        '--onnx-providers', nargs='+', metavar='NAME',
        help='onnxruntime execution providers for an .onnx checkpoint, by '
        'preference (default CPUExecutionProvider), e.g. '
        'CUDAExecutionProvider CPUExecutionProvider')


def check_onnx_providers_arg(checkpoint, providers):
    """Raise a ConfigError when ``--onnx-providers`` comes with a
    checkpoint that is not an ``.onnx`` file (it would change nothing)."""
    if providers and not checkpoint.endswith('.onnx'):
        raise ConfigError(f'--onnx-providers runs an .onnx checkpoint; '
                          f'{checkpoint} is not one')
