"""The import directions of ARCHITECTURE.md, read from the source: a package that reaches
into one it may not import fails here, naming the file and the line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# package folder -> the top-level imports it must never make
FORBIDDEN: dict[str, frozenset[str]] = {
    "agent/graph_llm": frozenset({"agent", "workflows", "tools", "token_server"}),
    "agent": frozenset({"token_server"}),
    "workflows": frozenset({"agent", "livekit", "token_server"}),
    "tools": frozenset({"agent", "workflows", "livekit", "langgraph", "token_server"}),
    "token_server": frozenset({"agent", "workflows", "tools"}),
}
# (file, module) pairs the docs name as deliberate: GraphLLM reads spoken yes/no with the
# project's one vocabulary (docs/graph-llm.md, "Lifting the package")
EXCEPTIONS = frozenset({("agent/graph_llm/speech.py", "workflows.confirm")})


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def _package_of(path: Path) -> str:
    relative = path.relative_to(ROOT).as_posix()
    return max((p for p in FORBIDDEN if relative.startswith(p + "/")), key=len)


def _violations(package: str) -> list[str]:
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if _package_of(path) != package:
            continue  # a nested package with rules of its own (agent/graph_llm in agent)
        relative = path.relative_to(ROOT).as_posix()
        own = "agent.graph_llm" if package == "agent/graph_llm" else None
        for line, module in _imports(path):
            if own and (module == own or module.startswith(own + ".")):
                continue
            if module.split(".")[0] in FORBIDDEN[package] and (relative, module) not in EXCEPTIONS:
                wrong.append(f"{relative}:{line} imports {module}")
    return wrong


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_the_architecture_allows(package: str) -> None:
    assert _violations(package) == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom livekit.agents import llm\nfrom . import sibling\n")
    assert _imports(sample) == [(1, "os"), (2, "livekit.agents")]


def test_every_exception_is_still_needed() -> None:
    for relative, module in EXCEPTIONS:
        assert (ROOT / relative).exists(), relative
        assert module in {m for _, m in _imports(ROOT / relative)}, (relative, module)
