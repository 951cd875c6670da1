"""``GET /admin/audit``: the audit log, newest first, 100 a page, filtered by actor, action or
subject (exact values: the log is read by what an entry names, e.g. every change of one
merchant, or everything one operator did)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from stablegate.admin.pages import PREFIX, SignedIn, signed_in
from stablegate.db.engine import read_scope
from stablegate.models import AuditEntry

router = APIRouter()

PAGE_SIZE = 100
MAX_FILTER = 200


def audit_rows(entries: list[AuditEntry]) -> list[dict[str, object]]:
    """Entries as the audit table shows them; the details as JSON text (autoescaped like all
    text: they hold what merchants typed)."""
    return [
        {"entry": entry, "details": json.dumps(entry.details, ensure_ascii=False, sort_keys=True)}
        for entry in entries
    ]


def _before(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 19 else None


@router.get(PREFIX + "/audit", include_in_schema=False)
async def audit_page(
    request: Request, actor: str = "", action: str = "", subject: str = "", before: str = ""
) -> Response:
    signed = await signed_in(request)
    if not isinstance(signed, SignedIn):
        return signed
    page = signed.page
    filters = {
        "actor": actor.strip()[:MAX_FILTER],
        "action": action.strip()[:MAX_FILTER],
        "subject": subject.strip()[:MAX_FILTER],
    }
    statement = select(AuditEntry)
    for name, value in filters.items():
        if value:
            statement = statement.where(getattr(AuditEntry, name) == value)
    cursor = _before(before)
    if cursor is not None:
        statement = statement.where(AuditEntry.id < cursor)
    async with read_scope(page.ctx.web.sessions) as session:
        entries = list(
            (
                await session.scalars(statement.order_by(AuditEntry.id.desc()).limit(PAGE_SIZE + 1))
            ).all()
        )
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    return page.console(
        "audit.html",
        signed.operator,
        current="audit",
        entries=audit_rows(entries),
        filters=filters,
        next_before=entries[-1].id if more and entries else None,
    )
