"""The package layout of ../shared/design.md holds: imports run one way, modules stay small.

api → core → polling → metrics → web, with cli and runtime wiring them and tools on
top; config, log and flags are the foundations anything may use; the simulator uses
nothing of the exporter but the endpoint paths it shares with the client.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "exporter"
LAYERS = {"api": 1, "core": 2, "polling": 3, "metrics": 4, "web": 5}
FOUNDATIONS = ("exporter.config", "exporter.log", "exporter.flags")
TOP = ("exporter.cli", "exporter.runtime", "exporter.__main__", "exporter.tools")
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every exporter module ``path`` imports, at any depth of the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("exporter"):
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("exporter"))
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {name for name in found if name in modules}


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def foundation(name: str) -> bool:
    """The package itself (its version) and the modules every layer may use."""
    return name == "exporter" or within(name, FOUNDATIONS)


def layer(name: str) -> int | None:
    parts = name.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: module_name(p))
def test_imports_never_reach_up_a_layer(path: Path) -> None:
    """A module imports only foundations and modules of its own or lower layers; nothing
    below the top imports cli, runtime or tools; the simulator imports only the paths."""
    name = module_name(path)
    imported = imports_of(path)
    if within(name, ("exporter.simulator",)):
        allowed = {"exporter.api", "exporter.api.paths"}
        assert {i for i in imported if not within(i, ("exporter.simulator",))} <= allowed
        return
    if within(name, TOP):
        return
    own = layer(name)
    for target in imported:
        if within(target, ("exporter.simulator",)) and within(name, ("exporter.tools",)):
            continue
        assert not within(target, TOP), f"{name} imports {target}"
        if foundation(name):
            # Foundations stand alone: config imports only config, and so on.
            home = name.split(".")[:2]
            assert target == "exporter" or target.split(".")[:2] == home, f"{name}: {target}"
            continue
        if foundation(target):
            continue
        target_layer = layer(target)
        assert own is not None, name
        assert target_layer is not None, f"{name} imports {target}"
        assert target_layer <= own, f"{name} imports {target}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: module_name(p))
def test_modules_stay_small(path: Path) -> None:
    """No module grows past ~400 lines: one job each."""
    assert len(path.read_text(encoding="utf-8").splitlines()) <= MAX_LINES
