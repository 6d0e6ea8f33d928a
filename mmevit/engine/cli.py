"""Shared command-line behaviour of the tools."""
import contextlib
import os
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
