"""Run tools as files up to their argument parsing, in one process.

Reads a JSON list of ``[script, [args...]]`` on stdin and prints a JSON list
of ``{"ok": bool, "message": str}``, one per command: each script is run as
``python SCRIPT ARGS`` would run it (``runpy.run_path`` as ``__main__``;
the tools import nothing from their own folders), and stops right after its first
successful ``parse_args``/``parse_known_args``. Used by tests/test_docs.py
to check that every command in the docs names a real tool and options it
accepts, without doing the work.
"""
import argparse
import contextlib
import io
import json
import runpy
import sys


class Parsed(Exception):
    """Raised once the tool's arguments parsed."""


def stop_after_parsing():
    """Make the first top-level parse of any ArgumentParser raise Parsed once
    it succeeded (``parse_args`` calls ``parse_known_args`` itself, and must
    still report unrecognized arguments)."""
    parse_args = argparse.ArgumentParser.parse_args
    parse_known_args = argparse.ArgumentParser.parse_known_args
    depth = [0]

    def wrap(method):
        def parse(self, *args, **kwargs):
            depth[0] += 1
            try:
                result = method(self, *args, **kwargs)
            finally:
                depth[0] -= 1
            if depth[0] == 0:
                raise Parsed()
            return result
        return parse

    argparse.ArgumentParser.parse_args = wrap(parse_args)
    argparse.ArgumentParser.parse_known_args = wrap(parse_known_args)


def run_one(script, args):
    stderr = io.StringIO()
    sys.argv = [script] + args
    try:
        with contextlib.redirect_stderr(stderr), \
                contextlib.redirect_stdout(io.StringIO()):
            runpy.run_path(script, run_name='__main__')
    except Parsed:
        return dict(ok=True, message='')
    except SystemExit as exc:  # --help exits 0 once it printed the usage
        return dict(ok=exc.code in (0, None),
                    message=f'exit {exc.code}: {stderr.getvalue()}')
    except BaseException as exc:  # noqa: B902 - reported to the test
        return dict(ok=False, message=f'{type(exc).__name__}: {exc}')
    return dict(ok=False, message='the tool ran without parsing arguments')


def main():
    stop_after_parsing()
    commands = json.load(sys.stdin)
    results = [run_one(script, args) for script, args in commands]
    print(json.dumps(results))


if __name__ == '__main__':
    main()
