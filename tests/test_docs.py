"""The commands and snippets in README.md and docs/*.md work as written.

Every shell command in a ```bash block is checked: a `python tools/X.py
ARGS` line runs the tool as a file up to its argument parsing (so the file
exists, imports as a file and accepts ARGS; tests/parse_only.py), `bash
tools/X.sh` scripts exist and parse, `make` targets and `pip` extras exist,
paths into the repository exist. A block right after an HTML comment
`<!-- docs-test: run -->` is run in full. Every ```python block compiles;
a config snippet (one with `_base_`) loads with mmengine's Config, other
snippets run their imports. Local links point at files that exist.
CAPITALISED placeholders (CONFIG, CKPT, ...) stand for the values below.
"""
import ast
import glob
import os
import re
import shlex
import subprocess
import sys

import pytest
from mmengine.config import Config

from tests.helpers import ROOT, parse_tools

DOCS = ['README.md'] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, 'docs', '*.md')))
RUN_MARK = '<!-- docs-test: run -->'
TOY_CONFIG = 'configs/toy/retinanet_efficientvit_m0_toy.py'
#: What each placeholder stands for when a command is parsed.
PLACEHOLDERS = {
    'CONFIG': TOY_CONFIG, 'CKPT': 'model.pth', 'CHECKPOINT': 'model.pth',
    'WORK_DIR': 'work_dirs/x', 'N': '2', 'GPUS': '2', 'NUM_GPUS': '2',
    'PARTITION': 'partition', 'JOB_NAME': 'job', 'IMAGE': 'image.jpg',
    'OUT': 'out.png', 'SRC': 'src.pth', 'DST': 'dst.pth', 'ARCH': 'm4',
    'MODEL': 'model.onnx', 'DIR': 'dir', 'CALIB_DIR': 'calib',
    'SHAPE': '320x320', 'NNODES': '2', 'NODE_RANK': '0', 'PORT': '29500',
    'MASTER_ADDR': '127.0.0.1',
    # literal words, not placeholders: signal names
    'USR1': 'USR1', 'USR2': 'USR2', 'TERM': 'TERM',
}
#: Commands that are not this project's (the shell's, git's, the system's):
#: they are taken as written.
FOREIGN = {'cd', 'export', 'mkdir', 'ln', 'git', 'wget', 'curl', 'cp', 'mv',
           'ls', 'tar', 'unzip', 'source', 'conda', 'sbatch', 'srun',
           'scontrol', 'nvidia-smi', 'echo', 'rm', 'cat'}
PYTHONS = {'python', 'python3', '.venv/bin/python'}


def code_blocks(path):
    """(language, text, first line number, run in full) of each fenced block."""
    lines = open(os.path.join(ROOT, path)).read().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = re.match(r'^\s*```(\w*)\s*$', lines[i])
        if not match:
            i += 1
            continue
        run = i > 0 and lines[i - 1].strip() == RUN_MARK
        start, i = i + 1, i + 1
        while not lines[i].strip().startswith('```'):
            i += 1
        blocks.append((match.group(1), '\n'.join(lines[start:i]), start + 1, run))
        i += 1
    return blocks


#: Shell words that start a loop or run what follows: the command after
#: them is checked.
SHELL_PREFIXES = {'do', 'then', 'else', 'time', '/usr/bin/time', '-v', 'nohup'}
SHELL_SKIPPED = {'done', 'fi', 'wait'}


def expand_braces(token):
    """``a{0,1}b`` and ``a{0..1}b`` -> ``['a0b', 'a1b']``, as the shell
    expands them."""
    match = re.match(r'^(.*?)\{([^{}]*,[^{}]*|\d+\.\.\d+)\}(.*)$', token)
    if not match:
        return [token]
    head, options, tail = match.groups()
    if '..' in options:
        first, last = map(int, options.split('..'))
        options = ','.join(map(str, range(first, last + 1)))
    return [word for option in options.split(',')
            for word in expand_braces(head + option + tail)]


