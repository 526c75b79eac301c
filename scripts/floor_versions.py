"""The lowest versions pyproject.toml allows, for the floor test run (scripts/test-floor.sh).

``python3 scripts/floor_versions.py constraints`` prints one ``name==version`` line per
runtime dependency, from its ``>=`` bound: a pip constraints file. Every runtime
dependency must state such a bound, or this fails: a floor nobody tests is a guess.

``python3 scripts/floor_versions.py tools`` prints the test extra's requirements for
the tools the unit tests need (pytest and its plugins, respx, hypothesis, trustme),
as pyproject states them.

``python scripts/floor_versions.py check FILE``, run by the floor venv's python, fails
unless every constraint of FILE is the version installed there.

Standard library only: it runs before any venv exists.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
UNIT_TEST_TOOLS = ("pytest", "pytest-timeout", "pytest-asyncio", "respx", "hypothesis", "trustme")
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*)")


def _name(requirement: str) -> str:
    match = REQUIREMENT.match(requirement)
    if match is None:
        raise SystemExit(f"floor_versions: cannot read requirement {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def constraints(project: dict[str, object]) -> list[str]:
    """``name==floor`` for each runtime dependency."""
    lines = []
    dependencies = project["dependencies"]
    assert isinstance(dependencies, list)
    for requirement in dependencies:
        match = REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"floor_versions: cannot read requirement {requirement!r}")
        floors = [s.strip()[2:].strip() for s in match.group(3).split(",") if ">=" in s]
        if len(floors) != 1:
            raise SystemExit(
                f"floor_versions: {requirement!r} needs exactly one '>=' lower bound "
                "(the version the floor test run installs)"
            )
        lines.append(f"{_name(requirement)}=={floors[0]}")
    return lines


def tools(project: dict[str, object]) -> list[str]:
    """The unit-test tools' requirements from the ``test`` extra."""
    extras = project["optional-dependencies"]
    assert isinstance(extras, dict)
    wanted = {_name(r): r for r in extras["test"]}
    missing = [t for t in UNIT_TEST_TOOLS if t not in wanted]
    if missing:
        raise SystemExit(f"floor_versions: the test extra lacks {missing}")
    return [wanted[t] for t in UNIT_TEST_TOOLS]


def _release(text: str) -> tuple[int, ...]:
    """``6`` and ``6.0`` alike, as pip compares them."""
    parts = [int(p) for p in text.split(".")]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def check(path: Path) -> int:
    """0 when each ``name==version`` of ``path`` is what this interpreter has installed."""
    wrong = []
    for line in path.read_text(encoding="utf-8").split():
        name, wanted = line.split("==")
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "nothing"
        if installed == "nothing" or _release(installed) != _release(wanted):
            wrong.append(f"{name}: {installed} installed, floor {wanted}")
    for problem in wrong:
        print(f"floor_versions: {problem}", file=sys.stderr)
    return 1 if wrong else 0


def main(argv: list[str]) -> int:
    """Print the constraints or the tools, one per line, or check an installation."""
    if len(argv) == 2 and argv[0] == "check":
        return check(Path(argv[1]))
    if argv not in (["constraints"], ["tools"]):
        print("usage: floor_versions.py constraints|tools|check FILE", file=sys.stderr)
        return 2
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    print("\n".join(constraints(project) if argv == ["constraints"] else tools(project)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
