"""Shared command-line behaviour of the tools: errors as one line, argument
types."""
import argparse
import contextlib
import os
import re
import sys

from ..errors import MMEvitError

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


def image_shape(text):
    """argparse type: ``'800x1344'`` -> (800, 1344); ``'224'`` -> (224, 224)."""
    match = re.fullmatch(r'(\d+)(?:x(\d+))?', text)
    if not match or int(match.group(1)) < 1 or int(match.group(2) or 1) < 1:
        raise argparse.ArgumentTypeError(
            f'bad shape {text!r}; write HxW (800x1344) or S (224)')
    return int(match.group(1)), int(match.group(2) or match.group(1))
