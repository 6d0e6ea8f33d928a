"""Errors caused by what the user asked the tools to do."""


class BenchmarkInputError(ValueError):
    """A bad request (device, size, batch, arch, config): the tools print
    its one-line message instead of a traceback."""
