"""Run the code the docs show: the fenced blocks of a Markdown file, as written.

:func:`blocks` lists every fenced block of a document (any language); :func:`python_block` and
:func:`exec_block` pick one ``python`` block by its content; :func:`fill` puts the reader's own
values where a block shows placeholders; :func:`run_shell` runs a shell block with bash.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Block:
    doc: str  # relative to the repository
    index: int  # 0-based, in document order
    lang: str  # the fence's info string ("" when none)
    text: str  # dedented (blocks inside a numbered list are indented)
    line: int  # 1-based line of the opening fence

    @property
    def marker(self) -> str:
        """The block's first non-blank line: what the tests key a block by."""
        return next(line.strip() for line in self.text.splitlines() if line.strip())

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line} ({self.lang or 'no language'} block {self.index})"


def blocks(doc: str) -> list[Block]:
    """Every fenced (```) block of ``doc``, in order."""
    found: list[Block] = []
    lines: list[str] | None = None
    lang, start = "", 0
    for number, line in enumerate((ROOT / doc).read_text(encoding="utf-8").splitlines(), 1):
        fence = line.strip()
        if lines is None and fence.startswith("```"):
            lines, lang, start = [], fence[3:].strip(), number
        elif lines is not None and fence == "```":
            text = textwrap.dedent("\n".join(lines))
            found.append(Block(doc, len(found), lang, text, start))
            lines = None
        elif lines is not None:
            lines.append(line)
    assert lines is None, f"{doc}:{start}: a code block is never closed"
    return found


def python_block(doc: str, containing: str) -> str:
    """The one ```python block of ``doc`` that contains ``containing``, dedented."""
    found = [b.text for b in blocks(doc) if b.lang == "python" and containing in b.text]
    assert len(found) == 1, f"{doc}: {len(found)} python blocks contain {containing!r}"
    return found[0]


def exec_block(doc: str, containing: str) -> dict[str, Any]:
    """The names the block defines, after running it."""
    namespace: dict[str, Any] = {"__name__": f"docs:{doc}"}
    exec(compile(python_block(doc, containing), f"{doc} (python block)", "exec"), namespace)
    return namespace


def fill(block: Block, values: Mapping[str, str]) -> str:
    """The block's text with each placeholder the reader replaces (``ak_…``) replaced by the
    value; a placeholder the block no longer shows is an error, so the tests follow the docs."""
    text = block.text
    for placeholder, value in values.items():
        assert placeholder in text, f"{block.where} no longer shows {placeholder!r}"
        text = text.replace(placeholder, value)
    return text


def tool_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its STABLEGATE_* settings, with this checkout's code
    and commands first, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STABLEGATE_")}
    paths = [str(ROOT / "src"), str(ROOT / "clients" / "python" / "src")]
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra)
    return env


def run_shell(script: str, cwd: Path, env: Mapping[str, str], timeout: float = 120) -> str:
    """Runs ``script`` with bash (stopping at the first failing command); returns its stdout."""
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"exit {result.returncode}\n--- script\n{script}\n--- stdout\n{result.stdout}"
        f"\n--- stderr\n{result.stderr}"
    )
    return result.stdout
