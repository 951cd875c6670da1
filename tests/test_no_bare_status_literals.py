"""States are compared as enum members, never as bare string literals (issue 8).

Walks the syntax tree of every source file and fails on a state value written as a string:
a comparison (``x.status == "pending"``, ``status in ("a", "b")``,
``.where(Model.status == "completed")``, ``"credit" in kinds``) or a state column set by
keyword (``Payment(status="seen")``, ``.values(status="pending")``). The values are read from
the enums themselves; migrations are exempt (they are history and must not follow the code).
"""

from __future__ import annotations

import ast
from enum import StrEnum
from pathlib import Path

import pytest

import stablegate
from stablegate.db.base import Base
from stablegate.db.types import StrEnumColumn
from stablegate.models.chain_state import FinalityMode
from stablegate.models.merchant import DepositStrategy, LatePaymentPolicy
from stablegate.models.order import OrderException, OrderStatus
from stablegate.models.payment import PaymentKind, PaymentStatus
from stablegate.models.sweep import SweepItemStatus, SweepTxStatus
from stablegate.models.webhook_event import EventStatus

SOURCE = Path(stablegate.__file__).parent
STATE_ENUMS: tuple[type[StrEnum], ...] = (
    OrderStatus,
    OrderException,
    PaymentStatus,
    PaymentKind,
    SweepItemStatus,
    SweepTxStatus,
    EventStatus,
    FinalityMode,
    LatePaymentPolicy,
    DepositStrategy,
)
STATE_VALUES = frozenset(member.value for enum in STATE_ENUMS for member in enum)
# Names that hold a state: every enum-typed column, and the locals the code copies them into.
STATE_NAMES = frozenset(
    column.key
    for table in Base.metadata.tables.values()
    for column in table.columns
    if isinstance(column.type, StrEnumColumn)
) | {"strategy", "exceptions"}


def _names(node: ast.AST) -> set[str]:
    """Identifiers an expression reads: names, attributes and string subscript keys."""
    out: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            out.add(sub.attr)
        elif isinstance(sub, ast.Subscript) and isinstance(sub.slice, ast.Constant):
            out.add(str(sub.slice.value))
    return out


def _state_literals(node: ast.AST) -> list[str]:
    """State values written as string literals: alone, either branch of ``a if c else b``,
    or in a tuple, list or set."""
    if isinstance(node, ast.IfExp):
        return _state_literals(node.body) + _state_literals(node.orelse)
    elements = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return [
        e.value
        for e in elements
        if isinstance(e, ast.Constant) and isinstance(e.value, str) and e.value in STATE_VALUES
    ]


def bare_state_literals(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: expression`` for each state value compared or set as a bare string."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for i, operand in enumerate(operands):
                if not _state_literals(operand):
                    continue
                others = operands[:i] + operands[i + 1 :]
                # A plain local of another meaning ("final" range vs "unfinal") is not a state.
                if all(isinstance(o, ast.Name) and o.id not in STATE_NAMES for o in others):
                    continue
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
                break
        elif isinstance(node, ast.keyword) and node.arg in STATE_NAMES:
            if _state_literals(node.value):
                found.append(
                    f"{filename}:{node.value.lineno}: {node.arg}={ast.unparse(node.value)}"
                )
        elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(_names(t) & STATE_NAMES for t in targets) and _state_literals(node.value):
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_state_is_compared_or_set_as_a_bare_string() -> None:
    found: list[str] = []
    for path in sorted(SOURCE.rglob("*.py")):
        if "migrations" in path.relative_to(SOURCE).parts:
            continue
        found += bare_state_literals(path.read_text(), str(path.relative_to(SOURCE)))
    assert found == [], "use the state's enum member:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "code",
    [
        'x.status == "pending"',
        'status in ("seen", "final")',
        'select(Order).where(Order.status == "completed")',
        '"credit" in newly_seen.get(order_id, ())',
        'kind != "flush"',
        'merchant.deposit_strategy != "unique_amount"',
        'self.finality_mode == "tag"',
        'policy.late_payment == "complete"',
        'order["status"] != "completed"',
        'Payment(status="seen", kind="credit")',
        'update(WebhookEvent).values(status="pending")',
        'item.status = "done"',
        'tx.status = "mined" if succeeded else "failed"',
        'self.finality_mode = "tag" if tagged is not None else "count"',
    ],
)
def test_the_patterns_are_caught(code: str) -> None:
    assert bare_state_literals(code) != []


@pytest.mark.parametrize(
    "code",
    [
        "x.status == PaymentStatus.SEEN",
        'mode == "final"',  # a local of another meaning
        'row["final"]',
        'log.info("done", status=status)',
        'x.name == "pending work"',
    ],
)
def test_enum_members_and_other_strings_pass(code: str) -> None:
    assert bare_state_literals(code) == []
