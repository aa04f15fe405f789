"""The layers of the package import downwards only: the library never imports the command-line layer
(``ivnext/cli/``, which only parses and calls), and ``ivnext/utils/`` never imports ``ivnext/models/``.

Read from the source (every ``import`` statement, lazy ones inside functions included), so an import that only
runs on some code path is caught too.
"""
import ast
from pathlib import Path
from typing import Iterator, Tuple

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / 'ivnext'


def imported_modules(path: Path) -> Iterator[Tuple[int, str]]:
    """(line, absolute module name) of every import statement of ``path``, relative imports resolved."""
    package = path.relative_to(REPO).with_suffix('').parts
    package = package[:-1] if package[-1] != '__init__' else package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = '.'.join(package[:len(package) - node.level + 1])
                module = f'{base}.{node.module}' if node.module else base
            else:
                module = node.module or ''
            yield node.lineno, module
            for alias in node.names:  # `from ivnext import cli`
                yield node.lineno, f'{module}.{alias.name}'


def offending_imports(folder: Path, forbidden: str, exempt: Tuple[str, ...] = ()) -> list:
    """``file:line module`` of each import of ``forbidden`` (or below it) from the files under ``folder``."""
    found = []
    for path in sorted(folder.rglob('*.py')):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith(exempt):
            continue
        for line, module in imported_modules(path):
            if module == forbidden or module.startswith(forbidden + '.'):
                found.append(f'{rel}:{line} {module}')
    return sorted(set(found))


def test_no_library_module_imports_the_command_line_layer():
    assert offending_imports(PACKAGE, 'ivnext.cli', exempt=('ivnext/cli/',)) == []


def test_utils_never_import_models():
    assert offending_imports(PACKAGE / 'utils', 'ivnext.models') == []


def test_the_checker_sees_lazy_and_relative_imports(tmp_path, monkeypatch):
    fake = PACKAGE / 'utils' / '_import_graph_probe.py'
    monkeypatch.setattr(Path, 'rglob', lambda self, pattern: iter([fake]))
    monkeypatch.setattr(Path, 'read_text', lambda self: 'def f():\n    from ..models.layers import pos_embed\n'
                                                        '    import ivnext.cli.train\n')
    assert offending_imports(PACKAGE / 'utils', 'ivnext.models') == [
        'ivnext/utils/_import_graph_probe.py:2 ivnext.models.layers',
        'ivnext/utils/_import_graph_probe.py:2 ivnext.models.layers.pos_embed']
    assert offending_imports(PACKAGE, 'ivnext.cli') == ['ivnext/utils/_import_graph_probe.py:3 ivnext.cli.train']
