"""The dashboard's one router, included by :mod:`stablegate.api.app`: its pages and its static
files (CSS and the copy-and-confirm script; the CSP allows no inline code)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from stablegate.dashboard import (
    account_pages,
    key_pages,
    order_pages,
    overview_pages,
    reset_pages,
    security_pages,
    settings_pages,
    webhook_pages,
)
from stablegate.dashboard.pages import PREFIX, STATIC

# Every page router, listed once (the tests walk them to check each route).
PAGE_ROUTERS = (
    account_pages.router,
    overview_pages.router,
    order_pages.router,
    key_pages.router,
    webhook_pages.router,
    settings_pages.router,
    security_pages.router,
    reset_pages.router,
)

router = APIRouter()
for page_router in PAGE_ROUTERS:
    router.include_router(page_router)


@router.get(PREFIX + "/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    found = STATIC.get(name)
    if found is None:
        return Response(status_code=404)
    # Versioned by content (static_url), so cached for good.
    return Response(
        found.content,
        media_type=found.media_type,
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )
