"""The console's view of the chains and the sweeper (docs/DESIGN.md §9 "Operator console").

- ``GET /admin/chains``: per watched chain what the watchers recorded (head, final height,
  lag, finality mode, the watcher holding the lease, reconciliation), and a live probe of every
  RPC URL (block, latency, or what failed; URLs shown without their secrets).
- ``GET /admin/sweeps``: the relayer's gas balance per chain, deposits waiting to be swept, and
  the latest sweep transactions.

The probes ask the chains from the API process, each bounded by a few seconds, so the page
answers even when an endpoint hangs.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from stablegate.admin.chain_health import probe_rpc_urls, relayer_address, relayer_balances
from stablegate.admin.pages import PREFIX, SignedIn, signed_in
from stablegate.admin.sweep_log import recent_sweeps, sweep_backlog
from stablegate.db.engine import read_scope
from stablegate.money import format_amount
from stablegate.watcher.status import chain_statuses

router = APIRouter()


@router.get(PREFIX + "/chains", include_in_schema=False)
async def chains_page(request: Request) -> Response:
    signed = await signed_in(request)
    if not isinstance(signed, SignedIn):
        return signed
    page = signed.page
    web = page.ctx.web
    async with read_scope(web.sessions) as session:
        statuses = await chain_statuses(session, web.registry, web.clock.now_ms())
    probes = await probe_rpc_urls(web.registry)
    return page.console(
        "chains.html",
        signed.operator,
        current="chains",
        statuses=statuses,
        probes=probes,
        now_ms=web.clock.now_ms(),
    )


@router.get(PREFIX + "/sweeps", include_in_schema=False)
async def sweeps_page(request: Request) -> Response:
    signed = await signed_in(request)
    if not isinstance(signed, SignedIn):
        return signed
    page = signed.page
    web = page.ctx.web
    watched = [chain.id for chain in web.registry.with_rpc()]
    async with read_scope(web.sessions) as session:
        sweeps = await recent_sweeps(session)
        backlog = await sweep_backlog(session, watched)
    relayer = relayer_address(web.settings)
    balances = await relayer_balances(web.registry, relayer)
    names = {chain.id: chain.name for chain in web.registry.with_rpc()}
    return page.console(
        "sweeps.html",
        signed.operator,
        current="sweeps",
        relayer=relayer,
        balances=balances,
        backlog=backlog,
        sweeps=sweeps,
        names=names,
        format_amount=format_amount,
    )
