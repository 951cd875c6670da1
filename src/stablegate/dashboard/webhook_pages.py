"""The Webhooks page: the default notify URL, the webhook secret's rotation, a test event, and
the delivery log with a Resend button per event.

Every statement is scoped to the signed-in user's merchant: the log and the resend go through
:mod:`stablegate.webhooks.service` (``deliveries_page``, ``resend``, both starting from
:mod:`stablegate.webhooks.queries`), so another merchant's event id is ``not_found``. Changes
are audited with the actor ``dashboard:<email>``.

- ``GET /dashboard/webhooks?cursor=…``: the page; the log is keyset-paginated, newest first.
- ``POST /dashboard/webhooks/notify-url``: set (checked like the API's and the CLI's, and an IP
  literal must be public unless private webhooks are allowed) or clear (empty value).
- ``POST /dashboard/webhooks/secret``: rotate; the new secret is shown once, on the answer.
- ``POST /dashboard/webhooks/test``: a signed ``test`` event to the default URL, sent at once
  (:mod:`stablegate.webhooks.test_event`); its answer is shown on the page.
- ``POST /dashboard/webhooks/events/{event_id}/resend``: the API's resend.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from stablegate.dashboard.errors import CsrfRefused
from stablegate.dashboard.key_pages import actor
from stablegate.dashboard.pages import PREFIX, Page, read_form
from stablegate.dashboard.sessions import Viewer
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import GatewayError, InvalidRequest, NotFound, RateLimited
from stablegate.merchants.service import checked_notify_url, get_merchant, set_policy
from stablegate.models import AuditEntry, Merchant
from stablegate.outbound import is_public_address, parse_webhook_url
from stablegate.webhooks.recording import AttemptResult
from stablegate.webhooks.secret_cache import WebhookSecretCache
from stablegate.webhooks.service import deliveries_page, resend, rotate_webhook_secret
from stablegate.webhooks.signing_key import app_signing_key
from stablegate.webhooks.test_event import claim_for_test_event
from stablegate.webhooks.worker import WebhookWorker

router = APIRouter()

PAGE = f"{PREFIX}/webhooks"
LOG_PAGE_SIZE = 20
MAX_CURSOR = 200  # longer is not one of ours
NOTICES = ("url_saved", "url_cleared", "resent")
# Test events a merchant may send per minute: each one is a request to a URL it picked.
TESTS_PER_MINUTE = 6
EVENT_ID = re.compile(r"evt_[A-Za-z0-9_-]{1,36}")  # what the notice may name


def checked_default_url(value: str, *, allow_private: bool) -> str | None:
    """The merchant's default notify URL as given (None clears it): the API's and the CLI's
    check (:func:`checked_notify_url`, the SSRF guard's own parse), and, as the guard would
    refuse it at every attempt, an IP literal that is not public (unless private webhooks are
    allowed). A name's addresses are only known when it is called: the guard checks them."""
    value = value.strip()
    if not value:
        return None
    checked_notify_url(value)
    host = parse_webhook_url(value)[1].strip("[]")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        return value
    if not allow_private and not is_public_address(literal):
        raise InvalidRequest(f"{literal} is not a public address", code="notify_url_private")
    return value


async def _set_default_url(
    session: AsyncSession, page: Page, viewer: Viewer, url: str | None
) -> None:
    clock = page.ctx.web.clock
    if url is not None:
        await set_policy(
            session, clock, merchant_id=viewer.merchant_id, notify_url=url, actor=actor(viewer)
        )
        return
    # set_policy sets, never clears: clearing is the same audited change to None.
    merchant = await session.get(Merchant, viewer.merchant_id)
    if merchant is None:
        raise NotFound("merchant not found")
    merchant.notify_url = None
    session.add(
        AuditEntry(
            at_ms=clock.now_ms(),
            actor=actor(viewer),
            action="merchant.policy_set",
            subject=viewer.merchant_id,
            details={"notifyUrl": None},
        )
    )
    await session.flush()


async def _webhooks_page(
    page: Page,
    viewer: Viewer,
    session: AsyncSession,
    *,
    status: int = 200,
    cursor: str | None = None,
    error: str | None = None,
    notice: str | None = None,
    url_value: str | None = None,
    test: AttemptResult | None = None,
    test_error: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    merchant = await get_merchant(session, viewer.merchant_id)
    try:
        log = await deliveries_page(
            session, merchant_id=viewer.merchant_id, limit=LOG_PAGE_SIZE, cursor=cursor
        )
    except InvalidRequest:  # a cursor that is not ours: the newest attempts instead
        log = await deliveries_page(session, merchant_id=viewer.merchant_id, limit=LOG_PAGE_SIZE)
        cursor = None
    now = page.ctx.web.clock.now_ms()
    previous_until = merchant.webhook_secret_prev_until_ms
    seen: set[str] = set()
    rows = []
    for item in log.items:
        # One Resend button per event: on its newest attempt of this page.
        rows.append((item, item.event_id not in seen))
        seen.add(item.event_id)
    return page.render(
        "webhooks.html",
        status=status,
        headers=headers,
        viewer=viewer,
        current="webhooks",
        notify_url=merchant.notify_url,
        url_value=(merchant.notify_url or "") if url_value is None else url_value,
        previous_until=previous_until if previous_until and previous_until > now else None,
        rows=rows,
        paged=cursor is not None,
        next_cursor=log.next_cursor,
        error=error,
        notice=notice,
        test=test,
        test_error=test_error,
    )


@router.get(PAGE, include_in_schema=False)
async def webhooks_page(
    request: Request, cursor: str = "", notice: str = "", event: str = ""
) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        shown = None
        if notice in NOTICES and (notice != "resent" or EVENT_ID.fullmatch(event)):
            shown = page.t(f"webhooks_{notice}", event=event)
        return await _webhooks_page(
            page,
            viewer,
            session,
            cursor=cursor[:MAX_CURSOR] or None,
            notice=shown,
        )


@router.post(PAGE + "/notify-url", include_in_schema=False)
async def save_notify_url(request: Request) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            page.check_session_form(viewer, form)
        except CsrfRefused as exc:
            return page.refusal(exc)
        value = form.get("notify_url", "")
        try:
            url = checked_default_url(value, allow_private=web.settings.allow_private_webhooks)
            await _set_default_url(session, page, viewer, url)
        except InvalidRequest as exc:
            return await _webhooks_page(
                page, viewer, session, status=400, error=page.error_text(exc), url_value=value
            )
    return page.redirect(f"{PAGE}?notice={'url_saved' if url else 'url_cleared'}")


@router.post(PAGE + "/secret", include_in_schema=False)
async def rotate_secret(request: Request) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            page.check_session_form(viewer, form)
        except CsrfRefused as exc:
            return page.refusal(exc)
        rotated = await rotate_webhook_secret(
            session, web.secret_box, web.clock, merchant_id=viewer.merchant_id, actor=actor(viewer)
        )
    return page.render(
        "webhook_secret.html",
        viewer=viewer,
        current="webhooks",
        secret=rotated.webhook_secret,
        previous_until=rotated.previous_valid_until_ms,
    )


@router.post(PAGE + "/test", include_in_schema=False)
async def send_test(request: Request) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            page.check_session_form(viewer, form)
        except CsrfRefused as exc:
            return page.refusal(exc)
        try:
            decision = await web.limiter.backend.take(
                f"dashboard-webhook-test:{viewer.merchant_id}", TESTS_PER_MINUTE, 60_000
            )
            if not decision.allowed:
                raise RateLimited(
                    "too many test events; try again later",
                    retry_after=max(1, -(-decision.retry_after_ms // 1000)),
                )
            claim = await claim_for_test_event(
                session,
                WebhookSecretCache(web.secret_box),
                web.clock,
                merchant_id=viewer.merchant_id,
            )
        except GatewayError as exc:
            return await _webhooks_page(
                page,
                viewer,
                session,
                status=exc.status,
                test_error=page.error_text(exc),
                headers=dict(exc.headers),
            )
    # Sent outside any transaction (up to 10 s), by the worker's own request step.
    async with WebhookWorker(
        web.sessions, web.clock, web.settings, web.secret_box, app_signing_key(request)
    ) as worker:
        result = await worker.send(claim)
    async with session_scope(web.sessions) as session:
        session.add(
            AuditEntry(
                at_ms=web.clock.now_ms(),
                actor=actor(viewer),
                action="webhook.test_sent",
                subject=viewer.merchant_id,
                details={
                    "eventId": claim.event_id,
                    "outcome": result.outcome.value,
                    "responseStatus": result.status_code,
                },
            )
        )
    async with read_scope(web.sessions) as session:
        return await _webhooks_page(page, viewer, session, test=result)


@router.post(PAGE + "/events/{event_id}/resend", include_in_schema=False)
async def resend_event(request: Request, event_id: str) -> Response:
    page = Page.of(request)
    web = page.ctx.web
    form = await read_form(request)
    async with session_scope(web.sessions) as session:
        viewer = await page.viewer(session)
        if viewer is None:
            return page.redirect(f"{PREFIX}/login")
        try:
            page.check_session_form(viewer, form)
            await resend(
                session,
                web.clock,
                merchant_id=viewer.merchant_id,
                event_id=event_id[:64],
                actor=actor(viewer),
            )
        except (CsrfRefused, NotFound) as exc:
            return page.refusal(exc, viewer)
    return page.redirect(f"{PAGE}?{urlencode({'notice': 'resent', 'event': event_id})}")
