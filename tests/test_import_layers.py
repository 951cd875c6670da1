"""Imports go one way: every import of every module under ``src/stablegate`` (top-level ones,
ones inside functions and ``TYPE_CHECKING`` blocks alike) points at a top-level package or
module in an earlier row of :data:`LAYERS`, and no top-level packages import each other in a
cycle. The order is described in docs/DESIGN.md §1 and README's Layout section."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent / "src" / "stablegate"
ROOT_PACKAGE = "stablegate"
OPEN_TO_ALL = {ROOT_PACKAGE, "__version__"}  # the package's version, importable from anywhere

# Lowest first. A top-level package or module may import only from the rows above its own: the
# modules of one row are peers and import none of each other (plus ``stablegate.__version__``).
LAYERS: list[tuple[tuple[str, ...], str]] = [
    (
        ("errors", "clock", "stacks", "logs", "config", "json_nesting"),
        "foundations: import nothing of ours",
    ),
    (("money", "pagination", "watchdog"), "amounts, cursors and the step bound, on those"),
    (("db",), "engine, sessions, declarative base and column types"),
    (("models",), "the tables, on db's base"),
    (("migrations",), "Alembic's env.py registers every model"),
    (("chain",), "chain registry, JSON-RPC, contracts, the dev chain: no gateway rules"),
    (
        ("secret_box", "auth", "leases", "outbound", "outbound_streams"),
        "self-contained services: secret encryption, request authentication, worker leases, "
        "the guard on merchant-chosen connections and the HTTP I/O under them",
    ),
    (("console",), "the CLI plumbing: settings, sessions, migrations, secrets"),
    (("merchants",), "merchants, keys and payout addresses: what every domain is scoped by"),
    (("web",), "web plumbing below every router: context, signed requests, errors, pages"),
    (
        ("rates",),
        "exchange rates: source adapters, rules, the fetcher, pricing; what orders are priced with",
    ),
    (("webhooks",), "the outbox and its delivery: knows orders only as rows"),
    (("orders",), "order rules; writes events to the webhooks outbox"),
    (("payments",), "applies transfers to orders and writes their events"),
    (("watcher", "sweeper"), "the chain workers, independent of each other"),
    (("cashier",), "the customer's side: public JSON API, page and live status"),
    (
        ("dashboard",),
        "the merchants' web pages: accounts, sessions, CSRF, keys; the cashier's languages",
    ),
    (
        ("admin",),
        "the operators' console: its own sessions, over the dashboard's pages and accounts",
    ),
    (
        ("compat",),
        "foreign wire formats (EPay, Epusdt) translated onto the order, rate and webhook services",
    ),
    (("reference",), "the API reference page, rendered from the assembled app's schema"),
    (("api",), "the app assembly, server and health"),
    (("embedded", "demo_receiver"), "everything in one process; the demo's webhook receiver"),
    (("demo",), "the end-to-end demo"),
    (("cli",), "the stablegate command: uses everything"),
]


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, e.g. stablegate.orders.service
    target: str  # what it imports, e.g. stablegate.webhooks.outbox
    line: int

    @property
    def source_top(self) -> str:
        return top_level(self.module)

    @property
    def target_top(self) -> str:
        return top_level(self.target)


def top_level(module: str) -> str:
    """``stablegate.orders.view`` -> ``orders``; the root package itself -> ``stablegate``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(module: str, source: str, *, is_package: bool = False) -> list[Import]:
    """Every ``stablegate`` import in ``source``, wherever it stands in the file."""
    found: list[Import] = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from stablegate import models`` imports the package models.
            targets = (
                [f"{base}.{alias.name}" for alias in node.names] if base == ROOT_PACKAGE else [base]
            )
        else:
            continue
        found += [
            Import(module, target, node.lineno)
            for target in targets
            if target == ROOT_PACKAGE or target.startswith(ROOT_PACKAGE + ".")
        ]
    return found


