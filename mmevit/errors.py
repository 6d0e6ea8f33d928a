"""Errors caused by the user's input.

The tools print these as one ``error:`` line (exit status 2); any other
exception keeps its traceback, since it points at a bug.
"""


class MMEvitError(Exception):
    """Base class of errors that name a bad input and the valid choices."""


class ConfigError(MMEvitError, ValueError):
    """A config or command-line value mmevit checks is not valid."""


class DataError(MMEvitError, ValueError):
    """A dataset file (annotations, images, label maps) is missing or
    unusable."""


class CheckpointError(MMEvitError, RuntimeError):
    """A checkpoint file is missing, unreadable, unsafe or does not fit."""
