"""Shared command-line behaviour of the tools."""
import contextlib
import os
import sys

from ..checkpoint import CheckpointError

USER_ERRORS = (CheckpointError, FileNotFoundError, FileExistsError,
               ValueError)


@contextlib.contextmanager
def exit_on_user_error():
    """Report errors caused by the user's input (missing files, bad
    checkpoints, bad config values) as one ``error:`` line with exit status
    2. ``MMEVIT_TRACEBACK=1`` shows the traceback instead."""
    try:
        yield
    except USER_ERRORS as err:
        if os.environ.get('MMEVIT_TRACEBACK') == '1':
            raise
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
