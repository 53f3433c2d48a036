"""The import rules the architecture rests on, checked on the source: data flows HTTP -> order -> job store ->
worker -> engine, so HTTP never reaches into the workers, and neither the settings nor the order know the
engine (or HTTP)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ltxserve

PACKAGE = Path(ltxserve.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, absolute, at any depth (lazy imports inside functions count)."""
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _files(*parts: str) -> list[Path]:
    target = PACKAGE.joinpath(*parts)
    return sorted(target.rglob("*.py")) if target.is_dir() else [target]


def _offenders(files: list[Path], forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in files:
        bad = sorted(name for name in imports(path) if name.startswith(forbidden))
        if bad:
            found[str(path.relative_to(PACKAGE))] = bad
    return found


def test_the_import_reader_sees_relative_and_lazy_imports(tmp_path):
    assert "ltxserve.workers.supervisor" in imports(PACKAGE / "roots" / "server.py")
    assert "ltxserve.roots.worker.load_engine" in imports(PACKAGE / "cli" / "main.py")  # inside a function


@pytest.mark.parametrize(
    ("where", "forbidden"),
    [
        (("api",), ("ltxserve.workers", "torch", "diffusers", "ltxserve.roots")),
        (("config.py",), ("ltxserve.engine", "ltxserve.api", "ltxserve.workers")),
        (("order",), ("ltxserve.engine", "ltxserve.api", "ltxserve.workers", "ltxserve.jobs", "fastapi", "pydantic")),
        (("engine",), ("ltxserve.api", "ltxserve.jobs", "ltxserve.billing", "ltxserve.workers", "fastapi")),
        (("workers",), ("ltxserve.api", "fastapi")),
        (("client",), ("ltxserve.api", "ltxserve.engine", "ltxserve.jobs", "ltxserve.order", "ltxserve.config",
                       "torch", "pydantic", "fastapi")),
    ],
)
def test_a_layer_imports_nothing_above_or_beside_it(where, forbidden):
    assert _offenders(_files(*where), forbidden) == {}


def test_the_resolution_list_is_written_once():
    """In the code (the playground gets it from the server's vocabulary.js); docs and help text may name them."""
    spelled = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*")
        if path.suffix in (".py", ".js", ".html") and '"2k"' in path.read_text() and '"4k"' in path.read_text()
    }
    assert spelled == {"order/vocabulary.py"}
