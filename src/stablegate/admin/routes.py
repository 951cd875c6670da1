"""The console's one router, included by :mod:`stablegate.api.app` (its CSS and script are
the dashboard's, served under ``/dashboard/static``)."""

from __future__ import annotations

from fastapi import APIRouter

from stablegate.admin import (
    audit_pages,
    chain_pages,
    login_pages,
    merchant_pages,
    security_pages,
    settings_pages,
)

# Every page router, listed once (the tests walk them to check each route).
PAGE_ROUTERS = (
    login_pages.router,
    merchant_pages.router,
    chain_pages.router,
    audit_pages.router,
    settings_pages.router,
    security_pages.router,
)

router = APIRouter()
for page_router in PAGE_ROUTERS:
    router.include_router(page_router)
