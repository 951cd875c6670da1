"""Run the code the docs show: a fenced ``python`` block of a Markdown file, as written."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def python_block(doc: str, containing: str) -> str:
    """The one ```python block of ``doc`` (relative to the repository) that contains
    ``containing``, dedented (blocks inside a numbered list are indented)."""
    blocks: list[str] = []
    lines: list[str] | None = None
    for line in (ROOT / doc).read_text(encoding="utf-8").splitlines():
        fence = line.strip()
        if lines is None and fence == "```python":
            lines = []
        elif lines is not None and fence == "```":
            blocks.append(textwrap.dedent("\n".join(lines)))
            lines = None
        elif lines is not None:
            lines.append(line)
    found = [block for block in blocks if containing in block]
    assert len(found) == 1, f"{doc}: {len(found)} python blocks contain {containing!r}"
    return found[0]


def exec_block(doc: str, containing: str) -> dict[str, Any]:
    """The names the block defines, after running it."""
    namespace: dict[str, Any] = {"__name__": f"docs:{doc}"}
    exec(compile(python_block(doc, containing), f"{doc} (python block)", "exec"), namespace)
    return namespace