def shell_commands(text):
    """The commands of a shell block as token lists: continuation lines
    joined, comments dropped, split at `&&`, `;`, `|` and `&`, variables set
    in the block expanded, loop headers and keywords dropped."""
    commands, variables = [], {}
    for line in text.replace('\\\n', ' ').splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        command = []
        for token in list(lexer) + [';']:
            if token in ('&&', ';', '|', '||', '&'):
                while command and command[0] in SHELL_PREFIXES:
                    command = command[1:]
                if command and command[0] not in SHELL_SKIPPED | {'for', 'while', 'if'}:
                    commands.append(command)
                command = []
                continue
            token = re.sub(r'\$\{?(\w+)\}?', lambda m: variables.get(m.group(1), m.group(0)),
                           token)
            assignment = re.match(r'^([A-Za-z_]\w*)=(.*)$', token)
            if assignment and not command:
                variables[assignment.group(1)] = assignment.group(2)
            command += expand_braces(token)
    return commands


def substitute(token):
    return PLACEHOLDERS.get(token, token)


def unknown_placeholders(tokens):
    return [t for t in tokens if re.fullmatch(r'[A-Z][A-Z0-9_]+', t)
            and t not in PLACEHOLDERS]


def strip_assignments(tokens):
    while tokens and re.match(r'^[A-Za-z_][A-Za-z0-9_]*=', tokens[0]):
        tokens = tokens[1:]
    return tokens


def make_targets():
    text = open(os.path.join(ROOT, 'Makefile')).read()
    return set(re.findall(r'^([a-z][\w-]*):', text, re.M))


def setup_extras():
    text = open(os.path.join(ROOT, 'setup.py')).read()
    block = text[text.index('extras_require'):]
    return set(re.findall(r"'(\w+)': ", block[:block.index('},')]))


def check_repo_paths(tokens):
    for token in tokens:
        repo_file = r'^(configs|tools|scripts|docs)/\S+\.(py|sh|yml|md)$'
        if '$' not in token and re.match(repo_file, token):
            assert os.path.exists(os.path.join(ROOT, token)), f'no such file: {token}'


def check_command(tokens, parse_batch):
    """Check one command; tools to parse go into ``parse_batch``."""
    tokens = strip_assignments(tokens)
    if not tokens:  # a shell variable set for the lines below
        return
    assert not unknown_placeholders(tokens), (
        f'unknown placeholders {unknown_placeholders(tokens)}: add them to '
        'PLACEHOLDERS in tests/test_docs.py')
    tokens = [substitute(t) for t in tokens]
    check_repo_paths(tokens)
    name, args = tokens[0], tokens[1:]
    if name in PYTHONS and args[:2] == ['-m', 'pip']:
        name, args = 'pip', args[2:]
    if name in PYTHONS and args and args[0] == '-c':
        run_imports(args[1], 'python -c')
    elif name in PYTHONS and args and args[0] == '-m':
        assert args[1] in ('pytest', 'pip'), f'python -m {args[1]}: run tools as files'
    elif name in PYTHONS and args[0] == 'setup.py':
        assert args[-1] == 'egg_info', f'python setup.py {args[-1]}: use pip'
    elif name in PYTHONS:
        script = args[0]
        assert os.path.isfile(os.path.join(ROOT, script)), f'no such file: {script}'
        parse_batch.append([script, args[1:]])
    elif name == 'torchrun':
        script = next(a for a in args if a.endswith('.py'))
        parse_batch.append([script, args[args.index(script) + 1:]])
    elif name == 'bash':
        if '$' in args[0]:  # a script named by a loop variable
            return
        script = os.path.join(ROOT, args[0])
        assert os.path.isfile(script), f'no such file: {args[0]}'
        subprocess.run(['bash', '-n', script], check=True)
    elif name == 'make':
        targets = [a for a in args if '=' not in a and not a.startswith('-')]
        assert set(targets) <= make_targets(), f'make: unknown target in {targets}'
    elif name == 'pip':
        for spec in args:
            extras = re.search(r'\[([\w,]+)\]', spec)
            if extras:
                unknown = set(extras.group(1).split(',')) - setup_extras()
                assert not unknown, f'pip extras {unknown} are not in setup.py'
    elif name == 'mim':
        assert args[0] in ('search', 'train', 'test', 'install'), f'mim {args[0]}'
    else:
        assert name in FOREIGN, (
            f'command {name!r}: teach tests/test_docs.py how to check it')