def all_imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted(SOURCE.rglob("*.py")):
        name = module_name(path)
        found += imports_of(name, path.read_text("utf-8"), is_package=path.name == "__init__.py")
    return found


def top_levels() -> set[str]:
    return {
        path.name.removesuffix(".py")
        for path in SOURCE.iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.name != "__init__.py")
    }


def rank() -> dict[str, int]:
    return {name: row for row, (names, _) in enumerate(LAYERS) for name in names}


def against_the_order(imports: list[Import]) -> list[Import]:
    """Imports of a peer or of a later row (``stablegate.__version__`` is open to all)."""
    rows = rank()
    return [
        imp
        for imp in imports
        if imp.source_top != imp.target_top
        and imp.target_top not in OPEN_TO_ALL
        and rows[imp.target_top] >= rows[imp.source_top]
    ]


def cycles(imports: list[Import]) -> list[list[str]]:
    """The strongly connected groups of more than one top-level package (Tarjan)."""
    graph: dict[str, set[str]] = {}
    for imp in imports:
        if imp.source_top != imp.target_top and imp.target_top not in OPEN_TO_ALL:
            graph.setdefault(imp.source_top, set()).add(imp.target_top)
            graph.setdefault(imp.target_top, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def describe(imp: Import) -> str:
    return f"{imp.module}:{imp.line} imports {imp.target} ({imp.source_top} -> {imp.target_top})"


def test_every_top_level_package_has_a_place_in_the_order() -> None:
    listed = set(rank())
    present = top_levels()
    assert not present - listed, f"add {sorted(present - listed)} to LAYERS"
    missing = listed - present
    assert not missing, f"LAYERS lists {sorted(missing)}, which do not exist"


def test_imports_follow_the_layer_order() -> None:
    imports = all_imports()
    assert len(imports) > 300, "the walk found too few imports to be looking at the code"
    wrong = against_the_order(imports)
    assert not wrong, "imports against the layer order:\n" + "\n".join(map(describe, wrong))


def test_no_import_cycle_between_top_level_packages() -> None:
    found = cycles(all_imports())
    assert not found, f"top-level packages importing each other: {found}"


UPWARD = """
from __future__ import annotations

from typing import TYPE_CHECKING

from stablegate import __version__
from stablegate.models import Order

if TYPE_CHECKING:
    from stablegate.cashier.live import LiveOrders


def late() -> None:
    import stablegate.api.app
    from ..web import errors
"""


def test_the_walk_sees_imports_in_functions_and_type_checking_blocks() -> None:
    imports = imports_of("stablegate.orders.example", UPWARD)
    assert {imp.target for imp in imports} == {
        "stablegate.__version__",
        "stablegate.models",
        "stablegate.cashier.live",
        "stablegate.api.app",
        "stablegate.web",
    }
    upward = {imp.target_top for imp in against_the_order(imports)}
    assert upward == {"cashier", "api"}


@pytest.mark.parametrize(
    ("module", "target", "wrong"),
    [
        ("stablegate.web.context", "stablegate.orders.service", True),  # upward
        ("stablegate.watcher.loop", "stablegate.sweeper.worker", True),  # a peer
        ("stablegate.orders.service", "stablegate.webhooks.outbox", False),
        ("stablegate.payments.service", "stablegate.orders.queries", False),
    ],
)
def test_the_order_check(module: str, target: str, wrong: bool) -> None:
    assert bool(against_the_order([Import(module, target, 1)])) is wrong


def test_a_cycle_is_found() -> None:
    imports = [
        Import("stablegate.orders.service", "stablegate.webhooks.outbox", 1),
        Import("stablegate.webhooks.service", "stablegate.payments.service", 1),
        Import("stablegate.payments.service", "stablegate.orders.view", 1),
        Import("stablegate.api.app", "stablegate.orders.endpoints", 1),
    ]
    assert cycles(imports) == [["orders", "payments", "webhooks"]]
