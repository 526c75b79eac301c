"""The documentation: a short README with both quickstart commands, and links that resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
DOCUMENTS = [README, ROOT / "CHANGELOG.md", *sorted(DOCS.glob("*.md"))]

DEMO_QUICKSTART = (
    "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/elevenlabs-exporter --demo"
)
TEST_QUICKSTART = "./scripts/test.sh"

# [text](target) and ![alt](target), with an optional "title" after the target.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def _prose(markdown: str) -> str:
    """The markdown without fenced code blocks and inline code, where links are not links."""
    lines, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(lines)


def _relative_links(path: Path) -> list[str]:
    text = _prose(path.read_text(encoding="utf-8"))
    return [target for target in LINK.findall(text) if not SCHEME.match(target)]


def _anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a markdown file (duplicates get -1, -2...)."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose(path.read_text(encoding="utf-8").replace("`", "")).splitlines():
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", heading.group(1).strip().lower()))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_readme_is_at_most_300_lines() -> None:
    """The README stays a front door: at most 300 lines, the rest lives in docs/."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines"


def test_readme_has_both_quickstart_commands() -> None:
    """The README shows, each on a line of its own, the command that installs and runs the
    exporter with --demo and the command that installs what the tests need and runs them."""
    lines = [line.strip() for line in README.read_text(encoding="utf-8").splitlines()]
    assert DEMO_QUICKSTART in lines
    assert TEST_QUICKSTART in lines


def test_every_document_in_docs_is_listed_in_the_index_and_the_readme() -> None:
    """docs/README.md and the README's Documentation list link every document in docs/."""
    documents = {path.name for path in DOCS.glob("*.md")} - {"README.md"}
    index = {Path(target.split("#", 1)[0]).name for target in _relative_links(DOCS / "README.md")}
    readme = {
        Path(target.split("#", 1)[0]).name
        for target in _relative_links(README)
        if target.startswith("docs/")
    }
    assert documents - index == set()
    assert documents - readme == set()


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_relative_links_point_at_existing_files(document: Path) -> None:
    """Every relative link in README.md, CHANGELOG.md and docs/*.md names a file or
    directory of the repository that exists."""
    broken = [
        target
        for target in _relative_links(document)
        if (path := target.split("#", 1)[0]) and not (document.parent / path).exists()
    ]
    assert broken == []


@pytest.mark.parametrize("document", DOCUMENTS, ids=_name)
def test_links_into_markdown_point_at_existing_headings(document: Path) -> None:
    """Every link with an anchor into a markdown file (or into the same document) names a
    heading that file has."""
    broken = []
    for target in _relative_links(document):
        path, _, anchor = target.partition("#")
        linked = (document.parent / path) if path else document
        known = linked.suffix == ".md" and linked.exists()
        if anchor and known and anchor not in _anchors(linked):
            broken.append(target)
    assert broken == []
