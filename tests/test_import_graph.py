"""mmevit's subpackages import each other in one direction only.

The graph is read from the source with ``ast``: every ``import`` and
``from ... import`` of a module, at module level and inside functions, is an
edge from the module's subpackage (``mmevit.models``, ``mmevit.checkpoint``,
``mmevit.errors`` ...) to the imported one. A cycle between two subpackages
means neither can be understood, tested or changed without the other.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'mmevit'


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imported_modules(path):
    """Absolute names of the mmevit modules that ``path`` imports."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rsplit('.', 1)[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                source = '.'.join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            yield source
            # `from . import engine` imports the submodule mmevit.engine
            yield from (f'{source}.{alias.name}' for alias in node.names)


def subpackage(module):
    """``mmevit.models.layers.attention`` -> ``mmevit.models``; None for
    modules outside mmevit and for the package root."""
    parts = module.split('.')
    if parts[0] != 'mmevit' or len(parts) < 2:
        return None
    return '.'.join(parts[:2])


def known(module):
    parts = module.split('.')
    path = ROOT.joinpath(*parts)
    return path.with_suffix('.py').is_file() or (path / '__init__.py').is_file()


def subpackage_graph():
    """``{subpackage: {subpackages it imports}}`` over mmevit/**/*.py."""
    graph = {}
    for path in sorted(PACKAGE.rglob('*.py')):
        if '.mim' in path.parts:
            continue
        source = subpackage(module_name(path))
        if source is None:  # mmevit/__init__.py: imports every part
            continue
        targets = graph.setdefault(source, set())
        for module in imported_modules(path):
            target = subpackage(module)
            if target and target != source and known(target):
                targets.add(target)
    return graph


def find_cycle(graph):
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state = {}

    def visit(node, trail):
        state[node] = 'open'
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 'open':
                return trail[trail.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, trail + [nxt])
                if cycle:
                    return cycle
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


def test_graph_reader_sees_function_level_and_relative_imports(tmp_path):
    """The reader finds the kinds of import a cycle hides behind."""
    path = PACKAGE / 'models' / 'backbones' / 'efficientvit.py'
    modules = set(imported_modules(path))
    assert 'mmevit.errors' in modules  # `from ...errors import ConfigError`
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set()}) is None


def test_no_import_cycle_between_subpackages():
    graph = subpackage_graph()
    assert {'mmevit.models', 'mmevit.checkpoint', 'mmevit.engine'} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, 'import cycle: ' + ' -> '.join(cycle)



def test_key_conversion_is_a_leaf():
    """The backbone's checkpoint key conversion imports no mmevit module, so
    the backbone, its loaders and the conversion tool share it freely."""
    path = PACKAGE / 'models' / 'backbones' / 'key_conversion.py'
    assert [m for m in imported_modules(path) if m.startswith('mmevit')] == []


def test_model_library_does_not_import_the_tools_package():
    """``mmevit.tools`` serves the command-line tools only: no other part
    of the package imports it."""
    graph = subpackage_graph()
    assert 'mmevit.tools' in graph
    importers = sorted(s for s, targets in graph.items()
                       if 'mmevit.tools' in targets)
    assert importers == []


def edits_sys_path(tree):
    """True if the module calls a method of ``sys.path`` (insert, append
    ...) or assigns to it."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and ast.unparse(node) == 'sys.path':
            parent = getattr(node, 'parent', None)
            if isinstance(parent, (ast.Attribute, ast.Subscript)) or isinstance(
                    getattr(parent, 'ctx', None), ast.Store):
                return True
        for child in ast.iter_child_nodes(node):
            child.parent = node
    return False


def test_no_module_edits_sys_path():
    """The package, the tools and the tests import each other by package
    name (``mmevit.tools.benchmark``, ``tests.official``), never by
    putting folders on ``sys.path``."""
    assert edits_sys_path(ast.parse('import sys\nsys.path.insert(0, "x")'))
    assert not edits_sys_path(ast.parse('import sys\nprint(sys.path)'))
    offenders = [str(path.relative_to(ROOT))
                 for folder in ('mmevit', 'tools', 'tests', 'scripts')
                 for path in sorted((ROOT / folder).rglob('*.py'))
                 if '.mim' not in path.parts
                 and edits_sys_path(ast.parse(path.read_text()))]
    assert offenders == []
