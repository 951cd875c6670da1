"""What the README states that the code decides: its error codes, the receive-window header's
spelling, the API reference at ``/docs``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.docs_support import ROOT

SRC = ROOT / "src" / "stablegate"
ERRORS_START = "5. **Handle errors.**"
CODE = re.compile(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+|[a-z]+)`")
# Where a code is not in a `code=` / class `code =` / {"code": ...} spelling.
RENDERER_NAMES = ("error_response",)


def _string(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def codes_in(tree: ast.AST) -> set[str]:
    """The error codes one module can answer with: ``code="…"`` arguments, ``code = "…"`` in a
    class body, ``{"code": "…"}`` bodies, the values of ``*_CODES`` tables and their ``.get``
    defaults, and the code argument of ``error_response(status, "…", …)``."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found |= {s for k in node.keywords if k.arg == "code" and (s := _string(k.value))}
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in RENDERER_NAMES and len(node.args) > 1 and (s := _string(node.args[1])):
                found.add(s)
            owner = func.value if isinstance(func, ast.Attribute) else None
            if name == "get" and isinstance(owner, ast.Name) and owner.id.endswith("_CODES"):
                found |= {s for arg in node.args[1:] if (s := _string(arg))}
        elif isinstance(node, ast.ClassDef):
            for statement in node.body:
                target, value = None, None
                if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                    target, value = statement.targets[0], statement.value
                elif isinstance(statement, ast.AnnAssign):
                    target, value = statement.target, statement.value
                if isinstance(target, ast.Name) and target.id == "code" and (s := _string(value)):
                    found.add(s)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if _string(key) == "code" and (s := _string(value)):
                    found.add(s)
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if any(n.endswith("_CODES") for n in names):
                found |= {s for v in node.value.values if (s := _string(v))}
    return found


def gateway_error_codes() -> set[str]:
    codes: set[str] = set()
    for path in sorted(SRC.rglob("*.py")):
        codes |= codes_in(ast.parse(path.read_text("utf-8"), str(path)))
    return codes


def readme_error_codes() -> set[str]:
    readme = (ROOT / "README.md").read_text("utf-8")
    start = readme.index(ERRORS_START)
    section = readme[start : readme.index("\n#", start)]
    return set(CODE.findall(section))


def test_the_collector_sees_every_spelling() -> None:
    source = """
class E(Exception):
    code: str = "class_annotated"
class F(E):
    code = "class_plain"
raise E("x", code="keyword")
body = {"error": {"code": "dict_body", "message": "m"}}
_HTTP_CODES = {404: "table_value"}
_HTTP_CODES.get(500, "table_default")
error_response(500, "renderer_argument", "m")
"""
    assert codes_in(ast.parse(source)) == {
        "class_annotated",
        "class_plain",
        "keyword",
        "dict_body",
        "table_value",
        "table_default",
        "renderer_argument",
    }


def test_the_readme_lists_exactly_the_error_codes_the_gateway_has() -> None:
    gateway, readme = gateway_error_codes(), readme_error_codes()
    assert len(gateway) > 30, sorted(gateway)
    assert not gateway - readme, f"README.md's error list misses {sorted(gateway - readme)}"
    assert not readme - gateway, (
        f"README.md lists codes the gateway never uses: {sorted(readme - gateway)}"
    )


def docs_texts() -> dict[str, str]:
    paths = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    paths += [ROOT / "clients" / "python" / "README.md", ROOT / "bench" / "README.md"]
    return {p.relative_to(ROOT).as_posix(): p.read_text("utf-8") for p in paths if p.exists()}


def test_the_docs_spell_the_receive_window_header_one_way() -> None:
    spellings = re.compile(
        r"BlockATM-Rec[-_]?Window|BlockATM-RECV[-_]WINDOW|BlockATM-Recv[-_]Window", re.I
    )
    aliases = {"BlockATM-Rec_Window", "BlockATM-RECV_WINDOW"}
    for name, text in docs_texts().items():
        lines_naming_aliases: set[int] = set()
        for match in spellings.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            if match.group(0) in aliases:
                lines_naming_aliases.add(line)
            else:
                assert match.group(0) == "BlockATM-Rec-Window", f"{name}:{line}: {match.group(0)}"
        # A document names the aliases in one place (both together), or not at all.
        assert len(lines_naming_aliases) <= 1, (
            f"{name} names the aliases on lines {lines_naming_aliases}"
        )
    readme = (ROOT / "README.md").read_text("utf-8")
    assert all(alias in readme for alias in aliases)


def test_the_readme_points_to_the_self_hosted_api_reference() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    guide = readme[readme.index("## Merchant integration") : readme.index("1. **Get keys.**")]
    assert "`/docs`" in guide and "`/openapi.json`" in guide


def test_readme_sections_this_module_reads_exist() -> None:
    assert ERRORS_START in (ROOT / "README.md").read_text("utf-8")
    assert Path(SRC / "errors.py").exists()
