"""The repository is self-contained: no file points outside it, and every citation of the design
(``docs/DESIGN.md §N``) names a section that exists and says what the citation relies on."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from stablegate.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "DESIGN.md"
SELF = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Spelled in pieces so this file does not match itself.
OUTSIDE_PATHS = (".." + "/shared", "/" + "work/")
SKIPPED_DIRS = {
    ".git",
    ".venv",
    "node_modules",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
}

SECTION_HEADING = re.compile(r"^## (\d+)\. (.+)$", re.MULTILINE)
# "docs/DESIGN.md §3", "`docs/DESIGN.md` §3", "[DESIGN.md §3](...)", and the retired
# "DESIGN section 3" / "DESIGN.md section 3" forms (so they are reported, not missed).
CITATION = re.compile(r"(?P<name>[\w./-]*DESIGN(?:\.md)?)[`\]]*\s*(?:§\s*|section\s+)(?P<n>\d+)")
DESIGN_ANCHOR = re.compile(r"\(((?:docs/)?DESIGN\.md)#([\w-]+)\)")
INTERNAL_REFERENCE = re.compile(r"§(\d+)")


def tracked_files() -> list[Path]:
    """The files git tracks (a source tree without git: every file outside tool directories)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return [
            path
            for path in ROOT.rglob("*")
            if path.is_file() and not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts)
        ]
    return [ROOT / name for name in out.decode("utf-8").split("\0") if name]


def text_files() -> dict[str, str]:
    """Relative path -> text of every tracked UTF-8 file (binary files are skipped)."""
    texts: dict[str, str] = {}
    for path in tracked_files():
        if not path.is_file():  # deleted in the work tree, not yet committed
            continue
        try:
            texts[path.relative_to(ROOT).as_posix()] = path.read_text("utf-8")
        except UnicodeDecodeError:
            continue
    return texts


def design_sections() -> dict[int, str]:
    return {int(n): title for n, title in SECTION_HEADING.findall(DESIGN.read_text("utf-8"))}


def github_anchor(title: str, number: int) -> str:
    """The anchor GitHub gives a ``## N. Title`` heading."""
    text = f"{number}. {title}".strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def test_design_sections_are_numbered_one_to_n() -> None:
    numbers = [int(n) for n, _ in SECTION_HEADING.findall(DESIGN.read_text("utf-8"))]
    assert numbers, "docs/DESIGN.md has no '## N. Title' sections"
    assert numbers == list(range(1, len(numbers) + 1))


def test_no_tracked_file_refers_outside_the_repository() -> None:
    found = [
        f"{path}:{line_of(text, match.start())}: {marker}"
        for path, text in text_files().items()
        for marker in OUTSIDE_PATHS
        for match in re.finditer(re.escape(marker), text)
    ]
    assert not found, "paths outside the repository:\n" + "\n".join(found)


def test_every_design_citation_names_an_existing_section() -> None:
    sections = design_sections()
    bad: list[str] = []
    count = 0
    for path, text in text_files().items():
        if path in ("docs/DESIGN.md", SELF):  # this file only shows spellings in its examples
            continue
        for match in CITATION.finditer(text):
            count += 1
            where = f"{path}:{line_of(text, match.start())}: {match.group(0)!r}"
            name, number = match.group("name"), int(match.group("n"))
            # Inside docs/ a relative link to DESIGN.md is the natural spelling.
            allowed = {"docs/DESIGN.md"} | ({"DESIGN.md"} if path.startswith("docs/") else set())
            if name not in allowed:
                bad.append(f"{where}: cite it as docs/DESIGN.md §N")
            elif number not in sections:
                bad.append(f"{where}: docs/DESIGN.md has no section {number}")
    assert not bad, "\n".join(bad)
    assert count >= 20, f"expected the code's citations of the design, found {count}"


def test_links_into_design_use_existing_anchors() -> None:
    anchors = {github_anchor(title, n) for n, title in design_sections().items()}
    bad = [
        f"{path}:{line_of(text, match.start())}: #{match.group(2)}"
        for path, text in text_files().items()
        for match in DESIGN_ANCHOR.finditer(text)
        if match.group(2) not in anchors
    ]
    assert not bad, "links to missing DESIGN.md headings:\n" + "\n".join(bad)


def test_design_refers_only_to_its_own_sections() -> None:
    sections = design_sections()
    text = DESIGN.read_text("utf-8")
    missing = sorted({int(n) for n in INTERNAL_REFERENCE.findall(text)} - set(sections))
    assert not missing, f"docs/DESIGN.md refers to sections it does not have: {missing}"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("(DESIGN section 2)", ("DESIGN", "2")),
        (
            "see " + OUTSIDE_PATHS[0] + "/DESIGN.md section 3",
            (OUTSIDE_PATHS[0] + "/DESIGN.md", "3"),
        ),
        ("(docs/DESIGN.md §6)", ("docs/DESIGN.md", "6")),
        ("[DESIGN.md §3](DESIGN.md#3-orders)", ("DESIGN.md", "3")),
        ("`docs/DESIGN.md` §12", ("docs/DESIGN.md", "12")),
    ],
)
def test_citation_pattern_sees_every_spelling(line: str, expected: tuple[str, str]) -> None:
    match = CITATION.search(line)
    assert match is not None
    assert (match.group("name"), match.group("n")) == expected


def test_readme_layout_lists_every_package() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    layout = readme[readme.index("## Layout") :]
    package = ROOT / "src" / "stablegate"
    names = [
        f"`{p.name}/`" if p.is_dir() else f"`{p.name}`"
        for p in package.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.name != "__init__.py")
    ]
    missing = sorted(name for name in names if name not in layout)
    assert not missing, f"README's Layout section does not list {missing}"
    assert "docs/DESIGN.md" in layout


def test_design_lists_every_setting() -> None:
    text = DESIGN.read_text("utf-8")
    configuration = text[text.index("## 10. ") : text.index("## 11. ")]
    missing = sorted(
        name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in configuration
    )
    assert not missing, f"docs/DESIGN.md §10 does not describe STABLEGATE_{missing}"
