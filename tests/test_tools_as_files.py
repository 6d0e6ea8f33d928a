"""Every script under tools/ runs as a file from the repository root, as a
user runs it (``python tools/analysis_tools/get_flops.py CONFIG``): with
``--help`` it prints its usage and exits 0. A script that imported another
one (``from tools... import``) would end in ``ModuleNotFoundError`` here."""
import ast
import glob
import os.path as osp

from tests.helpers import ROOT, parse_tools, run_tool

TOOLS = sorted(osp.relpath(path, ROOT) for path in glob.glob(
    osp.join(ROOT, 'tools', '**', '*.py'), recursive=True))


def test_every_tool_is_listed():
    assert {'tools/train.py', 'tools/analysis_tools/benchmark.py',
            'tools/data/make_toy_data.py'} <= set(TOOLS)
    assert not any(path.endswith('__init__.py') for path in TOOLS)


def imported_top_level_names(path):
    """First components of the modules ``path`` imports (absolute imports)."""
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            yield from (alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            yield node.module.split('.')[0]


def test_tools_import_only_the_library():
    """Where the repository root is on ``sys.path`` anyway (an editable
    install's .pth file), ``from tools... import`` would still run: no tool
    imports the repository's ``tools`` or ``tests`` folders."""
    offenders = {tool: names for tool in TOOLS
                 if (names := {'tools', 'tests'} & set(
                     imported_top_level_names(osp.join(ROOT, tool))))}
    assert offenders == {}


def test_every_tool_runs_as_a_file():
    """``python TOOL --help`` exits 0 for every tool (run as files, in one
    process: tests/parse_only.py)."""
    results = parse_tools([[tool, ['--help']] for tool in TOOLS])
    failed = {tool: result['message'] for tool, result in zip(TOOLS, results)
              if not result['ok']}
    assert failed == {}


def test_a_tool_runs_from_the_repository_root():
    """One real run as a user types it: usage on stdout, exit 0."""
    result = run_tool('tools/analysis_tools/get_flops.py', '--help', check=False,
                      timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith('usage: ')
