"""The Overview page (``GET /dashboard/overview``, where ``/dashboard/`` leads once signed in):
money received per token and chain today, in 7 and in 30 days, a chart of the last 30 days
(server-rendered SVG with a table as its text), open and exceptional orders with links to the
orders list. Every figure is scoped to the signed-in user's merchant
(:mod:`stablegate.dashboard.overview`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate.dashboard.overview import merchant_overview
from stablegate.dashboard.pages import PREFIX, Page
from stablegate.db.engine import session_scope

router = APIRouter()


@router.get(PREFIX + "/overview", include_in_schema=False)
async def overview_page(request: Request) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        overview = await merchant_overview(
            session, web.registry, merchant_id=viewer.merchant_id, now_ms=web.clock.now_ms()
        )
    return page.render("overview.html", viewer=viewer, current="overview", overview=overview)
