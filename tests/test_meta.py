"""Meta-tests: the contract in gateway/hookspecs.py is tested hook by hook."""

from __future__ import annotations

import ast
from pathlib import Path

from gateway import hookspecs

TESTS = Path(__file__).parent


def hook_names() -> list[str]:
    return sorted(
        name for name, value in vars(hookspecs).items()
        if name.startswith("gateway_") and callable(value)
    )


def collect_test_names() -> set[str]:
    names = set()
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
    return names


def test_every_hook_has_a_test() -> None:
    """Each hook needs a test whose name starts ``test_hook_`` and contains the hook's name."""
    tests = [t for t in collect_test_names() if t.startswith("test_hook_")]
    missing = [h for h in hook_names() if not any(h in t for t in tests)]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


def test_every_hook_is_documented() -> None:
    for name in hook_names():
        doc = getattr(hookspecs, name).__doc__ or ""
        assert len(doc.strip()) > 40, f"{name} needs a docstring saying when and what"


def test_probe_plugin_implements_every_hook() -> None:
    from tests.plugins import probe

    assert set(hook_names()) <= {n for n in vars(probe) if n.startswith("gateway_")}
