"""The rate endpoints: the public exchange-rate API and the merchant's own pricing rules.

``GET /api/v1/public/rates`` (every priced pair, or ``?symbol=&currency=`` one) serves the
gateway's rates without any merchant's overrides, limited per IP like every public endpoint and
cached a few seconds (:mod:`stablegate.rates.board`). The merchant's endpoints under
``/api/v1/rates`` read and change that merchant's overrides only: every call is scoped to the
authenticated merchant, and changes are audited by the store.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from stablegate.auth.json_body import parse_json_object
from stablegate.db.engine import read_scope, session_scope
from stablegate.errors import InvalidRequest
from stablegate.models.rate import GATEWAY_SCOPE
from stablegate.rates import store
from stablegate.rates.board import RateBoard
from stablegate.rates.pairs import require_pair
from stablegate.rates.rule_requests import rule_changes
from stablegate.rates.schemas import (
    DeletedRuleOut,
    MerchantQuoteOut,
    MerchantRuleList,
    MerchantRuleOut,
    PairRef,
    RateList,
    RateOut,
    SetRuleRequest,
)
from stablegate.rates.service import Rates
from stablegate.rates.view import merchant_quote_out, merchant_rule_out
from stablegate.web.context import get_context
from stablegate.web.errors import error_responses, json_body_schema, validation_message
from stablegate.web.security import MerchantRequest, merchant_request, public_request

# Sent with json.dumps like every other answer.
public_router = APIRouter(
    prefix="/api/v1/public", tags=["public"], default_response_class=JSONResponse
)

_PUBLIC_ERRORS = error_responses(400, 429, 503)
SymbolParam = Annotated[str | None, Query(min_length=1, max_length=20, description="e.g. USDT")]
CurrencyParam = Annotated[
    str | None, Query(min_length=1, max_length=20, description="ISO 4217, e.g. CNY")
]


def rate_board(request: Request) -> RateBoard:
    """The public rate board, put in ``app.state`` by the app."""
    board: RateBoard = request.app.state.rate_board
    return board


@public_router.get(
    "/rates",
    response_model=RateList | RateOut,
    responses=_PUBLIC_ERRORS,
    summary="Exchange rates (fiat per token) under the gateway's rules: every pair, or one",
)
async def public_rates(
    request: Request,
    response: Response,
    symbol: SymbolParam = None,
    currency: CurrencyParam = None,
) -> RateList | RateOut:
    await public_request(request)
    board = rate_board(request)
    answer: RateList | RateOut
    if symbol is None and currency is None:
        answer = await board.all_rates()
    elif symbol is None or currency is None:
        raise InvalidRequest(
            'give both "symbol" and "currency", or neither', code="invalid_request"
        )
    else:
        answer = await board.pair(*require_pair(board.registry, symbol, currency))
    response.headers["Cache-Control"] = f"public, max-age={board.ttl_s}"
    return answer


# -- the merchant's own rules ---------------------------------------------------------------

router = APIRouter(prefix="/api/v1/rates", tags=["rates"], default_response_class=JSONResponse)
_ERRORS = error_responses(400, 401, 413, 418, 429, 503)

M = TypeVar("M", bound=BaseModel)


def rates_service(request: Request) -> Rates:
    """The process's rate service, put in ``app.state`` by the app."""
    rates: Rates = request.app.state.rates
    return rates


def _rule_body(model: type[M], body: bytes) -> M:
    """The body as ``model``: a field it does not know is ``unknown_field``, any other problem
    (a missing pair, a wrong type) ``invalid_rate_rule``."""
    try:
        return model.model_validate(parse_json_object(body))
    except ValidationError as exc:
        code, message = validation_message(exc)
        raise InvalidRequest(
            message, code=code if code == "unknown_field" else "invalid_rate_rule"
        ) from None


def _actor(auth: MerchantRequest) -> str:
    return f"api:{auth.credentials.api_key_id}"


@router.get(
    "/rules",
    response_model=MerchantRuleList,
    responses=_ERRORS,
    summary="The merchant's own rate rules, each with the rule in effect",
)
async def merchant_rules(request: Request, response: Response) -> MerchantRuleList:
    ctx = get_context(request)
    auth = await merchant_request(request, write=False)
    response.headers.update(auth.rate_headers)
    async with read_scope(ctx.sessions) as session:
        own = await store.rules_of(session, auth.merchant_id)
        gateway = {(r.symbol, r.currency): r for r in await store.rules_of(session, GATEWAY_SCOPE)}
    return MerchantRuleList(
        rules=[
            merchant_rule_out(
                ctx.settings,
                row.symbol,
                row.currency,
                gateway.get((row.symbol, row.currency)),
                row,
                row.updated_at_ms,
            )
            for row in own
        ]
    )


@router.post(
    "/setRule",
    response_model=MerchantRuleOut,
    openapi_extra=json_body_schema(SetRuleRequest),
    responses=_ERRORS,
    summary="Set fields of the merchant's rule of one pair; null makes a field inherit (signed)",
)
async def set_rule(request: Request, response: Response) -> MerchantRuleOut:
    ctx = get_context(request)
    auth = await merchant_request(request, write=True)
    req = _rule_body(SetRuleRequest, auth.body)
    symbol, currency = require_pair(ctx.registry, req.symbol, req.currency)
    changes = rule_changes(req)
    async with session_scope(ctx.sessions) as session:
        row = await store.set_rule(
            session,
            ctx.clock,
            scope=auth.merchant_id,
            symbol=symbol,
            currency=currency,
            changes=changes,
            actor=_actor(auth),
        )
        gateway, _ = await store.rules_for(session, None, symbol, currency)
        view = merchant_rule_out(ctx.settings, symbol, currency, gateway, row, ctx.clock.now_ms())
    response.headers.update(auth.rate_headers)
    return view


@router.post(
    "/deleteRule",
    response_model=DeletedRuleOut,
    openapi_extra=json_body_schema(PairRef),
    responses=_ERRORS,
    summary="Drop the merchant's rule of one pair: it follows the gateway's rule again (signed)",
)
async def delete_rule(request: Request, response: Response) -> DeletedRuleOut:
    ctx = get_context(request)
    auth = await merchant_request(request, write=True)
    ref = _rule_body(PairRef, auth.body)
    symbol, currency = require_pair(ctx.registry, ref.symbol, ref.currency)
    async with session_scope(ctx.sessions) as session:
        deleted = await store.delete_rule(
            session,
            ctx.clock,
            scope=auth.merchant_id,
            symbol=symbol,
            currency=currency,
            actor=_actor(auth),
        )
    response.headers.update(auth.rate_headers)
    return DeletedRuleOut(symbol=symbol, currency=currency, deleted=deleted)


@router.get(
    "/quote",
    response_model=MerchantQuoteOut,
    responses=_ERRORS,
    summary="The rate the merchant's next order in a pair would be priced at",
)
async def merchant_quote(
    request: Request,
    response: Response,
    symbol: Annotated[str, Query(min_length=1, max_length=20, description="e.g. USDT")],
    currency: Annotated[str, Query(min_length=1, max_length=20, description="e.g. CNY")],
) -> MerchantQuoteOut:
    ctx = get_context(request)
    auth = await merchant_request(request, write=False)
    response.headers.update(auth.rate_headers)
    pair = require_pair(ctx.registry, symbol, currency)
    async with read_scope(ctx.sessions) as session:
        rate = await rates_service(request).pair_rate(session, auth.merchant_id, *pair)
    response.headers["Cache-Control"] = "no-store"
    return merchant_quote_out(rate)