def blocks_of(lang):
    return [(path, text, line, run) for path in DOCS
            for block_lang, text, line, run in code_blocks(path)
            if block_lang in lang]


SHELL_BLOCKS = blocks_of(('bash', 'shell', 'sh'))
PYTHON_BLOCKS = blocks_of(('python',))


def test_the_docs_have_commands_and_snippets():
    assert len(SHELL_BLOCKS) > 10 and len(PYTHON_BLOCKS) > 2


def test_every_shell_command_names_what_exists_and_options_it_accepts():
    batch, where, failures = [], [], []
    for path, text, line, run in SHELL_BLOCKS:
        for tokens in shell_commands(text):
            before = len(batch)
            try:
                check_command(tokens, batch)
            except Exception as err:  # noqa: BLE001 - every failure is listed
                failures.append(f'{path}:{line}: {" ".join(tokens)}: {err}')
            where += [f'{path}:{line}: {" ".join(tokens)}'] * (len(batch) - before)
    for command, result in zip(where, parse_tools(batch)):
        if not result['ok']:
            failures.append(f'{command}: {result["message"].strip()[-500:]}')
    assert not failures, '\n'.join(failures)


@pytest.mark.parametrize('path,text,line', [
    (p, t, n) for p, t, n, run in SHELL_BLOCKS if run])
def test_commands_marked_to_run_run(path, text, line):
    # `python` is this environment's, as for a user who activated it
    env = dict(os.environ, OMP_NUM_THREADS='1', MPLBACKEND='Agg',
               PATH=os.pathsep.join([os.path.dirname(sys.executable),
                                     os.environ['PATH']]))
    result = subprocess.run(['bash', '-euo', 'pipefail', '-c', text],
                            cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, (
        f'{path}:{line} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}')


@pytest.mark.parametrize('path,text,line', [(p, t, n) for p, t, n, _ in PYTHON_BLOCKS])
def test_every_python_snippet_compiles_and_its_imports_resolve(path, text, line, tmp_path):
    compile(text, f'{path}:{line}', 'exec')
    if '_base_' in text:  # a config snippet: mmengine must load it
        config = tmp_path / 'snippet_config.py'
        config.write_text(text)
        import mmevit  # noqa: F401  (resolves mmevit:: paths)
        cfg = Config.fromfile(str(config))
        assert 'model' in cfg
        return
    run_imports(text, f'{path}:{line}')


def run_imports(code, where):
    """Run the import statements of ``code``."""
    tree = compile(code, where, 'exec', ast.PyCF_ONLY_AST)
    imports = ast.Module(body=[node for node in ast.walk(tree)
                               if isinstance(node, (ast.Import, ast.ImportFrom))],
                         type_ignores=[])
    exec(compile(imports, where, 'exec'), {})


def test_local_links_point_at_files_that_exist():
    missing = []
    for path in DOCS:
        text = open(os.path.join(ROOT, path)).read()
        folder = os.path.dirname(os.path.join(ROOT, path))
        for target in re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', text):
            if re.match(r'^[a-z]+://', target) or target.startswith('mailto:'):
                continue
            if not os.path.exists(os.path.join(folder, target)):
                missing.append(f'{path}: {target}')
    assert not missing, '\n'.join(missing)
